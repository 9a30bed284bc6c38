"""The change gate: a contract-valid candidate far from the published table is not published."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import consumer_views
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame

from customer_activity.jobs import history, local_catalog
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.change import Change, ChangeLimits, Figure, compare
from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import (
    EXIT_CONTRACT_VIOLATION,
    EXIT_INPUT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    ConfigurationError,
)
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.report import RunReport
from customer_activity_testing.builders import rewrite
from customer_activity_testing.outputs import build, delta_table, fingerprint, published, run_report

REASON = "checked with the source team: half the organisations were deleted on purpose"


def test_limits_are_percentages_by_name_and_the_others_keep_their_defaults():
    assert ChangeLimits.parse("") == ChangeLimits()
    assert ChangeLimits.parse(" rows=30, totals = 40% ") == ChangeLimits(rows=30.0, totals=40.0)
    assert ChangeLimits.parse("organizations_gone=0").organizations_gone == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users=5", "unknown change limit 'users' in 'users=5': the limits are organizations_gone, rows, totals"),
        ("rows=many", "the change limit rows needs a percentage, got 'many'"),
        ("rows=-1", "the change limit rows must be a percentage of 0 or more"),
        ("rows=nan", "the change limit rows must be a percentage of 0 or more"),
    ],
)
def test_a_wrong_limit_is_named(text, message):
    with pytest.raises(ConfigurationError, match=message):
        ChangeLimits.parse(text)


def test_the_command_line_refuses_a_wrong_limit_and_an_empty_reason(capsys):
    arguments = ["build", "--source-dir", "raw", "--output-dir", "out"]
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--change-limits", "rows=lots"])
    assert exited.value.code == EXIT_USAGE
    assert "the change limit rows needs a percentage, got 'lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--accept-change", " "])
    assert exited.value.code == EXIT_USAGE
    assert "argument --accept-change: needs a reason" in capsys.readouterr().err


def test_a_figure_is_exceeded_either_way_and_never_without_a_published_figure():
    assert Figure("rows", 100, 79, -21.0, 20.0).exceeded
    assert Figure("rows", 100, 121, 21.0, 20.0).exceeded
    assert not Figure("rows", 100, 120, 20.0, 20.0).exceeded
    assert not Figure("rows", 0, 50, None, 20.0).exceeded
    assert Change(compared_with=None).exceeded == []
    assert Change(compared_with=None).summary() == "change: nothing published yet to compare with"


COLUMNS = "organization_id STRING, users_total BIGINT, dataproducts_total BIGINT, "
COLUMNS += "dataproducts_outputports_total BIGINT, assets_total BIGINT"


def organizations(spark, *rows: tuple) -> DataFrame:
    """Rows of (organization_id, users, data products, output ports, assets)."""
    return spark.createDataFrame(list(rows), COLUMNS)


def figures(change: Change) -> dict[str, tuple]:
    return {f.name: (f.published, f.value, f.percent, f.exceeded) for f in change.figures}


def test_the_figures_of_one_query_over_both_tables(spark):
    published = organizations(spark, ("a", 10, 1, 1, 1), ("b", 10, 1, 1, 1), ("c", 10, 1, 1, 1), ("d", 10, 1, 1, 1))
    # One organisation gone and one new at the same count: only the share gone shows it.
    candidate = organizations(spark, ("a", 10, 1, 1, 1), ("b", 10, 1, 1, 1), ("c", 10, 1, 1, 1), ("e", 20, 1, 1, 1))

    change = compare(candidate, published, 7, ChangeLimits(organizations_gone=20, rows=25, totals=25))

    assert change.compared_with == 7
    assert figures(change) == {
        "organizations_gone": (4, 1, 25.0, True),
        "rows": (4, 4, 0.0, False),
        "users_total": (40, 50, 25.0, False),  # at the limit is within it
        "dataproducts_total": (4, 4, 0.0, False),
        "dataproducts_outputports_total": (4, 4, 0.0, False),
        "assets_total": (4, 4, 0.0, False),
    }
    assert [f.name for f in change.exceeded] == ["organizations_gone"]


def test_nothing_to_compare_and_figures_without_a_published_value_pass(spark):
    candidate = organizations(spark, ("a", 3, None, 0, 1))
    assert compare(candidate, None, -1, ChangeLimits()).compared_with is None
    assert compare(candidate, candidate.drop("assets_total"), 3, ChangeLimits()).compared_with is None

    empty = compare(candidate, organizations(spark), 3, ChangeLimits(rows=0, totals=0))
    assert figures(empty)["rows"] == (0, 1, None, False)
    # NULL totals count as 0 (the contract requires them; the gate does not fail on them).
    nothing = compare(candidate, organizations(spark, ("a", 3, None, 0, 1)), 3, ChangeLimits(rows=0, totals=0))
    assert figures(nothing)["dataproducts_total"] == (0, 0, None, False)
    assert not nothing.exceeded
    # A limit given as a whole number is kept as the report's (and the history's) float.
    assert {f.limit_percent for f in nothing.figures} == {0.0, 5.0}
    assert all(isinstance(f.limit_percent, float) for f in nothing.figures)


def half_of_the_organizations(table: pa.Table) -> pa.Table:
    """Every version of every other organisation: what a partial extraction delivers."""
    keys = sorted(set(table.column("organization_id").drop_null().to_pylist()))
    return table.filter(pc.is_in(table.column("organization_id"), pa.array(keys[::2])))


def run_history(output: Path) -> list[dict]:
    """The run history as an independent reader (delta-rs) sees it, oldest first."""
    table = DeltaTable(str(output / local_catalog.STAGING_DIRECTORY / history.RUNS_TABLE))
    return sorted(table.to_pyarrow_table().to_pylist(), key=lambda run: run["updated_at"])


@pytest.mark.e2e
def test_a_partial_load_is_refused_and_published_only_with_an_override(source, output_copy, spark, capsys, caplog):
    before, version = fingerprint(output_copy), delta_table(output_copy).version()
    count = len(published(output_copy))
    # A failed build first, for the run history: a raw table that is not there.
    (source / "asset").rename(source / "asset_gone")
    assert build(source, output_copy) == EXIT_INPUT_ERROR
    (source / "asset_gone").rename(source / "asset")
    rewrite(source, "organization", half_of_the_organizations)

    assert build(source, output_copy) == EXIT_CONTRACT_VIOLATION

    error = capsys.readouterr().err
    gone = count - (count + 1) // 2
    assert f"differs from the published table (version {version}) more than the change limits allow" in error
    assert f"organisations gone: {gone} of {count} ({100 * gone / count:.1f} %), limit 5 %" in error
    assert f"rows: {count} -> {count - gone} (" in error
    assert "  - users_total: " in error
    assert "limit ±25 %" in error
    assert "--accept-change" in error
    assert "Traceback" not in error
    # An independent reader (delta-rs) sees the same version, the same rows.
    assert fingerprint(output_copy) == before
    refused = run_report(output_copy)
    assert refused["status"] == "refused"
    assert refused["published_version"] is None
    assert refused["change"]["compared_with"] == version
    assert {f["name"] for f in refused["change"]["figures"]} >= {"organizations_gone", "rows", "users_total"}

    assert build(source, output_copy, "--accept-change", REASON) == EXIT_OK

    assert len(published(output_copy)) == count - gone
    report = run_report(output_copy)
    assert report["status"] == "succeeded"
    assert report["change"]["accepted"] == REASON
    assert f"limits overridden: {REASON}" in capsys.readouterr().out
    assert f"the change limits are exceeded, and overridden for this build: {REASON}" in caplog.text

    # One row per build, each its run report: the sample's first build, then these three.
    runs = run_history(output_copy)
    assert [run["status"] for run in runs] == ["succeeded", "failed", "refused", "succeeded"]
    assert runs[1]["error"].startswith("the input tables cannot be used")
    assert runs[2]["change"] == refused["change"]
    assert runs[3]["change"]["accepted"] == REASON
    assert runs[3]["published_version"] == report["published_version"]
    assert all(run["finished_at"] >= run["updated_at"] for run in runs)
    assert_the_runs_query_shows(spark, output_copy, runs)


def assert_the_runs_query_shows(spark, output: Path, runs: list[dict]) -> None:
    """The engineers' dashboard's query, run with Spark SQL against the history the builds wrote."""
    location = output / local_catalog.STAGING_DIRECTORY / history.RUNS_TABLE
    spark.read.format("delta").load(str(location)).createOrReplaceTempView(history.RUNS_TABLE)
    try:
        shown = [row.asDict() for row in spark.sql(consumer_views.RUNS_QUERY.read_text()).collect()]
    finally:
        spark.catalog.dropTempView(history.RUNS_TABLE)

    def figure(run: dict, name: str) -> float | None:
        return (
            next((f["percent"] for f in run["change"]["figures"] if f["name"] == name), None) if run["change"] else None
        )

    columns = set(shown[0])
    for item in consumer_views.runs_dashboard()["pages"][0]["layout"]:
        for query in item["widget"].get("queries", []):
            assert {field["name"] for field in query["query"]["fields"]} <= columns, item["widget"]["name"]

    newest_first = runs[::-1]
    assert [row["run_id"] for row in shown] == [run["run_id"] for run in newest_first]
    for row, run in zip(shown, newest_first, strict=True):
        staged = dict(run["inputs"] or []).values()  # a Delta map, as delta-rs gives it: (key, value) pairs
        assert row["status"] == run["status"]
        assert row["rows_dropped_by_staging"] == sum(t["rows"] - t["rows_after_staging"] for t in staged)
        assert row["rows_quarantined"] == sum(sum(dict(t["quarantined"] or []).values()) for t in staged)
        assert row["organizations_gone_percent"] == figure(run, "organizations_gone")
        assert row["rows_change_percent"] == figure(run, "rows")
        assert row["assets_change_percent"] == figure(run, "assets_total")
        assert row["build_and_stage_seconds"] == dict(run["durations_seconds"] or []).get("build_and_stage")
        assert row["change_accepted_because"] == (run["change"] or {}).get("accepted")
        started, finished = (datetime.fromisoformat(run[k]) for k in ("updated_at", "finished_at"))
        assert row["duration_seconds"] == pytest.approx((finished - started).total_seconds(), abs=0.06)
    assert shown[1]["organizations_gone_percent"] > 5
    assert shown[0]["rows_dropped_by_staging"] > 0
    assert shown[0]["rows_quarantined"] > 0


def test_a_run_history_that_cannot_be_written_is_logged_and_the_run_stands(caplog):
    class Unwritable:
        def createDataFrame(self, *args, **kwargs):  # noqa: N802 - Spark's API spells it so
            raise PermissionError("no CREATE TABLE on the internal schema")

    output = OutputLocation(TableName("main", "customer_activity_v1", "customer_activity"))
    report = RunReport("r1", "2026-11-20", "2026-11-20T06:00:00+00:00", "c", "1", "o", "delta")

    history.record(Unwritable(), output, report)  # type: ignore[arg-type]

    assert "main.customer_activity_v1_staging.customer_activity_runs: PermissionError: no CREATE TABLE" in caplog.text
