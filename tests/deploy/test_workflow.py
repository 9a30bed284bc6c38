"""The CI/CD workflow is a valid GitHub Actions workflow and follows the product's design."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from customer_activity_testing.paths import REPOSITORY

WORKFLOW = REPOSITORY / ".github" / "workflows" / "data-product.yml"
# `uses: owner/name@<40 hex digits>`, the release tag in a comment beside it.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(document: dict) -> dict:
    # `on:` reads as True in YAML 1.1.
    return document.get("on", document.get(True))


def runs(document: dict) -> list[str]:
    return [step.get("run", "") for job in document["jobs"].values() for step in job["steps"]]


def test_the_workflow_validates_against_the_github_workflow_schema():
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_is_rejected(tmp_path):
    broken = workflow()
    broken["jobs"]["test"]["step"] = broken["jobs"]["test"].pop("steps")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert validate(path).returncode != 0


def test_tests_and_the_contract_guard_gate_the_deployment_which_gates_publishing():
    document = workflow()
    jobs = document["jobs"]
    assert sorted(jobs["deploy"]["needs"]) == ["contract", "test"]
    assert jobs["publish"]["needs"] == "deploy"
    assert "bash .ci/run" in runs(document)
    assert [step.get("run") for step in jobs["deploy"]["steps"] if "run" in step] == [
        "databricks bundle validate -t prod",
        "databricks bundle deploy -t prod",
    ]
    assert [step.get("run") for step in jobs["publish"]["steps"] if "run" in step][-1] == "customer-activity publish"


def test_pull_requests_are_tested_and_guarded_but_only_main_deploys():
    document = workflow()
    on = triggers(document)
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on
    assert "if" not in document["jobs"]["test"]
    assert "if" not in document["jobs"]["contract"]
    assert document["jobs"]["deploy"]["if"] == "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"


def production_runs(document: dict) -> list[str]:
    """What in the workflow would build or test production besides the job's own schedule."""
    found = [f"trigger schedule: {cron}" for cron in triggers(document).get("schedule", [])]
    found += [run for run in runs(document) if "bundle run" in run or "datacontract test" in run]
    return found


def test_production_runs_only_on_the_jobs_own_schedule():
    assert production_runs(workflow()) == []


def test_a_timer_or_a_job_run_in_the_workflow_is_caught():
    broken = workflow()
    triggers(broken)["schedule"] = [{"cron": "30 7 * * *"}]
    broken["jobs"]["deploy"]["steps"].append({"run": "databricks bundle run -t prod customer_activity"})
    assert production_runs(broken) == [
        "trigger schedule: {'cron': '30 7 * * *'}",
        "databricks bundle run -t prod customer_activity",
    ]


def test_every_third_party_action_is_pinned_to_a_commit():
    uses = [step["uses"] for job in workflow()["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses
    assert [action for action in uses if not PINNED.match(action)] == []
    for line in WORKFLOW.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"say which release the commit is: {line.strip()}"


def test_credentials_come_only_from_secrets():
    text = WORKFLOW.read_text()
    for variable in ("DATABRICKS_CLIENT_SECRET", "ENTROPY_DATA_API_KEY"):
        assert f"{variable}: ${{{{ secrets.{variable} }}}}" in text
