"""A local output directory: checked before any work, never followed out of, no leftovers."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime

import pytest

from customer_activity.jobs import inputs, local_catalog
from customer_activity.jobs.errors import EXIT_INPUT_ERROR, EXIT_OK, EXIT_USAGE
from customer_activity_testing.outputs import build, fingerprint, run_report, staged_leftovers, table_files
from customer_activity_testing.outputs import published as published_rows

pytestmark = pytest.mark.e2e


@pytest.fixture
def inputs_untouched(monkeypatch):
    """Fails the test if the build reads its inputs: the output must be refused before that."""

    def reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the inputs were read before the output location was checked")

    monkeypatch.setattr(inputs, "read_raw_tables", reading)


def assert_refused(capsys, expected: str) -> None:
    error = capsys.readouterr().err
    assert expected in error
    assert "Traceback" not in error
    assert len(error.strip().splitlines()) == 1, error


@pytest.mark.parametrize("name", [".customer_activity.staging", "customer_activity_run_report.json"])
def test_a_symbolic_link_where_the_job_writes_is_refused_and_not_followed(
    sample_source, output_copy, tmp_path, capsys, inputs_untouched, name
):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "someone's data").mkdir(parents=True)
    (elsewhere / "someone's data" / "keep.txt").write_text("keep me")
    link = output_copy / name
    if link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    link.symlink_to(elsewhere)
    before, files = fingerprint(output_copy), table_files(output_copy)

    assert build(sample_source, output_copy) == EXIT_USAGE

    assert_refused(capsys, f"{link} is a symbolic link; the job writes and deletes there")
    assert (elsewhere / "someone's data" / "keep.txt").read_text() == "keep me"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["someone's data"]
    assert link.is_symlink()
    assert fingerprint(output_copy) == before
    assert table_files(output_copy) == files


def test_directories_named_like_glob_patterns_are_read_and_published_to(spark, sample_source, tmp_path):
    # Spark's file reader takes a path for a pattern: `raw[1]*` matches `raw1`, not itself.
    source = tmp_path / "raw[1]*"
    shutil.copytree(sample_source, source)
    output = tmp_path / "out[1] {a,b}"
    assert build(source, output) == EXIT_OK
    assert run_report(output)["status"] == "succeeded"
    assert published_rows(output).num_rows == run_report(output)["output_rows"] > 0
    assert staged_leftovers(output) == set()


def test_an_output_path_that_is_a_file_is_refused_before_any_work(sample_source, tmp_path, capsys, inputs_untouched):
    output = tmp_path / "out"
    output.write_text("not a directory")

    assert build(sample_source, output) == EXIT_USAGE

    assert_refused(capsys, f"the output directory {output} is a file, not a directory")
    assert output.read_text() == "not a directory"


def test_an_output_directory_that_cannot_be_created_is_refused(sample_source, tmp_path, capsys, inputs_untouched):
    (tmp_path / "a-file").write_text("")

    assert build(sample_source, tmp_path / "a-file" / "out") == EXIT_USAGE

    assert_refused(capsys, f"the output directory {tmp_path / 'a-file' / 'out'} cannot be written to (")


def test_a_read_only_output_directory_is_refused_before_any_work(
    sample_source, output_copy, capsys, inputs_untouched, monkeypatch
):
    files = table_files(output_copy)
    if os.geteuid() == 0:
        # root writes through any mode bits: stand in for the file system's refusal.
        def refused(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(local_catalog.tempfile, "NamedTemporaryFile", refused)
    else:
        output_copy.chmod(0o555)
    try:
        assert build(sample_source, output_copy) == EXIT_USAGE
    finally:
        output_copy.chmod(0o755)

    assert_refused(capsys, f"the output directory {output_copy} cannot be written to (Permission denied)")
    assert table_files(output_copy) == files


def test_a_run_report_that_cannot_be_written_never_replaces_the_runs_error(sample_source, tmp_path, capsys, caplog):
    source = tmp_path / "raw"
    source.mkdir()
    output = tmp_path / "out"
    # A directory where the report goes: writing it fails after the run itself has failed.
    (output / "customer_activity_run_report.json").mkdir(parents=True)

    with caplog.at_level(logging.ERROR, logger="customer_activity.jobs.build"):
        assert build(source, output) == EXIT_INPUT_ERROR

    assert f"organization: {source}/organization does not exist" in capsys.readouterr().err
    assert "the run report could not be written to" in caplog.text


def test_candidates_of_builds_killed_long_ago_are_removed_and_a_running_ones_kept(sample_source, output_copy, caplog):
    staging = output_copy / ".customer_activity.staging"
    dead = staging / "_customer_activity_staging_20261119t060000z_dead0001"
    running = staging / f"_customer_activity_staging_{datetime.now(UTC):%Y%m%dt%H%M%Sz}_busy0001"
    for candidate in (dead, running):
        (candidate / "_delta_log").mkdir(parents=True)
    files = table_files(output_copy)

    with caplog.at_level(logging.WARNING, logger="customer_activity.jobs.local_catalog"):
        assert build(sample_source, output_copy) == EXIT_OK

    assert not dead.exists()
    assert running.exists(), "a candidate staged less than a day ago may be a running build's"
    assert f"removing {dead}, left by a build that did not finish" in caplog.text
    assert table_files(output_copy) != files


def test_an_interrupted_build_says_so_in_its_run_report(sample_source, tmp_path, monkeypatch):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(inputs, "read_raw_tables", interrupted)

    with pytest.raises(KeyboardInterrupt):
        build(sample_source, tmp_path)

    report = run_report(tmp_path)
    assert (report["status"], report["error"]) == ("failed", "interrupted: KeyboardInterrupt")
