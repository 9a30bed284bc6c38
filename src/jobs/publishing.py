"""Publishing the output port: stage the candidate, hand it to the audit, commit it as Delta.

The output port is a Delta table: locally a table at `<output-dir>/customer_activity`,
on Databricks a Unity Catalog table. Both are published by the same code and the same
SQL:
1. the candidate is written where no consumer can see it (locally Parquet files in a
   hidden directory beside the output, in a catalog a Delta table in a schema of its
   own) and read back from there for the audit;
2. once the audit has passed it, the output table is created if needed and brought in
   line with the contract (comments, properties, NOT NULL and CHECK constraints, and
   grants where the catalog has them);
3. its rows are replaced by one INSERT OVERWRITE, a single Delta transaction that the
   constraints check: readers see the old version or the new one, never a mix, and the
   old one stays readable by time travel (and `restore` brings it back).
The staged candidate is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from customer_activity.jobs import catalog, output_dir
from customer_activity.jobs.catalog import DeltaPath, ParquetPath, Table, TableName, TableState
from customer_activity.jobs.contract import OutputContract
from customer_activity.jobs.errors import EXIT_OK, ConfigurationError, ContractDefinitionError, OutputBusyError
from customer_activity.jobs.raw_files import literal_path
from customer_activity.jobs.session import create_spark_session

logger = logging.getLogger(__name__)

OUTPUT_TABLE = "customer_activity"
REPORT_FILE = "customer_activity_run_report.json"
TABLE_FORMAT = "delta"
_STAGING = f".{OUTPUT_TABLE}.staging"
# DESCRIBE HISTORY's operation for INSERT OVERWRITE, and for RESTORE: the commits that
# change which rows are published (the others change metadata only).
_PUBLISHING_OPERATIONS = ("WRITE", "RESTORE")
# Every DESCRIBE HISTORY operation that changes a table's rows, whoever commits it. The
# others (OPTIMIZE, VACUUM, properties, constraints, comments, which Databricks' predictive
# optimisation and the bundle run on their own) leave a build's candidate just as current.
_ROW_CHANGING_OPERATIONS = frozenset(
    {
        "WRITE",
        "STREAMING UPDATE",
        "DELETE",
        "UPDATE",
        "MERGE",
        "TRUNCATE",
        "RESTORE",
        "COPY INTO",
        "CREATE TABLE AS SELECT",
        "REPLACE TABLE AS SELECT",
        "CREATE OR REPLACE TABLE AS SELECT",
    }
)
# A staged candidate in a catalog this much older than its run's start is a leftover:
# the Databricks job times out after 3 hours.
LEFTOVER_AGE = timedelta(days=1)
# `OutputLocation.version_now` of a catalog table that does not exist yet.
ABSENT = -1


@dataclass(frozen=True)
class OutputLocation:
    """Where the output port is published: a local directory or a Unity Catalog table.

    In a catalog, runs stage their candidate in `staging_schema` (by default the output
    schema's name with `_staging`), never in the output schema that consumers read.
    """

    directory: Path | None = None
    table: TableName | None = None
    staging_schema: str | None = None

    def __post_init__(self) -> None:
        if (self.directory is None) == (self.table is None):
            raise ConfigurationError("an output needs exactly one of a directory or a table name")
        if self.table is None:
            if self.staging_schema is not None:
                raise ConfigurationError("a staging schema belongs to a catalog output, not to a directory")
            return
        staging = self.staging_schema or f"{self.table.schema}_staging"
        catalog.identifier("staging schema", staging)
        if staging == self.table.schema:
            raise ConfigurationError("the staging schema must not be the output schema: consumers can read that one")

    @property
    def target(self) -> Table:
        """The published table, as SQL names it."""
        if self.table is not None:
            return self.table
        return DeltaPath(self._directory / OUTPUT_TABLE)

    @property
    def published(self) -> str:
        return str(self.target)

    @property
    def report_path(self) -> Path | None:
        return self.directory / REPORT_FILE if self.directory else None

    def staging(self, run_id: str) -> TableName | ParquetPath:
        """Where `run_id` stages its candidate, out of the consumers' sight.

        Locally plain Parquet: only this run, holding the directory's lock, reads it, so
        it needs no transaction log; as a Delta table its commit and the snapshot behind
        the audit's read cost about a second of a small build. In a catalog, tables are
        Delta.
        """
        if self.table is not None:
            return catalog.staging_table(self.table, self._staging_schema, run_id)
        return ParquetPath(self._directory / _STAGING / run_id)

    @property
    def _table(self) -> TableName:
        if self.table is None:
            raise ConfigurationError("this output is a directory, not a catalog table")
        return self.table

    @property
    def _staging_schema(self) -> str:
        return self.staging_schema or f"{self._table.schema}_staging"

    @property
    def _directory(self) -> Path:
        if self.directory is None:
            raise ConfigurationError("this output is a catalog table, not a directory")
        return self.directory

    def check_usable(self, spark: SparkSession) -> None:
        """Refuse, before any input is read, an output the build could not publish to.

        A directory must be creatable and writable, with no symbolic link where the job
        writes; a catalog output's schema must exist (the bundle deploys it).
        """
        if self.table is not None:
            schema = f"{self.table.catalog}.{self.table.schema}"
            if not spark.catalog.databaseExists(schema):
                raise ConfigurationError(
                    f"the output schema {schema} does not exist: deploy the bundle, which creates it, or create it"
                )
            return
        directory = self._directory
        output_dir.check_usable(directory, (OUTPUT_TABLE, _STAGING, output_dir.LOCK_FILE, REPORT_FILE))
        self.check_publishable()

    def exclusive(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """One build at a time per output directory; in a catalog, Delta detects concurrent commits."""
        if self.directory is None:
            return contextlib.nullcontext()
        return output_dir.exclusive(self.directory, run_id)

    def remove_leftovers(self, spark: SparkSession, now: datetime) -> list[str]:
        """Remove what builds that died left behind, and say what.

        A directory: everything in its staging area and half-written reports (call it
        holding `exclusive`). A catalog has no lock: only candidates staged by runs that
        started more than LEFTOVER_AGE before `now` are dropped, longer than the job's
        own timeout, so none belongs to a run still going.
        """
        if self.directory is not None:
            temporary = tuple(sorted(self.directory.glob(f".{REPORT_FILE}.*.tmp")))
            return output_dir.remove_leftovers(self.directory, self.directory / _STAGING, temporary)
        catalog_name, schema = self._table.catalog, self._staging_schema
        if not spark.catalog.databaseExists(f"{catalog_name}.{schema}"):
            return []
        removed = []
        for listed in spark.catalog.listTables(f"{catalog_name}.{schema}"):
            started = catalog.staging_run_start(listed.name)
            if started is not None and now - started > LEFTOVER_AGE:
                leftover = TableName(catalog_name, schema, listed.name)
                spark.sql(catalog.drop_table(leftover))
                removed.append(str(leftover))
        if removed:
            logger.warning("dropped candidates of builds that did not finish: %s", ", ".join(removed))
        return removed

    def version_now(self, spark: SparkSession) -> int | None:
        """The catalog table's Delta version before this build (ABSENT if none), for `publish` to compare."""
        if self.table is None:
            return None
        return current_version(spark, self.table) if _exists(spark, self.table) else ABSENT

    def check_publishable(self) -> None:
        """A local output that is not a Delta table (an older Parquet output, a file) is named now."""
        if self.directory is None:
            return
        published = DeltaPath(self.directory / OUTPUT_TABLE)
        if published.path.exists() and not published.exists:
            raise ConfigurationError(
                f"{published} exists and is not a Delta table (an output of an earlier version of this job?): "
                "move it away or choose another --output-dir"
            )


def check_output_outside_input(source: Path, output: Path) -> None:
    """Publishing into the source directory could overwrite or shadow raw tables."""
    source, output = source.resolve(), output.resolve()
    if output == source or source in output.parents:
        raise ConfigurationError(f"the output directory {output} must not be inside the source directory {source}")


class StagingArea:
    """One run's staged candidate: the candidate goes in, the audit reads it, publishing takes it.

    Use it as a context manager: whatever happens inside, the staged candidate is
    removed on the way out, published or not.
    """

    def __init__(self, spark: SparkSession, output: OutputLocation, run_id: str) -> None:
        self._spark = spark
        self.output = output
        self.run_id = run_id
        self.table = output.staging(run_id)
        # Staged files reach publishing's SQL through a temporary view of this name (see ParquetPath).
        self._view = f"customer_activity_staged_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> StagingArea:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            self.discard()
        except Exception:
            if exc_type is None:
                raise
            # The run has already failed: its own error is the one to report.
            logger.exception("the staged candidate %s could not be removed", self.table)

    def write(self, candidate: DataFrame) -> DataFrame:
        """Write the candidate where no consumer looks; return it read back, for the audit."""
        if isinstance(self.table, TableName):
            # The bundle deploys the staging schema. Only a run outside it needs to create
            # one, and only then does its identity need CREATE SCHEMA on the catalog.
            if not self._spark.catalog.databaseExists(f"{self.table.catalog}.{self.table.schema}"):
                self._spark.sql(catalog.create_schema(self.table.catalog, self.table.schema))
            # Created empty, then appended to: a CREATE TABLE AS SELECT runs its query out of
            # sight of the metrics the candidate observes (the run report's counts), which
            # then had to be counted again with a pass over the inputs per table.
            empty = self._spark.createDataFrame([], candidate.schema)
            empty.write.format(TABLE_FORMAT).mode("error").saveAsTable(self.table.quoted)
            candidate.write.format(TABLE_FORMAT).mode("append").saveAsTable(self.table.quoted)
            return self._spark.read.table(self.table.quoted)
        candidate.write.mode("error").parquet(str(self.table.path.absolute()))
        staged = self._spark.read.parquet(literal_path(self.table.path))
        staged.createOrReplaceTempView(self._view)
        return staged

    def publish(self, contract: OutputContract, started_from: int | None = None) -> int:
        """Replace the published rows with the staged ones; returns the Delta version committed.

        Call it only once the audit has passed the frame `write` returned. With
        `started_from` (the table's version when the build began, or ABSENT), a table
        whose rows another writer changed meanwhile is left alone: this build's rows are
        older. Commits that change metadata only (OPTIMIZE, VACUUM, properties) do not count.
        """
        target = self.output.target
        existed = _exists(self._spark, target)
        self._spark.sql(catalog.create_table(target, contract))
        try:
            schema = self._spark.read.table(target.quoted).schema
            differences = contract.schema_differences(schema)
            if differences:
                raise ContractDefinitionError(
                    f"{target} exists with a schema other than the contract's ({'; '.join(differences)}). "
                    "A changed schema needs a new output table (a new major version of the contract) or a migration."
                )
            state = table_state(self._spark, target, schema)
            for statement in catalog.relaxations(target, contract, state):
                self._spark.sql(statement)
            if started_from is not None:
                # As late as possible: a commit after this one is Delta's own conflict check's.
                self._refuse_rows_changed_since(target, started_from)
            staged = self.table.quoted if isinstance(self.table, TableName) else catalog.identifier("view", self._view)
            self._spark.sql(catalog.replace_rows(target, staged, contract))
        except Exception as error:
            if not existed and self._nobody_published(target):
                # An empty table would break the contract (it requires rows): no table is
                # better. One another writer has filled meanwhile is theirs to keep.
                self._drop(target)
            if _concurrent_commit(error):
                raise OutputBusyError(
                    f"another writer committed to {target} at the same moment ({type(error).__name__}); "
                    "Delta kept that commit and this build published nothing"
                ) from error
            raise
        version = current_version(self._spark, target)
        logger.info("published %s as Delta version %d", target, version)
        for statement in catalog.governance(target, contract, state):
            self._spark.sql(statement)
        _grant(self._spark, target, contract)
        return version

    def _nobody_published(self, target: Table) -> bool:
        try:
            return not row_changes(self._spark, target, ABSENT)
        except Exception:
            # Unknown is not empty: keep the table rather than drop what may be another writer's rows.
            logger.exception("could not read the history of %s; it is kept", target)
            return False

    def _refuse_rows_changed_since(self, target: Table, started_from: int) -> None:
        changes = row_changes(self._spark, target, started_from)
        if changes:
            commits = ", ".join(f"{operation} at version {version}" for version, operation in changes)
            raise OutputBusyError(
                f"{target} changed while this build ran (Delta version {_version_text(started_from)} when it "
                f"started; since then {commits}): another writer published; this build published nothing"
            )

    def _drop(self, table: Table | ParquetPath) -> None:
        if isinstance(table, TableName):
            self._spark.sql(catalog.drop_table(table))
        else:
            shutil.rmtree(table.path, ignore_errors=True)

    def discard(self) -> None:
        """Remove the staged candidate, published or not."""
        if isinstance(self.table, ParquetPath):
            try:
                self._spark.catalog.dropTempView(self._view)
            except Exception:
                # A temporary view ends with its session anyway; the files must go regardless.
                logger.warning("the temporary view %s could not be dropped", self._view, exc_info=True)
        self._drop(self.table)
        if isinstance(self.table, ParquetPath):
            with contextlib.suppress(OSError):
                self.table.path.parent.rmdir()


def _version_text(version: int) -> str:
    return "none (no table)" if version == ABSENT else str(version)


def _concurrent_commit(error: BaseException) -> bool:
    """Delta's optimistic concurrency refused the commit (ConcurrentAppendException and its kin)."""
    condition = getattr(error, "getCondition", lambda: None)()
    return "Concurrent" in type(error).__name__ or str(condition or "").startswith("DELTA_CONCURRENT")


def _exists(spark: SparkSession, table: Table) -> bool:
    if isinstance(table, DeltaPath):
        return table.exists
    return bool(spark.catalog.tableExists(str(table)))


def _grant(spark: SparkSession, target: Table, contract: OutputContract) -> None:
    """Grant the contract's readers SELECT where the catalog has grants (Unity Catalog)."""
    statements = catalog.grants(target, contract)
    if not statements:
        return
    if isinstance(target, DeltaPath):
        logger.info("grants skipped: %s is a table at a path, which no catalog grants on", target)
        return
    if not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        logger.warning(
            "grants skipped: Spark's own catalog has no GRANT; on Databricks they run: %s", "; ".join(statements)
        )
        return
    for statement in statements:
        spark.sql(statement)


def table_state(spark: SparkSession, table: Table, schema: StructType) -> TableState:
    """The comment, properties, column comments and nullability (from `schema`, as read) a table has now."""
    described = spark.sql(f"DESCRIBE TABLE EXTENDED {table.quoted}").collect()
    columns: dict[str, str] = {}
    comment = None
    in_columns = True
    for row in described:
        if not row.col_name or row.col_name.startswith("#"):
            in_columns = False
        elif in_columns and row.comment:
            columns[row.col_name] = row.comment
        elif not in_columns and row.col_name == "Comment":
            comment = row.data_type
    properties = {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {table.quoted}").collect()}
    return TableState(
        comment=comment,
        properties=properties,
        column_comments=columns,
        nullable_columns=frozenset(f.name for f in schema.fields if f.nullable),
    )


def row_changes(spark: SparkSession, table: Table, since: int) -> list[tuple[int, str]]:
    """The commits after version `since` that changed the table's rows, oldest first, as (version, operation)."""
    if not _exists(spark, table):
        return []
    history = spark.sql(f"DESCRIBE HISTORY {table.quoted}").select("version", "operation").collect()
    return sorted(
        (int(row.version), str(row.operation))
        for row in history
        if int(row.version) > since and str(row.operation) in _ROW_CHANGING_OPERATIONS
    )


def current_version(spark: SparkSession, table: Table) -> int:
    row = spark.sql(f"DESCRIBE HISTORY {table.quoted} LIMIT 1").select("version").first()
    if row is None:  # every Delta table has at least its creating commit
        raise RuntimeError(f"{table} has no history")
    return int(row.version)


def _live_rows(history: list[tuple[int, str, int | None]]) -> int:
    """The version whose rows are published now: a RESTORE serves the rows of the version it restored."""
    restored_by = {version: restored for version, operation, restored in history if operation == "RESTORE"}
    version = next(v for v, operation, _ in history if operation in _PUBLISHING_OPERATIONS)
    while (restored := restored_by.get(version)) is not None:
        version = restored
    return version


def restore(spark: SparkSession, output: OutputLocation, version: int | None = None) -> tuple[int, int]:
    """Bring back earlier published rows in one transaction; returns (restored, new version).

    Without `version`, the rows published before the live ones come back (also after an
    earlier restore): for the day a contract-valid but wrong table went out. Delta restores
    that version's metadata too; the next build brings it in line with the contract again.
    """
    target = output.target
    try:
        rows = spark.sql(f"DESCRIBE HISTORY {target.quoted}").collect()
    except Exception as error:  # noqa: BLE001 - Spark names a missing table with errors of several kinds
        raise ConfigurationError(f"nothing is published at {target} ({str(error).splitlines()[0]})") from None
    history = sorted(
        ((int(r.version), str(r.operation), _restored_version(r.operationParameters)) for r in rows),
        reverse=True,
    )
    writes = [v for v, operation, _ in history if operation == "WRITE"]
    if not writes:
        raise ConfigurationError(f"nothing is published at {target}")
    live = _live_rows(history)
    if version is None:
        earlier = [v for v in writes if v < live]
        if not earlier:
            raise ConfigurationError(f"{target} has no earlier published version to restore")
        version = earlier[0]
    elif version not in writes:
        raise ConfigurationError(
            f"version {version} of {target} is not a published version; published: " + ", ".join(map(str, writes))
        )
    elif version == live:
        raise ConfigurationError(f"version {version} of {target} is the one published now")
    spark.sql(f"RESTORE TABLE {target.quoted} TO VERSION AS OF {int(version)}")
    return version, current_version(spark, target)


def _restored_version(parameters: dict[str, str] | None) -> int | None:
    value = (parameters or {}).get("version")
    return int(value) if value is not None and str(value).isdigit() else None


def restore_command(output: OutputLocation, version: int | None = None) -> int:
    """The `restore` command: restore, then say which version came back as which."""
    spark = create_spark_session()
    output.check_usable(spark)
    with output.exclusive(f"restore-{uuid.uuid4().hex[:8]}"):
        restored, committed = restore(spark, output, version)
    print(f"Restored {output.published} to its version {restored}; it is now version {committed}.")
    return EXIT_OK
