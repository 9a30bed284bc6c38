"""Reading the input ports: the raw tables, from Parquet directories or a catalog schema.

Every table is checked before any work (present, a readable Parquet dataset, usable
columns), and every problem is reported at once. A directory's files are read under
one schema merged from all their footers (see `raw_files`), never the schema of
whichever file Spark would sample.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from customer_activity.jobs import catalog, raw_files
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.errors import ConfigurationError, InputError
from customer_activity.transforms.input_ports import INPUT_PORTS, schema_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputLocation:
    """Where the raw tables live: a directory of Parquet datasets, or a catalog schema."""

    directory: Path | None = None
    catalog: str | None = None
    schema: str | None = None

    def __post_init__(self) -> None:
        in_catalog = self.catalog is not None or self.schema is not None
        if (self.directory is None) == (not in_catalog):
            raise ConfigurationError("inputs need either a source directory or a catalog and a source schema")
        if in_catalog:
            if not self.catalog or not self.schema:
                raise ConfigurationError("inputs in a catalog need both the catalog and the source schema")
            catalog.identifier("catalog", self.catalog)
            catalog.identifier("source schema", self.schema)

    def table(self, name: str) -> TableName:
        return TableName(str(self.catalog), str(self.schema), name)

    def describe(self, table: str) -> str:
        return str(self.directory / table) if self.directory else str(self.table(table))

    def __str__(self) -> str:
        return str(self.directory) if self.directory else f"{self.catalog}.{self.schema}"


@dataclass(frozen=True)
class RawTable:
    """A raw table as read, and what its files' footers say of it.

    `rows` and `null_keys` are exact counts from the footers, or None where there are
    none (a catalog table) or they are incomplete (a file without statistics).
    """

    frame: DataFrame
    rows_missing_columns: dict[str, int] = field(default_factory=dict)
    rows: int | None = None
    null_keys: int | None = None


def read_input_ports(spark: SparkSession, location: InputLocation) -> dict[str, DataFrame]:
    """Every raw table, checked before any work (see `read_raw_tables`)."""
    return {table: raw.frame for table, raw in read_raw_tables(spark, location).items()}


def read_raw_tables(spark: SparkSession, location: InputLocation) -> dict[str, RawTable]:
    """Every raw table, checked before any work: present, readable, usable columns.

    All problems are collected so that one run reports everything that is wrong.
    """
    tables: dict[str, RawTable] = {}
    problems: list[str] = []
    for table in INPUT_PORTS:
        try:
            tables[table] = _read_table(spark, location, table)
        except InputError as error:
            # One line per problem: a table can have several.
            problems.extend(str(error).splitlines())
    if problems:
        raise InputError("the input tables cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    logger.info("read %d input tables from %s", len(tables), location)
    return tables


def _read_table(spark: SparkSession, location: InputLocation, table: str) -> RawTable:
    port = INPUT_PORTS[table]
    if location.directory is None:
        try:
            frame = spark.read.table(location.table(table).quoted)
        except Exception as error:
            raise InputError(f"{table}: table {location.table(table)} cannot be read ({_first_line(error)})") from error
        _raise_problems(schema_problems(frame.schema, port))
        return RawTable(frame)
    path = location.directory / table
    if not path.exists():
        raise InputError(f"{table}: {path} does not exist")
    files = _data_files(path)
    problem = parquet_problem(path, files)
    if problem is not None:
        raise InputError(f"{table}: {path} is not a Parquet dataset: {problem}")
    try:
        dataset = raw_files.inspect(table, path, files, port.required_columns, port.key)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{table}: {path} is not a readable Parquet dataset ({_first_line(error)})") from error
    _raise_problems(dataset.problems or schema_problems(dataset.schema, port))
    try:
        return RawTable(dataset.read(spark), dataset.rows_missing_columns, dataset.rows, dataset.key_nulls)
    except Exception as error:
        raise InputError(f"{table}: {path} is not a readable Parquet dataset ({_first_line(error)})") from error


def _raise_problems(problems: list[str]) -> None:
    if problems:
        raise InputError("\n".join(problems))


_PARQUET_MAGIC = b"PAR1"


def _data_files(path: Path) -> list[Path]:
    """The files a Parquet reader reads: hidden and metadata files (`.`, `_`) are not data."""
    if path.is_file():
        return [path]
    return sorted(
        file
        for file in path.rglob("*")
        if file.is_file() and not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
    )


def _looks_like(head: bytes) -> str:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary content"
    if not all(character.isprintable() or character in "\r\n\t" for character in text):
        return "unknown binary content"
    return "comma-separated text (CSV?)" if "," in text.splitlines()[0] else "text"


def parquet_problem(path: Path, files: list[Path] | None = None) -> str | None:
    """Why `path` cannot be read as a Parquet dataset, or None if it looks like one.

    Checked before Spark reads it, so that a wrong file is named plainly instead of
    surfacing as a failed Spark task with a JVM stack trace.
    """
    files = _data_files(path) if files is None else files
    if not files:
        return "it holds no data files"
    for file in files:
        with file.open("rb") as handle:
            head = handle.read(64)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
        if size < 12 or head[:4] != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
            name = file.relative_to(path) if file != path else file.name
            return f"{name} is not a Parquet file ({_looks_like(head) if head else 'empty'})"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
