"""The README's plain `datacontract test --server local` command, run as a user runs it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from customer_activity.jobs.contract_test import install_duckdb_delta
from customer_activity.jobs.errors import ConfigurationError
from customer_activity_testing.paths import REPOSITORY

pytestmark = pytest.mark.e2e


def readme_command() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if re.match(r"\.venv/bin/datacontract test --server local ", line)]
    return shlex.split(line)


@pytest.fixture
def checkout(published_output: Path, tmp_path: Path) -> Path:
    """A checkout whose local-run/output holds a published output, as `dev.py run` leaves it."""
    root = tmp_path / "checkout"
    (root / "local-run").mkdir(parents=True)
    (root / "local-run" / "output").symlink_to(published_output, target_is_directory=True)
    shutil.copytree(REPOSITORY / "datacontracts", root / "datacontracts")
    install_duckdb_delta()
    return root


def run(root: Path) -> subprocess.CompletedProcess[str]:
    command = readme_command()
    datacontract = Path(sys.executable).parent / Path(command[0]).name
    return subprocess.run(
        [str(datacontract), *command[1:]],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent), "HOME": str(Path.home())},
    )


def test_the_readme_command_passes_on_the_published_output_with_every_check_executed(checkout):
    result = run(checkout)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = int(re.search(r"Ran (\d+) checks", result.stdout).group(1))
    contract = yaml.safe_load((checkout / "datacontracts" / "customer_activity_v1.odcs.yaml").read_text())
    [schema] = contract["schema"]
    # At least a presence and a type check per column, and every quality rule.
    assert checks >= 2 * len(schema["properties"]) + len(schema["quality"])
    assert "No checks were executed" not in result.stdout


def test_the_same_command_fails_when_the_table_breaks_the_contract(checkout):
    path = checkout / "datacontracts" / "customer_activity_v1.odcs.yaml"
    contract = yaml.safe_load(path.read_text())
    [schema] = contract["schema"]
    users_total = next(p for p in schema["properties"] if p["name"] == "users_total")
    users_total["quality"][0]["query"] = "SELECT COUNT(*) FROM ${model} WHERE users_total >= 0"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))

    result = run(checkout)

    assert result.returncode == 1
    assert re.search(r"failed\s+│\s+users_total is not", result.stdout), result.stdout[-3000:]


def test_without_the_delta_extension_package_the_local_test_says_what_to_install(monkeypatch):
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "duckdb_extension_delta", None)
    with pytest.raises(ConfigurationError, match=r"duckdb_extension_delta is missing\): install the project's `local`"):
        install_duckdb_delta()
