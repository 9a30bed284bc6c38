"""Raw tables for tests: tiny ones that name only the columns a test is about, and rewritten samples."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from customer_activity.transforms.input_ports import INPUT_PORTS


def raw_schema(table: str) -> T.StructType:
    """A raw table as dlt writes it: strings everywhere, a numeric version."""
    port = INPUT_PORTS[table]
    fields = [T.StructField(c, T.LongType() if c == "version" else T.StringType()) for c in port.required_columns]
    return T.StructType(fields)


def raw(spark: SparkSession, table: str, *rows: dict[str, object]) -> DataFrame:
    """A raw table with the given rows; columns a row leaves out are NULL.

    Versioned rows get a load id and a unique `_dlt_id` unless the test sets them.
    """
    schema = raw_schema(table)
    filled = []
    for number, row in enumerate(rows):
        defaults = {"_dlt_load_id": "1700000000.000001", "_dlt_id": f"row-{number:04d}", "version": 1}
        values = {**{k: v for k, v in defaults.items() if k in schema.names}, **row}
        unknown = set(values) - set(schema.names)
        assert not unknown, f"{table} has no columns {unknown}"
        filled.append(tuple(values.get(name) for name in schema.names))
    return spark.createDataFrame(filled, schema)


def rewrite(source: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Replace a raw table of the directory `source` by `change` of its rows, as one Parquet file."""
    data = change(pq.read_table(source / table))
    shutil.rmtree(source / table)
    (source / table).mkdir()
    pq.write_table(data, source / table / "part-0.parquet")
