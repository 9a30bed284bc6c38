"""The run history: every build's run report, one row each, in a Delta table of the product's internal schema.

On Databricks nobody reads a JSON file beside the output, so every build, whether it
succeeded, failed or was refused by the change gate, appends its run report to
`customer_activity_runs` in the internal schema (the one it stages its candidates in,
never granted to consumers); locally that is the local catalog's. The engineers' runs
dashboard reads it. The table's columns are the report's fields, typed from the report's
own dataclasses, so that the two cannot drift apart; a field added to the report becomes a
column on the next append (Delta's schema merging).
"""

from __future__ import annotations

import logging
import types
from dataclasses import asdict, fields, is_dataclass
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from customer_activity.jobs.publishing import TABLE_FORMAT, OutputLocation
from customer_activity.jobs.report import RunReport

logger = logging.getLogger(__name__)

RUNS_TABLE = "customer_activity_runs"
_ATOMIC: dict[Any, T.DataType] = {str: T.StringType(), int: T.LongType(), float: T.DoubleType(), bool: T.BooleanType()}


def spark_type(hint: Any) -> T.DataType:
    """The Spark type of a report field's type hint: dataclasses as structs, lists as arrays, dicts as maps."""
    origin, arguments = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        [inner] = [argument for argument in arguments if argument is not type(None)]
        return spark_type(inner)
    if origin is list:
        return T.ArrayType(spark_type(arguments[0]))
    if origin is dict:
        return T.MapType(spark_type(arguments[0]), spark_type(arguments[1]))
    if is_dataclass(hint):
        hints = get_type_hints(hint)
        return T.StructType([T.StructField(f.name, spark_type(hints[f.name])) for f in fields(hint)])
    return _ATOMIC[hint]


def record(spark: SparkSession, output: OutputLocation, report: RunReport) -> None:
    """Append `report` to the run history; a failure is logged, never raised over the run's own outcome."""
    table = output.internal(RUNS_TABLE)
    try:
        frame = spark.createDataFrame([asdict(report)], cast(T.StructType, spark_type(RunReport)))
        frame.write.format(TABLE_FORMAT).mode("append").option("mergeSchema", "true").saveAsTable(table.quoted)
    except Exception as error:  # noqa: BLE001 - whatever it is, the run's own outcome comes first
        logger.error("the run could not be added to the run history %s: %s: %s", table, type(error).__name__, error)
