"""The contract test: its verdict as an exit code with the result table, and its results published when a key
is configured; a failed publication is reported and never changes the verdict."""

from __future__ import annotations

import logging
import re
import shutil

import pytest
import yaml

from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import default_contract_path, load_contract
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK
from customer_activity_testing.http_server import Answer

pytestmark = pytest.mark.e2e

KEY = "ed_test_results_k3y"


def test_results_are_posted_with_the_key_and_a_refusal_keeps_the_passing_verdict(
    published_output, http_server, monkeypatch, capsys
):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)
    monkeypatch.setenv("ENTROPY_DATA_HOST", http_server.url)
    http_server.answer(Answer(500, '{"detail": "storage unavailable"}'))

    assert main(["test-contract", "--output-dir", str(published_output)]) == EXIT_OK

    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", "/api/test-results")
    assert request.headers["x-api-key"] == KEY
    body = request.json()
    assert body["dataContractId"] == "entropydata-customer-activity-v1"
    assert body["result"] == "passed"
    # Each check of a rule or service level names it, as the marketplace attaches results to rules.
    contract = load_contract()
    rules = {rule.id: rule for rule in contract.rules}
    slas = {sla.id: sla for sla in contract.model.slaProperties or [] if sla.property in ("freshness", "retention")}
    attached = {check["qualityReference"]: check for check in body["checks"] if check.get("qualityReference")}
    assert attached.keys() == rules.keys() | slas.keys()
    for rule_id, check in attached.items():
        assert check["qualityId"] == rule_id
        rule = rules.get(rule_id)
        if rule is not None and rule.column:
            assert check["field"] == rule.column, check
        assert check["result"] == "passed", check
    captured = capsys.readouterr()
    assert "could NOT be published" in captured.err
    assert "storage unavailable" in captured.err
    assert KEY not in captured.out + captured.err


def test_without_a_key_nothing_is_sent_and_that_is_said(published_output, http_server, monkeypatch, capsys, caplog):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)
    monkeypatch.setenv("ENTROPY_DATA_HOST", http_server.url)

    with caplog.at_level(logging.WARNING):
        assert main(["test-contract", "--output-dir", str(published_output)]) == EXIT_OK

    assert http_server.requests == []
    assert "not published: no marketplace API key" in capsys.readouterr().out
    # Spark's own catalog always makes datacontract-cli compare logical types; nobody can act on that.
    assert "Could not read the column types" not in caplog.text


def test_a_table_that_breaks_the_contract_gets_the_result_table_and_exit_code_4(
    published_output, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)
    contract = yaml.safe_load(default_contract_path().read_text())
    [schema] = contract["schema"]
    users_total = next(p for p in schema["properties"] if p["name"] == "users_total")
    # A rule every published row breaks: users_total is never negative.
    users_total["quality"][0]["query"] = "SELECT COUNT(*) FROM ${model} WHERE users_total >= 0"
    broken = tmp_path / "contract.odcs.yaml"
    broken.write_text(yaml.safe_dump(contract, sort_keys=False))

    command = ["test-contract", "--output-dir", str(published_output), "--contract", str(broken)]
    assert main(command) == EXIT_CONTRACT_VIOLATION
    captured = capsys.readouterr()
    assert "Data contract is invalid" in captured.out
    assert re.search(r"failed\s+│\s+users_total is not", captured.out), captured.out[-3000:]
    assert "Traceback" not in captured.err
    assert "internal error" not in captured.err


def test_a_directory_with_a_single_quote_is_tested_like_any_other(published_output, tmp_path, capsys):
    quoted = tmp_path / "it's here"
    shutil.copytree(published_output, quoted)
    assert main(["test-contract", "--output-dir", str(quoted)]) == EXIT_OK
    assert f"Contract test of {quoted / 'customer_activity'}" in capsys.readouterr().out


def _no_duplicates(column: str) -> list[dict]:
    return [
        {
            "id": f"{column}_unique",
            "type": "library",
            "metric": "duplicateValues",
            "mustBe": 0,
            "description": f"No two rows share a {column}.",
        }
    ]


def test_a_failed_check_on_personal_data_shows_no_address_in_the_output_or_the_published_results(
    published_output, spark, tmp_path, http_server, monkeypatch, capsys, caplog
):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)
    monkeypatch.setenv("ENTROPY_DATA_HOST", http_server.url)
    contract = yaml.safe_load(default_contract_path().read_text())
    properties = {p["name"]: p for p in contract["schema"][0]["properties"]}
    # Some people open several organisations, and many organisations share a platform: both rules
    # fail; the platform's, on a column that is not personal, shows that samples are published.
    for column in ("organization_created_by", "data_platform"):
        properties[column]["quality"] = _no_duplicates(column)
    broken = tmp_path / "contract.odcs.yaml"
    broken.write_text(yaml.safe_dump(contract, sort_keys=False))
    table = spark.read.format("delta").load(str(published_output / "customer_activity"))
    addresses = {r.organization_created_by for r in table.select("organization_created_by").collect()} - {None}
    platforms = {r.data_platform for r in table.select("data_platform").collect()} - {None}
    assert addresses
    assert all("@" in address for address in addresses)

    with caplog.at_level(logging.DEBUG):
        command = ["test-contract", "--output-dir", str(published_output), "--contract", str(broken)]
        assert main(command) == EXIT_CONTRACT_VIOLATION

    [request] = http_server.requests
    checks = {c.get("qualityReference"): c for c in request.json()["checks"]}
    personal, control = checks["organization_created_by_unique"], checks["data_platform_unique"]
    assert (personal["result"], control["result"]) == ("failed", "failed")
    assert any(p in sample for sample in control["failedSamples"] for p in platforms), "samples are published"
    captured = capsys.readouterr()
    seen = request.body.decode() + captured.out + captured.err + caplog.text
    assert [address for address in addresses if address in seen] == []
