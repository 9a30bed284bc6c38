"""Local directories mounted in Spark's catalog: the command line's edge, the only place a directory means anything.

`--source-dir` and `--output-dir` are conveniences for people and scripts. Here they become
what the job reads and writes everywhere else, tables of a catalog, so that a local build
runs the path a Databricks build runs. Spark's session catalog with Delta is the local
catalog; each directory gets schemas of its own, named after its absolute path:
- a source directory holds one Parquet dataset per raw table, as dlt writes them. Each
  is registered where it lies, as an external table with one schema merged from all its
  files' footers (see `raw_files`), never the schema of whichever file Spark samples.
  Where the files disagree on a column's type (dlt widened it), the table is a copy
  instead, each group of files read with its own schema and cast to the merged one:
  Spark's reader cannot read every widening (DATE as TIMESTAMP) in place;
- an output directory is the schema of the published table `<dir>/customer_activity`
  (registered if a build published it before), with the internal schema (staged candidates,
  the run history) in the hidden `<dir>/.customer_activity.staging`. The run report goes
  beside the table.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession

from customer_activity.jobs import catalog, history, input_contract, raw_files
from customer_activity.jobs.catalog import TableName, identifier, string_literal
from customer_activity.jobs.errors import ConfigurationError, InputError, first_line
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.publishing import LEFTOVER_AGE, OUTPUT_TABLE, SESSION_CATALOG, TABLE_FORMAT, OutputLocation
from customer_activity.transforms.input_ports import INPUT_PORTS, InputPort, schema_problems

logger = logging.getLogger(__name__)

REPORT_FILE = "customer_activity_run_report.json"
STAGING_DIRECTORY = ".customer_activity.staging"


def schema_name(kind: str, directory: Path) -> str:
    """The local schema of a directory: the same directory, the same schema, in every session."""
    return f"local_{kind}_{hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]}"


def check_output_outside_input(source: Path, output: Path) -> None:
    """Publishing into the source directory could overwrite or shadow raw tables."""
    source, output = source.resolve(), output.resolve()
    if output == source or source in output.parents:
        raise ConfigurationError(f"the output directory {output} must not be inside the source directory {source}")


def source_location(directory: Path) -> InputLocation:
    """Where `mount_source` puts the raw tables of `directory`."""
    return InputLocation(SESSION_CATALOG, schema_name("source", directory), label=str(directory))


def source_bytes(directory: Path | None) -> int:
    """The size of the files under a source directory (0 for none): what a build will read."""
    return sum(file.stat().st_size for file in directory.rglob("*") if file.is_file()) if directory else 0


def mounted_source(spark: SparkSession, directory: Path) -> InputLocation:
    """The raw tables of `directory` mounted, for a notebook, a benchmark or a test to read."""
    mount_source(spark, directory)
    return source_location(directory)


def mount_source(spark: SparkSession, directory: Path) -> dict[str, dict[str, int]]:
    """The raw tables of `directory` as tables of its local schema; returns the rows from files that lack a column.

    Every table is checked before any is registered, and every problem reported at once.
    """
    datasets: dict[str, raw_files.RawDataset] = {}
    problems: list[str] = []
    for table, port in INPUT_PORTS.items():
        try:
            datasets[table] = _inspect(table, directory / table, port)
        except InputError as error:
            problems.extend(str(error).splitlines())
    if problems:
        raise InputError("the input tables cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    schema = schema_name("source", directory)
    spark.sql(f"{catalog.create_schema(SESSION_CATALOG, schema)} LOCATION {string_literal(_copies_directory(schema))}")
    for table, dataset in datasets.items():
        name = TableName(SESSION_CATALOG, schema, table)
        spark.sql(catalog.drop_table(name))
        if dataset.types_agree:
            columns = ", ".join(f"{identifier('column', f.name)} {f.dataType.simpleString()}" for f in dataset.schema)
            # Spark reads a table's location as a file pattern too: `raw[1]` would match `raw1`.
            location = string_literal(raw_files.literal_path(directory / table))
            spark.sql(f"CREATE TABLE {name.quoted} ({columns}) USING PARQUET LOCATION {location}")
        else:
            try:
                dataset.read(spark).write.format(TABLE_FORMAT).saveAsTable(name.quoted)
            except Exception as error:
                raise InputError(f"{table}: {directory / table} is not readable ({first_line(error)})") from error
    return {table: dataset.rows_missing_columns for table, dataset in datasets.items()}


def _inspect(table: str, path: Path, port: InputPort) -> raw_files.RawDataset:
    if not path.exists():
        raise InputError(f"{table}: {path} does not exist")
    dataset = raw_files.inspect(table, path, _data_files(path), port.required_columns)
    # Said here as the build would say it, so that one run names every problem of every table.
    problems = dataset.problems or schema_problems(dataset.schema, port)
    if problems:
        raise InputError("\n".join(problems))
    return dataset


_COPIES: list[Path] = []


def _copies_directory(schema: str) -> str:
    """Where this process keeps copies of raw tables whose files disagree on a type; gone when it ends."""
    if not _COPIES:
        _COPIES.append(Path(tempfile.mkdtemp(prefix="customer-activity-raw-")))
        atexit.register(shutil.rmtree, _COPIES[0], True)
    return str(_COPIES[0] / schema)


def _data_files(path: Path) -> list[Path]:
    """The files a Parquet reader reads: hidden and metadata files (`.`, `_`) are not data."""
    if path.is_file():
        return [path]
    return sorted(
        file
        for file in path.rglob("*")
        if file.is_file() and not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
    )


def mount_output(spark: SparkSession, directory: Path, now: datetime) -> OutputLocation:
    """`directory` as the local schema a build publishes to, refused before any work if unusable."""
    _check_directory(directory)
    output = _mount(spark, directory)
    staging_location = string_literal(str(directory.resolve() / STAGING_DIRECTORY))
    spark.sql(f"{catalog.create_schema(SESSION_CATALOG, str(output.staging_schema))} LOCATION {staging_location}")
    # Tables this session registered are the build's to drop through the catalog (a notebook's).
    registered = {table.name for table in spark.catalog.listTables(f"{SESSION_CATALOG}.{output.staging_schema}")}
    for table in (output.internal(history.RUNS_TABLE), output.internal(input_contract.QUARANTINE_TABLE)):
        path = directory.resolve() / STAGING_DIRECTORY / table.table
        if table.table not in registered and (path / "_delta_log").is_dir():
            # The run history and quarantine of earlier processes: registered where they lie, to
            # append to. One that cannot be (a first append killed before its commit) costs this
            # run its rows there, no more.
            try:
                _register(spark, table, path)
            except Exception as error:  # noqa: BLE001 - whatever it is, the build goes on
                logger.error("%s cannot be read, this run adds nothing to it: %s", path, first_line(error))
    _remove_leftovers(directory / STAGING_DIRECTORY, now, registered)
    return output


def mount_published(spark: SparkSession, directory: Path) -> OutputLocation:
    """The output port a build published in `directory`, for `restore` and `test-contract`."""
    if not (directory / OUTPUT_TABLE / "_delta_log").is_dir():
        raise ConfigurationError(f"nothing is published at {directory / OUTPUT_TABLE}")
    return _mount(spark, directory)


def _mount(spark: SparkSession, directory: Path) -> OutputLocation:
    schema = schema_name("output", directory)
    spark.sql(f"{catalog.create_schema(SESSION_CATALOG, schema)} LOCATION {string_literal(str(directory.resolve()))}")
    table, path = TableName(SESSION_CATALOG, schema, OUTPUT_TABLE), directory / OUTPUT_TABLE
    registered, log = spark.catalog.tableExists(str(table)), path / "_delta_log"
    if log.is_dir() and not any(log.glob("*.json")):
        raise ConfigurationError(
            f"{path} has a Delta log without a commit (a build stopped while it created the table): "
            "move it away and build again"
        )
    if log.is_dir():
        if not registered:
            _register(spark, table, path)
    elif path.exists():
        raise ConfigurationError(
            f"{path} exists and is not a Delta table (an output of an earlier version of this job?): "
            "move it away or choose another --output-dir"
        )
    elif registered:
        # Registered by an earlier build of this session, removed since: nothing is left to drop.
        spark.sql(catalog.drop_table(table))
    return OutputLocation(table, f"{schema}_staging", label=str(path))


def _register(spark: SparkSession, table: TableName, path: Path) -> None:
    """A Delta table an earlier process left at `path`, registered where it lies (the session catalog forgets)."""
    spark.sql(f"CREATE TABLE {table.quoted} USING DELTA LOCATION {string_literal(str(path.resolve()))}")


def _check_directory(directory: Path) -> None:
    """Refuse, with one line, an output directory the build could not finish in."""
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(f"the output directory {directory} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".customer_activity.probe."):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"the output directory {directory} cannot be written to ({error.strerror or type(error).__name__})"
        ) from None
    for name in (STAGING_DIRECTORY, REPORT_FILE):
        if (directory / name).is_symlink():
            raise ConfigurationError(
                f"{directory / name} is a symbolic link; the job writes and deletes there and follows no link "
                "out of the output directory: remove the link, or choose another --output-dir"
            )


def _remove_leftovers(staging: Path, now: datetime, registered: set[str]) -> None:
    """Remove candidates that builds killed over LEFTOVER_AGE ago left, which no catalog lists any more."""
    if not staging.is_dir():
        return
    for entry in sorted(staging.iterdir()):
        started = catalog.staging_run_start(entry.name)
        if started and now - started > LEFTOVER_AGE and not entry.is_symlink() and entry.name not in registered:
            logger.warning("removing %s, left by a build that did not finish", entry)
            shutil.rmtree(entry, ignore_errors=True)
