"""Staging: one model per source table; typed columns, the latest version per entity.

Staging only selects, casts, renames and deduplicates. Each model keeps the columns
the product uses, and nothing else: narrower rows are what the deduplication sorts
and shuffles. A row whose key is NULL is not an entity and is dropped. Of the
remaining rows, one per key survives: the highest `version` (NULL ranks below any
version), then the highest `_dlt_load_id` compared as a number, then the highest
`_dlt_id`. Should rows still tie, the kept columns themselves decide, so the result
never depends on row order or partitioning. Timestamps are parsed after that, only
for the rows that survive.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from customer_activity.transforms import input_ports
from customer_activity.transforms.input_ports import DLT_ID, DLT_LOAD_ID, VERSION, InputPort

_RANK = "_version_rank"
# `parse_timestamps`' flag column: a kept row had a timestamp that could not be parsed.
UNPARSEABLE = "_unparseable_timestamp"


@dataclass(frozen=True)
class StagingModel:
    """A staging model: which input port, which of its columns, under which names."""

    port: InputPort
    columns: tuple[str, ...]
    renames: Mapping[str, str] = field(default_factory=dict)

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in self.port.timestamp_columns)


def latest_version(conformed: DataFrame, key: str) -> DataFrame:
    """Keep the latest version of every non-NULL key (see the module docstring).

    `row_number() ... = 1` is the form Spark recognises: it keeps only the leading
    row of every key within each task before the shuffle (a partial group limit), so
    most superseded versions never cross the network.
    """
    values = [c for c in conformed.columns if c not in (key, VERSION, DLT_LOAD_ID, DLT_ID)]
    newest_first = Window.partitionBy(key).orderBy(
        F.col(VERSION).desc_nulls_last(),
        F.col(DLT_LOAD_ID).desc_nulls_last(),
        F.col(DLT_ID).desc_nulls_last(),
        *[F.col(c).desc_nulls_last() for c in values],
    )
    return (
        conformed.where(F.col(key).isNotNull())
        .withColumn(_RANK, F.row_number().over(newest_first))
        .where(F.col(_RANK) == 1)
        .select(key, *values)
    )


def latest_rows(raw: DataFrame, model: StagingModel) -> DataFrame:
    """Step 1: the model's columns typed for comparison, the latest version per key.

    Timestamps keep their raw values here: only the rows that survive get parsed.
    """
    port = model.port
    conformed = input_ports.conform(raw, port, model.columns)
    return latest_version(conformed, port.key) if port.versioned else conformed.select(port.key, *model.columns)


def parse_timestamps(latest: DataFrame, model: StagingModel) -> DataFrame:
    """Step 2: timestamps as UTC instants, and UNPARSEABLE: a timestamp was there but unreadable.

    The flag and the parsed values come from one projection, where Spark evaluates
    each parse once for both.
    """
    types = {f.name: f.dataType for f in latest.schema.fields}
    parsed = {c: input_ports.parse_utc_timestamp(F.col(c), types[c]) for c in model.timestamp_columns}
    flags = [input_ports.unparseable_timestamp(F.col(c), types[c]) for c in model.timestamp_columns]
    return latest.select(
        model.port.key,
        *[parsed[c].alias(c) if c in parsed else F.col(c) for c in model.columns],
        functools.reduce(operator.or_, flags, F.lit(False)).alias(UNPARSEABLE),
    )


def named(parsed: DataFrame, model: StagingModel) -> DataFrame:
    """Step 3: the model's columns under the names the later layers use."""
    return parsed.select(model.port.key, *[F.col(c).alias(model.renames.get(c, c)) for c in model.columns])


def stage(raw: DataFrame, model: StagingModel, on_kept: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """Run a staging model over its raw table: its three steps in a row.

    The one composition of the steps, for the build, the notebook, the benchmark and the
    tests alike. `on_kept` sees the kept rows between parsing and naming, with their
    UNPARSEABLE flag: the build observes its run report's counts there.
    """
    parsed = parse_timestamps(latest_rows(raw, model), model)
    return named(on_kept(parsed) if on_kept else parsed, model)


STG_ORGANIZATIONS = StagingModel(input_ports.ORGANIZATION, ("vanity_url", "created_by", "created_at"))
STG_ORGANIZATION_MEMBERS = StagingModel(input_ports.ORGANIZATION_MEMBER, ("organization_id", "user_id", "created_at"))
STG_DATA_PRODUCTS = StagingModel(input_ports.DATA_PRODUCT, ("organization_id", "created_at", "updated_at"))
STG_ASSETS = StagingModel(input_ports.ASSET, ("organization_id",))
STG_OUTPUT_PORTS = StagingModel(
    input_ports.OUTPUT_PORT, ("data_product_id", "type", "data_contract_id"), renames={"type": "platform_type"}
)
STG_DATA_CONTRACTS = StagingModel(input_ports.DATA_CONTRACT, ("status",))
# Test results are append-only: every row is a result, nothing to deduplicate.
STG_TEST_RESULTS = StagingModel(input_ports.TEST_RESULT, ("data_contract_id",))


# Keyed by source table: what the jobs and the notebook iterate over.
STAGING_MODELS: dict[str, StagingModel] = {
    model.port.table: model
    for model in (
        STG_ORGANIZATIONS,
        STG_ORGANIZATION_MEMBERS,
        STG_DATA_PRODUCTS,
        STG_ASSETS,
        STG_OUTPUT_PORTS,
        STG_DATA_CONTRACTS,
        STG_TEST_RESULTS,
    )
}


def stage_all(raw: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    """Every staging model over its raw table, keyed by source table."""
    return {table: stage(frame, STAGING_MODELS[table]) for table, frame in raw.items()}
