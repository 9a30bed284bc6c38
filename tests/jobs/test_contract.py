"""The contract is read at run time: the output schema and the checks come from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from open_data_contract_standard.model import TeamMember
from pyspark.sql import types as T

from customer_activity.jobs.contract import _owner, default_contract_path, load_contract
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
        "1.2.0",
        "entropydata-customer-activity",
    )


def test_a_schema_change_in_the_contract_changes_the_derived_schema(tmp_path):
    document = contract_yaml()
    properties(document)[0]["name"] = "org_id"
    assert load_contract(write(tmp_path, document)).spark_schema.names[0] == "org_id"


def test_unparseable_yaml_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "broken.odcs.yaml"
    path.write_text("apiVersion: v3.1.0\nkind: DataContract\nid: x\n  bad: [\n")
    with pytest.raises(ContractDefinitionError, match=r"broken\.odcs\.yaml.*Cannot parse YAML"):
        load_contract(path)


def test_a_contract_that_is_not_valid_odcs_is_refused(tmp_path):
    document = contract_yaml()
    del document["id"]
    with pytest.raises(ContractDefinitionError, match="is not valid ODCS"):
        load_contract(write(tmp_path, document))


def test_a_missing_contract_file_is_named(tmp_path):
    with pytest.raises(ContractDefinitionError, match=r"data contract not found: .*nowhere\.yaml"):
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
    with pytest.raises(
        ContractDefinitionError, match=r"organization_id\.quality\[2\]: 'mustBe' is a required property"
    ):
        load_contract(write(tmp_path, document))


@pytest.mark.parametrize(
    ("team", "owner"),
    [
        ({"name": "customer-success", "members": [{"username": "ana", "role": "owner"}]}, "customer-success"),
        ([{"username": "bo", "role": "member"}, {"username": "ana", "role": "owner"}], "ana"),
        ([{"username": "bo", "role": "member"}, {"username": "cy"}], "bo"),
        (None, ""),
    ],
    ids=["team object", "members with an owner", "members without an owner", "no team"],
)
def test_the_owner_comes_from_the_team_in_either_form_odcs_allows(tmp_path, team, owner):
    document = contract_yaml()
    if team is None:
        document.pop("team")
    else:
        document["team"] = team

    assert load_contract(write(tmp_path, document)).owner == owner


def test_a_bare_list_of_members_names_its_owner():
    # The model types `team` as a team or a list of members; datacontract-cli's parser
    # turns the list into a team without a name, other producers of the model need not.
    members = [TeamMember(name="Bo Berg"), TeamMember(username="ana", role="owner")]
    assert _owner(members) == "ana"
    assert _owner(members[:1]) == "Bo Berg"
    assert _owner([]) == ""


def test_descriptions_are_offered_on_one_line(tmp_path):
    document = contract_yaml()
    properties(document)[0]["description"] = "The organisation's\n  id,   as the\toperational database has it."
    properties(document)[1].pop("description", None)

    contract = load_contract(write(tmp_path, document))

    first, second = (p["name"] for p in properties(document)[:2])
    assert contract.column_descriptions[first] == "The organisation's id, as the operational database has it."
    assert second not in contract.column_descriptions
    assert "\n" not in contract.table_description
    assert contract.table_description


def test_schema_differences_name_missing_extra_reordered_and_retyped_columns():
    contract = load_contract()
    fields = contract.spark_schema.fields
    assert contract.schema_differences(contract.spark_schema) == []
    reordered = T.StructType([fields[1], fields[0], *fields[2:]])
    assert contract.schema_differences(reordered) == [
        "column order differs from the contract: " + ", ".join(reordered.names)
    ]
    retyped = T.StructType(
        [T.StructField(fields[0].name, T.LongType()), *fields[1:-1], T.StructField("extra", T.StringType())]
    )
    assert contract.schema_differences(retyped) == [
        f"missing columns: {fields[-1].name}",
        "columns not in the contract: extra",
        f"{fields[0].name}: contract says STRING, the build produces BIGINT",
    ]


def test_a_server_is_pointed_elsewhere_without_changing_the_contract():
    contract = load_contract()
    production = contract.for_server("production", ("dev_catalog", "dev_schema"))

    [server] = [s for s in production.servers or [] if s.server == "production"]
    assert (server.catalog, server.schema_) == ("dev_catalog", "dev_schema")
    [original] = [s for s in contract.model.servers or [] if s.server == "production"]
    assert (original.catalog, original.schema_) != ("dev_catalog", "dev_schema")
    with pytest.raises(ContractDefinitionError, match="has no server named 'nowhere'"):
        contract.for_server("nowhere")


def test_rules_keep_the_contracts_ids():
    document = contract_yaml()
    [schema] = document["schema"]
    declared = [q["id"] for q in schema.get("quality", [])]
    declared += [q["id"] for p in schema["properties"] for q in p.get("quality", [])]
    assert [rule.id for rule in load_contract().rules] == declared


def _without_rule_id(document: dict) -> str:
    rule = properties(document)[0]["quality"][0]
    del rule["id"]
    return rule["description"]


def _without_sla_id(document: dict) -> str:
    del document["slaProperties"][0]["id"]
    return document["slaProperties"][0]["property"]


def _repeated_id(document: dict) -> str:
    rules = properties(document)[0]["quality"]
    rules[1]["id"] = rules[0]["id"]
    return rules[0]["id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [(_without_rule_id, "needs an id"), (_without_sla_id, "need an id"), (_repeated_id, "ids used more than once")],
    ids=["rule without id", "SLA property without id", "repeated id"],
)
def test_a_rule_or_sla_property_that_published_results_cannot_name_is_refused(tmp_path, change, message):
    document = contract_yaml()
    named = change(document)
    with pytest.raises(ContractDefinitionError, match=message) as refused:
        load_contract(write(tmp_path, document))
    assert named in str(refused.value)


@pytest.mark.parametrize("source", ["data-product.name", "organization.plan", "organization"])
def test_a_lineage_source_that_no_input_port_reads_is_refused_when_the_contract_is_read(tmp_path, source):
    document = contract_yaml()
    properties(document)[1]["transformSourceObjects"] = [source]
    with pytest.raises(ContractDefinitionError, match=r"organization_vanity_url: lineage source .* is no column"):
        load_contract(write(tmp_path, document))


def test_an_unknown_transformation_type_is_refused(tmp_path):
    document = contract_yaml()
    properties(document)[1]["customProperties"] = [{"property": "transformationType", "value": "GUESSWORK"}]
    with pytest.raises(ContractDefinitionError, match="transformationType 'GUESSWORK' is none of"):
        load_contract(write(tmp_path, document))
