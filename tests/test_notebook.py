"""The exploration notebook runs locally, so that it cannot rot."""

from __future__ import annotations

import json
import runpy
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from customer_activity.jobs.contract import load_contract
from customer_activity_testing.outputs import AS_OF
from customer_activity_testing.paths import REPOSITORY

NOTEBOOK = REPOSITORY / "notebooks" / "explore_customer_activity.py"


def test_the_notebook_is_in_databricks_source_format():
    text = NOTEBOOK.read_text()
    assert text.startswith("# Databricks notebook source\n")
    assert text.count("\n# COMMAND ----------\n") >= 5


def test_the_notebook_reads_the_local_runs_tables_and_draws_its_charts_beside_them(
    spark, sample_source, tmp_path, monkeypatch, capsys
):
    """After `python3 dev.py run`: the run's raw tables, for the run's as-of date; nothing in the temp directory."""
    workdir = tmp_path / "local-run"
    (workdir / "output").mkdir(parents=True)
    (workdir / "raw").symlink_to(sample_source, target_is_directory=True)
    (workdir / "output" / "customer_activity_run_report.json").write_text(json.dumps({"as_of": AS_OF.isoformat()}))
    monkeypatch.setenv("CUSTOMER_ACTIVITY_WORKDIR", str(workdir))
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    temporary = set(Path(tempfile.gettempdir()).glob("customer-activity-*"))

    namespace = runpy.run_path(str(NOTEBOOK), init_globals={"spark": spark}, run_name="__main__")

    organizations = pq.read_table(sample_source / "organization", columns=["organization_id"])
    result = namespace["customer_activity"]
    assert namespace["as_of"] == AS_OF
    assert result.columns == load_contract().spark_schema.names
    assert result.count() == len(set(organizations.column("organization_id").drop_null().to_pylist())) > 0
    assert set(namespace["staged"]) == set(namespace["raw"])
    out = capsys.readouterr().out
    assert "organization" in out
    assert "generating" not in out
    assert sorted(p.name for p in workdir.iterdir()) == ["charts", "output", "raw"]
    left = set(Path(tempfile.gettempdir()).glob("customer-activity-*")) - temporary
    # The mounted raw tables' directory belongs to the Spark process and goes when it ends.
    assert [p.name for p in left if not p.name.startswith("customer-activity-raw-")] == []

    # It ends with the dashboard's views, drawn: one PNG per chart, each from its query's rows.
    charts = namespace["charts"]
    assert set(charts) == {"ramping_up", "gone_quiet", "platform_mix", "contract_coverage"}
    for path in charts.values():
        assert path.parent == workdir / "charts"
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
        assert path.stat().st_size > 5_000, f"{path} is too small to hold a chart"
    assert set(namespace["views"]) == {
        p.stem for p in (REPOSITORY / "resources" / "dashboard" / "queries").glob("*.sql")
    }
    platforms = namespace["views"]["platform_mix"].collect()
    assert sum(row.customers for row in platforms) == result.count()
