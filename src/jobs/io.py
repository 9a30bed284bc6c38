"""All reading and writing of the product: the Spark session, input ports, output port.

Publishing is all-or-nothing. The candidate output is first written to a staging
location and audited there; only an audited candidate replaces the published output:
- a Parquet directory is swapped in by atomically repointing the `customer_activity`
  symlink to the new version (readers see the old or the new version, never a mix);
- a Delta table (a path locally, a Unity Catalog table on Databricks) is overwritten
  in one Delta transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from customer_activity.jobs import catalog
from customer_activity.jobs.audit import schema_differences
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import OutputContract
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError, InputError
from customer_activity.transforms.input_ports import INPUT_PORTS, schema_problems

logger = logging.getLogger(__name__)

OUTPUT_TABLE = "customer_activity"
REPORT_FILE = "customer_activity_run_report.json"
TABLE_FORMATS = ("parquet", "delta")
_VERSIONS = f".{OUTPUT_TABLE}.versions"
_STAGING = f".{OUTPUT_TABLE}.staging"

_LOCAL_SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # A laptop run handles thousands of rows, not billions: Spark's default of 200
    # shuffle partitions would mean 200 tiny tasks per stage.
    "spark.sql.shuffle.partitions": "8",
    # Spark's default of 1 GiB runs out of heap on a sample of 100 000 organisations;
    # this is a ceiling the JVM grows into, not memory it takes up front.
    "spark.driver.memory": "4g",
    "spark.log.level": "WARN",
}
_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def create_spark_session(table_format: str = "parquet", remote: str | None = None) -> SparkSession:
    """The job's session: Databricks' own, a Spark Connect one, or embedded local Spark.

    Every session works in UTC: timestamps without an offset are UTC instants.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        spark = SparkSession.builder.getOrCreate()
    elif remote or os.environ.get("SPARK_REMOTE"):
        builder = SparkSession.builder
        spark = (builder.remote(remote) if remote else builder).getOrCreate()
    else:
        spark = _local_session(table_format)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def _local_session(table_format: str) -> SparkSession:
    # Embedded Spark talks only to itself: binding to loopback needs no network and
    # avoids guessing (and warning about) the machine's external address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[*]").appName("customer-activity")
    for key, value in _LOCAL_SESSION_CONF.items():
        builder = builder.config(key, value)
    if table_format != "delta":
        return builder.getOrCreate()
    from delta import configure_spark_with_delta_pip

    for key, value in _DELTA_CONF.items():
        builder = builder.config(key, value)
    try:
        return configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as error:
        raise ConfigurationError(
            "--table-format delta needs Delta Lake's jars, and Spark could not load them "
            f"({str(error).splitlines()[0]}). Use --table-format parquet where the Maven "
            "repository cannot be reached, or provide the jars with spark.jars."
        ) from error


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


def read_input_ports(spark: SparkSession, location: InputLocation) -> dict[str, DataFrame]:
    """Every raw table, checked before any work: present, readable, usable columns.

    All problems are collected so that one run reports everything that is wrong.
    """
    tables: dict[str, DataFrame] = {}
    problems: list[str] = []
    for table, port in INPUT_PORTS.items():
        try:
            frame = _read_table(spark, location, table)
        except InputError as error:
            problems.append(str(error))
            continue
        problems.extend(schema_problems(frame.schema, port))
        tables[table] = frame
    if problems:
        raise InputError("the input tables cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    logger.info("read %d input tables from %s", len(tables), location.describe("*"))
    return tables


def _read_table(spark: SparkSession, location: InputLocation, table: str) -> DataFrame:
    where = location.describe(table)
    if location.directory is not None:
        path = location.directory / table
        if not path.exists():
            raise InputError(f"{table}: {path} does not exist")
        problem = parquet_problem(path)
        if problem is not None:
            raise InputError(f"{table}: {path} is not a Parquet dataset: {problem}")
        try:
            return spark.read.parquet(str(path))
        except Exception as error:
            raise InputError(f"{table}: {path} is not a readable Parquet dataset ({_first_line(error)})") from error
    try:
        return spark.read.table(location.table(table).quoted)
    except Exception as error:
        raise InputError(f"{table}: table {where} cannot be read ({_first_line(error)})") from error


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


def parquet_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a Parquet dataset, or None if it looks like one.

    Checked before Spark reads it, so that a wrong file is named plainly instead of
    surfacing as a failed Spark task with a JVM stack trace.
    """
    files = _data_files(path)
    if not files:
        return "it holds no data files"
    for file in files:
        with file.open("rb") as handle:
            head = handle.read(64)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
        if size < 12 or head[:4] != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
            return f"{file.relative_to(path) if file != path else file.name} is not a Parquet file ({_looks_like(head) if head else 'empty'})"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class OutputLocation:
    """Where the output port is published: a local directory or a Unity Catalog table."""

    directory: Path | None = None
    table: TableName | None = None
    table_format: str = "parquet"

    def __post_init__(self) -> None:
        if (self.directory is None) == (self.table is None):
            raise ConfigurationError("an output needs exactly one of a directory or a table name")
        if self.table_format not in TABLE_FORMATS:
            raise ConfigurationError(f"table format {self.table_format!r} is not one of {', '.join(TABLE_FORMATS)}")
        if self.table is not None and self.table_format != "delta":
            raise ConfigurationError("a catalog table is always published as Delta")

    @property
    def published(self) -> str:
        return str(self.directory / OUTPUT_TABLE) if self.directory else str(self.table)

    @property
    def report_path(self) -> Path | None:
        return self.directory / REPORT_FILE if self.directory else None

    def staging(self, run_id: str) -> str:
        if self.directory is not None:
            return str(self.directory / _STAGING / run_id)
        return catalog.staging_table(self._catalog_table, run_id).quoted

    @property
    def _catalog_table(self) -> TableName:
        if self.table is None:
            raise ConfigurationError("this output is a directory, not a catalog table")
        return self.table


def check_output_outside_input(source: Path, output: Path) -> None:
    """Publishing into the source directory could overwrite or shadow raw tables."""
    source, output = source.resolve(), output.resolve()
    if output == source or source in output.parents:
        raise ConfigurationError(f"the output directory {output} must not be inside the source directory {source}")


def write_staged(candidate: DataFrame, output: OutputLocation, run_id: str) -> DataFrame:
    """Write the candidate where no reader looks, and return it read back from there.

    Locally the staged copy is Parquet whatever the published format: it is the very
    directory a Parquet publish swaps in, and a Delta publish copies it in one commit.
    """
    location = output.staging(run_id)
    writer = candidate.write.mode("error")
    if output.directory is not None:
        writer.parquet(location)
        return candidate.sparkSession.read.parquet(location)
    writer.format("delta").saveAsTable(location)
    return candidate.sparkSession.read.table(location)


def publish(staged: DataFrame, output: OutputLocation, run_id: str, contract: OutputContract) -> None:
    """Replace the published output with the audited, staged candidate in one step."""
    if output.table is not None:
        _publish_catalog_table(staged.sparkSession, output.table, run_id, contract)
    elif output.table_format == "parquet":
        swap_in_parquet_version(output, run_id)
    else:
        staged.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(output.published)
    logger.info("published %s", output.published)


def _publish_catalog_table(spark: SparkSession, table: TableName, run_id: str, contract: OutputContract) -> None:
    """Create the table once, keep its governance in step with the contract, swap its rows.

    The rows are replaced by one INSERT OVERWRITE, a single Delta transaction checked
    against the table's NOT NULL and CHECK constraints; the statements before it only
    touch metadata and are idempotent.
    """
    spark.sql(catalog.create_table(table, contract))
    differences = schema_differences(spark.read.table(table.quoted).schema, contract.spark_schema)
    if differences:
        raise ContractDefinitionError(
            f"{table} exists with a schema other than the contract's ({'; '.join(differences)}). "
            "A changed schema needs a new output table (a new major version of the contract) or a migration."
        )
    for statement in catalog.governance(table, contract):
        spark.sql(statement)
    spark.sql(catalog.replace_rows(table, catalog.staging_table(table, run_id), contract))


def discard_staged(output: OutputLocation, run_id: str, spark: SparkSession) -> None:
    """Remove the staged candidate, published or not; the staging area is never read."""
    if output.directory is not None:
        shutil.rmtree(output.directory / _STAGING / run_id, ignore_errors=True)
        with contextlib.suppress(OSError):
            (output.directory / _STAGING).rmdir()
    elif output.table is not None:
        spark.sql(catalog.drop_table(catalog.staging_table(output.table, run_id)))


def swap_in_parquet_version(output: OutputLocation, run_id: str) -> None:
    """Make the staged Parquet candidate of `run_id` the published local output.

    Keeps the version it replaces, so that a reader still holding it can finish.
    """
    if output.directory is None:
        raise ConfigurationError("only a local output directory holds Parquet versions")
    directory, staged = output.directory, Path(output.staging(run_id))
    published = directory / OUTPUT_TABLE
    versions = directory / _VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    if published.exists() and not published.is_symlink():
        if (published / "_delta_log").exists():
            raise ConfigurationError(f"{published} holds a Delta table; publish it with --table-format delta")
        # An output from before versioned publishing: adopt it as a version once.
        published.rename(versions / "adopted")
        previous = "adopted"
    else:
        previous = Path(os.readlink(published)).name if published.is_symlink() else None
    staged.rename(versions / run_id)
    link = directory / f".{OUTPUT_TABLE}.{run_id}.link"
    link.symlink_to(Path(_VERSIONS) / run_id, target_is_directory=True)
    os.replace(link, published)
    for old in versions.iterdir():
        if old.name not in (run_id, previous):
            shutil.rmtree(old, ignore_errors=True)


def read_published(spark: SparkSession, output: OutputLocation) -> DataFrame:
    if output.table is not None:
        return spark.read.table(output.table.quoted)
    return spark.read.format(output.table_format).load(output.published)
