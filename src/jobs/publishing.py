"""Publishing the output port: stage the candidate, hand it to the audit, commit it as Delta.

The output port is a Delta table of a catalog: Unity Catalog on Databricks, Spark's own
catalog locally (the command line mounts a local directory there). One path for both:
1. the candidate is written as a Delta table in a staging schema of its own, where no
   consumer can see it, and read back from there for the audit;
2. once the audit has passed it, the output table is created if needed and brought in
   line with the contract (comments, properties, NOT NULL and CHECK constraints, and
   column tags where the catalog has them), a new table before its first rows;
3. its rows are replaced by one INSERT OVERWRITE, a single Delta transaction that the
   constraints check: readers see the old version or the new one, never a mix, and the
   old one stays readable by time travel (and `restore` brings it back).
The staged candidate is dropped whatever happens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from customer_activity.jobs import catalog
from customer_activity.jobs.catalog import TableName, TableState
from customer_activity.jobs.contract import OutputContract
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError, OutputBusyError

logger = logging.getLogger(__name__)

OUTPUT_TABLE = "customer_activity"
# Spark's own catalog, the local catalog: `spark_catalog` names it in every Spark session.
SESSION_CATALOG = "spark_catalog"
TABLE_FORMAT = "delta"
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
# A staged candidate this much older than its run's start is a leftover: the Databricks
# job times out after 3 hours.
LEFTOVER_AGE = timedelta(days=1)
# `OutputLocation.version_now` of a table that does not exist yet.
ABSENT = -1


@dataclass(frozen=True)
class OutputLocation:
    """Where the output port is published: a catalog table.

    Runs stage their candidate in `staging_schema` (by default the output schema's name
    with `_staging`), never in the output schema that consumers read. `label` is how
    messages name the output (locally the directory a person gave), by default the table.
    """

    table: TableName
    staging_schema: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        catalog.identifier("staging schema", self.internal_schema)
        if self.internal_schema == self.table.schema:
            raise ConfigurationError("the staging schema must not be the output schema: consumers can read that one")

    @property
    def published(self) -> str:
        return self.label or str(self.table)

    @property
    def internal_schema(self) -> str:
        """The product's own schema beside the output: staged candidates and the run history, never consumers."""
        return self.staging_schema or f"{self.table.schema}_staging"

    def ensure_internal_schema(self, spark: SparkSession) -> None:
        """The bundle deploys the internal schema. Only a run outside it creates one, and only
        then does its identity need CREATE SCHEMA on the catalog."""
        if not spark.catalog.databaseExists(f"{self.table.catalog}.{self.internal_schema}"):
            spark.sql(catalog.create_schema(self.table.catalog, self.internal_schema))

    def internal(self, name: str) -> TableName:
        """The table `name` of the internal schema (the run history, the quarantine)."""
        return TableName(self.table.catalog, self.internal_schema, name)

    def staging(self, run_id: str) -> TableName:
        """Where `run_id` stages its candidate, out of the consumers' sight."""
        return catalog.staging_table(self.table, self.internal_schema, run_id)

    def check_usable(self, spark: SparkSession) -> None:
        """Refuse, before any input is read, an output whose schema does not exist (the bundle deploys it)."""
        schema = f"{self.table.catalog}.{self.table.schema}"
        if not spark.catalog.databaseExists(schema):
            raise ConfigurationError(
                f"the output schema {schema} does not exist: deploy the bundle, which creates it, or create it"
            )

    def remove_leftovers(self, spark: SparkSession, now: datetime) -> list[str]:
        """Drop candidates staged by runs that started more than LEFTOVER_AGE before `now`, and say which.

        Longer than the job's own timeout: none belongs to a run still going.
        """
        catalog_name, schema = self.table.catalog, self.internal_schema
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

    def published_rows(self, spark: SparkSession, version: int) -> DataFrame | None:
        """The rows published as Delta version `version` (time travel), None for ABSENT."""
        if version == ABSENT:
            return None
        return spark.sql(f"SELECT * FROM {self.table.quoted} VERSION AS OF {int(version)}")

    def version_now(self, spark: SparkSession) -> int:
        """The table's Delta version before this build (ABSENT if none), for `publish` to compare."""
        return current_version(spark, self.table) if _exists(spark, self.table) else ABSENT


class StagingArea:
    """One run's staged candidate: the candidate goes in, the audit reads it, publishing takes it.

    Use it as a context manager: whatever happens inside, the staged candidate is
    dropped on the way out, published or not.
    """

    def __init__(self, spark: SparkSession, output: OutputLocation, run_id: str) -> None:
        self._spark = spark
        self.output = output
        self.run_id = run_id
        self.table = output.staging(run_id)

    def __enter__(self) -> StagingArea:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            self._spark.sql(catalog.drop_table(self.table))
        except Exception:
            if exc_type is None:
                raise
            # The run has already failed: its own error is the one to report.
            logger.exception("the staged candidate %s could not be removed", self.table)

    def write(self, candidate: DataFrame) -> DataFrame:
        """Write the candidate where no consumer looks; return it read back, for the audit."""
        self.output.ensure_internal_schema(self._spark)
        # Created empty, then appended to: a CREATE TABLE AS SELECT runs its query out of
        # sight of the metrics the candidate observes (the run report's counts), which
        # then had to be counted again with a pass over the inputs per table.
        self._spark.sql(catalog.create_staging_table(self.table, candidate.schema))
        candidate.write.format(TABLE_FORMAT).mode("append").saveAsTable(self.table.quoted)
        return self._spark.read.table(self.table.quoted)

    def publish(self, contract: OutputContract, started_from: int) -> int:
        """Replace the published rows with the staged ones; returns the Delta version committed.

        Call it only once the audit has passed the frame `write` returned. A table whose
        rows another writer changed since `started_from` (its version when the build began,
        or ABSENT) is left alone: this build's rows are older. Commits that change metadata
        only (OPTIMIZE, VACUUM, properties) do not count.
        """
        target = self.output.table
        existed = _exists(self._spark, target)
        self._spark.sql(catalog.create_table(target, contract))
        try:
            schema = self._spark.read.table(target.quoted).schema
            differences = contract.schema_differences(schema)
            if differences:
                raise ContractDefinitionError(
                    f"{self.output.published} exists with a schema other than the contract's "
                    f"({'; '.join(differences)}). A changed schema needs a new output table "
                    "(a new major version of the contract) or a migration."
                )
            state = table_state(self._spark, target, schema)
            # A new table gets its constraints before its first rows, so that no reader
            # ever sees rows without them; an existing one after the rows (the old rows
            # need not meet a rule the contract has just added).
            governance = catalog.governance(target, contract, state)
            before, after = (governance, []) if not existed else ([], governance)
            for statement in catalog.relaxations(target, contract, state) + before:
                self._spark.sql(statement)
            # Before the rows, on a new table too: nobody reads its personal data untagged.
            _tag_columns(self._spark, target, contract, state)
            # As late as possible: a commit after this one is Delta's own conflict check's.
            self._refuse_rows_changed_since(target, started_from)
            self._spark.sql(catalog.replace_rows(target, self.table.quoted, contract))
        except Exception as error:
            if not existed and self._nobody_published(target):
                # An empty table would break the contract (it requires rows): no table is
                # better. One another writer has filled meanwhile is theirs to keep.
                self._spark.sql(catalog.drop_table(target))
            if _concurrent_commit(error):
                raise OutputBusyError(
                    f"another writer committed to {self.output.published} at the same moment "
                    f"({type(error).__name__}); Delta kept that commit and this build published nothing"
                ) from error
            raise
        version = current_version(self._spark, target)
        logger.info("published %s as Delta version %d", target, version)
        for statement in after:
            self._spark.sql(statement)
        return version

    def _nobody_published(self, target: TableName) -> bool:
        try:
            return not row_changes(self._spark, target, ABSENT)
        except Exception:
            # Unknown is not empty: keep the table rather than drop what may be another writer's rows.
            logger.exception("could not read the history of %s; it is kept", target)
            return False

    def _refuse_rows_changed_since(self, target: TableName, started_from: int) -> None:
        changes = row_changes(self._spark, target, started_from)
        if changes:
            commits = ", ".join(f"{operation} at version {version}" for version, operation in changes)
            then = "none (no table)" if started_from == ABSENT else started_from
            raise OutputBusyError(
                f"{self.output.published} changed while this build ran (Delta version {then} when it started; "
                f"since then {commits}): another writer published; this build published nothing"
            )


def _concurrent_commit(error: BaseException) -> bool:
    """Delta's optimistic concurrency refused the commit (ConcurrentAppendException and its kin)."""
    condition = getattr(error, "getCondition", lambda: None)()
    return "Concurrent" in type(error).__name__ or str(condition or "").startswith("DELTA_CONCURRENT")


def _exists(spark: SparkSession, table: TableName) -> bool:
    return bool(spark.catalog.tableExists(str(table)))


def has_information_schema(spark: SparkSession, catalog_name: str) -> bool:
    """Whether the catalog lists its tables, columns and tags in an information_schema.

    The catalog is asked, not the environment: a Unity Catalog catalog has one, on Databricks
    and from Databricks Connect alike; Spark's own has none.
    """
    return bool(spark.catalog.databaseExists(f"{catalog_name}.information_schema"))


def _tag_columns(spark: SparkSession, target: TableName, contract: OutputContract, state: TableState) -> None:
    """Tag the columns as the contract classifies them where the catalog has tags (Unity Catalog)."""
    # Any failure but a catalog without tags (no privilege, a lost connection) is the build's.
    if not has_information_schema(spark, target.catalog):
        logger.info(
            "column tags skipped: the catalog %s has no information_schema, where Unity Catalog lists them; "
            "in Unity Catalog they run: %s",
            target.catalog,
            "; ".join(catalog.column_tags(target, contract, {}, state)),
        )
        return
    current: dict[str, dict[str, str | None]] = {}
    for row in spark.sql(catalog.read_column_tags(target)).collect():
        current.setdefault(row.column_name, {})[row.tag_name] = row.tag_value
    for statement in catalog.column_tags(target, contract, current, state):
        spark.sql(statement)


def table_state(spark: SparkSession, table: TableName, schema: StructType) -> TableState:
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


def row_changes(spark: SparkSession, table: TableName, since: int) -> list[tuple[int, str]]:
    """The commits after version `since` that changed the table's rows, oldest first, as (version, operation)."""
    if not _exists(spark, table):
        return []
    history = spark.sql(f"DESCRIBE HISTORY {table.quoted}").select("version", "operation").collect()
    return sorted(
        (int(row.version), str(row.operation))
        for row in history
        if int(row.version) > since and str(row.operation) in _ROW_CHANGING_OPERATIONS
    )


def current_version(spark: SparkSession, table: TableName) -> int:
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
    target, name = output.table, output.published
    try:
        rows = spark.sql(f"DESCRIBE HISTORY {target.quoted}").collect()
    except Exception as error:  # noqa: BLE001 - Spark names a missing table with errors of several kinds
        raise ConfigurationError(f"nothing is published at {name} ({str(error).splitlines()[0]})") from None
    history = sorted(
        ((int(r.version), str(r.operation), _restored_version(r.operationParameters)) for r in rows),
        reverse=True,
    )
    writes = [v for v, operation, _ in history if operation == "WRITE"]
    if not writes:
        raise ConfigurationError(f"nothing is published at {name}")
    live = _live_rows(history)
    if version is None:
        earlier = [v for v in writes if v < live]
        if not earlier:
            raise ConfigurationError(f"{name} has no earlier published version to restore")
        version = earlier[0]
    elif version not in writes:
        raise ConfigurationError(
            f"version {version} of {name} is not a published version; published: " + ", ".join(map(str, writes))
        )
    elif version == live:
        raise ConfigurationError(f"version {version} of {name} is the one published now")
    spark.sql(f"RESTORE TABLE {target.quoted} TO VERSION AS OF {int(version)}")
    return version, current_version(spark, target)


def _restored_version(parameters: dict[str, str] | None) -> int | None:
    value = (parameters or {}).get("version")
    return int(value) if value is not None and str(value).isdigit() else None
