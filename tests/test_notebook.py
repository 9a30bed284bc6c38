"""The exploration notebook runs locally, so that it cannot rot."""

from __future__ import annotations

import runpy

from customer_activity.jobs.contract import load_contract
from customer_activity_testing.paths import REPOSITORY

NOTEBOOK = REPOSITORY / "notebooks" / "explore_customer_activity.py"


def test_the_notebook_is_in_databricks_source_format():
    text = NOTEBOOK.read_text()
    assert text.startswith("# Databricks notebook source\n")
    assert text.count("\n# COMMAND ----------\n") >= 5


def test_the_notebook_runs_every_layer_on_the_local_sample(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUSTOMER_ACTIVITY_SAMPLE_DIR", str(tmp_path / "sample"))
    monkeypatch.setenv("CUSTOMER_ACTIVITY_CHARTS_DIR", str(tmp_path / "charts"))
    monkeypatch.setenv("CUSTOMER_ACTIVITY_SAMPLE_ORGANIZATIONS", "25")
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)

    namespace = runpy.run_path(str(NOTEBOOK), init_globals={"spark": spark}, run_name="__main__")

    result = namespace["customer_activity"]
    assert result.columns == load_contract().spark_schema.names
    assert result.count() == 25
    assert set(namespace["staged"]) == set(namespace["raw"])
    assert "organization" in capsys.readouterr().out

    # It ends with the dashboard's views, drawn: one PNG per chart, each from its query's rows.
    charts = namespace["charts"]
    assert set(charts) == {"ramping_up", "gone_quiet", "platform_mix", "contract_coverage"}
    for path in charts.values():
        assert path.parent == tmp_path / "charts"
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
        assert path.stat().st_size > 5_000, f"{path} is too small to hold a chart"
    assert set(namespace["views"]) == {
        p.stem for p in (REPOSITORY / "resources" / "dashboard" / "queries").glob("*.sql")
    }
    platforms = namespace["views"]["platform_mix"].collect()
    assert sum(row.customers for row in platforms) == 25
