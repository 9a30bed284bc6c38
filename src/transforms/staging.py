"""Staging: one model per source table; typed columns, the latest version per entity.

Staging only casts, renames and deduplicates. A row whose key is NULL is not an
entity and is dropped. Of the remaining rows, one per key survives: the highest
`version` (NULL ranks below any version), then the highest `_dlt_load_id` compared
as a number, then the highest `_dlt_id`. A hash of the whole row breaks any tie left,
so the result never depends on row order or partitioning.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from customer_activity.transforms import input_ports
from customer_activity.transforms.input_ports import DLT_ID, DLT_LOAD_ID, VERSION, InputPort

_LATEST = "_latest"


def _descending_nulls_last(column: Column) -> list[Column]:
    # Inside a struct NULL sorts first; the leading flag makes a NULL rank lowest.
    return [column.isNotNull(), column]


def latest_version(conformed: DataFrame, key: str) -> DataFrame:
    """Keep the latest version of every non-NULL key (see the module docstring).

    An aggregation with `max_by` rather than a `row_number()` window: Spark
    aggregates partially before the shuffle, so only candidates cross the network.
    """
    values = [c for c in conformed.columns if c != key]
    ranking = F.struct(
        *_descending_nulls_last(F.col(VERSION)),
        *_descending_nulls_last(F.col(DLT_LOAD_ID)),
        *_descending_nulls_last(F.col(DLT_ID)),
        F.xxhash64(*[F.col(c) for c in values]),
    )
    return (
        conformed.where(F.col(key).isNotNull())
        .groupBy(key)
        .agg(F.max_by(F.struct(*[F.col(c) for c in values]), ranking).alias(_LATEST))
        .select(key, *[F.col(f"{_LATEST}.{c}").alias(c) for c in values])
    )


def _stage(raw: DataFrame, port: InputPort) -> DataFrame:
    conformed = input_ports.conform(raw, port)
    if not port.versioned:
        return conformed
    return latest_version(conformed, port.key).drop(VERSION, DLT_LOAD_ID, DLT_ID)


def stg_organizations(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.ORGANIZATION).select(
        "organization_id",
        "vanity_url",
        "created_by",
        "created_at",
    )


def stg_organization_members(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.ORGANIZATION_MEMBER).select(
        "organization_member_id",
        "organization_id",
        "user_id",
        "role",
        "created_at",
    )


def stg_data_products(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.DATA_PRODUCT).select(
        "data_product_id",
        "organization_id",
        "name",
        "status",
        "specification_type",
        "created_at",
        "updated_at",
    )


def stg_assets(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.ASSET).select(
        "asset_id",
        "organization_id",
        "name",
        "type",
        "created_at",
    )


def stg_output_ports(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.OUTPUT_PORT).select(
        "output_port_id",
        "data_product_id",
        "name",
        F.col("type").alias("platform_type"),
        "data_contract_id",
        "created_at",
    )


def stg_data_contracts(raw: DataFrame) -> DataFrame:
    return _stage(raw, input_ports.DATA_CONTRACT).select(
        "data_contract_id",
        "organization_id",
        "status",
        "created_at",
    )


def stg_test_results(raw: DataFrame) -> DataFrame:
    """All test results: the table is append-only, so every row is a result."""
    return _stage(raw, input_ports.TEST_RESULT).select(
        "test_result_id",
        "data_contract_id",
        "result",
        "created_at",
    )


STAGING_MODELS = {
    input_ports.ORGANIZATION.table: stg_organizations,
    input_ports.ORGANIZATION_MEMBER.table: stg_organization_members,
    input_ports.DATA_PRODUCT.table: stg_data_products,
    input_ports.ASSET.table: stg_assets,
    input_ports.OUTPUT_PORT.table: stg_output_ports,
    input_ports.DATA_CONTRACT.table: stg_data_contracts,
    input_ports.TEST_RESULT.table: stg_test_results,
}
