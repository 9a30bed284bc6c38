"""The catalog path end to end, as the Databricks job runs it, against Spark's own catalog.

The raw tables are tables of a schema, the output is a managed Delta table of another:
`build --catalog ...` reads, audits, stages in a third schema, governs and publishes;
the governance is read back, Delta rejects a violating row, `restore` brings back the
previous version, and `test-contract --server production` tests the table with
datacontract-cli through the catalog. Only the column tags do not run: Spark's catalog has none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from deltalake import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from customer_activity.jobs import build as build_job
from customer_activity.jobs import catalog
from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import load_contract
from customer_activity.jobs.errors import EXIT_OK, EXIT_OUTPUT_BUSY, EXIT_USAGE
from customer_activity.jobs.report import RunReport
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing import reference
from customer_activity_testing.outputs import AS_OF, as_utc, run_report

pytestmark = pytest.mark.e2e

CATALOG = "spark_catalog"
SOURCE, OUTPUT = "ca_e2e_raw", "ca_e2e_output"
TABLE = f"`{CATALOG}`.`{OUTPUT}`.`customer_activity`"
LOCATION = ["--catalog", CATALOG, "--output-schema", OUTPUT]


@pytest.fixture(scope="module")
def raw_schema(spark: SparkSession, sample_source: Path) -> Iterator[str]:
    """The sample's raw tables as tables of a schema, and an empty output schema, as an admin sets them up."""
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{SOURCE}")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{OUTPUT}")
    for table in INPUT_PORTS:
        # Registered where they lie, as external tables: copying them would test nothing more.
        location = catalog.string_literal(str((sample_source / table).absolute()))
        spark.sql(f"CREATE TABLE {CATALOG}.{SOURCE}.{table} USING PARQUET LOCATION {location}")
    yield SOURCE
    for schema in (SOURCE, OUTPUT, f"{OUTPUT}_staging"):
        spark.sql(f"DROP SCHEMA IF EXISTS {CATALOG}.{schema} CASCADE")
    spark.sql(f"USE {CATALOG}.default")


@dataclass
class FirstBuild:
    report: RunReport
    log: list[str] = field(default_factory=list)
    # Every SQL statement the build sent, in order.
    statements: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def first_build(raw_schema: str) -> FirstBuild:
    """The first catalog build, through the command line: its run report and what it logged."""
    build = ["build", "--catalog", CATALOG, "--source-schema", raw_schema, "--output-schema", OUTPUT]
    reports: list[RunReport] = []
    log: list[str] = []
    statements: list[str] = []
    real, real_sql = build_job.run_build, SparkSession.sql

    def recording_sql(session: SparkSession, statement: str, *args: object, **kwargs: object):
        statements.append(statement)
        return real_sql(session, statement, *args, **kwargs)  # type: ignore[arg-type]

    def recorded(*args: object, **kwargs: object) -> RunReport:
        reports.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return reports[-1]

    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: log.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(build_job.__name__)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_job, "run_build", recorded)
        patch.setattr(SparkSession, "sql", recording_sql)
        patch.setattr(logger, "level", logging.INFO)
        logger.addHandler(handler)
        try:
            assert main([*build, "--as-of", AS_OF.isoformat()]) == EXIT_OK
        finally:
            logger.removeHandler(handler)
    [report] = reports
    return FirstBuild(report, log, statements)


@pytest.fixture(scope="module")
def built(first_build: FirstBuild) -> str:
    return TABLE


def test_the_run_reports_counts_are_observed_while_the_catalog_build_runs(first_build, published_output):
    """Catalog tables have no footers to count from: the counts are observed as the build runs,
    equal to the directory build's, without a second pass over the inputs."""
    assert not [message for message in first_build.log if "counted directly" in message]
    assert asdict(first_build.report)["inputs"] == run_report(published_output)["inputs"]


def test_the_catalog_build_publishes_the_specified_rows(built, spark, sample_source):
    expected = reference.customer_activity(sample_source, AS_OF)
    rows = {row["organization_id"]: row.asDict() for row in spark.read.table(built).collect()}
    assert rows.keys() == expected.keys()
    some = sorted(rows)[:25]
    for key in some:
        row = {k: as_utc(v) for k, v in rows[key].items() if k != "updated_at"}
        assert row == {k: as_utc(v) for k, v in expected[key].items()}


def test_governance_is_applied_and_reads_back(built, spark):
    contract = load_contract()
    described = {row.col_name: row for row in spark.sql(f"DESCRIBE TABLE EXTENDED {built}").collect()}
    assert described["Comment"].data_type == contract.table_description
    assert described["Provider"].data_type == "delta"
    for column, description in contract.column_descriptions.items():
        assert described[column].comment == description
    properties = {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {built}").collect()}
    assert {k: properties[k] for k in catalog.table_properties(contract)} == catalog.table_properties(contract)
    assert {
        k.removeprefix("delta.constraints."): v for k, v in properties.items() if k.startswith("delta.constraints.")
    }.keys() == catalog.check_constraints(contract).keys()
    nullable = {f.name for f in spark.read.table(built).schema.fields if f.nullable}
    assert not nullable & set(contract.required_columns)


# Each form of statement the catalog path may send, as the Databricks SQL reference documents it
# for Unity Catalog managed Delta tables (its page sql-ref-syntax-<value>, docs.databricks.com).
DOCUMENTED = {
    r"CREATE SCHEMA IF NOT EXISTS `\w+`\.`\w+`": "ddl-create-schema",
    r"CREATE TABLE (IF NOT EXISTS )?`\w+`\.`\w+`\.`\w+` \(.*\)\s*USING DELTA\b": "ddl-create-table-using",
    r"ALTER TABLE \S+ (ADD CONSTRAINT `\w+` CHECK \(|DROP CONSTRAINT IF EXISTS `\w+`$)": "ddl-alter-table",
    r"ALTER TABLE \S+ ALTER COLUMN `\w+` (COMMENT '|SET NOT NULL$|DROP NOT NULL$)": "ddl-alter-table-manage-column",
    r"ALTER TABLE \S+ SET TBLPROPERTIES \(": "ddl-tblproperties",
    r"COMMENT ON TABLE \S+ IS '": "ddl-comment",
    r"INSERT OVERWRITE TABLE \S+ \(": "dml-insert-into",
    r"(DESCRIBE HISTORY|DESCRIBE TABLE EXTENDED|SHOW TBLPROPERTIES) \S+( LIMIT 1)?$": "aux-describe-table",
    r"DROP TABLE IF EXISTS \S+$": "ddl-drop-table",
    r"SELECT ": "qry-select",
}


def test_the_catalog_path_sends_only_statements_databricks_documents(first_build):
    assert len(first_build.statements) > 10
    for statement in first_build.statements:
        assert "delta.constraints." not in statement, statement
        assert any(re.match(form, statement, re.DOTALL) for form in DOCUMENTED), statement
    assert any(statement.startswith(f"ALTER TABLE {TABLE} ADD CONSTRAINT") for statement in first_build.statements)


def test_a_new_table_has_its_constraints_before_its_first_rows(built, spark):
    """Read with delta-rs, version by version: no version that holds rows lacks a constraint."""
    location = spark.sql(f"DESCRIBE DETAIL {built}").first().location
    wanted = {f"delta.constraints.{name}" for name in catalog.check_constraints(load_contract())}
    latest = DeltaTable(location).version()
    with_rows = [v for v in range(latest + 1) if DeltaTable(location, version=v).file_uris()]
    assert with_rows, "the build published no rows"
    for version in with_rows:
        assert wanted <= DeltaTable(location, version=version).metadata().configuration.keys(), version
    history = [row.operation for row in spark.sql(f"DESCRIBE HISTORY {built}").orderBy("version").collect()]
    assert history[: len(wanted) + 2] == ["CREATE TABLE", *["ADD CONSTRAINT"] * len(wanted), "WRITE"]


def test_the_candidate_never_shows_in_the_output_schema_and_is_removed(built, spark):
    def tables(schema: str) -> list[str]:
        # SHOW TABLES also lists the session's temporary views, which belong to no schema.
        rows = spark.sql(f"SHOW TABLES IN {CATALOG}.{schema}").collect()
        return [row.tableName for row in rows if not row.isTemporary]

    assert tables(OUTPUT) == ["customer_activity"]
    # The internal schema keeps the run history and the quarantine, and no candidate.
    assert sorted(tables(f"{OUTPUT}_staging")) == ["customer_activity_quarantine", "customer_activity_runs"]


def test_delta_rejects_a_violating_row_in_the_catalog_table(built, spark):
    names = load_contract().spark_schema.names
    selected = ", ".join("-5 AS assets_total" if name == "assets_total" else name for name in names)
    before = spark.sql(f"DESCRIBE HISTORY {built}").count()

    with pytest.raises(Py4JJavaError, match="CHECK constraint ca_assets_total_not_negative "):
        spark.sql(f"INSERT INTO {built} SELECT {selected} FROM {built} LIMIT 1")

    assert spark.sql(f"DESCRIBE HISTORY {built}").count() == before


def test_restore_takes_the_catalog_names(built, capsys):
    """Restoring by catalog names; what restore does is shown on a directory's output (test_publish)."""
    assert main(["restore", *LOCATION]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert f"{CATALOG}.{OUTPUT}.customer_activity has no earlier published version to restore" in error


def test_the_consumer_side_contract_test_passes_through_the_catalog(built, capsys):
    assert main(["test-contract", *LOCATION, "--server", "production"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"Contract test of {CATALOG}.{OUTPUT}.customer_activity (datacontract-cli, server 'production')" in out
    assert "passed" in out.lower()


def test_an_output_schema_that_does_not_exist_is_refused_before_any_work(raw_schema, capsys):
    build = ["build", "--catalog", CATALOG, "--source-schema", raw_schema, "--output-schema", "ca_no_such_schema"]

    assert main(build) == EXIT_USAGE

    error = capsys.readouterr().err
    assert f"the output schema {CATALOG}.ca_no_such_schema does not exist: deploy the bundle" in error
    assert "Traceback" not in error


def test_a_commit_by_another_writer_during_the_build_is_not_overwritten(built, raw_schema, spark, monkeypatch, capsys):
    audit = build_job.audit
    gone = spark.read.table(built).first().organization_id

    def audit_while_another_writer_commits(*args: object, **kwargs: object):
        spark.sql(f"DELETE FROM {built} WHERE organization_id = '{gone}'")
        return audit(*args, **kwargs)

    monkeypatch.setattr(build_job, "audit", audit_while_another_writer_commits)
    build = ["build", "--catalog", CATALOG, "--source-schema", raw_schema, "--output-schema", OUTPUT]
    try:
        assert main(build) == EXIT_OUTPUT_BUSY

        error = capsys.readouterr().err
        assert f"{CATALOG}.{OUTPUT}.customer_activity changed while this build ran (Delta version " in error
        assert "DELETE at version" in error
        assert "another writer published; this build published nothing" in error
        assert spark.sql(f"DESCRIBE HISTORY {built} LIMIT 1").first().operation == "DELETE"
        assert gone not in {row.organization_id for row in spark.read.table(built).collect()}
    finally:
        # Later tests read the published rows: bring back the ones the other writer deleted.
        spark.sql(f"RESTORE TABLE {built} TO VERSION AS OF {_version_before_last(spark, built)}")


def _version_before_last(spark, table: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version) - 1
