"""The output location: checked before any work, never followed out of, one build at a time, no leftovers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from customer_activity.jobs import inputs, output_dir
from customer_activity.jobs.errors import EXIT_INPUT_ERROR, EXIT_OK, EXIT_OUTPUT_BUSY, EXIT_USAGE, ConfigurationError
from customer_activity_testing.outputs import AS_OF, build, fingerprint, run_report, table_files
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


@pytest.mark.parametrize(
    "name",
    [
        ".customer_activity.staging",
        ".customer_activity.staging/20261119T060000Z-dead0001",
        ".customer_activity.lock",
        "customer_activity_run_report.json",
    ],
)
def test_a_symbolic_link_where_the_job_writes_is_refused_and_not_followed(
    sample_source, output_copy, tmp_path, capsys, inputs_untouched, name
):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "someone's data").mkdir(parents=True)
    (elsewhere / "someone's data" / "keep.txt").write_text("keep me")
    link = output_copy / name
    link.parent.mkdir(exist_ok=True)
    if link.exists():
        link.unlink()
    link.symlink_to(elsewhere)
    before, files = fingerprint(output_copy), table_files(output_copy)

    assert build(sample_source, output_copy) == EXIT_USAGE

    assert_refused(capsys, f"{link} is a symbolic link; the job writes and deletes under {output_copy}")
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
    assert not (output / ".customer_activity.staging").exists()
    assert not [view.name for view in spark.catalog.listTables() if view.name.startswith("customer_activity_staged_")]


def test_an_output_path_that_is_a_file_is_refused_before_any_work(sample_source, tmp_path, capsys, inputs_untouched):
    output = tmp_path / "out"
    output.write_text("not a directory")

    assert build(sample_source, output) == EXIT_USAGE

    assert_refused(capsys, f"the output directory {output} is a file, not a directory")
    assert output.read_text() == "not a directory"


def test_an_output_directory_that_cannot_be_created_is_refused(sample_source, tmp_path, capsys, inputs_untouched):
    (tmp_path / "a-file").write_text("")

    assert build(sample_source, tmp_path / "a-file" / "out") == EXIT_USAGE

    assert_refused(capsys, f"the output directory {tmp_path / 'a-file' / 'out'} cannot be created (")


def test_a_read_only_output_directory_is_refused_before_any_work(
    sample_source, output_copy, capsys, inputs_untouched, monkeypatch
):
    files = table_files(output_copy)
    if os.geteuid() == 0:
        # root writes through any mode bits: stand in for the file system's refusal.
        def refused(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(output_dir.tempfile, "NamedTemporaryFile", refused)
    else:
        output_copy.chmod(0o555)
    try:
        assert build(sample_source, output_copy) == EXIT_USAGE
    finally:
        output_copy.chmod(0o755)

    assert_refused(capsys, f"the output directory {output_copy} is not writable (Permission denied)")
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


def test_leftovers_of_builds_that_died_are_removed_and_reported(output_copy, tmp_path):
    dead = output_copy / ".customer_activity.staging" / "20261119T060000Z-dead0001"
    (dead / "_temporary").mkdir(parents=True)
    (dead / "part-00000.parquet").write_bytes(b"half a candidate")
    temporary = output_copy / ".customer_activity_run_report.json.x1y2.tmp"
    temporary.write_text("{")
    files = table_files(output_copy)

    # Cleaning up comes first, once the build holds the output: even a build that then
    # fails on its inputs has done it.
    assert build(tmp_path / "no-inputs-here", output_copy) == EXIT_INPUT_ERROR

    assert not dead.exists()
    assert not temporary.exists()
    assert run_report(output_copy)["leftovers_removed"] == [
        ".customer_activity.staging/20261119T060000Z-dead0001",
        ".customer_activity_run_report.json.x1y2.tmp",
    ]
    assert table_files(output_copy) == files


# The first build, in a process of its own: it holds the output while it stages its
# candidate, says when it begins, and stalls inside the write once its task has
# handed the first rows to the writer, so the kill lands in the middle of the write.
_HOLDER = """
import sys, time
from customer_activity.jobs import publishing
from customer_activity.jobs.cli import main

write = publishing.StagingArea.write

def first_batch_then_stall(batches):
    yield next(batches)
    time.sleep(600)

def stalling_write(self, candidate):
    print("STAGING", self.run_id, flush=True)
    return write(self, candidate.coalesce(1).mapInArrow(first_batch_then_stall, candidate.schema))

publishing.StagingArea.write = stalling_write
sys.exit(main(["build", "--source-dir", sys.argv[1], "--output-dir", sys.argv[2], "--as-of", sys.argv[3]]))
"""


def test_a_second_build_is_refused_while_one_runs_and_a_killed_one_is_cleaned_up(sample_source, output_copy, capsys):
    before, files = fingerprint(output_copy), table_files(output_copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(sample_source), str(output_copy), AS_OF.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = holder.stdout.readline() if holder.stdout else ""
        assert line.startswith("STAGING "), "the first build never began to stage"
        first_run = line.split()[1]
        candidate = output_copy / ".customer_activity.staging" / first_run
        deadline = time.monotonic() + 120
        # Spark writes a task's Parquet file under _temporary/ and moves it out on commit.
        while not list(candidate.rglob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(candidate.rglob("*.parquet")), "the first build never began to write its candidate"
        assert not (candidate / "_SUCCESS").exists(), "the candidate was committed: the kill came too late"

        # While the first build writes its candidate, a second one is refused at once.
        assert build(sample_source, output_copy) == EXIT_OUTPUT_BUSY
        error = capsys.readouterr().err
        assert f"another build is publishing into {output_copy} (run {first_run}, process {holder.pid}" in error
        assert "Traceback" not in error

        # The first build is killed mid-write: its partial candidate stays behind.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert candidate.exists()
    assert fingerprint(output_copy) == before
    assert table_files(output_copy) == files

    # The killed build's lock went with its process: the next build runs, and cleans up.
    assert build(sample_source, output_copy) == EXIT_OK
    assert not candidate.exists()
    report = json.loads((output_copy / "customer_activity_run_report.json").read_text())
    assert report["leftovers_removed"] == [f".customer_activity.staging/{first_run}"]
    assert published_rows(output_copy).num_rows == published_rows(output_copy, before["version"]).num_rows


def test_an_interrupted_build_says_so_in_its_run_report(sample_source, tmp_path, monkeypatch):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(inputs, "read_raw_tables", interrupted)

    with pytest.raises(KeyboardInterrupt):
        build(sample_source, tmp_path)

    report = run_report(tmp_path)
    assert (report["status"], report["error"]) == ("failed", "interrupted: KeyboardInterrupt")


def test_a_leftover_that_cannot_be_removed_is_logged_and_the_rest_still_goes(tmp_path, monkeypatch, caplog):
    staging = tmp_path / ".customer_activity.staging"
    (staging / "stuck").mkdir(parents=True)
    (staging / "gone").mkdir()
    remove = output_dir.shutil.rmtree

    def refusing(path: object, *args: object, **kwargs: object) -> None:
        if str(path).endswith("stuck"):
            raise PermissionError(13, "Permission denied")
        remove(path, *args, **kwargs)

    monkeypatch.setattr(output_dir.shutil, "rmtree", refusing)

    with caplog.at_level(logging.WARNING, logger="customer_activity.jobs.output_dir"):
        removed = output_dir.remove_leftovers(tmp_path, staging, ())

    assert removed == [".customer_activity.staging/gone"]
    assert sorted(p.name for p in staging.iterdir()) == ["stuck"]
    assert f"could not remove {staging / 'stuck'}, left by an earlier build: Permission denied" in caplog.text


def test_a_lock_file_linked_to_a_file_elsewhere_is_refused_and_not_written(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    output = tmp_path / "out"
    output.mkdir()
    os.link(elsewhere, output / output_dir.LOCK_FILE)

    with pytest.raises(ConfigurationError, match="is not a plain file of its own"), output_dir.exclusive(output, "r"):
        pass

    assert elsewhere.read_text() == "keep me"
