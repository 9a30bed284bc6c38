"""Reading the input ports: the raw tables of one catalog schema.

Every table is checked before any work (present, readable, usable columns), and every
problem is reported at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

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


def check_promised(contract: ProviderContract) -> None:
    """Refuse to read a column the provider's contract does not promise: the job would depend on an accident."""
    missing = [
        f"{table}.{column}"
        for table, port in INPUT_PORTS.items()
        for column in port.required_columns
        if column not in contract.promised.get(table, set())
    ]
    if missing:
        raise InputError(
            f"the provider's contract {contract.id} ({contract.path}) does not promise columns the job "
            f"reads: {', '.join(missing)}; nothing was read"
        )
