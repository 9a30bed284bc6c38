"""The contract is read at run time: the output schema and the checks come from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from customer_activity.jobs.contract import default_contract_path, load_contract
from customer_activity.jobs.errors import ContractDefinitionError

# How the contract's physical types read as Spark types.
SPARK_TYPES = {"STRING": "string", "BIGINT": "bigint", "DOUBLE": "double", "TIMESTAMP": "timestamp"}


def contract_yaml() -> dict:
    return yaml.safe_load(default_contract_path().read_text())


def properties(document: dict) -> list[dict]:
    [schema] = [s for s in document["schema"] if s["name"] == "customer_activity"]
    return schema["properties"]


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "contract.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_output_schema_is_the_contracts_properties_in_their_order():
    expected = [(p["name"], SPARK_TYPES[p["physicalType"]]) for p in properties(contract_yaml())]
    schema = load_contract().spark_schema
    assert [(f.name, f.dataType.simpleString()) for f in schema.fields] == expected


def test_required_and_unique_columns_are_the_contracts():
    props = properties(contract_yaml())
    contract = load_contract()
    assert contract.required_columns == tuple(p["name"] for p in props if p.get("required"))
    assert "organization_id" in contract.required_columns
    assert {"users_total", "updated_at"} <= set(contract.required_columns)
    assert "data_platform" not in contract.required_columns


def test_every_quality_rule_of_the_contract_becomes_a_check():
    document = contract_yaml()
    [schema] = document["schema"]
    declared = len(schema.get("quality", [])) + sum(len(p.get("quality", [])) for p in schema["properties"])
    assert len(load_contract().rules) == declared


def test_identity_comes_from_the_contract():
    contract = load_contract()
    assert (contract.id, contract.version, contract.data_product_id) == (
        "entropydata-customer-activity-v1",
        "1.0.0",
        "entropydata-customer-activity",
    )


def test_a_schema_change_in_the_contract_changes_the_derived_schema(tmp_path):
    document = contract_yaml()
    properties(document)[0]["name"] = "org_id"
    assert load_contract(write(tmp_path, document)).spark_schema.names[0] == "org_id"


def test_unparseable_yaml_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "broken.odcs.yaml"
    path.write_text("apiVersion: v3.1.0\nkind: DataContract\nid: x\n  bad: [\n")
    with pytest.raises(ContractDefinitionError, match="broken.odcs.yaml.*Cannot parse YAML"):
        load_contract(path)


def test_a_contract_that_is_not_valid_odcs_is_refused(tmp_path):
    document = contract_yaml()
    del document["id"]
    with pytest.raises(ContractDefinitionError, match="is not valid ODCS"):
        load_contract(write(tmp_path, document))


def test_a_missing_contract_file_is_named(tmp_path):
    with pytest.raises(ContractDefinitionError, match="data contract not found: .*nowhere.yaml"):
        load_contract(tmp_path / "nowhere.yaml")


def test_a_contract_without_the_output_schema_is_refused(tmp_path):
    document = contract_yaml()
    document["schema"][0]["name"] = "something_else"
    with pytest.raises(ContractDefinitionError, match="no schema named 'customer_activity'"):
        load_contract(write(tmp_path, document))


def test_a_quality_metric_the_job_cannot_check_is_refused_by_name(tmp_path):
    document = contract_yaml()
    properties(document)[0]["quality"].append({"type": "library", "metric": "invalidValues", "mustBe": 0})
    with pytest.raises(ContractDefinitionError, match="metric 'invalidValues' is not supported"):
        load_contract(write(tmp_path, document))


def test_a_rule_without_a_threshold_is_refused_where_it_is(tmp_path):
    document = contract_yaml()
    properties(document)[0]["quality"].append({"type": "sql", "query": "SELECT 0"})
    with pytest.raises(ContractDefinitionError, match=r"organization_id\.quality\[2\]: 'mustBe' is a required property"):
        load_contract(write(tmp_path, document))
