"""OpenLineage events of the build, received by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from entropy_data_sdk.models import OpenLineageRunEvent
from pyspark.sql import functions as F

from customer_activity.jobs import local_catalog, secrets
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import ColumnSources, load_contract, provider_contract_path
from customer_activity.jobs.errors import EXIT_INPUT_ERROR, EXIT_OK, ConfigurationError
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.lineage import DATA_PRODUCT_ID, Lineage, LineageSettings
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.secrets import Secret
from customer_activity.transforms import output_ports, staging
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing import plans
from customer_activity_testing.http_server import Answer, closed_port_url
from customer_activity_testing.outputs import AS_OF, build, run_report
from customer_activity_testing.paths import REPOSITORY

LINEAGE_ENDPOINT = "/api/v1/lineage"
# Where Entropy Data's lineage API takes the events of this data product and output port.
ENTROPY_DATA_ENDPOINT = (
    f"{LINEAGE_ENDPOINT}?dataProductId=entropydata-customer-activity"
    "&outputPortId=customer_activity_v1&outputPortName=customer_activity_v1"
)
KEY = "ed_lineage_k3y_0f_the_marketplace"


@pytest.fixture
def no_lineage_environment(monkeypatch, tmp_path):
    """Nothing configured: no OPENLINEAGE_* variables, no openlineage.yml around."""
    for name in [n for n in os.environ if n.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))


def events(server, endpoint: str = LINEAGE_ENDPOINT) -> list[dict]:
    assert [(r.method, r.path) for r in server.requests] == [("POST", endpoint)] * len(server.requests)
    return [r.json() for r in server.requests]


@pytest.mark.e2e
def test_a_build_sends_entropy_data_start_then_complete_with_the_key_and_never_shows_it(
    sample_source, output_copy, marketplace, monkeypatch, caplog, capsys
):
    """What the Databricks job does, with the key from the environment instead of the secret scope.

    The provider has meanwhile published a new version of its contract: the build says so, and goes on.
    """
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    provider = yaml.safe_load(provider_contract_path().read_text())
    marketplace.documents[f"/api/datacontracts/{provider['id']}"] = {**provider, "version": "1.1.0"}

    assert (
        build(sample_source, output_copy, "--lineage", "entropy-data", "--entropy-data-host", marketplace.url)
        == EXIT_OK
    )

    [asked] = [r for r in marketplace.server.requests if r.method == "GET"]
    assert (asked.path, asked.headers["x-api-key"]) == (f"/api/datacontracts/{provider['id']}", KEY)
    assert (
        f"the provider publishes version 1.1.0 of its contract {provider['id']}, this build's snapshot is "
        f"version {provider['version']}"
    ) in caplog.text
    posted = [r for r in marketplace.server.requests if r.method == "POST"]
    assert {r.path for r in posted} == {ENTROPY_DATA_ENDPOINT}
    start, complete = [r.json() for r in posted]
    assert {r.headers["authorization"] for r in posted} == {f"Bearer {KEY}"}
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"] == {**complete["job"], "namespace": "customer-activity", "name": "customer_activity.build"}
    assert sorted(d["name"].rsplit(".", 1)[1] for d in complete["inputs"]) == sorted(INPUT_PORTS)
    assert {d["namespace"] for d in complete["inputs"]} == {"databricks"}
    [output] = complete["outputs"]
    assert output["name"] == f"spark_catalog.{local_catalog.schema_name('output', output_copy)}.customer_activity"

    contract = load_contract()
    fields = output["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        (f.name, f.dataType.simpleString().upper()) for f in contract.spark_schema.fields
    ]
    # Column lineage for every output column, naming the input datasets of the same event.
    inputs = {d["name"]: d for d in complete["inputs"]}
    lineage = output["facets"]["columnLineage"]
    assert sorted(lineage["fields"]) == sorted(contract.spark_schema.names)
    for name, sources in contract.column_sources.items():
        declared = [(t, c, sources.transformation) for t, c in sources.columns]
        sent = lineage["fields"][name]["inputFields"]
        assert [(f["name"].rsplit(".", 1)[1], f["field"], f["transformations"][0]["subtype"]) for f in sent] == declared
        assert {(f["namespace"], f["name"]) for f in sent} <= {(d["namespace"], d["name"]) for d in inputs.values()}
        assert {f["transformations"][0]["type"] for f in sent} <= {"DIRECT"}
    indirect = [(f["name"].rsplit(".", 1)[1], f["field"], f["transformations"][0]["type"]) for f in lineage["dataset"]]
    assert indirect == [(t, c, "INDIRECT") for t, c in contract.indirect_sources]
    # Each input dataset's schema holds just the columns read of it (the plan test holds the declaration true).
    declared_read = {*contract.indirect_sources, *(p for s in contract.column_sources.values() for p in s.columns)}
    for name, dataset in inputs.items():
        table = name.rsplit(".", 1)[1]
        columns = {f["name"] for f in dataset["facets"]["schema"]["fields"]}
        assert columns == {c for t, c in declared_read if t == table}, table
    assert "name" not in {
        f["name"] for f in inputs[name.rsplit(".", 1)[0] + ".data_product"]["facets"]["schema"]["fields"]
    }
    report = run_report(output_copy)
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == report["output_rows"]
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [(c["name"], c["passed"]) for c in report["checks"]]
    for event in (start, complete):
        facet = event["run"]["facets"]["entropy_data"]
        assert facet == {
            "_producer": facet["_producer"],
            "_schemaURL": "https://entropy-data.com/spec/facets/1-0-0/EntropyDataRunFacet.json",
            "dataProductId": "entropydata-customer-activity",
            "outputPortId": "customer_activity_v1",
        }
        # Entropy Data's own API client (entropy-data-sdk 0.1.1) reads the event and its facet;
        # its model predates outputPortId, which the query carries under both names.
        parsed = OpenLineageRunEvent.model_validate(event)
        assert parsed.run.facets.entropy_data.dataProductId == "entropydata-customer-activity"
    captured = capsys.readouterr()
    shown = caplog.text + captured.out + captured.err + (output_copy / "customer_activity_run_report.json").read_text()
    assert KEY not in shown
    assert "openlineage" in caplog.text.lower(), "the client's own debug log was captured, and it holds no key"


def test_a_failed_build_sends_start_then_fail_with_the_reason(sample_source, tmp_path, http_server):
    source = tmp_path / "raw"
    shutil.copytree(sample_source, source)
    shutil.rmtree(source / "asset")

    assert build(source, tmp_path / "out", "--lineage-url", http_server.url) == EXIT_INPUT_ERROR

    start, fail = events(http_server)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert "asset" in fail["run"]["facets"]["errorMessage"]["message"]
    assert fail["run"]["runId"] == start["run"]["runId"]


def test_the_standard_openlineage_variables_configure_the_transport(no_lineage_environment, monkeypatch, http_server):
    monkeypatch.setenv("OPENLINEAGE_URL", http_server.url)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "analytics")
    lineage = Lineage.configure()
    lineage.about(InputLocation("main", "raw"), OutputLocation(TableName("main", "out", "customer_activity")))
    with lineage.closing():
        lineage.start(None, datetime.now(UTC))
    [event] = events(http_server)
    assert event["job"]["namespace"] == "analytics"
    assert [d["name"] for d in event["inputs"]] == [f"main.raw.{table}" for table in INPUT_PORTS]
    assert [d["name"] for d in event["outputs"]] == ["main.out.customer_activity"]


def test_without_configuration_there_are_no_events_and_no_warnings(no_lineage_environment, caplog):
    caplog.set_level(logging.INFO)
    lineage = Lineage.configure()
    lineage.fail(None, "boom")
    assert not lineage.enabled
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_unreachable_lineage_backend_is_only_a_warning(caplog):
    lineage = Lineage.configure(closed_port_url())
    assert lineage.enabled
    with lineage.closing():
        lineage.start(None, datetime.now(UTC))
    assert "lineage event START could not be sent" in caplog.text


def start_one(lineage: Lineage) -> None:
    with lineage.closing():
        lineage.start(None, datetime.now(UTC))


def test_on_databricks_the_key_comes_from_the_secret_scope(monkeypatch, http_server, caplog):
    """As the job's build task runs: --lineage entropy-data --secret-scope entropy-data."""
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)
    asked = []

    def from_scope(scope: str, key: str) -> Secret:
        asked.append((scope, key))
        return Secret(KEY)

    monkeypatch.setattr(secrets, "api_key_from_databricks", from_scope)
    caplog.set_level(logging.DEBUG)

    start_one(LineageSettings(target="entropy-data", host=http_server.url, secret_scope="entropy-data").open())

    assert asked == [("entropy-data", "entropy-data-api-key")]
    [request] = http_server.requests
    assert (request.path, request.headers["authorization"]) == (ENTROPY_DATA_ENDPOINT, f"Bearer {KEY}")
    # A run that fails before its contract is read is still linked to the product.
    assert request.json()["run"]["facets"]["entropy_data"]["dataProductId"] == DATA_PRODUCT_ID
    assert KEY not in caplog.text


def test_without_a_key_lineage_to_entropy_data_is_off_with_a_warning(monkeypatch, http_server, caplog):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)

    lineage = LineageSettings(target="entropy-data", host=http_server.url).open()
    start_one(lineage)

    assert not lineage.enabled
    assert http_server.requests == []
    assert "lineage is off: no Entropy Data API key is configured" in caplog.text


def test_a_refused_key_is_only_a_warning_that_does_not_show_it(monkeypatch, http_server, caplog):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)
    http_server.answer(Answer(401, '{"detail": "invalid api key"}'))
    caplog.set_level(logging.DEBUG)

    start_one(LineageSettings(target="entropy-data", host=http_server.url).open())

    assert len(http_server.requests) == 1, "a 4xx answer is not retried"
    assert "lineage event START could not be sent" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"target": "entropy-data", "url": "http://127.0.0.1:1"}, "give --lineage-url or --lineage entropy-data"),
        ({"secret_scope": "entropy-data"}, "need --lineage entropy-data"),
        ({"target": "marquez"}, "not 'marquez'"),
    ],
)
def test_contradictory_lineage_settings_are_refused(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        LineageSettings(**settings)


def test_the_linked_data_product_is_the_one_the_odps_file_and_the_contract_name():
    product = yaml.safe_load((REPOSITORY / "customer-activity.odps.yaml").read_text())
    assert DATA_PRODUCT_ID == product["id"] == load_contract().data_product_id


def test_a_secret_scope_that_cannot_be_read_turns_lineage_off_not_the_build(monkeypatch, caplog):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)

    def refused(scope: str, key: str) -> Secret:
        raise ConfigurationError(f"no permission to read secret {scope}/{key}")

    monkeypatch.setattr(secrets, "api_key_from_databricks", refused)

    lineage = LineageSettings(target="entropy-data", secret_scope="entropy-data").open()

    assert not lineage.enabled
    assert "lineage is off: the Entropy Data API key could not be read (no permission" in caplog.text


def test_in_production_the_input_datasets_are_the_tables_of_the_providers_production_server(monkeypatch):
    """Named as the provider's contract locates its output port, so that the marketplace links the two."""
    provider = yaml.safe_load(provider_contract_path().read_text())
    [server] = [s for s in provider["servers"] if s["server"] == "production"]
    monkeypatch.setenv("DATABRICKS_HOST", server["host"])
    lineage = Lineage(None)

    lineage.about(InputLocation(server["catalog"], server["schema"]), OutputLocation(TableName("c", "s", "t")))

    host = server["host"].removeprefix("https://")
    assert {(d.namespace, d.name) for d in lineage.inputs} == {
        (f"databricks://{host}", f"{server['catalog']}.{server['schema']}.{table['physicalName']}")
        for table in provider["schema"]
    }


def output_frame(staged: dict, contract):
    updated_at = datetime.combine(AS_OF, datetime.min.time(), tzinfo=UTC)
    return output_ports.customer_activity(staged, AS_OF, updated_at, contract.spark_schema)


def raw_level_disagreements(raw: dict, contract) -> list[str]:
    """What the plan of each output column reads of the raw tables, against the declaration.

    Staging's window reads every column it keeps (as tie-breakers), so at this level each
    column reads its tables' every column: they must all be declared, directly or indirectly.
    """
    output = output_frame(staging.stage_all(raw), contract)
    indirect, read_by_any, problems = set(contract.indirect_sources), set(), []
    for column in contract.spark_schema.names:
        read = plans.raw_columns_read(output.select(column))
        read_by_any |= read
        direct = set(contract.column_sources[column].columns)
        problems += [f"{column}: reads {t}.{c}, which is not declared" for t, c in sorted(read - direct - indirect)]
    problems += [f"indirect source {t}.{c} is read for no column" for t, c in sorted(indirect - read_by_any)]
    return problems


def staged_level_disagreements(spark, staged_dir: Path, contract) -> list[str]:
    """What the plan of each output column reads of the staged tables (no window there), against
    each column's own declaration: every declared source read, nothing read undeclared."""
    staged = {table: spark.read.parquet(str(staged_dir / table)) for table in INPUT_PORTS}
    output = output_frame(staged, contract)
    raw_name = {t: {v: k for k, v in m.renames.items()} for t, m in staging.STAGING_MODELS.items()}
    indirect, problems = set(contract.indirect_sources), []
    for column in contract.spark_schema.names:
        read = {(t, raw_name[t].get(c, c)) for t, c in plans.raw_columns_read(output.select(column))}
        direct = set(contract.column_sources[column].columns)
        problems += [f"{column}: declares {t}.{c}, which its plan does not read" for t, c in sorted(direct - read)]
        problems += [f"{column}: reads {t}.{c}, which is not declared" for t, c in sorted(read - direct - indirect)]
    return problems


def raw_frames(spark, source) -> dict:
    return {table: spark.read.parquet(str(source / table)) for table in INPUT_PORTS}


@pytest.fixture(scope="module")
def staged_sample(spark, sample_source, tmp_path_factory) -> Path:
    """The sample's staged tables, as files: the plans of the later layers read them as tables."""
    directory = tmp_path_factory.mktemp("staged")
    for table, frame in staging.stage_all(raw_frames(spark, sample_source)).items():
        frame.write.parquet(str(directory / table))
    return directory


def test_the_contracts_column_lineage_is_what_the_plan_of_each_output_column_reads(spark, sample_source, staged_sample):
    contract = load_contract()
    assert raw_level_disagreements(raw_frames(spark, sample_source), contract) == []
    assert staged_level_disagreements(spark, staged_sample, contract) == []


def test_a_transform_that_reads_a_new_column_fails_until_the_lineage_declares_it(spark, sample_source, monkeypatch):
    data_products = staging.STAGING_MODELS["data_product"]
    wider = replace(data_products, columns=(*data_products.columns, "name"))
    monkeypatch.setitem(staging.STAGING_MODELS, "data_product", wider)
    contract = load_contract()

    problems = raw_level_disagreements(raw_frames(spark, sample_source), contract)

    assert "dataproducts_total: reads data_product.name, which is not declared" in problems
    declared = replace(contract, indirect_sources=(*contract.indirect_sources, ("data_product", "name")))
    assert raw_level_disagreements(raw_frames(spark, sample_source), declared) == []


def test_a_column_declared_from_a_source_its_plan_does_not_read_is_named(spark, staged_sample):
    contract = load_contract()
    wrong = ColumnSources((("organization", "created_by"),), "IDENTITY")
    problems = staged_level_disagreements(
        spark,
        staged_sample,
        replace(contract, column_sources={**contract.column_sources, "organization_vanity_url": wrong}),
    )
    assert problems == ["organization_vanity_url: declares organization.created_by, which its plan does not read"]


def transformation_disagreements(spark, staged_dir: Path, raw: dict, contract) -> list[str]:
    """Each column's declared transformationType, against what computes it over the staged tables.

    AGGREGATION: an aggregate in its plan. Otherwise the column is one value of its organisation's
    row: IDENTITY if it holds the raw column's type and the staged values, else TRANSFORMATION.
    """
    staged = {table: spark.read.parquet(str(staged_dir / table)) for table in INPUT_PORTS}
    output = output_frame(staged, contract)
    problems = []
    for column, sources in contract.column_sources.items():
        if not sources.columns:
            continue
        optimized = plans.Node(output.select(column)._jdf.queryExecution().optimizedPlan())
        if any(node.name == "Aggregate" for node in plans.walk(optimized)):
            found = "AGGREGATION"
        else:
            [(table, source)] = sources.columns
            assert table == "organization", f"{column}: a value of its row comes from the organisation"
            same_type = raw[table].schema[source].dataType == output.schema[column].dataType
            kept = staged[table].select("organization_id", F.col(source).alias(column))
            same_values = output.select("organization_id", column).exceptAll(kept).isEmpty()
            found = "IDENTITY" if same_type and same_values else "TRANSFORMATION"
        if found != sources.transformation:
            problems.append(f"{column}: declared {sources.transformation}, computed as {found}")
    return problems


def test_each_columns_transformation_type_is_how_its_plan_computes_it(spark, sample_source, staged_sample):
    contract = load_contract()
    raw = raw_frames(spark, sample_source)
    assert transformation_disagreements(spark, staged_sample, raw, contract) == []

    wrong = {
        "organization_created_at": ColumnSources((("organization", "created_at"),), "IDENTITY"),
        "users_total": ColumnSources((("organization_member", "user_id"),), "TRANSFORMATION"),
    }
    assert transformation_disagreements(
        spark, staged_sample, raw, replace(contract, column_sources={**contract.column_sources, **wrong})
    ) == [
        "organization_created_at: declared IDENTITY, computed as TRANSFORMATION",
        "users_total: declared TRANSFORMATION, computed as AGGREGATION",
    ]
