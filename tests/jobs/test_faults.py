"""A failure at any step leaves the published output exactly as it was, and readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from customer_activity.jobs import build as build_job
from customer_activity.jobs import catalog, inputs, publishing
from customer_activity.jobs.errors import EXIT_INTERNAL_ERROR
from customer_activity.transforms import output_ports
from customer_activity_testing.outputs import build, fingerprint, published, run_report, staged_leftovers

pytestmark = pytest.mark.e2e


def assert_untouched(output: Path, before: dict[str, object], rows: int) -> None:
    assert fingerprint(output) == before
    assert published(output).num_rows == rows
    assert staged_leftovers(output) == set()
    assert run_report(output)["status"] == "failed"


@pytest.fixture
def baseline(output_copy: Path) -> tuple[dict[str, object], int]:
    return fingerprint(output_copy), published(output_copy).num_rows


def fail(message: str):
    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(message)

    return failing


def test_a_failure_while_reading_inputs(sample_source, output_copy, baseline, monkeypatch, capsys):
    monkeypatch.setattr(inputs, "read_raw_tables", fail("injected: the source disk went away"))
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert "internal error" in capsys.readouterr().err
    assert_untouched(output_copy, *baseline)
    assert "injected: the source disk went away" in run_report(output_copy)["error"]


def test_a_transform_that_raises(sample_source, output_copy, baseline, monkeypatch):
    monkeypatch.setattr(output_ports, "customer_activity", fail("injected: a transform raised"))
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert_untouched(output_copy, *baseline)


def test_a_writer_that_dies_mid_write(sample_source, output_copy, baseline, monkeypatch):
    """Some of Spark's write tasks fail after others have written their files."""
    real = build_job.build_candidate

    def dying(*args: object, **kwargs: object):
        candidate = real(*args, **kwargs)
        doomed = F.when(F.col("users_total") > 3, F.raise_error(F.lit("injected: writer died")))
        return candidate.withColumn("organization_id", F.coalesce(doomed, F.col("organization_id")))

    monkeypatch.setattr(build_job, "build_candidate", dying)
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert_untouched(output_copy, *baseline)


def test_an_audit_that_fails_to_run(sample_source, output_copy, baseline, monkeypatch):
    monkeypatch.setattr(build_job, "audit", fail("injected: the audit query failed"))
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert_untouched(output_copy, *baseline)


def test_a_commit_whose_write_tasks_die(sample_source, output_copy, baseline, monkeypatch):
    """The INSERT OVERWRITE fails after some of its tasks wrote files: nothing is committed."""
    real = catalog.replace_rows

    def dying(*args: object, **kwargs: object) -> str:
        statement = real(*args, **kwargs)
        head, columns = statement.split(" SELECT ", 1)
        doomed = "IF(`users_total` > 3, raise_error('injected: the commit died'), `organization_id`)"
        return f"{head} SELECT {columns.replace('`organization_id`', doomed, 1)}"

    monkeypatch.setattr(catalog, "replace_rows", dying)
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert_untouched(output_copy, *baseline)


def test_a_first_commit_that_dies_leaves_no_table_behind(sample_source, tmp_path, monkeypatch):
    """The table was created for this run; an empty one would break the contract."""
    real = catalog.replace_rows

    def dying(*args: object, **kwargs: object) -> str:
        return real(*args, **kwargs).replace(" SELECT ", " SELECT /* injected */ ", 1) + " WHERE raise_error('died')"

    monkeypatch.setattr(catalog, "replace_rows", dying)
    assert build(sample_source, tmp_path / "out") == EXIT_INTERNAL_ERROR
    assert not (tmp_path / "out" / "customer_activity").exists()
    assert run_report(tmp_path / "out")["status"] == "failed"


def test_a_failure_while_governing_the_table(sample_source, output_copy, baseline, monkeypatch):
    monkeypatch.setattr(publishing, "table_state", fail("injected: the catalog did not answer"))
    assert build(sample_source, output_copy) == EXIT_INTERNAL_ERROR
    assert_untouched(output_copy, *baseline)
