"""Output port `customer_activity`: one wide row per organisation, the contract's columns.

The contract is the single source of truth for the output's columns: the closing
`select` takes its column list from the contract's schema, so the output carries
exactly those columns in that order and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_activity.transforms import intermediate

COUNT_COLUMNS = (
    "users_total",
    "users_added_30d",
    "dataproducts_total",
    "dataproducts_added_30d",
    "dataproducts_outputports_total",
    "assets_total",
)
PERCENTAGE_COLUMNS = (
    "dataproducts_outputports_with_datacontract_percentage",
    "dataproducts_outputports_with_testresults_percentage",
)


class ContractColumnsMissingError(ValueError):
    """The contract names columns that the transforms do not produce."""

    def __init__(self, missing: list[str], produced: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "the data contract names columns the transforms do not produce: "
            + ", ".join(missing)
            + ". Produced columns: "
            + ", ".join(produced)
        )


def customer_activity_wide(
    organizations: DataFrame,
    users: DataFrame,
    data_products: DataFrame,
    output_ports: DataFrame,
    assets: DataFrame,
    updated_at: datetime,
) -> DataFrame:
    """Join the per-organisation models onto every organisation; 0 where nothing matched."""
    joined = (
        organizations.join(users, on="organization_id", how="left")
        .join(data_products, on="organization_id", how="left")
        .join(output_ports, on="organization_id", how="left")
        .join(assets, on="organization_id", how="left")
    )
    return joined.select(
        "organization_id",
        F.col("vanity_url").alias("organization_vanity_url"),
        F.col("created_by").alias("organization_created_by"),
        F.col("created_at").alias("organization_created_at"),
        *[F.coalesce(F.col(c), F.lit(0).cast(T.LongType())).alias(c) for c in COUNT_COLUMNS],
        *[F.coalesce(F.col(c), F.lit(0.0)).alias(c) for c in PERCENTAGE_COLUMNS],
        "users_last_signed_up_at",
        "dataproducts_last_updated_at",
        "data_platform",
        F.lit(updated_at).cast(T.TimestampType()).alias("updated_at"),
    )


def select_contract_columns(wide: DataFrame, contract_schema: T.StructType) -> DataFrame:
    """The contract's columns in the contract's order; fails clearly on unknown ones.

    Types are not cast here on purpose: a type the transforms do not produce is a
    broken contract, which the pre-publish audit reports instead of hiding it.
    """
    missing = [name for name in contract_schema.names if name not in wide.columns]
    if missing:
        raise ContractColumnsMissingError(missing, wide.columns)
    return wide.select(*contract_schema.names)


def customer_activity(
    staged: Mapping[str, DataFrame],
    as_of: date,
    updated_at: datetime,
    contract_schema: T.StructType,
) -> DataFrame:
    """The whole model from the staged tables (keyed by source table name)."""
    output_ports = intermediate.int_output_ports_enriched(
        staged["output_port"],
        staged["data_product"],
        staged["data_contract"],
        staged["test_result"],
    )
    wide = customer_activity_wide(
        organizations=staged["organization"],
        users=intermediate.int_organization_users(staged["organization_member"], as_of),
        data_products=intermediate.int_organization_data_products(staged["data_product"], as_of),
        output_ports=intermediate.int_organization_output_ports(output_ports),
        assets=intermediate.int_organization_assets(staged["asset"]),
        updated_at=updated_at,
    )
    return select_contract_columns(wide, contract_schema)
