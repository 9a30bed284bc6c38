"""Publishing the local output as Delta: governed as the contract says, committed in one
transaction, earlier versions kept for time travel and `restore`.

The published table is read back with Spark SQL, as a consumer in Spark would, and with
delta-rs (the `deltalake` package), a reader that shares no code with the writer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from py4j.protocol import Py4JJavaError

from customer_activity.jobs import catalog, local_catalog, publishing
from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import default_contract_path, load_contract
from customer_activity.jobs.errors import EXIT_OK, EXIT_USAGE, ConfigurationError
from customer_activity_testing.outputs import build, delta_table, fingerprint, published, run_report

TABLE = "delta.`{}`"


def quoted(output: Path) -> str:
    return TABLE.format((output / "customer_activity").absolute())


def test_a_catalog_output_stages_in_a_schema_of_its_own():
    table = catalog.TableName("main", "customer_activity_v1", "customer_activity")
    assert publishing.OutputLocation(table).staging("Run-1").quoted == (
        "`main`.`customer_activity_v1_staging`.`_customer_activity_staging_run_1`"
    )
    assert (
        publishing.OutputLocation(table, staging_schema="scratch").staging("r").quoted.startswith("`main`.`scratch`.")
    )
    with pytest.raises(ConfigurationError, match="must not be the output schema"):
        publishing.OutputLocation(table, staging_schema="customer_activity_v1")
    with pytest.raises(ConfigurationError, match="staging schema 'x; DROP' is not a valid name"):
        publishing.OutputLocation(table, staging_schema="x; DROP")


@pytest.mark.e2e
def test_the_published_table_carries_the_contracts_governance(published_output, spark):
    contract = load_contract()
    table = delta_table(published_output)
    metadata = table.metadata()

    assert metadata.description == contract.table_description
    configuration = metadata.configuration
    assert {k: configuration.get(k) for k in catalog.table_properties(contract)} == catalog.table_properties(contract)
    assert configuration["dataproduct.owner"] == "customer-success"
    constraints = {k.removeprefix("delta.constraints."): v for k, v in configuration.items() if "constraints" in k}
    assert constraints.keys() == catalog.check_constraints(contract).keys()
    assert len(constraints) >= 5
    fields = {field.name: field for field in table.schema().fields}
    assert {name for name, field in fields.items() if not field.nullable} == set(contract.required_columns)
    assert {name: f.metadata.get("comment") for name, f in fields.items() if name in contract.column_descriptions} == (
        contract.column_descriptions
    )

    described = {
        row.col_name: row for row in spark.sql(f"DESCRIBE TABLE EXTENDED {quoted(published_output)}").collect()
    }
    assert described["Comment"].data_type == contract.table_description
    assert described["organization_id"].comment == contract.column_descriptions["organization_id"]
    properties = {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {quoted(published_output)}").collect()}
    assert properties["datacontract.id"] == contract.id


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("column", "value", "broken"),
    [
        ("assets_total", "-1", "ca_assets_total_not_negative"),
        ("users_added_30d", "users_total + 1", "ca_users_added_30d_within_users_total"),
        ("organization_id", "CAST(NULL AS STRING)", "organization_id"),
    ],
    ids=["negative count", "more added than in total", "NULL key"],
)
def test_delta_rejects_a_violating_row_written_straight_into_the_table(output_copy, spark, column, value, broken):
    before = fingerprint(output_copy)
    table = quoted(output_copy)
    names = load_contract().spark_schema.names
    selected = ", ".join(f"{value} AS {name}" if name == column else name for name in names)

    # Delta's violation surfaces as the JVM's exception, which PySpark passes on as is.
    with pytest.raises(
        Py4JJavaError, match=rf"(CHECK constraint {broken} |NOT NULL constraint violated for column: {broken})"
    ):
        spark.sql(f"INSERT INTO {table} SELECT {selected} FROM {table} LIMIT 1")
    assert fingerprint(output_copy) == before


@pytest.mark.e2e
def test_a_rebuild_commits_one_version_and_the_previous_stays_readable_then_restorable(
    sample_source, output_copy, spark, capsys, caplog
):
    first = published(output_copy)
    first_version = delta_table(output_copy).version()
    # What killed runs left in the staging schema: one from long ago, one that may still be running.
    staging = f"spark_catalog.{local_catalog.mount_output(spark, output_copy, datetime.now(UTC)).staging_schema}"
    dead = f"{staging}._customer_activity_staging_20200101t000000z_dead0001"
    running = f"{staging}._customer_activity_staging_{datetime.now(UTC):%Y%m%dt%H%M%Sz}_live0001"
    for leftover in (dead, running):
        spark.sql(f"CREATE TABLE {leftover} (x INT) USING DELTA")

    with caplog.at_level(logging.INFO, logger="customer_activity.jobs.publishing"):
        assert build(sample_source, output_copy) == EXIT_OK

    assert not spark.catalog.tableExists(dead)
    assert spark.catalog.tableExists(running)
    spark.sql(f"DROP TABLE {running}")
    assert f"dropped candidates of builds that did not finish: {dead}" in caplog.text
    # Said, not warned: nobody can act on a local catalog's lack of tags.
    skipped_tags = "column tags skipped: the catalog spark_catalog"
    [skipped] = [r for r in caplog.records if r.getMessage().startswith(skipped_tags)]
    assert skipped.levelno == logging.INFO
    assert "SET TAGS ('classification' = 'personal')" in skipped.getMessage()
    second_version = delta_table(output_copy).version()
    assert second_version == first_version + 1, "an unchanged contract commits the rows only"
    assert run_report(output_copy)["published_version"] == second_version
    change = run_report(output_copy)["change"]
    assert change["compared_with"] == first_version
    assert {figure["name"]: figure["percent"] for figure in change["figures"]} == dict.fromkeys(
        [
            "organizations_gone",
            "rows",
            "users_total",
            "dataproducts_total",
            "dataproducts_outputports_total",
            "assets_total",
        ],
        0.0,
    )
    second = published(output_copy)
    assert second.column("updated_at") != first.column("updated_at")
    assert published(output_copy, version=first_version).equals(first)

    assert main(["restore", "--output-dir", str(output_copy)]) == EXIT_OK

    assert f"to its version {first_version}; it is now version {second_version + 1}" in capsys.readouterr().out
    # The run report no longer names the rolled-back version as the published one.
    assert run_report(output_copy)["published_version"] == second_version + 1
    assert run_report(output_copy)["restored"]["rows_of_version"] == first_version
    assert published(output_copy).sort_by("organization_id").equals(first.sort_by("organization_id"))
    assert published(output_copy, version=second_version).equals(second)
    # The rows just rolled back are not "the previous version" of a second restore.
    assert main(["restore", "--output-dir", str(output_copy)]) == EXIT_USAGE
    assert "has no earlier published version to restore" in capsys.readouterr().err


@pytest.mark.e2e
def test_restore_names_what_cannot_be_restored(output_copy, tmp_path, capsys):
    live = delta_table(output_copy).version()
    assert main(["restore", "--output-dir", str(output_copy), "--version", str(live + 1)]) == EXIT_USAGE
    assert f"version {live + 1} of" in capsys.readouterr().err
    assert main(["restore", "--output-dir", str(output_copy), "--version", str(live)]) == EXIT_USAGE
    assert "is the one published now" in capsys.readouterr().err
    assert main(["restore", "--output-dir", str(tmp_path / "nothing")]) == EXIT_USAGE
    assert "nothing is published at" in capsys.readouterr().err


@pytest.mark.e2e
def test_an_output_left_by_an_earlier_parquet_version_is_named_not_overwritten(sample_source, tmp_path, capsys):
    old = tmp_path / "out" / "customer_activity"
    old.mkdir(parents=True)
    (old / "part-0.parquet").write_text("an earlier version's output")

    assert build(sample_source, tmp_path / "out") == EXIT_USAGE

    assert "exists and is not a Delta table" in capsys.readouterr().err
    assert (old / "part-0.parquet").read_text() == "an earlier version's output"


def test_a_contract_whose_team_is_a_list_of_members_publishes_with_its_owner(tmp_path):
    document = yaml.safe_load(default_contract_path().read_text())
    document["team"] = [{"username": "bo", "role": "member"}, {"username": "ana", "role": "owner"}]
    path = tmp_path / "team-as-list.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    contract = load_contract(path)
    table = catalog.TableName("spark_catalog", "out", "customer_activity")
    untouched = catalog.TableState(comment=None, properties={}, column_comments={}, nullable_columns=frozenset())

    assert contract.owner == "ana"
    assert "'dataproduct.owner' = 'ana'" in catalog.create_table(table, contract)
    assert any("'dataproduct.owner' = 'ana'" in s for s in catalog.governance(table, contract, untouched))


def test_only_commits_that_change_rows_count_as_another_writers(spark):
    table = catalog.TableName("spark_catalog", "default", "ca_row_changes")
    spark.sql(catalog.drop_table(table))
    spark.range(4).write.format("delta").saveAsTable(table.quoted)
    spark.sql(f"ALTER TABLE {table.quoted} SET TBLPROPERTIES ('another.writer' = 'tuned it')")
    spark.sql(f"OPTIMIZE {table.quoted}")
    spark.sql(f"DELETE FROM {table.quoted} WHERE id = 1")

    assert publishing.row_changes(spark, table, 0) == [(3, "DELETE")]
    assert publishing.row_changes(spark, table, 3) == []
    assert publishing.row_changes(spark, table, publishing.ABSENT) == [(0, "CREATE TABLE AS SELECT"), (3, "DELETE")]
    spark.sql(catalog.drop_table(table))
    assert publishing.row_changes(spark, table, publishing.ABSENT) == []


def test_a_staged_tables_name_tells_when_its_run_started():
    assert catalog.staging_run_start("_customer_activity_staging_20261119t060000z_ab12cd34") == datetime(
        2026, 11, 19, 6, tzinfo=UTC
    )
    assert catalog.staging_run_start("_customer_activity_staging_20261319t060000z_ab12cd34") is None
    assert catalog.staging_run_start("customer_activity") is None


class ConcurrentAppendException(Exception):  # noqa: N818 - Delta's own name
    """Named as Delta's own Python exception."""


class ConditionedError(Exception):
    """PySpark's errors carry Delta's error condition instead."""

    def __init__(self, condition: str | None) -> None:
        super().__init__(condition)
        self.condition = condition

    def getCondition(self) -> str | None:  # noqa: N802 - PySpark's name
        return self.condition


def test_a_concurrent_commit_is_told_apart_from_other_failures():
    assert publishing._concurrent_commit(ConcurrentAppendException("files were added"))
    assert publishing._concurrent_commit(ConditionedError("DELTA_CONCURRENT_WRITE"))
    assert not publishing._concurrent_commit(ConditionedError("DELTA_VIOLATE_CONSTRAINT_WITH_VALUES"))
    assert not publishing._concurrent_commit(ConditionedError(None))
    assert not publishing._concurrent_commit(OSError("disk full"))


class UnityCatalogSession:
    """Stands in for a session against Unity Catalog: records the statements it is sent and
    answers the query of column tags with `tags` (column_name, tag_name, tag_value rows)."""

    def __init__(self, *tags: tuple[str, str, str | None], information_schema: bool = True) -> None:
        self.statements: list[str] = []
        self.catalog = SimpleNamespace(databaseExists=lambda name: information_schema)
        self._rows = [SimpleNamespace(column_name=c, tag_name=t, tag_value=v) for c, t, v in tags]

    def sql(self, statement: str) -> SimpleNamespace:
        self.statements.append(statement)
        return SimpleNamespace(collect=lambda: self._rows)


def untagged_state(contract) -> catalog.TableState:
    return catalog.TableState(None, {}, {}, frozenset(contract.spark_schema.names))


def test_a_unity_catalog_table_gets_its_column_tags_after_they_are_read():
    session = UnityCatalogSession()
    contract = load_contract()
    target = catalog.TableName("main", "Customer_Activity", "customer_activity")

    publishing._tag_columns(session, target, contract, untagged_state(contract))

    tags = catalog.column_tags(target, contract, {}, untagged_state(contract))
    assert session.statements == [catalog.read_column_tags(target), *tags]
    assert tags, "the contract classifies a column"


def test_column_tags_already_in_place_are_left_alone():
    contract = load_contract()
    session = UnityCatalogSession(
        ("organization_created_by", "classification", "personal"), ("organization_created_by", "pii", "")
    )
    target = catalog.TableName("main", "out", "customer_activity")
    publishing._tag_columns(session, target, contract, untagged_state(contract))
    assert session.statements == [catalog.read_column_tags(target)]


def test_a_catalog_without_tags_gets_none_and_says_why_and_what_unity_catalog_would_run(caplog):
    session = UnityCatalogSession(information_schema=False)
    contract = load_contract()
    with caplog.at_level(logging.INFO, logger="customer_activity.jobs.publishing"):
        publishing._tag_columns(
            session, catalog.TableName("spark_catalog", "out", "customer_activity"), contract, untagged_state(contract)
        )
    assert session.statements == []
    assert "column tags skipped: the catalog spark_catalog has no information_schema" in caplog.text
    assert "ALTER COLUMN `organization_created_by` SET TAGS ('classification' = 'personal')" in caplog.text
    assert "ALTER COLUMN `organization_created_by` SET TAGS ('pii')" in caplog.text


def test_a_catalog_that_fails_to_answer_fails_the_tag_step_rather_than_skipping_it():
    class Unreachable(UnityCatalogSession):
        def sql(self, statement: str) -> SimpleNamespace:
            raise ConnectionError("the workspace went away")

    contract = load_contract()
    with pytest.raises(ConnectionError):
        publishing._tag_columns(
            Unreachable(), catalog.TableName("main", "out", "customer_activity"), contract, untagged_state(contract)
        )
