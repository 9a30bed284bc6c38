"""A candidate that breaks the contract is never published; the previous output stays."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from customer_activity.jobs.contract import default_contract_path
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION
from customer_activity_testing.outputs import build, fingerprint, published, run_report, staged_leftovers

pytestmark = pytest.mark.e2e


def changed_contract(tmp_path: Path, change) -> Path:
    document = yaml.safe_load(default_contract_path().read_text())
    change(document["schema"][0])
    path = tmp_path / "changed.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def prop(schema: dict, name: str) -> dict:
    return next(p for p in schema["properties"] if p["name"] == name)


def test_renaming_a_column_in_the_contract_fails_the_build_by_name(sample_source, output_copy, tmp_path, capsys):
    contract = changed_contract(tmp_path, lambda s: prop(s, "users_total").update(name="user_count"))
    before = fingerprint(output_copy)

    assert build(sample_source, output_copy, "--contract", str(contract)) == EXIT_CONTRACT_VIOLATION

    error = capsys.readouterr().err
    assert "names columns the transforms do not produce: user_count" in error
    assert "Traceback" not in error
    assert fingerprint(output_copy) == before


def test_changing_a_type_in_the_contract_fails_the_build_and_names_both_types(
    sample_source, output_copy, tmp_path, capsys
):
    contract = changed_contract(tmp_path, lambda s: prop(s, "assets_total").update(physicalType="INT"))
    before = fingerprint(output_copy)

    assert build(sample_source, output_copy, "--contract", str(contract)) == EXIT_CONTRACT_VIOLATION

    assert "assets_total: contract says INT, the build produces BIGINT" in capsys.readouterr().err
    assert fingerprint(output_copy) == before
    assert run_report(output_copy)["status"] == "failed"


def test_data_breaking_a_quality_rule_is_not_published(sample_source, output_copy, tmp_path, capsys):
    """The data, not the schema, breaks the contract: a rule no real customer base meets."""
    rule = {
        "id": "at_most_two_assets",
        "type": "sql",
        "description": "no organisation has more than two assets",
        "query": "SELECT COUNT(*) FROM ${model} WHERE assets_total > 2",
        "mustBe": 0,
    }
    contract = changed_contract(tmp_path, lambda s: s["quality"].append(rule))
    before = fingerprint(output_copy)
    # output_copy holds a build of the same source: the rows the rule must count.
    breaking = sum(1 for assets in published(output_copy).column("assets_total").to_pylist() if assets > 2)
    assert breaking > 0

    assert build(sample_source, output_copy, "--contract", str(contract)) == EXIT_CONTRACT_VIOLATION

    error = capsys.readouterr().err
    assert "the published output was left as it was" in error
    assert f"no organisation has more than two assets: measured {breaking}," in error
    assert fingerprint(output_copy) == before
    assert staged_leftovers(output_copy) == set()
    report = run_report(output_copy)
    assert report["status"] == "failed"
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["no organisation has more than two assets"]
