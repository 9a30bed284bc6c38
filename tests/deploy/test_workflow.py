"""The CI/CD workflow is a valid GitHub Actions workflow and follows the product's design."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from customer_activity_testing.paths import REPOSITORY

WORKFLOW = REPOSITORY / ".github" / "workflows" / "data-product.yml"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_workflow_validates_against_the_github_workflow_schema():
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_is_rejected(tmp_path):
    broken = yaml.safe_load(WORKFLOW.read_text())
    broken["jobs"]["test"]["step"] = broken["jobs"]["test"].pop("steps")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert validate(path).returncode != 0


def test_tests_gate_the_deployment_which_gates_publishing():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert jobs["deploy"]["needs"] == "test"
    assert jobs["publish"]["needs"] == "deploy"
    runs = [step.get("run", "") for job in jobs.values() for step in job["steps"]]
    assert "bash .ci/run" in runs
    assert "databricks bundle validate -t prod" in runs
    assert "databricks bundle deploy -t prod" in runs
    assert any(r.startswith("databricks bundle run -t prod customer_activity") for r in runs)
    # `on:` reads as True in YAML 1.1.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"]


def test_credentials_come_only_from_secrets():
    text = WORKFLOW.read_text()
    for variable in ("DATABRICKS_CLIENT_SECRET", "ENTROPY_DATA_API_KEY"):
        assert f"{variable}: ${{{{ secrets.{variable} }}}}" in text
