"""End to end: `customer-activity build` on generated raw tables, as a user runs it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from customer_activity_testing import reference
from customer_activity_testing.outputs import AS_OF, as_utc, build, delta_table, run_report, staged_leftovers
from customer_activity_testing.outputs import published as published_rows

pytestmark = pytest.mark.e2e

VERSIONED = ("organization", "organization_member", "data_product", "asset", "output_port", "data_contract")


def test_build_produces_exactly_the_rows_the_specification_defines(sample_source, published_output):
    """Compared with an independent plain-Python reading of SPEC, row by row."""
    published = published_rows(published_output).to_pylist()
    expected = reference.customer_activity(sample_source, AS_OF)

    assert Counter(row["organization_id"] for row in published) == Counter(expected.keys())
    for row in published:
        updated_at = row.pop("updated_at")
        assert updated_at is not None
        assert {k: as_utc(v) for k, v in row.items()} == {
            k: as_utc(v) for k, v in expected[row["organization_id"]].items()
        }


def test_every_output_row_carries_the_runs_start_as_updated_at(published_output):
    report = run_report(published_output)
    started = datetime.fromisoformat(report["updated_at"])
    values = set(published_rows(published_output).column("updated_at").to_pylist())
    assert {as_utc(v) for v in values} == {as_utc(started)}


def test_run_report_counts_what_staging_dropped_per_table(sample_source, published_output):
    report = run_report(published_output)
    assert report["status"] == "succeeded"
    assert report["as_of"] == AS_OF.isoformat()
    for table in VERSIONED:
        key = reference.KEYS[table]
        keys = [row[key] for row in pq.read_table(sample_source / table).to_pylist()]
        counted = report["inputs"][table]
        assert counted["rows"] == len(keys)
        assert counted["null_key_rows_dropped"] == keys.count(None)
        assert counted["rows_after_staging"] == len(set(keys) - {None})
        assert counted["superseded_versions_removed"] == len(keys) - keys.count(None) - len(set(keys) - {None})
    assert report["inputs"]["test_result"]["superseded_versions_removed"] == 0
    assert report["output_rows"] == published_rows(published_output).num_rows
    assert report["published_version"] == delta_table(published_output).version()


def test_run_report_counts_kept_rows_with_unparseable_timestamps(sample_source, published_output):
    """Rule 3: a latest version whose timestamp cannot be parsed is kept, and counted."""
    rows = pq.read_table(sample_source / "organization").to_pylist()
    latest = reference._latest(rows, "organization_id").values()
    malformed = sum(
        1 for row in latest if row["created_at"] is not None and reference._timestamp(row["created_at"]) is None
    )
    assert malformed > 0, "the sample is meant to contain malformed timestamps"
    assert run_report(published_output)["inputs"]["organization"]["unparseable_timestamp_rows"] == malformed


def test_run_report_lists_every_pre_publish_check_as_passed(published_output):
    checks = run_report(published_output)["checks"]
    assert checks
    assert all(check["passed"] for check in checks)
    assert {"schema matches the contract", "organization_id is unique", "organization_id is not NULL"} <= {
        check["name"] for check in checks
    }


def test_a_published_output_leaves_no_staged_candidate_behind(published_output):
    assert (published_output / "customer_activity" / "_delta_log").is_dir()
    assert staged_leftovers(published_output) == set()


def test_output_directory_inside_the_source_is_refused(sample_source, capsys):
    assert build(sample_source, sample_source / "out") == 2
    assert "must not be inside the source directory" in capsys.readouterr().err
    assert not (sample_source / "out").exists()
