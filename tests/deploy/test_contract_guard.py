"""CI's contract guard, run as CI runs it: in a clone, against the target branch's commit."""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from customer_activity_testing.http_server import closed_port_url
from customer_activity_testing.paths import REPOSITORY

GUARD = Path(".ci") / "contract_guard.py"
CONTRACT = Path("datacontracts") / "customer_activity_v1.odcs.yaml"
PROVIDER = Path("datacontracts") / "input_ports" / "entropydata_postgres_raw_v1.odcs.yaml"


def git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A repository whose one commit, the target branch, holds today's contract and guard."""
    return committed(tmp_path / "repository", GUARD, CONTRACT)


def committed(repository: Path, *paths: Path) -> Path:
    """`repository` made with these files of the checkout as its one commit, the target branch."""
    for path in paths:
        (repository / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPOSITORY / path, repository / path)
    git(repository, "init", "--quiet", "--initial-branch=main")
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "-m", "target branch")
    return repository


def released() -> tuple[str, int, int]:
    """The contract's version on the target branch, its major and its minor number."""
    version = str(yaml.safe_load((REPOSITORY / CONTRACT).read_text())["version"])
    major, minor = version.split(".")[:2]
    return version, int(major), int(minor)


def edit_contract(repository: Path, version: str | None = None, drop: str | None = None) -> None:
    contract = yaml.safe_load((repository / CONTRACT).read_text())
    if version is not None:
        contract["version"] = version
    if drop is not None:
        [schema] = contract["schema"]
        schema["properties"] = [p for p in schema["properties"] if p["name"] != drop]
    (repository / CONTRACT).write_text(yaml.safe_dump(contract, sort_keys=False))


def run_guard(repository: Path, summary: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The guard against the target branch (or with `args`); no marketplace key unless `env` gives one."""
    base = git(repository, "rev-parse", "main")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENTROPY_DATA_")}
    return subprocess.run(
        [sys.executable, str(repository / GUARD), *(args or (base,))],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**environment, "GITHUB_STEP_SUMMARY": str(summary), **env},
    )


def test_the_workflow_runs_this_guard_against_the_target_branch():
    workflow = yaml.safe_load((REPOSITORY / ".github" / "workflows" / "data-product.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["contract"]["steps"]]
    assert any(f'python {GUARD.as_posix()} "$BASE"' in run for run in runs)


def test_a_removed_column_under_the_same_major_version_fails_with_the_changelog_in_the_summary(clone, tmp_path):
    base, major, minor = released()
    edit_contract(clone, version=f"{major}.{minor + 1}.0", drop="assets_total")
    summary = tmp_path / "summary.md"

    result = run_guard(clone, summary)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "$ datacontract lint datacontracts/customer_activity_v1.odcs.yaml" in result.stdout
    assert f"without a new major version ({base} -> {major}.{minor + 1}.0)" in result.stdout
    # The column's rules went with it, and so did their ids.
    assert "ids of quality rules or SLA properties changed or removed (assets_total_not_negative)" in result.stdout
    text = summary.read_text()
    assert "❌ `datacontracts/customer_activity_v1.odcs.yaml`" in text
    assert "schema.customer_activity.properties.assets_total" in text.split("<summary>Changelog</summary>")[1]


def test_the_same_change_released_as_a_new_major_version_passes(clone, tmp_path):
    base, major, _ = released()
    edit_contract(clone, version=f"{major + 1}.0.0", drop="assets_total")

    result = run_guard(clone, tmp_path / "summary.md")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"released as a new major version ({base} -> {major + 1}.0.0)" in result.stdout


def guard_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("contract_guard", REPOSITORY / GUARD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_changed_or_removed_rule_or_sla_id_needs_a_new_major_version():
    """datacontract-cli calls a changed id information; the published results of the old id would lose their rule."""
    guard = guard_module()
    old = yaml.safe_load((REPOSITORY / CONTRACT).read_text())
    new = copy.deepcopy(old)
    rule = new["schema"][0]["properties"][0]["quality"][0]
    rule["id"] = "renamed_rule"
    del new["slaProperties"][0]["id"]
    assert guard.breaking_reasons(False, old, old) == []
    [reason] = guard.breaking_reasons(False, old, new)
    assert reason == (
        f"ids of quality rules or SLA properties changed or removed "
        f"({', '.join(sorted([old['slaProperties'][0]['id'], old['schema'][0]['properties'][0]['quality'][0]['id']]))})"
    )


def test_a_contract_that_is_not_valid_odcs_fails_at_lint(clone, tmp_path):
    text = (clone / CONTRACT).read_text().replace("logicalType: timestamp", "logicalType: datetime", 1)
    (clone / CONTRACT).write_text(text)

    result = run_guard(clone, tmp_path / "summary.md")

    assert result.returncode == 1
    assert "'datetime' is not one of" in result.stdout
    assert "`datacontract lint` failed" in result.stdout
    assert "$ datacontract breaking" not in result.stdout


def test_an_unknown_base_revision_is_a_usage_error(clone, tmp_path):
    result = subprocess.run(
        [sys.executable, str(clone / GUARD), "origin/no-such-branch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "'origin/no-such-branch' is not in this clone" in result.stderr


def test_the_providers_contract_snapshot_is_guarded_too_and_may_not_go_missing(tmp_path):
    clone = committed(tmp_path / "repository", GUARD, CONTRACT, PROVIDER)
    (clone / PROVIDER).unlink()

    result = run_guard(clone, tmp_path / "summary.md")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"$ datacontract lint {CONTRACT.as_posix()}" in result.stdout
    assert f"`{PROVIDER.as_posix()}`" in result.stdout
    assert "removed since" in result.stdout


KEY = "ed_test_guard-k3y-never-shown"


def published(marketplace, change) -> dict:
    """The provider's contract as the loopback marketplace publishes it: the snapshot, changed by `change`."""
    contract = yaml.safe_load((REPOSITORY / PROVIDER).read_text())
    change(contract)
    marketplace.documents[f"/api/datacontracts/{contract['id']}"] = contract
    return contract


def table(contract: dict, name: str) -> dict:
    [found] = [schema for schema in contract["schema"] if schema["name"] == name]
    return found


def guard_provider(tmp_path: Path, marketplace, *args: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    clone = committed(tmp_path / "repository", GUARD, PROVIDER)
    result = run_guard(
        clone, tmp_path / "summary.md", *args, ENTROPY_DATA_HOST=marketplace.url, ENTROPY_DATA_API_KEY=KEY
    )
    assert KEY not in result.stdout + result.stderr
    return clone, result


def test_a_published_provider_contract_that_drops_or_retypes_a_column_the_job_reads_fails_the_guard(
    tmp_path, marketplace
):
    def drop_and_retype(contract: dict) -> None:
        organization = table(contract, "organization")
        organization["properties"] = [p for p in organization["properties"] if p["name"] != "vanity_url"]
        [version] = [p for p in table(contract, "asset")["properties"] if p["name"] == "version"]
        version["logicalType"], version["physicalType"] = "string", "string"

    published(marketplace, drop_and_retype)
    _, result = guard_provider(tmp_path, marketplace)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "the published contract drops organization.vanity_url, which the job reads" in result.stdout
    assert "the published contract retypes asset.version, which the job reads" in result.stdout
    assert "vanity_url" in (tmp_path / "summary.md").read_text(), "the changelog belongs in the summary"
    [request] = [r for r in marketplace.server.requests if r.method == "GET"]
    assert request.path == "/api/datacontracts/entropydata-postgres-raw-v1"
    assert request.headers["x-api-key"] == KEY


def test_a_compatible_change_is_reported_and_one_command_refreshes_the_snapshot(tmp_path, marketplace):
    def add_column(contract: dict) -> None:
        contract["version"] = "1.1.0"
        contract["servers"] = [s for s in contract["servers"] if s["type"] != "local"]
        table(contract, "organization")["properties"].append(
            {"name": "plan", "logicalType": "string", "physicalType": "string"}
        )

    published(marketplace, add_column)
    _, result = guard_provider(tmp_path, marketplace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "differs from the snapshot (version 1.0.0) compatibly" in result.stdout

    _, refreshed = guard_provider(tmp_path / "again", marketplace, "--refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    snapshot = yaml.safe_load((tmp_path / "again" / "repository" / PROVIDER).read_text())
    assert snapshot["version"] == "1.1.0"
    assert "plan" in {p["name"] for p in table(snapshot, "organization")["properties"]}
    assert [s["server"] for s in snapshot["servers"] if s["type"] == "local"] == ["local"], "the local server stays"
    git(tmp_path / "again" / "repository", "commit", "--quiet", "-am", "refreshed")
    again = run_guard(
        tmp_path / "again" / "repository",
        tmp_path / "again.md",
        ENTROPY_DATA_HOST=marketplace.url,
        ENTROPY_DATA_API_KEY=KEY,
    )
    assert "the published contract equals the snapshot" in again.stdout, again.stdout


def test_a_published_change_a_build_would_refuse_fails_the_guard(tmp_path, marketplace):
    """Not a dropped or retyped column, but another key and a timestamp no longer stated as one."""

    def rekey(contract: dict) -> None:
        table(contract, "asset")["customProperties"] = [{"property": "entityKey", "value": "name"}]
        [created_at] = [p for p in table(contract, "organization")["properties"] if p["name"] == "created_at"]
        created_at.pop("logicalTypeOptions")

    published(marketplace, rekey)
    _, result = guard_provider(tmp_path, marketplace)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "a build would refuse it: asset: the job keys it by asset_id, the contract by name" in result.stdout
    assert "a build would refuse it: organization: the job parses created_at as timestamps" in result.stdout


@pytest.mark.parametrize("has_key", [False, True])
def test_no_key_or_no_marketplace_is_a_warning_not_a_failure(tmp_path, has_key):
    clone = committed(tmp_path / "repository", GUARD, PROVIDER)
    env = {"ENTROPY_DATA_API_KEY": KEY, "ENTROPY_DATA_HOST": closed_port_url()} if has_key else {}
    result = run_guard(clone, tmp_path / "summary.md", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    reason = "could not be read (URLError" if has_key else "ENTROPY_DATA_API_KEY is not set"
    # Unchanged since the target branch: linted, with nothing to compare.
    assert "unchanged since" in result.stdout
    assert "$ datacontract breaking" not in result.stdout
    assert "::warning::" in result.stdout
    assert reason in result.stdout
    assert KEY not in result.stdout + result.stderr
