"""Staging: latest version per entity (SPEC: staging rules 1 and 2)."""

from __future__ import annotations

import random

from chispa import assert_df_equality
from pyspark.sql import functions as F

from customer_activity.transforms import staging
from customer_activity_testing.builders import raw


def vanity_urls(frame) -> dict[str, str]:
    return {row.organization_id: row.vanity_url for row in frame.collect()}


def test_the_highest_version_wins(spark):
    """Rule 2: one row per key, the highest version."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "vanity_url": "old", "version": 1},
        {"organization_id": "o1", "vanity_url": "new", "version": 3},
        {"organization_id": "o1", "vanity_url": "middle", "version": 2},
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {"o1": "new"}


def test_equal_versions_are_decided_by_the_load_id_compared_as_a_number(spark):
    """Rule 2: "9.5" < "10.1" as numbers, although not as strings."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "vanity_url": "earlier load", "version": 2, "_dlt_load_id": "9.5"},
        {"organization_id": "o1", "vanity_url": "later load", "version": 2, "_dlt_load_id": "10.1"},
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {"o1": "later load"}


def test_equal_versions_and_loads_are_decided_by_the_highest_dlt_id(spark):
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "vanity_url": "lower id", "_dlt_id": "aaa"},
        {"organization_id": "o1", "vanity_url": "higher id", "_dlt_id": "bbb"},
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {"o1": "higher id"}


def test_a_null_version_ranks_below_every_version(spark):
    """Rule 2: even version 0 beats NULL, whatever the load id says."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "vanity_url": "versioned", "version": 0, "_dlt_load_id": "1.0"},
        {"organization_id": "o1", "vanity_url": "no version", "version": None, "_dlt_load_id": "99.0"},
        {"organization_id": "o2", "vanity_url": "only unversioned", "version": None},
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {
        "o1": "versioned",
        "o2": "only unversioned",
    }


def test_a_nan_version_ranks_like_a_null_one(spark):
    """A DOUBLE version column may hold NaN, which Spark would rank above every number."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "vanity_url": "versioned", "version": 0, "_dlt_load_id": "1.0"},
        {"organization_id": "o1", "vanity_url": "NaN", "_dlt_load_id": "99.0"},
        {"organization_id": "o2", "vanity_url": "NaN, later load", "_dlt_load_id": "2.0"},
        {"organization_id": "o2", "vanity_url": "NULL, earlier load", "version": None, "_dlt_load_id": "1.0"},
    ).withColumn(
        "version",
        F.when(F.col("vanity_url").startswith("NaN"), F.lit(float("nan"))).otherwise(F.col("version").cast("double")),
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {
        "o1": "versioned",
        "o2": "NaN, later load",
    }


def test_rows_with_a_null_key_are_not_entities(spark):
    """Rule 1: a NULL key is dropped, never grouped into an entity of its own."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": None, "vanity_url": "ghost", "version": 9},
        {"organization_id": "o1", "vanity_url": "real"},
    )
    assert vanity_urls(staging.stage(organizations, staging.STG_ORGANIZATIONS)) == {"o1": "real"}


def test_the_result_does_not_depend_on_row_order_or_partitioning(spark):
    """Rule 2: shuffled rows in any number of partitions give the same entities."""
    rows = [
        {
            "organization_id": f"o{n % 7}",
            "vanity_url": f"v{n}",
            "version": n % 3,
            "_dlt_load_id": f"{n % 5}.5",
            "_dlt_id": f"id{n:03d}",
        }
        for n in range(60)
    ]
    expected = staging.stage(raw(spark, "organization", *rows), staging.STG_ORGANIZATIONS)
    random.Random(7).shuffle(rows)
    shuffled = raw(spark, "organization", *rows).repartition(5)
    assert_df_equality(staging.stage(shuffled, staging.STG_ORGANIZATIONS), expected, ignore_row_order=True)


def test_staging_keeps_the_latest_values_of_every_column(spark):
    """The winning row is taken whole: no column comes from another version."""
    members = raw(
        spark,
        "organization_member",
        {
            "organization_member_id": "m1",
            "organization_id": "o1",
            "user_id": "u1",
            "created_at": "2024-01-01",
            "version": 1,
        },
        {"organization_member_id": "m1", "organization_id": "o2", "user_id": None, "created_at": None, "version": 2},
    )
    [member] = staging.stage(members, staging.STG_ORGANIZATION_MEMBERS).collect()
    assert (member.organization_id, member.user_id, member.created_at) == ("o2", None, None)


def test_test_results_are_append_only_and_all_kept(spark):
    """test_result has no versions: every row is a result, nothing is deduplicated."""
    results = raw(
        spark,
        "test_result",
        {"test_result_id": "t1", "data_contract_id": "c1", "result": "passed"},
        {"test_result_id": "t1", "data_contract_id": "c1", "result": "failed"},
        {"test_result_id": None, "data_contract_id": "c2", "result": "passed"},
    )
    assert staging.stage(results, staging.STG_TEST_RESULTS).count() == 3


def test_output_port_type_is_named_as_the_platform_it_is(spark):
    ports = raw(spark, "output_port", {"output_port_id": "p1", "type": "databricks"})
    assert staging.stage(ports, staging.STG_OUTPUT_PORTS).select("platform_type").first()[0] == "databricks"


def test_rows_that_tie_on_every_ranking_column_are_decided_by_their_values(spark):
    """Rule 2 leaves full ties open; the kept values decide, whatever the row order."""
    rows = [
        {"organization_id": "o1", "vanity_url": "alpha", "_dlt_id": "same"},
        {"organization_id": "o1", "vanity_url": "beta", "_dlt_id": "same"},
    ]
    forwards = staging.stage(raw(spark, "organization", *rows), staging.STG_ORGANIZATIONS)
    backwards = staging.stage(raw(spark, "organization", *reversed(rows)).repartition(2), staging.STG_ORGANIZATIONS)
    assert vanity_urls(forwards) == vanity_urls(backwards) == {"o1": "beta"}


def test_staging_keeps_only_the_columns_the_product_uses(spark):
    products = raw(spark, "data_product", {"data_product_id": "d1", "name": "unused", "status": "active"})
    assert staging.stage(products, staging.STG_DATA_PRODUCTS).columns == [
        "data_product_id",
        "organization_id",
        "created_at",
        "updated_at",
    ]


def test_timestamps_of_the_latest_version_are_parsed_and_superseded_ones_never_matter(spark):
    """Rule 3 applies to the surviving row: a malformed older version cannot leak in."""
    organizations = raw(
        spark,
        "organization",
        {"organization_id": "o1", "created_at": "garbage", "version": 1},
        {"organization_id": "o1", "created_at": "2024-03-15T12:00:00+02:00", "version": 2},
        {"organization_id": "o2", "created_at": "not a date", "version": 1},
    )
    parsed = {
        row.organization_id: row.created_at for row in staging.stage(organizations, staging.STG_ORGANIZATIONS).collect()
    }
    assert parsed["o1"].isoformat().startswith("2024-03-15T10:00")
    assert parsed["o2"] is None


def test_parsing_flags_the_surviving_rows_whose_timestamp_could_not_be_parsed(spark):
    """What the run report counts: kept rows whose timestamp could not be parsed, superseded ones never."""
    products = raw(
        spark,
        "data_product",
        {"data_product_id": "d1", "created_at": "garbage", "updated_at": "2024-01-01", "version": 1},
        {"data_product_id": "d1", "created_at": "2024-01-01", "updated_at": "2024-01-01", "version": 2},
        {"data_product_id": "d2", "created_at": "2024-01-01", "updated_at": "31/12/2024"},
        {"data_product_id": "d3", "created_at": None, "updated_at": None},
    )
    model = staging.STG_DATA_PRODUCTS
    parsed = staging.parse_timestamps(staging.latest_rows(products, model), model)
    flags = {row.data_product_id: row[staging.UNPARSEABLE] for row in parsed.collect()}
    assert flags == {"d1": False, "d2": True, "d3": False}
    assert staging.UNPARSEABLE not in staging.named(parsed, model).columns


def test_a_model_without_timestamps_never_flags_a_row(spark):
    assets = raw(spark, "asset", {"asset_id": "a1", "organization_id": "o1"})
    model = staging.STG_ASSETS
    assert staging.parse_timestamps(staging.latest_rows(assets, model), model).first()[staging.UNPARSEABLE] is False
