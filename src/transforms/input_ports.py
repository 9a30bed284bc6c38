"""Input ports: the raw tables dlt extracts from the operational Postgres database.

Each port declares the columns the product uses and the types it accepts for them.
`conform` selects columns of a raw table with the types staging compares them in,
without dropping or deduplicating anything: identifiers and strings become strings,
versions and load ids numbers. Timestamps keep their raw type: staging parses them
after deduplication, so that superseded versions are never parsed. Further raw
columns are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

VERSION = "version"
DLT_LOAD_ID = "_dlt_load_id"
DLT_ID = "_dlt_id"

# dlt load ids are decimal numbers written as strings ("1712345678.123456"); they
# must compare as numbers, and 38 digits with 10 decimals hold any of them.
_LOAD_ID_TYPE = T.DecimalType(38, 10)

_INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FRACTIONAL_TYPES = (T.FloatType, T.DoubleType, T.DecimalType)
# Identifiers may be UUID strings or Postgres integers; both are kept as strings.
_ID_TYPES = (T.StringType, *_INTEGRAL_TYPES, T.DecimalType)
_TIMESTAMP_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType, T.StringType)


@dataclass(frozen=True)
class InputPort:
    """One raw table: its key, the columns the product reads and how they are typed."""

    table: str
    key: str
    id_columns: tuple[str, ...]
    string_columns: tuple[str, ...]
    timestamp_columns: tuple[str, ...]
    versioned: bool = True

    @property
    def technical_columns(self) -> tuple[str, ...]:
        return (VERSION, DLT_LOAD_ID, DLT_ID) if self.versioned else ()

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column the product reads, in the order `conform` returns them."""
        return (self.key, *self.id_columns, *self.string_columns, *self.timestamp_columns, *self.technical_columns)


ORGANIZATION = InputPort(
    table="organization",
    key="organization_id",
    id_columns=(),
    string_columns=("vanity_url", "created_by"),
    timestamp_columns=("created_at",),
)
ORGANIZATION_MEMBER = InputPort(
    table="organization_member",
    key="organization_member_id",
    id_columns=("organization_id", "user_id"),
    string_columns=("role",),
    timestamp_columns=("created_at",),
)
DATA_PRODUCT = InputPort(
    table="data_product",
    key="data_product_id",
    id_columns=("organization_id",),
    string_columns=("name", "status", "specification_type"),
    timestamp_columns=("created_at", "updated_at"),
)
ASSET = InputPort(
    table="asset",
    key="asset_id",
    id_columns=("organization_id",),
    string_columns=("name", "type"),
    timestamp_columns=("created_at",),
)
OUTPUT_PORT = InputPort(
    table="output_port",
    key="output_port_id",
    id_columns=("data_product_id", "data_contract_id"),
    string_columns=("name", "type"),
    timestamp_columns=("created_at",),
)
DATA_CONTRACT = InputPort(
    table="data_contract",
    key="data_contract_id",
    id_columns=("organization_id",),
    string_columns=("status",),
    timestamp_columns=("created_at",),
)
# Test results are append-only: no versions, nothing to deduplicate.
TEST_RESULT = InputPort(
    table="test_result",
    key="test_result_id",
    id_columns=("data_contract_id",),
    string_columns=("result",),
    timestamp_columns=("created_at",),
    versioned=False,
)

INPUT_PORTS: dict[str, InputPort] = {
    port.table: port
    for port in (ORGANIZATION, ORGANIZATION_MEMBER, DATA_PRODUCT, ASSET, OUTPUT_PORT, DATA_CONTRACT, TEST_RESULT)
}


def _expectation(port: InputPort, column: str) -> tuple[tuple[type[T.DataType], ...], str]:
    """The types a raw column may have, and how to say so in an error message."""
    if column in (port.key, *port.id_columns):
        return _ID_TYPES, "an identifier (string or integer)"
    if column in port.timestamp_columns:
        return _TIMESTAMP_TYPES, "a TIMESTAMP, DATE or ISO-8601 string"
    if column == VERSION:
        return (*_INTEGRAL_TYPES, *_FRACTIONAL_TYPES), "a number (integer versions)"
    if column == DLT_LOAD_ID:
        return (T.StringType, *_INTEGRAL_TYPES, T.DecimalType), "a decimal number, as string or number"
    return (T.StringType,), "a string"


def schema_problems(schema: T.StructType, port: InputPort) -> list[str]:
    """What keeps `schema` from being read as `port`: missing columns, unusable types.

    Each problem names the table, the column and what was expected, so that a bad
    input fails before any work starts with a message a person can act on.
    """
    fields = {field.name: field.dataType for field in schema.fields}
    problems = []
    for column in port.required_columns:
        if column not in fields:
            problems.append(f"{port.table}.{column}: required column is missing")
            continue
        accepted, expected = _expectation(port, column)
        if not isinstance(fields[column], accepted):
            problems.append(f"{port.table}.{column}: has type {fields[column].simpleString()}, expected {expected}")
    return problems


def parse_utc_timestamp(column: Column, data_type: T.DataType) -> Column:
    """A timestamp column as UTC instants; unparseable strings become NULL.

    Spark runs with ANSI mode on, where a plain cast of a malformed string fails the
    whole job; `try_cast` returns NULL instead. Strings without an offset and
    TIMESTAMP_NTZ values are read in the session time zone, which the jobs pin to UTC.
    """
    if isinstance(data_type, T.TimestampType):
        return column
    if isinstance(data_type, T.StringType):
        return column.try_cast(T.TimestampType())
    return column.cast(T.TimestampType())


def unparseable_timestamp(column: Column, data_type: T.DataType) -> Column:
    """True where a raw value is present but cannot be read as a timestamp."""
    return column.isNotNull() & parse_utc_timestamp(column, data_type).isNull()


def _version(column: Column, data_type: T.DataType) -> Column:
    if isinstance(data_type, _INTEGRAL_TYPES):
        return column.cast(T.LongType())
    # Spark ranks NaN above every number; a NaN version says no more than a NULL one.
    as_double = column.cast(T.DoubleType())
    return F.when(~F.isnan(as_double), as_double)


def conform(raw: DataFrame, port: InputPort, columns: tuple[str, ...]) -> DataFrame:
    """The port's key, the given value `columns` and the version columns, typed for staging."""
    unknown = set(columns) - set(port.required_columns)
    if unknown:
        raise ValueError(f"{port.table} has no input columns {sorted(unknown)}")
    technical = []
    if port.versioned:
        types = {field.name: field.dataType for field in raw.schema.fields}
        technical = [
            _version(F.col(VERSION), types[VERSION]).alias(VERSION),
            F.col(DLT_LOAD_ID).try_cast(_LOAD_ID_TYPE).alias(DLT_LOAD_ID),
            F.col(DLT_ID).cast(T.StringType()).alias(DLT_ID),
        ]
    return raw.select(
        F.col(port.key).cast(T.StringType()).alias(port.key),
        *[F.col(c) if c in port.timestamp_columns else F.col(c).cast(T.StringType()).alias(c) for c in columns],
        *technical,
    )
