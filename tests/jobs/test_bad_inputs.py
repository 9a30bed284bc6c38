"""Bad inputs end with one clear message and exit code 3, before any work; the output stays."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from customer_activity.jobs import build as build_job
from customer_activity.jobs import inputs
from customer_activity.jobs.build import BuildConfig
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import provider_contract_path
from customer_activity.jobs.errors import (
    EXIT_CONTRACT_VIOLATION,
    EXIT_INPUT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    ConfigurationError,
    InputError,
)
from customer_activity.jobs.input_contract import load_provider_contract
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.publishing import OutputLocation
from customer_activity_dev.__main__ import main as dev_main
from customer_activity_testing.builders import rewrite
from customer_activity_testing.outputs import build, fingerprint, run_report
from customer_activity_testing.outputs import published as published_rows


def as_text(column: str) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        values = pa.array([f"v{value}" for value in table.column(column).to_pylist()])
        return table.set_column(table.schema.get_field_index(column), column, values)

    return change


def as_integer(column: str) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        values = pa.array(range(table.num_rows), pa.int64())
        return table.set_column(table.schema.get_field_index(column), column, values)

    return change


def replace_files(table: str, name: str, content: bytes) -> Callable[[Path], None]:
    def change(source: Path) -> None:
        shutil.rmtree(source / table)
        (source / table).mkdir()
        if name:
            (source / table / name).write_bytes(content)

    return change


BAD_INPUTS = {
    "missing table": (
        lambda source: shutil.rmtree(source / "asset"),
        "asset: {source}/asset does not exist",
    ),
    "missing column": (
        lambda source: rewrite(source, "organization", lambda t: t.drop(["vanity_url"])),
        "organization.vanity_url: required column is missing",
    ),
    "version holding text": (
        lambda source: rewrite(source, "data_product", as_text("version")),
        "data_product.version: has type string, expected a number (integer versions)",
    ),
    "timestamp holding integers": (
        lambda source: rewrite(source, "organization_member", as_integer("created_at")),
        "organization_member.created_at: has type bigint, expected a TIMESTAMP, DATE or ISO-8601 string",
    ),
    "directory of CSV": (
        replace_files("output_port", "part-0.csv", b"output_port_id,type\n1,databricks\n"),
        "output_port: {source}/output_port is not a Parquet dataset: "
        "part-0.csv: Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.",
    ),
    "garbage bytes": (
        replace_files("data_contract", "part-0.parquet", bytes(range(256)) * 8),
        "data_contract: {source}/data_contract is not a Parquet dataset: "
        "part-0.parquet: Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.",
    ),
    "empty directory": (
        replace_files("test_result", "", b""),
        "test_result: {source}/test_result is not a Parquet dataset: it holds no data files",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_a_bad_input_is_named_and_nothing_is_published(case, source, output_copy, capsys):
    breaks, expected = BAD_INPUTS[case]
    breaks(source)
    before = fingerprint(output_copy)

    assert build(source, output_copy) == EXIT_INPUT_ERROR

    error = capsys.readouterr().err
    assert expected.format(source=source) in error
    assert "Traceback" not in error
    assert fingerprint(output_copy) == before
    assert run_report(output_copy)["status"] == "failed"


def test_several_bad_inputs_are_reported_in_one_run(source, output_copy, capsys):
    for case in ("missing table", "version holding text", "garbage bytes"):
        BAD_INPUTS[case][0](source)
    assert build(source, output_copy) == EXIT_INPUT_ERROR
    error = capsys.readouterr().err
    assert error.count("\n  - ") == 3


@pytest.mark.e2e
def test_an_empty_organization_table_fails_the_audit_and_keeps_the_output(source, output_copy, capsys):
    rewrite(source, "organization", lambda table: table.slice(0, 0))
    before = fingerprint(output_copy)

    assert build(source, output_copy) == EXIT_CONTRACT_VIOLATION

    assert "The table is never published empty.: measured 0" in capsys.readouterr().err
    assert fingerprint(output_copy) == before


@pytest.mark.e2e
def test_empty_child_tables_give_zero_counts(source, output_copy):
    for table in ("organization_member", "asset", "output_port", "test_result"):
        rewrite(source, table, lambda data: data.slice(0, 0))

    # Every total drops to 0: far beyond the change gate's limits, let through on purpose.
    assert build(source, output_copy, "--accept-change", "a test of empty child tables") == EXIT_OK

    published = published_rows(output_copy).to_pylist()
    assert published
    assert all(row["users_total"] == 0 and row["assets_total"] == 0 for row in published)
    assert all(row["dataproducts_outputports_with_datacontract_percentage"] == 0.0 for row in published)
    assert all(row["data_platform"] is None for row in published)
    counted = run_report(output_copy)["inputs"]["asset"]
    assert (counted["rows"], counted["rows_after_staging"], counted["superseded_versions_removed"]) == (0, 0, 0)


@pytest.mark.e2e
def test_test_results_without_a_key_are_kept_and_reported_as_kept(source, output_copy):
    """test_result is append-only: the NULL-key rule is for versioned tables only."""

    def without_keys(data: pa.Table) -> pa.Table:
        keys = [None if number < 5 else key for number, key in enumerate(data.column("test_result_id").to_pylist())]
        return data.set_column(
            data.schema.get_field_index("test_result_id"), "test_result_id", pa.array(keys, pa.string())
        )

    rewrite(source, "test_result", without_keys)

    assert build(source, output_copy) == EXIT_OK

    counted = run_report(output_copy)["inputs"]["test_result"]
    assert counted["rows"] > 5
    assert (counted["null_key_rows_dropped"], counted["superseded_versions_removed"]) == (0, 0)
    assert counted["rows_after_staging"] == counted["rows"]


def test_an_invalid_as_of_date_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["build", "--source-dir", "raw", "--output-dir", "out", "--as-of", "2026-13-01"])
    assert exited.value.code == EXIT_USAGE
    assert "'2026-13-01' is not a date: month must be in 1..12" in capsys.readouterr().err


@pytest.mark.parametrize("as_of", ["9999-12-31", "0001-01-01", "1899-12-31", "3000-01-01"])
@pytest.mark.parametrize("command", ["build", "run"])
def test_an_as_of_date_out_of_range_is_refused(as_of, command, capsys):
    # `run` is the local tooling's (python3 dev.py run), with the job's own date check.
    entry, arguments = (main, ["--source-dir", "raw", "--output-dir", "out"]) if command == "build" else (dev_main, [])
    with pytest.raises(SystemExit) as exited:
        entry([command, *arguments, "--as-of", as_of])
    assert exited.value.code == EXIT_USAGE
    error = capsys.readouterr().err
    assert f"the as-of date {as_of} is out of range: it must lie between 1900-01-01 and 2999-12-31" in error
    assert "Traceback" not in error


def test_a_build_configuration_refuses_an_as_of_date_out_of_range():
    source, output = InputLocation("main", "raw"), OutputLocation(TableName("main", "out", "customer_activity"))
    with pytest.raises(ConfigurationError, match="the as-of date 0001-01-01 is out of range"):
        BuildConfig(source, output, as_of=date.min)
    assert BuildConfig(source, output, as_of=date(2999, 12, 31)).as_of == date(2999, 12, 31)


@pytest.mark.parametrize(
    ("catalog", "output_schema", "message"),
    [
        ("x; DROP TABLE y", "out", "catalog 'x; DROP TABLE y' is not a valid name"),
        ("main", "dp`; --", "schema 'dp`; --' is not a valid name"),
    ],
)
def test_names_that_could_inject_sql_are_refused_before_anything_runs(catalog, output_schema, message, capsys):
    arguments = ["build", "--catalog", catalog, "--source-schema", "raw", "--output-schema", output_schema]
    assert main(arguments) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_the_output_directory_may_not_be_the_source(source, capsys):
    assert build(source, source) == EXIT_USAGE
    assert "must not be inside the source directory" in capsys.readouterr().err


def test_a_source_directory_with_a_catalog_output_is_refused(capsys):
    assert main(["build", "--source-dir", "raw", "--catalog", "main", "--output-schema", "out"]) == EXIT_USAGE
    assert "--source-dir goes with --output-dir" in capsys.readouterr().err


def test_an_output_whose_table_was_never_committed_is_named(source, tmp_path, capsys):
    (tmp_path / "out" / "customer_activity" / "_delta_log").mkdir(parents=True)
    assert build(source, tmp_path / "out") == EXIT_USAGE
    error = capsys.readouterr().err
    assert "has a Delta log without a commit (a build stopped while it created the table)" in error
    assert "Traceback" not in error


def test_a_column_the_provider_contract_does_not_promise_stops_the_build_before_any_work(
    sample_source, output_copy, tmp_path, monkeypatch, capsys
):
    provider = yaml.safe_load(provider_contract_path().read_text())
    [organization] = [schema for schema in provider["schema"] if schema["name"] == "organization"]
    organization["properties"] = [p for p in organization["properties"] if p["name"] != "vanity_url"]
    changed = tmp_path / "provider.odcs.yaml"
    changed.write_text(yaml.safe_dump(provider, sort_keys=False))
    monkeypatch.setattr(build_job, "provider_contract_path", lambda: changed)
    before = fingerprint(output_copy)

    assert build(sample_source, output_copy) == EXIT_INPUT_ERROR

    error = capsys.readouterr().err
    assert f"the input ports disagree with the provider's contract entropydata-postgres-raw-v1 ({changed})" in error
    assert "nothing was read:\n  - organization.vanity_url: not promised" in error
    assert fingerprint(output_copy) == before
    assert "read_inputs" not in run_report(output_copy)["durations_seconds"]


def test_the_input_ports_read_only_what_the_provider_contract_promises():
    inputs.check_ports(load_provider_contract(provider_contract_path()))
    with pytest.raises(InputError, match=r"no-such-provider\.odcs\.yaml cannot be read"):
        load_provider_contract(Path("no-such-provider.odcs.yaml"))


def changed_contract(tmp_path: Path, table: str, change: Callable[[dict], None]) -> Path:
    document = yaml.safe_load(provider_contract_path().read_text())
    [schema] = [s for s in document["schema"] if s["name"] == table]
    change(schema)
    path = tmp_path / "provider.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def prop(schema: dict, name: str) -> dict:
    [found] = [p for p in schema["properties"] if p["name"] == name]
    return found


@pytest.mark.parametrize(
    ("table", "change", "problem"),
    [
        (
            "asset",
            lambda s: prop(s, "version").update(physicalType="string"),
            "asset.version: has type string, expected a number (integer versions)",
        ),
        (
            "asset",
            lambda s: prop(s, "name").update(physicalType="geometry"),
            "asset.name: physicalType 'geometry' is none the job knows",
        ),
        (
            "asset",
            lambda s: s.update(customProperties=None),
            "asset: the job keys it by asset_id, the contract names no entityKey",
        ),
        (
            "asset",
            lambda s: s.update(customProperties=[{"property": "entityKey", "value": "name"}]),
            "asset: the job keys it by asset_id, the contract by name",
        ),
        (
            "organization",
            lambda s: prop(s, "created_at").pop("logicalTypeOptions"),
            "organization: the job parses created_at as timestamps, the contract states none to hold them",
        ),
    ],
)
def test_input_ports_that_disagree_with_the_provider_contract_are_named(tmp_path, table, change, problem):
    with pytest.raises(InputError) as raised:
        inputs.check_ports(load_provider_contract(changed_contract(tmp_path, table, change)))
    listed = str(raised.value).split("nothing was read:\n", 1)[1].splitlines()
    assert listed == [f"  - {problem}"], "each disagreement named once, and no other"
