"""`python3 dev.py run`, the README's first command: sample, build, contract test, summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from customer_activity.jobs.errors import EXIT_OK
from customer_activity.jobs.report import record_restore
from customer_activity_dev.__main__ import main
from customer_activity_dev.local_run import done_message
from customer_activity_testing import contract_cli
from customer_activity_testing.outputs import AS_OF, run_report
from customer_activity_testing.paths import REPOSITORY

pytestmark = pytest.mark.e2e


def test_run_builds_a_contract_valid_output_that_the_readmes_datacontract_command_passes(tmp_path, capsys):
    workdir = tmp_path / "work"

    assert main(["run", "--workdir", str(workdir), "--organizations", "30", "--as-of", AS_OF.isoformat()]) == EXIT_OK

    out = capsys.readouterr().out
    assert "Generated" in out
    assert "for 30 organisations" in out
    assert "Build succeeded: as-of 2026-11-20" in out
    for table in ("organization", "organization_member", "test_result"):
        assert f"  {table} " in out
    assert "output rows: 30" in out
    assert "Contract test of the published output" in out
    assert "passed:" in out
    assert "none failed" in out
    assert f"output (delta): {workdir / 'output' / 'customer_activity'}, version " in out
    assert f"test it again: .venv/bin/customer-activity test-contract --output-dir {workdir / 'output'}" in out
    assert out.rstrip().splitlines()[-1].startswith("Done in ")
    assert (workdir / "raw" / "organization").is_dir()
    assert run_report(workdir / "output")["output_rows"] == 30

    # The README's plain datacontract-cli command, from a checkout holding this output.
    result = contract_cli.run_readme_command(contract_cli.checkout(workdir / "output", tmp_path / "checkout"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No checks were executed" not in result.stdout
    contract = yaml.safe_load((REPOSITORY / "datacontracts" / "customer_activity_v1.odcs.yaml").read_text())
    [schema] = contract["schema"]
    # At least a presence and a type check per column, and every quality rule.
    assert contract_cli.checks_run(result) >= 2 * len(schema["properties"]) + len(schema["quality"])


def test_the_summary_counts_the_time_the_person_waited_set_up_included():
    assert done_message(141.3, 115.0) == "Done in 141.3 s: 115.0 s preparing the environment, 26.3 s the run."
    # Started without dev.py, or nothing to prepare: one figure.
    assert done_message(26.0, 0.0) == "Done in 26.0 s."


def test_a_restore_that_cannot_be_recorded_in_the_report_only_warns(tmp_path, caplog):
    at = datetime(2026, 11, 20, tzinfo=UTC)
    broken = tmp_path / "broken.json"
    broken.write_text("[not, a report")
    record_restore(broken, 1, 3, at)
    assert "could not record the restore" in caplog.text
    assert broken.read_text() == "[not, a report"
    # No report (a catalog output): nothing to record, nothing written.
    record_restore(tmp_path / "none.json", 1, 3, at)
    assert not (tmp_path / "none.json").exists()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"published_version": 2, "as_of": "2026-11-20"}))
    record_restore(report, 1, 3, at)
    assert json.loads(report.read_text()) == {
        "published_version": 3,
        "as_of": "2026-11-20",
        "restored": {"rows_of_version": 1, "version": 3, "restored_at": at.isoformat()},
    }
