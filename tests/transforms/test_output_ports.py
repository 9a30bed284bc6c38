"""Output port: one row per existing organisation, the contract's columns only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from customer_activity.jobs.contract import load_contract
from customer_activity.transforms import output_ports, staging
from customer_activity.transforms.staging import STAGING_MODELS
from customer_activity_testing.builders import raw

AS_OF = date(2024, 3, 31)
RUN_AT = datetime(2024, 4, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def contract_schema():
    return load_contract().spark_schema


def build(spark, contract_schema, **tables):
    staged = {
        name: staging.stage(raw(spark, name, *tables.get(name, ())), model) for name, model in STAGING_MODELS.items()
    }
    return output_ports.customer_activity(staged, AS_OF, RUN_AT, contract_schema)


def test_output_has_exactly_the_contracts_columns_in_its_order(spark, contract_schema):
    result = build(spark, contract_schema, organization=[{"organization_id": "o1"}])
    assert result.columns == contract_schema.names


def test_an_organisation_without_children_gets_zero_counts_and_null_timestamps(spark, contract_schema):
    """Counts are 0, never NULL; percentages 0.0; latest timestamps and platform NULL."""
    [row] = build(
        spark,
        contract_schema,
        organization=[
            {"organization_id": "o1", "vanity_url": "acme", "created_by": "u9", "created_at": "2024-01-02T03:04:05Z"}
        ],
    ).collect()
    assert row.asDict() | {"organization_created_at": None, "updated_at": None} == {
        "organization_id": "o1",
        "organization_vanity_url": "acme",
        "organization_created_by": "u9",
        "organization_created_at": None,
        "users_total": 0,
        "users_added_30d": 0,
        "users_last_signed_up_at": None,
        "dataproducts_total": 0,
        "dataproducts_added_30d": 0,
        "dataproducts_outputports_total": 0,
        "dataproducts_outputports_with_datacontract_percentage": 0.0,
        "dataproducts_outputports_with_testresults_percentage": 0.0,
        "dataproducts_last_updated_at": None,
        "assets_total": 0,
        "data_platform": None,
        "updated_at": None,
    }
    assert row.organization_created_at is not None


def test_children_of_unknown_organisations_never_create_rows(spark, contract_schema):
    result = build(
        spark,
        contract_schema,
        organization=[{"organization_id": "o1"}],
        organization_member=[{"organization_member_id": "m1", "organization_id": "ghost", "user_id": "u1"}],
        data_product=[{"data_product_id": "d1", "organization_id": "ghost"}],
        asset=[{"asset_id": "a1", "organization_id": None}],
    )
    assert [(r.organization_id, r.users_total, r.dataproducts_total, r.assets_total) for r in result.collect()] == [
        ("o1", 0, 0, 0)
    ]


def test_organisation_attributes_come_from_its_latest_version(spark, contract_schema):
    [row] = build(
        spark,
        contract_schema,
        organization=[
            {"organization_id": "o1", "vanity_url": "old", "created_by": "u1", "version": 1},
            {"organization_id": "o1", "vanity_url": "new", "created_by": None, "version": 2},
        ],
    ).collect()
    assert (row.organization_vanity_url, row.organization_created_by) == ("new", None)


def test_every_row_of_a_run_has_the_runs_timestamp(spark, contract_schema):
    result = build(spark, contract_schema, organization=[{"organization_id": "o1"}, {"organization_id": "o2"}])
    assert {row.updated_at.replace(tzinfo=None) for row in result.collect()} == {
        RUN_AT.astimezone().replace(tzinfo=None)
    }


def test_no_organisations_means_no_rows(spark, contract_schema):
    """An empty organization table yields no rows; the contract's rowCount rule rejects it."""
    assert (
        build(
            spark, contract_schema, organization_member=[{"organization_member_id": "m1", "organization_id": "o1"}]
        ).count()
        == 0
    )


def test_a_contract_column_the_transforms_do_not_produce_fails_clearly(spark, contract_schema):
    renamed = contract_schema.fromJson(contract_schema.jsonValue())
    renamed.fields[4].name = "users_count"
    renamed.names[4] = "users_count"
    with pytest.raises(output_ports.ContractColumnsMissingError, match="do not produce: users_count"):
        build(spark, renamed, organization=[{"organization_id": "o1"}])


def test_one_full_organisation_end_to_end(spark, contract_schema):
    """Every rule at once, for one organisation, with a value worked out by hand."""
    [row] = build(
        spark,
        contract_schema,
        organization=[{"organization_id": "o1"}],
        organization_member=[
            {
                "organization_member_id": "m1",
                "organization_id": "o1",
                "user_id": "u1",
                "created_at": "2024-03-30T10:00:00Z",
            },
            {
                "organization_member_id": "m2",
                "organization_id": "o1",
                "user_id": "u2",
                "created_at": "2023-03-30T10:00:00Z",
            },
        ],
        data_product=[
            {
                "data_product_id": "d1",
                "organization_id": "o1",
                "created_at": "2024-03-29T00:00:00Z",
                "updated_at": "2024-03-29T00:00:00Z",
            },
            {
                "data_product_id": "d2",
                "organization_id": "o1",
                "created_at": "2022-01-01T00:00:00Z",
                "updated_at": "2024-03-30T00:00:00Z",
            },
        ],
        output_port=[
            {"output_port_id": "p1", "data_product_id": "d1", "type": "snowflake", "data_contract_id": "c1"},
            {"output_port_id": "p2", "data_product_id": "d2", "type": "databricks", "data_contract_id": "c2"},
            {"output_port_id": "p3", "data_product_id": "d2", "type": "databricks", "data_contract_id": None},
        ],
        data_contract=[{"data_contract_id": "c1", "status": "active"}, {"data_contract_id": "c2", "status": "draft"}],
        test_result=[{"test_result_id": "t1", "data_contract_id": "c2"}],
        asset=[{"asset_id": "a1", "organization_id": "o1"}],
    ).collect()
    assert (row.users_total, row.users_added_30d, row.dataproducts_total, row.dataproducts_added_30d) == (2, 1, 2, 1)
    assert row.dataproducts_outputports_total == 3
    assert row.dataproducts_outputports_with_datacontract_percentage == pytest.approx(100 / 3)
    assert row.dataproducts_outputports_with_testresults_percentage == pytest.approx(100 / 3)
    # snowflake and databricks each have one data product: the tie goes to databricks.
    assert row.data_platform == "databricks"
    assert row.assets_total == 1


def test_staging_models_exist_for_all_seven_input_ports():
    assert set(STAGING_MODELS) == {
        "organization",
        "organization_member",
        "data_product",
        "asset",
        "output_port",
        "data_contract",
        "test_result",
    }
    assert STAGING_MODELS["organization"] is staging.STG_ORGANIZATIONS
