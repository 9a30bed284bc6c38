"""The command line teaches itself: --version, examples and exit codes in every --help, mistakes named early."""

from __future__ import annotations

import subprocess
import sys

import pytest

from customer_activity.jobs import cli
from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_INPUT_ERROR, EXIT_OK, EXIT_USAGE
from customer_activity.jobs.report import code_version
from customer_activity_testing.paths import REPOSITORY

COMMANDS = ["build", "publish", "test-contract", "restore"]


def exit_code(arguments: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    return exited.value.code


def test_version_exits_0_and_names_the_installed_version(capsys):
    assert exit_code(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"customer-activity {code_version()}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_shows_examples_and_the_exit_codes(command, capsys):
    assert exit_code([command, "--help"]) == EXIT_OK
    shown = capsys.readouterr().out
    examples = shown.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(examples) >= 2
    assert all(line.startswith(f"  customer-activity {command} ") for line in examples)
    for code in range(7):
        assert f"\n  {code}  " in shown


def test_locations_are_grouped_local_and_databricks(capsys):
    exit_code(["build", "--help"])
    shown = capsys.readouterr().out
    local, databricks = shown.index("local directories:"), shown.index("Unity Catalog (Databricks):")
    assert local < shown.index("  --source-dir DIR  ") < databricks < shown.index("  --source-schema NAME  ")


def test_a_mistyped_option_shows_the_commands_usage_and_names_the_option(capsys):
    assert exit_code(["build", "--sourcedir", "raw"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("usage: customer-activity build ")
    assert "customer-activity build: error: unrecognized arguments: --sourcedir raw" in error


def test_verbose_works_after_the_command_too(monkeypatch):
    seen = []
    monkeypatch.setitem(cli._COMMANDS, "restore", lambda args: seen.append(args.verbose) or EXIT_OK)
    assert main(["restore", "--output-dir", "out", "-v"]) == EXIT_OK
    assert main(["-v", "restore", "--output-dir", "out"]) == EXIT_OK
    assert main(["restore", "--output-dir", "out"]) == EXIT_OK
    assert seen == [True, True, False]


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [("2026-13-01", "is not a date: month must be in 1..12"), ("20261101", "is not a date of the form YYYY-MM-DD")],
)
def test_a_date_that_is_not_one_says_why(as_of, reason, capsys):
    assert exit_code(["build", "--source-dir", "raw", "--output-dir", "out", "--as-of", as_of]) == EXIT_USAGE
    assert f"'{as_of}' {reason}" in capsys.readouterr().err


def no_spark(*args: object, **kwargs: object):
    raise AssertionError("Spark was started")


@pytest.mark.parametrize(("kind", "state"), [("missing", "does not exist"), ("file", "is not a directory")])
def test_a_source_directory_that_is_not_one_is_refused_before_spark_starts_and_nothing_is_made(
    kind, state, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(cli, "create_spark_session", no_spark)
    source = tmp_path / "raw"
    if kind == "file":
        source.write_text("not a directory")

    assert main(["build", "--source-dir", str(source), "--output-dir", str(tmp_path / "out")]) == EXIT_INPUT_ERROR

    assert capsys.readouterr().err == f"customer-activity build failed: the source directory {source} {state}\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_contract_is_refused_before_spark_starts(sample_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "create_spark_session", no_spark)
    arguments = ["build", "--source-dir", str(sample_source), "--output-dir", str(tmp_path / "out")]

    assert main([*arguments, "--contract", str(tmp_path / "none.yaml")]) == EXIT_CONTRACT_VIOLATION

    assert f"data contract not found: {tmp_path / 'none.yaml'}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dev_py_help_exits_0_and_an_unknown_command_is_named():
    """dev.py runs under the user's own python3, before any environment exists."""
    dev = [sys.executable, str(REPOSITORY / "dev.py")]
    helped = subprocess.run([*dev, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert helped.returncode == 0
    assert "python3 dev.py run" in helped.stdout
    mistyped = subprocess.run([*dev, "runn"], capture_output=True, text=True, check=False, timeout=60)
    assert mistyped.returncode == 2
    assert mistyped.stderr == "dev.py: unknown command 'runn'\n"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["--catalog", "x; DROP TABLE y", "--source-schema", "raw"], "catalog 'x; DROP TABLE y' is not a valid name"),
        (["--catalog", "main", "--source-schema", "raw`--"], "source schema 'raw`--' is not a valid name"),
        (["--catalog", "main", "--source-schema", "raw", "--staging-schema", "a b"], "staging schema 'a b'"),
    ],
)
def test_names_are_refused_before_spark_starts(names, message, monkeypatch, capsys):
    monkeypatch.setattr(cli, "create_spark_session", no_spark)
    assert main(["build", *names, "--output-schema", "out"]) == EXIT_USAGE
    assert message in capsys.readouterr().err
