"""Publishing the output port: stage the candidate, hand it to the audit, replace the output.

Publishing is all-or-nothing. The candidate is first written to a staging location
that no reader looks at and audited there; only an audited candidate replaces the
published output:
- a Parquet directory is swapped in by atomically repointing the `customer_activity`
  symlink to the new version (readers see the old or the new version, never a mix);
- a Delta table (a path locally, a Unity Catalog table on Databricks) is overwritten
  in one Delta transaction; in a catalog the table's governance (comments,
  properties, constraints, grants) is brought in line with the contract first.
The staging location is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from customer_activity.jobs import catalog
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import OutputContract
from customer_activity.jobs.errors import ConfigurationError, ContractDefinitionError

logger = logging.getLogger(__name__)

OUTPUT_TABLE = "customer_activity"
REPORT_FILE = "customer_activity_run_report.json"
TABLE_FORMATS = ("parquet", "delta")
_VERSIONS = f".{OUTPUT_TABLE}.versions"
_STAGING = f".{OUTPUT_TABLE}.staging"


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
        """Where `run_id` stages its candidate: beside the output, never read by consumers."""
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


class StagingArea:
    """One run's staging location: the candidate goes in, the audit reads it, publishing takes it.

    Use it as a context manager: whatever happens inside, the staged candidate is
    removed on the way out, published or not.
    """

    def __init__(self, spark: SparkSession, output: OutputLocation, run_id: str) -> None:
        self._spark = spark
        self.output = output
        self.run_id = run_id
        self.location = output.staging(run_id)
        self._staged: DataFrame | None = None

    def __enter__(self) -> StagingArea:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def write(self, candidate: DataFrame) -> DataFrame:
        """Write the candidate where no reader looks; return it read back, for the audit.

        Locally the staged copy is Parquet whatever the published format: it is the
        very directory a Parquet publish swaps in, and a Delta publish copies it in one
        commit.
        """
        writer = candidate.write.mode("error")
        if self.output.directory is not None:
            writer.parquet(self.location)
            self._staged = self._spark.read.parquet(self.location)
        else:
            writer.format("delta").saveAsTable(self.location)
            self._staged = self._spark.read.table(self.location)
        return self._staged

    def publish(self, contract: OutputContract) -> None:
        """Replace the published output with the staged candidate in one step.

        Call it only once the audit has passed the frame `write` returned.
        """
        output = self.output
        if output.table is not None:
            _publish_catalog_table(self._spark, output.table, self.run_id, contract)
        elif output.table_format == "parquet":
            swap_in_parquet_version(output, self.run_id)
        elif self._staged is None:
            raise RuntimeError("nothing was staged to publish")
        else:
            self._staged.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
                output.published
            )
        logger.info("published %s", output.published)

    def discard(self) -> None:
        """Remove the staged candidate, published or not; the staging area is never read."""
        output = self.output
        if output.directory is not None:
            shutil.rmtree(output.directory / _STAGING / self.run_id, ignore_errors=True)
            with contextlib.suppress(OSError):
                (output.directory / _STAGING).rmdir()
        elif output.table is not None:
            self._spark.sql(catalog.drop_table(catalog.staging_table(output.table, self.run_id)))


def _publish_catalog_table(spark: SparkSession, table: TableName, run_id: str, contract: OutputContract) -> None:
    """Create the table once, keep its governance in step with the contract, swap its rows.

    The rows are replaced by one INSERT OVERWRITE, a single Delta transaction checked
    against the table's NOT NULL and CHECK constraints; the statements before it only
    touch metadata and are idempotent.
    """
    spark.sql(catalog.create_table(table, contract))
    differences = contract.schema_differences(spark.read.table(table.quoted).schema)
    if differences:
        raise ContractDefinitionError(
            f"{table} exists with a schema other than the contract's ({'; '.join(differences)}). "
            "A changed schema needs a new output table (a new major version of the contract) or a migration."
        )
    for statement in catalog.governance(table, contract):
        spark.sql(statement)
    spark.sql(catalog.replace_rows(table, catalog.staging_table(table, run_id), contract))


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
    previous: str | None
    if published.exists() and not published.is_symlink():
        if (published / "_delta_log").exists():
            raise ConfigurationError(f"{published} holds a Delta table; publish it with --table-format delta")
        # An output from before versioned publishing: adopt it as a version once.
        published.rename(versions / "adopted")
        previous = "adopted"
    else:
        previous = published.readlink().name if published.is_symlink() else None
    staged.rename(versions / run_id)
    link = directory / f".{OUTPUT_TABLE}.{run_id}.link"
    link.symlink_to(Path(_VERSIONS) / run_id, target_is_directory=True)
    link.replace(published)
    for old in versions.iterdir():
        if old.name not in (run_id, previous):
            shutil.rmtree(old, ignore_errors=True)


def read_published(spark: SparkSession, output: OutputLocation) -> DataFrame:
    if output.table is not None:
        return spark.read.table(output.table.quoted)
    return spark.read.format(output.table_format).load(output.published)
