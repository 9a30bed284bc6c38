"""Intermediate models: one test per output rule of the specification."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from chispa import assert_df_equality

from customer_activity.transforms import intermediate, staging
from customer_activity_testing.builders import raw

AS_OF = date(2024, 3, 31)
WINDOW_START = "2024-03-01T00:00:00Z"  # D - 30 days, 00:00 UTC
WINDOW_END = "2024-04-01T00:00:00Z"  # D + 1 day, 00:00 UTC


def members(spark, *rows):
    return staging.stage(raw(spark, "organization_member", *rows), staging.STG_ORGANIZATION_MEMBERS)


def products(spark, *rows):
    return staging.stage(raw(spark, "data_product", *rows), staging.STG_DATA_PRODUCTS)


def by_org(frame, *columns):
    return {row.organization_id: tuple(row[c] for c in columns) for row in frame.collect()}


def test_recent_window_is_the_as_of_day_and_the_30_days_before():
    """Window rule: [D - 30 days 00:00 UTC, D + 1 day 00:00 UTC)."""
    start, end = intermediate.recent_window(AS_OF)
    assert start == datetime(2024, 3, 1, tzinfo=UTC)
    assert end == datetime(2024, 4, 1, tzinfo=UTC)
    assert end - start == timedelta(days=31)


@pytest.mark.parametrize(
    ("created_at", "recent"),
    [
        (WINDOW_START, True),  # the first instant of the window is inside
        ("2024-02-29T23:59:59Z", False),  # one second before it is not
        ("2024-03-31T23:59:59Z", True),  # the whole as-of day counts
        (WINDOW_END, False),  # the window is half-open
        ("2024-04-01T01:00:00+02:00", True),  # an offset moves the instant back into it
        (None, False),  # an unknown creation time is never recent
        ("garbage", False),
    ],
)
def test_users_added_in_the_last_30_days_respect_the_window_bounds(spark, created_at, recent):
    frame = members(
        spark, {"organization_member_id": "m1", "organization_id": "o1", "user_id": "u1", "created_at": created_at}
    )
    users = intermediate.int_organization_users(frame, AS_OF)
    assert by_org(users, "users_total", "users_added_30d") == {"o1": (1, 1 if recent else 0)}


def test_users_are_distinct_non_null_user_ids(spark):
    """users_total: distinct non-NULL user_id; a user in two memberships counts once."""
    frame = members(
        spark,
        {"organization_member_id": "m1", "organization_id": "o1", "user_id": "u1"},
        {"organization_member_id": "m2", "organization_id": "o1", "user_id": "u1"},
        {"organization_member_id": "m3", "organization_id": "o1", "user_id": "u2"},
        {"organization_member_id": "m4", "organization_id": "o1", "user_id": None},
    )
    assert by_org(intermediate.int_organization_users(frame, AS_OF), "users_total") == {"o1": (2,)}


def test_recent_users_are_distinct_too(spark):
    frame = members(
        spark,
        {
            "organization_member_id": "m1",
            "organization_id": "o1",
            "user_id": "u1",
            "created_at": "2024-03-10T00:00:00Z",
        },
        {
            "organization_member_id": "m2",
            "organization_id": "o1",
            "user_id": "u1",
            "created_at": "2024-03-20T00:00:00Z",
        },
        {
            "organization_member_id": "m3",
            "organization_id": "o1",
            "user_id": None,
            "created_at": "2024-03-20T00:00:00Z",
        },
    )
    assert by_org(intermediate.int_organization_users(frame, AS_OF), "users_added_30d") == {"o1": (1,)}


def test_a_membership_counts_for_the_organisation_its_latest_version_names(spark):
    frame = members(
        spark,
        {"organization_member_id": "m1", "organization_id": "o1", "user_id": "u1", "version": 1},
        {"organization_member_id": "m1", "organization_id": "o2", "user_id": "u1", "version": 2},
    )
    assert by_org(intermediate.int_organization_users(frame, AS_OF), "users_total") == {"o2": (1,)}


def test_last_sign_up_is_the_latest_membership_even_without_a_user(spark):
    """users_last_signed_up_at: latest membership created_at, whatever its user_id."""
    frame = members(
        spark,
        {
            "organization_member_id": "m1",
            "organization_id": "o1",
            "user_id": "u1",
            "created_at": "2024-01-01T00:00:00Z",
        },
        {
            "organization_member_id": "m2",
            "organization_id": "o1",
            "user_id": None,
            "created_at": "2024-02-01T00:00:00Z",
        },
        {"organization_member_id": "m3", "organization_id": "o2", "user_id": "u1", "created_at": None},
    )
    result = by_org(intermediate.int_organization_users(frame, AS_OF), "users_last_signed_up_at")
    assert result["o1"][0].isoformat().startswith("2024-02-01T00:00")
    assert result["o2"] == (None,)


def test_data_products_total_recent_and_last_update(spark):
    """dataproducts_total, dataproducts_added_30d, dataproducts_last_updated_at."""
    frame = products(
        spark,
        {
            "data_product_id": "d1",
            "organization_id": "o1",
            "created_at": "2024-03-05T00:00:00Z",
            "updated_at": "2024-03-06T00:00:00Z",
        },
        {
            "data_product_id": "d2",
            "organization_id": "o1",
            "created_at": "2023-01-01T00:00:00Z",
            "updated_at": "2024-03-30T08:00:00Z",
        },
        {"data_product_id": "d3", "organization_id": "o1", "status": "retired", "created_at": None, "updated_at": None},
    )
    [row] = intermediate.int_organization_data_products(frame, AS_OF).collect()
    assert (row.dataproducts_total, row.dataproducts_added_30d) == (3, 1)
    assert row.dataproducts_last_updated_at.isoformat().startswith("2024-03-30T08:00")


def ports_model(spark, ports, contracts=(), results=(), data_products=None):
    data_products = data_products or [
        {"data_product_id": "d1", "organization_id": "o1"},
        {"data_product_id": "d2", "organization_id": "o1"},
        {"data_product_id": "d3", "organization_id": "o1"},
    ]
    enriched = intermediate.int_output_ports_enriched(
        staging.stage(raw(spark, "output_port", *ports), staging.STG_OUTPUT_PORTS),
        staging.stage(raw(spark, "data_product", *data_products), staging.STG_DATA_PRODUCTS),
        staging.stage(raw(spark, "data_contract", *contracts), staging.STG_DATA_CONTRACTS),
        staging.stage(raw(spark, "test_result", *results), staging.STG_TEST_RESULTS),
    )
    return intermediate.int_organization_output_ports(enriched)


def test_ports_of_unknown_data_products_count_nowhere(spark):
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1"},
            {"output_port_id": "p2", "data_product_id": "unknown"},
            {"output_port_id": "p3", "data_product_id": None},
        ],
    )
    assert by_org(result, "dataproducts_outputports_total") == {"o1": (1,)}


def test_contract_percentage_counts_ports_whose_contract_is_active_in_its_latest_version(spark):
    """100 x ports with an active (latest status) contract / ports, not rounded."""
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1", "data_contract_id": "c-active"},
            {"output_port_id": "p2", "data_product_id": "d1", "data_contract_id": "c-was-active"},
            {"output_port_id": "p3", "data_product_id": "d1", "data_contract_id": None},
        ],
        contracts=[
            {"data_contract_id": "c-active", "status": "draft", "version": 1},
            {"data_contract_id": "c-active", "status": "active", "version": 2},
            {"data_contract_id": "c-was-active", "status": "active", "version": 1},
            {"data_contract_id": "c-was-active", "status": "deprecated", "version": 2},
        ],
    )
    [(percentage,)] = by_org(result, "dataproducts_outputports_with_datacontract_percentage").values()
    assert percentage == 100.0 * 1 / 3


def test_test_result_percentage_ignores_the_contracts_status_and_existence(spark):
    """100 x ports whose contract has any test result / ports; unknown contracts count."""
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1", "data_contract_id": "c-retired"},
            {"output_port_id": "p2", "data_product_id": "d1", "data_contract_id": "c-unknown"},
            {"output_port_id": "p3", "data_product_id": "d1", "data_contract_id": "c-untested"},
            {"output_port_id": "p4", "data_product_id": "d1", "data_contract_id": None},
        ],
        contracts=[
            {"data_contract_id": "c-retired", "status": "retired"},
            {"data_contract_id": "c-untested", "status": "active"},
        ],
        results=[
            {"test_result_id": "t1", "data_contract_id": "c-retired"},
            {"test_result_id": "t2", "data_contract_id": "c-retired"},
            {"test_result_id": "t3", "data_contract_id": "c-unknown"},
            {"test_result_id": "t4", "data_contract_id": None},
        ],
    )
    [(tested, active)] = by_org(
        result,
        "dataproducts_outputports_with_testresults_percentage",
        "dataproducts_outputports_with_datacontract_percentage",
    ).values()
    assert (tested, active) == (50.0, 25.0)


def test_data_platform_counts_distinct_data_products_not_ports(spark):
    """One product with three snowflake ports loses to two products on databricks."""
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1", "type": "snowflake"},
            {"output_port_id": "p2", "data_product_id": "d1", "type": "snowflake"},
            {"output_port_id": "p3", "data_product_id": "d1", "type": "snowflake"},
            {"output_port_id": "p4", "data_product_id": "d2", "type": "databricks"},
            {"output_port_id": "p5", "data_product_id": "d3", "type": "databricks"},
        ],
    )
    assert by_org(result, "data_platform", "dataproducts_outputports_total") == {"o1": ("databricks", 5)}


def test_data_platform_ties_go_to_the_alphabetically_first_type(spark):
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1", "type": "snowflake"},
            {"output_port_id": "p2", "data_product_id": "d2", "type": "bigquery"},
            {"output_port_id": "p3", "data_product_id": "d3", "type": "s3"},
        ],
    )
    assert by_org(result, "data_platform") == {"o1": ("bigquery",)}


def test_ports_without_a_type_are_counted_but_never_chosen_as_platform(spark):
    result = ports_model(
        spark,
        [
            {"output_port_id": "p1", "data_product_id": "d1", "type": None},
            {"output_port_id": "p2", "data_product_id": "d2", "type": None},
            {"output_port_id": "p3", "data_product_id": "d3", "type": "s3"},
        ],
    )
    assert by_org(result, "data_platform", "dataproducts_outputports_total") == {"o1": ("s3", 3)}


def test_data_platform_is_null_when_no_port_has_a_type(spark):
    result = ports_model(spark, [{"output_port_id": "p1", "data_product_id": "d1", "type": None}])
    assert by_org(result, "data_platform", "dataproducts_outputports_with_datacontract_percentage") == {
        "o1": (None, 0.0)
    }


def test_assets_are_counted_per_organisation(spark):
    assets = staging.stage(
        raw(
            spark,
            "asset",
            {"asset_id": "a1", "organization_id": "o1"},
            {"asset_id": "a1", "organization_id": "o1", "version": 2},
            {"asset_id": "a2", "organization_id": "o1"},
            {"asset_id": "a3", "organization_id": "o2"},
        ),
        staging.STG_ASSETS,
    )
    expected = spark.createDataFrame([("o1", 2), ("o2", 1)], "organization_id string, assets_total bigint")
    assert_df_equality(
        intermediate.int_organization_assets(assets), expected, ignore_row_order=True, ignore_nullable=True
    )
