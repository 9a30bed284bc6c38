"""The plain `datacontract test --server local` command of docs/local.md fails where the data breaks the contract.

That it passes on the output of `python3 dev.py run` is shown in test_run.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from customer_activity_dev.local_run import install_duckdb_delta
from customer_activity_testing import contract_cli

pytestmark = pytest.mark.e2e


def test_the_readme_command_fails_when_the_table_breaks_the_contract(published_output: Path, tmp_path: Path):
    root = contract_cli.checkout(published_output, tmp_path / "checkout")
    path = root / "datacontracts" / "customer_activity_v1.odcs.yaml"
    contract = yaml.safe_load(path.read_text())
    [schema] = contract["schema"]
    users_total = next(p for p in schema["properties"] if p["name"] == "users_total")
    # A rule every published row breaks: users_total is never negative.
    users_total["quality"][0]["query"] = "SELECT COUNT(*) FROM ${model} WHERE users_total >= 0"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))

    result = contract_cli.run_readme_command(root)

    assert result.returncode == 1
    assert re.search(r"failed\s+│\s+users_total is not", result.stdout), result.stdout[-3000:]


def test_without_the_delta_extension_package_the_run_says_so_and_goes_on(monkeypatch, caplog):
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "duckdb_extension_delta", None)
    install_duckdb_delta()
    assert "DuckDB's delta extension is not installed (duckdb_extension_delta is missing)" in caplog.text
