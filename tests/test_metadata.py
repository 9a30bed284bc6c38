"""The product describes itself: contract lint, ODPS schema, README Quickstart."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from datacontract.data_contract import DataContract

from customer_activity.jobs.contract import default_contract_path
from customer_activity_testing.paths import REPOSITORY, SHARED_SCHEMAS

ODPS_FILE = REPOSITORY / "customer-activity.odps.yaml"


def test_the_contract_passes_datacontract_lint():
    result = DataContract(data_contract_file=str(default_contract_path())).lint()
    assert result.has_passed(), [(c.name, c.reason) for c in result.checks]


def test_the_odps_file_validates_against_the_odps_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema_file = SHARED_SCHEMAS / "odps-json-schema-v1.0.0.json"
    if not schema_file.is_file():
        pytest.skip(f"the ODPS JSON schema is not available here ({schema_file} is absent)")
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
