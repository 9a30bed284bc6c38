"""The files of a raw Parquet table, as their footers describe them: one merged schema.

dlt evolves a table's schema between loads: it adds columns, and its files may
disagree on a column's width (INT32 in one load, INT64 in the next). Spark reads a
directory with the schema of whichever file it samples, so without care the result
would depend on file order: half the rows silently NULL, or a type error deep in a
task. Here every file's footer is read (metadata only, no rows), the schemas are
merged by fixed rules, and each group of files sharing a schema is read with its
own schema and cast to the merged one:
- a column a file lacks is NULL in that file's rows (and counted);
- compatible types widen: integers to the widest, FLOAT and DOUBLE to DOUBLE,
  integers and decimals to a decimal that holds both, DATE and TIMESTAMP to
  TIMESTAMP, TIMESTAMP_NTZ and TIMESTAMP to TIMESTAMP;
- any other disagreement (a string in one file, a number in another) is an input
  problem, named with the column, the types and a file of each.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import PySparkTypeError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from customer_activity.jobs.errors import InputError, first_line

# Spark (and Parquet decimals it reads) holds at most 38 digits.
_MAX_PRECISION = 38
_INTEGRAL_RANK: dict[type[T.DataType], int] = {T.ByteType: 0, T.ShortType: 1, T.IntegerType: 2, T.LongType: 3}
# Digits an integral type needs as a decimal, as Spark's own type coercion counts them.
_INTEGRAL_DIGITS: dict[type[T.DataType], int] = {T.ByteType: 3, T.ShortType: 5, T.IntegerType: 10, T.LongType: 20}


# Hadoop's glob syntax: Spark's file-source readers expand a path holding any of these.
_GLOB_CHARACTERS = re.compile(r"([\[\]{}*?\\])")


def literal_path(path: Path) -> str:
    """`path` as Spark's file reader takes it literally, its glob characters escaped.

    Unescaped, a directory named `out[1]` matches `out1` and not itself, and `raw*`
    could add another directory's files.
    """
    return _GLOB_CHARACTERS.sub(r"\\\1", path.absolute().as_posix())


class UnsupportedTypeError(Exception):
    """A Parquet column type this job cannot read into Spark."""


# Where Spark's Parquet reader reads a column otherwise than PySpark's Arrow mapping says:
# unsigned integers widen to the next signed type.
_UNSIGNED: dict[pa.DataType, T.DataType] = {
    pa.uint8(): T.ShortType(),
    pa.uint16(): T.IntegerType(),
    pa.uint32(): T.LongType(),
    pa.uint64(): T.DecimalType(20, 0),
}


def spark_type(arrow: pa.DataType, physical: str | None = None) -> T.DataType:
    """The Spark type Spark's own Parquet reader gives a column of this Arrow (footer) type.

    `physical` is the column's Parquet physical type, where the Arrow type alone does
    not say: INT96 (the legacy timestamp of Spark and Hive) reads as a timestamp.
    """
    if physical == "INT96":
        return T.TimestampType()
    if pa.types.is_dictionary(arrow):  # a storage detail: Spark reads the values
        return spark_type(arrow.value_type)
    if arrow in _UNSIGNED:
        return _UNSIGNED[arrow]
    # Spark 4 cannot read nanosecond timestamps (it would fail inside a task).
    if pa.types.is_timestamp(arrow) and arrow.unit == "ns":
        raise UnsupportedTypeError("timestamp with nanoseconds")
    # Raw tables hold flat values: a nested or unusual column is no column the job reads.
    unusual = pa.types.is_nested(arrow) or pa.types.is_duration(arrow) or pa.types.is_null(arrow)
    if unusual or (pa.types.is_decimal(arrow) and arrow.precision > _MAX_PRECISION):
        raise UnsupportedTypeError(str(arrow))
    try:
        return from_arrow_type(arrow, prefer_timestamp_ntz=True)
    except PySparkTypeError:  # a type Spark has no match for
        raise UnsupportedTypeError(str(arrow)) from None


def wider_type(left: T.DataType, right: T.DataType) -> T.DataType | None:
    """The type both `left` and `right` values fit in without loss of meaning; None if none."""
    if left == right:
        return left
    kinds = {type(left), type(right)}
    if kinds <= set(_INTEGRAL_RANK):
        return max(left, right, key=lambda t: _INTEGRAL_RANK[type(t)])
    if kinds <= {*_INTEGRAL_RANK, T.FloatType, T.DoubleType}:
        return T.DoubleType()
    if kinds <= {*_INTEGRAL_RANK, T.DecimalType}:
        return _wider_decimal(_as_decimal(left), _as_decimal(right))
    if kinds <= {T.DecimalType, T.FloatType, T.DoubleType}:
        return T.DoubleType()
    if kinds <= {T.DateType, T.TimestampType, T.TimestampNTZType}:
        return T.TimestampType() if T.TimestampType in kinds else T.TimestampNTZType()
    return None


def _as_decimal(data_type: T.DataType) -> T.DecimalType:
    if isinstance(data_type, T.DecimalType):
        return data_type
    return T.DecimalType(_INTEGRAL_DIGITS[type(data_type)], 0)


def _wider_decimal(left: T.DecimalType, right: T.DecimalType) -> T.DecimalType:
    whole = max(left.precision - left.scale, right.precision - right.scale)
    # Past 38 digits, fractional digits give way: every whole number of both still fits
    # (a cast that rounds a fraction is better than one that turns a large value NULL).
    scale = min(max(left.scale, right.scale), _MAX_PRECISION - whole)
    return T.DecimalType(whole + scale, scale)


@dataclass(frozen=True)
class FileSchema:
    """One data file: its rows and the Spark types of the wanted columns it has."""

    path: Path
    rows: int
    columns: tuple[tuple[str, T.DataType], ...]
    unsupported: tuple[tuple[str, str], ...] = ()


@dataclass
class RawDataset:
    """A raw table's files under one merged schema of the wanted columns."""

    table: str
    directory: Path
    files: list[FileSchema]
    schema: T.StructType
    problems: list[str] = field(default_factory=list)

    @property
    def types_agree(self) -> bool:
        """Every file holds each of its columns in the merged type: Spark can read them in place."""
        merged = {f.name: f.dataType for f in self.schema.fields}
        return all(merged.get(name) == data_type for file in self.files for name, data_type in file.columns)

    @property
    def rows_missing_columns(self) -> dict[str, int]:
        """Per merged column, the rows from files that lack it (NULL there)."""
        missing = {
            name: sum(f.rows for f in self.files if name not in dict(f.columns)) for name in self.schema.fieldNames()
        }
        return {name: rows for name, rows in missing.items() if rows}

    def read(self, spark: SparkSession) -> DataFrame:
        """All rows, each group of files read with its own schema, then cast to the merged one."""
        groups: dict[tuple[tuple[str, T.DataType], ...], list[Path]] = defaultdict(list)
        for file in self.files:
            groups[file.columns].append(file.path)
        frames = []
        for columns, paths in sorted(groups.items(), key=lambda item: str(item[1][0])):
            present = dict(columns)
            own = T.StructType([T.StructField(name, data_type) for name, data_type in columns])
            # Exactly the files whose footers were counted, never what else the directory holds.
            frame = spark.read.schema(own).parquet(*(literal_path(p) for p in paths))
            frames.append(
                frame.select(
                    *[
                        (F.col(c.name) if present[c.name] == c.dataType else F.col(c.name).cast(c.dataType)).alias(
                            c.name
                        )
                        if c.name in present
                        else F.lit(None).cast(c.dataType).alias(c.name)
                        for c in self.schema.fields
                    ]
                )
            )
        return functools.reduce(DataFrame.unionByName, frames)


def file_schema(path: Path, wanted: tuple[str, ...]) -> FileSchema:
    """The footer of one file: its rows and the types of the `wanted` columns it has."""
    metadata = pq.read_metadata(path)
    arrow = metadata.schema.to_arrow_schema()
    physical = {
        column.path: column.physical_type for column in (metadata.schema.column(i) for i in range(metadata.num_columns))
    }
    columns, unsupported = [], []
    for name in wanted:
        index = arrow.get_field_index(name)
        if index < 0:
            continue
        try:
            columns.append((name, spark_type(arrow.field(index).type, physical.get(name))))
        except UnsupportedTypeError as error:
            unsupported.append((name, str(error)))
    return FileSchema(path, metadata.num_rows, tuple(columns), tuple(unsupported))


def merge(table: str, directory: Path, files: list[FileSchema], wanted: tuple[str, ...]) -> RawDataset:
    """The merged schema of `files`; disagreements that do not widen become problems."""
    # One problem per column, naming the first disagreement: enough to find the files.
    problems: dict[str, str] = {}
    merged: dict[str, T.DataType] = {}
    first_seen: dict[str, FileSchema] = {}
    for file in files:
        for name, reason in file.unsupported:
            problems.setdefault(
                name, f"{table}.{name}: has a type Spark cannot read ({reason}) in {_name(file.path, directory)}"
            )
        for name, data_type in file.columns:
            if name not in merged:
                merged[name], first_seen[name] = data_type, file
                continue
            wider = wider_type(merged[name], data_type)
            if wider is None:
                seen = first_seen[name]
                problems.setdefault(
                    name,
                    f"{table}.{name}: files disagree on its type: {dict(seen.columns)[name].simpleString()} in "
                    f"{_name(seen.path, directory)}, {data_type.simpleString()} in {_name(file.path, directory)}",
                )
                continue
            merged[name] = wider
    schema = T.StructType([T.StructField(name, merged[name]) for name in wanted if name in merged])
    return RawDataset(table, directory, files, schema, [problems[name] for name in wanted if name in problems])


def _name(path: Path, directory: Path) -> str:
    return str(path.relative_to(directory)) if path != directory else path.name


def inspect(table: str, directory: Path, files: list[Path], wanted: tuple[str, ...]) -> RawDataset:
    """Read every file's footer and merge their schemas over the `wanted` columns.

    A file that is not Parquet (a CSV, garbage, an empty file) is named, before Spark
    would fail on it inside a task with a JVM stack trace.
    """
    if not files:
        raise InputError(f"{table}: {directory} is not a Parquet dataset: it holds no data files")
    footers = []
    for path in files:
        try:
            footers.append(file_schema(path, wanted))
        except (OSError, pa.ArrowException) as error:
            raise InputError(
                f"{table}: {directory} is not a Parquet dataset: {_name(path, directory)}: {first_line(error)}"
            ) from error
    return merge(table, directory, footers, wanted)
