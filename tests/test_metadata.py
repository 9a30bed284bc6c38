"""The product describes itself: contract lint, ODPS schema, README Quickstart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from datacontract.data_contract import DataContract

from customer_activity.jobs.contract import default_contract_path, load_contract
from customer_activity.jobs.input_contract import WITHHELD
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing import bundle_checks
from customer_activity_testing.paths import REPOSITORY, SCHEMAS

ODPS_FILE = REPOSITORY / "customer-activity.odps.yaml"


PROVIDER_CONTRACT = REPOSITORY / "datacontracts" / "input_ports" / "entropydata_postgres_raw_v1.odcs.yaml"


@pytest.mark.parametrize("path", [default_contract_path(), PROVIDER_CONTRACT], ids=["ours", "provider's"])
def test_the_contracts_pass_datacontract_lint(path):
    result = DataContract(data_contract_file=str(path)).lint()
    assert result.has_passed(), [(c.name, c.reason) for c in result.checks]


def test_the_provider_contract_promises_every_column_the_input_ports_read():
    """The snapshot and the job agree (the build checks it too, before reading anything)."""
    promised = {
        schema["name"]: {p["name"] for p in schema["properties"]}
        for schema in yaml.safe_load(PROVIDER_CONTRACT.read_text())["schema"]
    }
    assert promised.keys() == INPUT_PORTS.keys()
    for table, port in INPUT_PORTS.items():
        assert set(port.required_columns) <= promised[table], table


def test_the_odps_names_the_providers_port_and_contract_that_the_output_depends_on():
    provider = yaml.safe_load(PROVIDER_CONTRACT.read_text())
    product = yaml.safe_load(ODPS_FILE.read_text())
    [port] = product["inputPorts"]
    custom = {p["property"]: p["value"] for p in port["customProperties"]}
    assert (port["contractId"], custom["dataProductId"]) == (provider["id"], provider["dataProduct"])
    assert custom["tables"] == [schema["name"] for schema in provider["schema"]]
    [output] = product["outputPorts"]
    assert output["inputContracts"] == [{"id": provider["id"], "version": provider["version"]}]


@pytest.mark.e2e
def test_the_plain_cli_passes_the_provider_contract_on_the_sample_raw_tables(sample_source, tmp_path):
    """`datacontract test --server local`, as the contract's server description says, from a checkout's root."""
    (tmp_path / "local-run").mkdir()
    (tmp_path / "local-run" / "raw").symlink_to(sample_source, target_is_directory=True)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "datacontract"), "test", "--server", "local", str(PROVIDER_CONTRACT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "organization_key_missing" in result.stdout or "organization.organization_id" in result.stdout


def test_the_odps_file_validates_against_the_odps_schema():
    schema_file = SCHEMAS / "odps-json-schema-v1.0.0.json"
    document = yaml.safe_load(ODPS_FILE.read_text())
    validator = jsonschema.Draft201909Validator(json.loads(schema_file.read_text()))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_the_odps_output_port_points_at_this_contract():
    product = yaml.safe_load(ODPS_FILE.read_text())
    contract = yaml.safe_load(default_contract_path().read_text())
    [port] = product["outputPorts"]
    assert product["id"] == contract["dataProduct"]
    assert port["name"] == "customer_activity_v1"
    assert port["contractId"] == contract["id"]
    server = next(p["value"] for p in port["customProperties"] if p["property"] == "contractServer")
    assert server in {s["server"] for s in contract["servers"]}


def test_the_readme_quickstart_has_exactly_two_commands_run_then_test():
    readme = (REPOSITORY / "README.md").read_text()
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md needs a '## Quickstart' section"
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", section.group(1), re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["python3 dev.py run", "python3 dev.py test"]
    ci = (REPOSITORY / ".ci" / "run").read_text()
    assert "dev.py test" in ci


def connector_grant(product: dict, contract: dict, port_id: str, workspace_host: str) -> dict | str:
    """Where Entropy Data's Databricks connector would grant an access to `port_id`, or why it would not.

    Follows DatabricksAccessManagementHandler.resolveProviderServer of
    entropy-data/entropy-data-connector-databricks (commit 66690bb): the port is found by id or
    name and must have type databricks; the server is the contract's server that the port's
    contractServer names (else the contract's first); its host must be the connector's workspace,
    compared by host name with or without a scheme; it must have a catalog and a schema. The
    connector then grants USE CATALOG, and USE SCHEMA and SELECT on the schema.
    """
    port = next((p for p in product.get("outputPorts", []) if port_id in (p.get("id"), p.get("name"))), None)
    if port is None:
        return "no such output port"
    if str(port.get("type", "")).lower() != "databricks":
        return f"output port type is {port.get('type')!r}, not databricks"
    if port.get("contractId") != contract["id"]:
        return f"output port names the contract {port.get('contractId')!r}"
    wanted = next((p["value"] for p in port.get("customProperties", []) if p["property"] == "contractServer"), None)
    servers = contract.get("servers", [])
    server = next((s for s in servers if s["server"] == wanted), servers[0] if servers else None)
    if server is None:
        return "the contract has no server"

    def host(url: str | None) -> str | None:
        return urlsplit(url if "://" in url else f"https://{url}").hostname if url else None

    if host(server.get("host")) != host(workspace_host):
        return f"server host {server.get('host')!r} is not the workspace {workspace_host}"
    if not (server.get("catalog") and server.get("schema")):
        return "server has no catalog or schema"
    return {"server": server["server"], "catalog": server["catalog"], "schema": server["schema"]}


def product_and_contract() -> tuple[dict, dict]:
    return yaml.safe_load(ODPS_FILE.read_text()), yaml.safe_load(default_contract_path().read_text())


def test_the_databricks_connector_grants_access_to_the_schema_the_prod_job_publishes():
    product, contract = product_and_contract()
    prod = bundle_checks.load(REPOSITORY)["targets"]["prod"]

    grant = connector_grant(product, contract, "customer_activity_v1", prod["workspace"]["host"])

    assert grant == {
        "server": "production",
        "catalog": prod["variables"]["catalog"],
        "schema": prod["variables"]["output_schema"],
    }


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda product, contract: product["outputPorts"][0].update(type="tables"), "output port type is 'tables'"),
        (lambda product, contract: contract["servers"][0].pop("host"), "server host None is not the workspace"),
        (lambda product, contract: contract["servers"][0].pop("schema"), "server has no catalog or schema"),
    ],
)
def test_a_port_the_connector_would_skip_is_caught(breakage, reason):
    product, contract = product_and_contract()
    breakage(product, contract)
    host = bundle_checks.load(REPOSITORY)["targets"]["prod"]["workspace"]["host"]
    assert str(connector_grant(product, contract, "customer_activity_v1", host)).startswith(reason)


def test_the_odps_says_what_the_contract_says_of_personal_data_status_and_environment():
    product, contract = product_and_contract()
    [port] = product["outputPorts"]
    custom = {p["property"]: p["value"] for p in port["customProperties"]}
    properties = contract["schema"][0]["properties"]
    personal = [p["name"] for p in properties if p.get("classification") in WITHHELD or "pii" in p.get("tags", [])]
    assert personal == ["organization_created_by"]
    assert custom["containsPii"] is bool(personal)
    assert custom["status"] == contract["status"]
    server = next(s for s in contract["servers"] if s["server"] == custom["contractServer"])
    assert custom["environment"] == server["environment"]
    assert {p["property"]: p["value"] for p in product["customProperties"]}["type"] == "consumer-aligned"


def test_every_column_the_lineage_names_is_one_the_providers_contract_promises():
    contract = load_contract()
    promised = {
        (schema["name"], p["name"])
        for schema in yaml.safe_load(PROVIDER_CONTRACT.read_text())["schema"]
        for p in schema["properties"]
    }
    named = {*contract.indirect_sources, *(pair for s in contract.column_sources.values() for pair in s.columns)}
    assert named - promised == set()
