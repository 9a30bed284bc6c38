"""Reading the input ports: the raw tables of one catalog schema.

Every table is checked before any work (present, readable, usable columns), and every
problem is reported at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from customer_activity.jobs import catalog
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.errors import InputError, first_line
from customer_activity.jobs.input_contract import ProviderContract
from customer_activity.transforms.input_ports import INPUT_PORTS, schema_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputLocation:
    """Where the raw tables live: a schema of a catalog.

    `label` is how messages name it (locally the directory a person gave).
    """

    catalog: str
    schema: str
    label: str | None = None

    def __post_init__(self) -> None:
        catalog.identifier("catalog", self.catalog)
        catalog.identifier("source schema", self.schema)

    def table(self, name: str) -> TableName:
        return TableName(self.catalog, self.schema, name)

    def __str__(self) -> str:
        return self.label or f"{self.catalog}.{self.schema}"


def read_raw_tables(spark: SparkSession, location: InputLocation) -> dict[str, DataFrame]:
    """Every raw table, checked before any work: present, readable, usable columns.

    All problems are collected so that one run reports everything that is wrong.
    """
    tables: dict[str, DataFrame] = {}
    problems: list[str] = []
    for table in INPUT_PORTS:
        name = location.table(table)
        try:
            frame = spark.read.table(name.quoted)
            # Spark Connect resolves a table only when asked for its schema.
            schema = frame.schema
        except Exception as error:  # noqa: BLE001 - Spark names a missing table with errors of several kinds
            problems.append(f"{table}: table {name} cannot be read ({first_line(error)})")
            continue
        found = schema_problems(schema, INPUT_PORTS[table])
        problems.extend(found)
        if not found:
            tables[table] = frame
    if problems:
        raise InputError("the input tables cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    logger.info("read %d input tables from %s", len(tables), location)
    return tables


# The physical types of an ODCS contract the job knows, as Spark reads them.
_PHYSICAL_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "varchar": T.StringType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "decimal": T.DecimalType(38, 10),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "timestamp_ntz": T.TimestampNTZType(),
}


def _timestamp(prop: dict[str, Any]) -> bool:
    """A column the contract states to hold instants: typed so, or text in date-time format."""
    return prop.get("logicalType") in ("timestamp", "date") or (prop.get("logicalTypeOptions") or {}).get("format") in (
        "date-time",
        "date",
    )


def check_ports(contract: ProviderContract) -> None:
    """The input ports, held to the provider's contract before anything is read.

    The job reads no column the contract does not promise, in no type it does not state, keys
    every table by the contract's `entityKey` and parses as timestamps exactly the columns the
    contract states to hold instants: where the provider's contract and the job disagree, the
    job would depend on an accident, and it stops (exit 3) naming the contract and each column.
    """
    problems = []
    for table, port in INPUT_PORTS.items():
        promised = contract.promised.get(table, {})
        physical = {c: str(p.get("physicalType", "")).split("(")[0].strip().lower() for c, p in promised.items()}
        unknown = [c for c in port.required_columns if c in physical and physical[c] not in _PHYSICAL_TYPES]
        problems += [
            f"{table}.{c}: physicalType {promised[c].get('physicalType')!r} is none the job knows" for c in unknown
        ]
        # The same judgement as on the raw tables themselves, in the contract's words; a column of
        # a type the job does not know is promised all the same, and named above.
        stated = T.StructType(
            [T.StructField(c, _PHYSICAL_TYPES[t]) for c, t in physical.items() if t in _PHYSICAL_TYPES]
        )
        problems += [
            problem.replace("required column is missing", "not promised")
            for problem in schema_problems(stated, port)
            if problem.split(":", 1)[0] not in {f"{table}.{c}" for c in unknown}
        ]
        key = contract.keys.get(table)
        if key != port.key:
            problems.append(
                f"{table}: the job keys it by {port.key}, the contract "
                + (f"by {key}" if key else "names no entityKey")
            )
        instants = {c for c in port.required_columns if c in promised and _timestamp(promised[c])}
        if instants != set(port.timestamp_columns):
            problems.append(
                f"{table}: the job parses {', '.join(sorted(port.timestamp_columns)) or 'no column'} as timestamps, "
                f"the contract states {', '.join(sorted(instants)) or 'none'} to hold them"
            )
    if problems:
        raise InputError(
            f"the input ports disagree with the provider's contract {contract.id} ({contract.path}); nothing was "
            "read:\n" + "\n".join(f"  - {p}" for p in problems)
        )
