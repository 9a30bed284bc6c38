"""Intermediate: per-organisation business logic, one model per question.

Every model returns at most one row per `organization_id`. Rows that point to an
organisation that does not exist are kept here; the output port's left join from
the organisations drops them, so they never create an output row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ACTIVE_CONTRACT_STATUS = "active"
RECENT_DAYS = 30


def recent_window(as_of: date) -> tuple[datetime, datetime]:
    """The half-open UTC interval that "added in the last 30 days" means for `as_of`.

    [as_of - 30 days 00:00 UTC, as_of + 1 day 00:00 UTC): the as-of day itself and
    the 30 days before it.
    """
    midnight = datetime.combine(as_of, time.min, tzinfo=UTC)
    return midnight - timedelta(days=RECENT_DAYS), midnight + timedelta(days=1)


def is_added_recently(created_at: Column, as_of: date) -> Column:
    start, end = recent_window(as_of)
    return (created_at >= F.lit(start)) & (created_at < F.lit(end))


def int_organization_users(members: DataFrame, as_of: date) -> DataFrame:
    """Distinct users per organisation, in total and added recently; latest sign-up.

    First one row per (organisation, user), then one per organisation. Both group
    by the organisation first, so one shuffle by organisation serves both; two
    `count_distinct`s would instead copy every membership once per distinct count.
    """
    is_added_last_30_days = is_added_recently(F.col("created_at"), as_of)
    per_user = (
        members.select("organization_id", "user_id", "created_at")
        .repartition("organization_id")
        .groupBy("organization_id", "user_id")
        .agg(
            F.max(is_added_last_30_days).alias("is_added_last_30_days"),
            F.max("created_at").alias("last_signed_up_at"),
        )
    )
    has_user = F.col("user_id").isNotNull()
    return per_user.groupBy("organization_id").agg(
        F.count_if(has_user).alias("users_total"),
        F.count_if(has_user & F.col("is_added_last_30_days")).alias("users_added_30d"),
        F.max("last_signed_up_at").alias("users_last_signed_up_at"),
    )


def int_organization_data_products(data_products: DataFrame, as_of: date) -> DataFrame:
    """Data products per organisation, in total and added recently; latest update."""
    is_added_last_30_days = is_added_recently(F.col("created_at"), as_of)
    return (
        data_products.select("organization_id", "created_at", "updated_at")
        .groupBy("organization_id")
        .agg(
            F.count(F.lit(1)).alias("dataproducts_total"),
            F.count_if(is_added_last_30_days).alias("dataproducts_added_30d"),
            F.max("updated_at").alias("dataproducts_last_updated_at"),
        )
    )


def int_output_ports_enriched(
    output_ports: DataFrame,
    data_products: DataFrame,
    data_contracts: DataFrame,
    test_results: DataFrame,
) -> DataFrame:
    """Each output port of a known data product, with its organisation and two flags.

    `has_active_data_contract`: its contract's latest status is active.
    `has_test_results`: at least one test result names its contract, whatever that
    contract's status, even when the contract itself is unknown.
    """
    active_contracts = data_contracts.where(F.col("status") == ACTIVE_CONTRACT_STATUS).select(
        "data_contract_id", F.lit(True).alias("has_active_data_contract")
    )
    tested_contracts = (
        test_results.where(F.col("data_contract_id").isNotNull())
        .select("data_contract_id")
        .distinct()
        .select("data_contract_id", F.lit(True).alias("has_test_results"))
    )
    return (
        output_ports.select("output_port_id", "data_product_id", "platform_type", "data_contract_id")
        .join(data_products.select("data_product_id", "organization_id"), on="data_product_id", how="inner")
        .join(active_contracts, on="data_contract_id", how="left")
        .join(tested_contracts, on="data_contract_id", how="left")
        .select(
            "output_port_id",
            "data_product_id",
            "organization_id",
            "platform_type",
            F.coalesce(F.col("has_active_data_contract"), F.lit(False)).alias("has_active_data_contract"),
            F.coalesce(F.col("has_test_results"), F.lit(False)).alias("has_test_results"),
        )
    )


def _percentage(part: Column, total: Column) -> Column:
    return F.when(total > 0, F.lit(100.0) * part / total).otherwise(F.lit(0.0))


def int_organization_output_ports(output_ports_enriched: DataFrame) -> DataFrame:
    """Output-port totals, contract and test coverage, and the main data platform.

    The main platform is the port type used by the most distinct data products; a
    tie goes to the alphabetically first type; ports without a type are not votes.
    Three aggregations, each over the rows of the one before: per data product and
    type, per type, per organisation. Spark runs them as hash aggregations, where a
    distinct count would copy every port once more and sort it.
    """
    per_product = output_ports_enriched.groupBy("organization_id", "platform_type", "data_product_id").agg(
        F.count(F.lit(1)).alias("ports"),
        F.count_if("has_active_data_contract").alias("ports_with_active_data_contract"),
        F.count_if("has_test_results").alias("ports_with_test_results"),
    )
    port_sums = [F.sum(c).alias(c) for c in ("ports", "ports_with_active_data_contract", "ports_with_test_results")]
    per_platform = per_product.groupBy("organization_id", "platform_type").agg(
        *port_sums,
        F.count(F.lit(1)).alias("data_products"),
    )
    # min_by over (-votes, type): most votes first, then the alphabetically first type.
    platform_rank = F.when(
        F.col("platform_type").isNotNull(),
        F.struct((-F.col("data_products")).alias("votes"), F.col("platform_type")),
    )
    per_organization = per_platform.groupBy("organization_id").agg(
        *port_sums,
        F.min_by("platform_type", platform_rank).alias("data_platform"),
    )
    return per_organization.select(
        "organization_id",
        F.col("ports").alias("dataproducts_outputports_total"),
        _percentage(F.col("ports_with_active_data_contract"), F.col("ports")).alias(
            "dataproducts_outputports_with_datacontract_percentage"
        ),
        _percentage(F.col("ports_with_test_results"), F.col("ports")).alias(
            "dataproducts_outputports_with_testresults_percentage"
        ),
        "data_platform",
    )


def int_organization_assets(assets: DataFrame) -> DataFrame:
    """Assets per organisation."""
    return assets.select("organization_id").groupBy("organization_id").agg(F.count(F.lit(1)).alias("assets_total"))
