"""OpenLineage events of the build, received by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime

import pytest

from customer_activity.jobs.contract import load_contract
from customer_activity.jobs.errors import EXIT_INPUT_ERROR, EXIT_OK
from customer_activity.jobs.lineage import DatasetName, Lineage
from customer_activity.transforms.input_ports import INPUT_PORTS
from customer_activity_testing.http_server import closed_port_url
from customer_activity_testing.outputs import build, run_report

LINEAGE_ENDPOINT = "/api/v1/lineage"


@pytest.fixture
def no_lineage_environment(monkeypatch, tmp_path):
    """Nothing configured: no OPENLINEAGE_* variables, no openlineage.yml around."""
    for name in [n for n in os.environ if n.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))


def events(server) -> list[dict]:
    assert all(r.path == LINEAGE_ENDPOINT and r.method == "POST" for r in server.requests)
    return [r.json() for r in server.requests]


@pytest.mark.e2e
def test_a_build_sends_start_then_complete_with_datasets_schema_statistics_and_checks(
    sample_source, tmp_path, http_server
):
    assert build(sample_source, tmp_path, "--lineage-url", http_server.url) == EXIT_OK

    start, complete = events(http_server)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"] == {**complete["job"], "namespace": "customer-activity", "name": "customer_activity.build"}
    assert sorted(d["name"].rsplit("/", 1)[1] for d in complete["inputs"]) == sorted(INPUT_PORTS)
    assert {d["namespace"] for d in complete["inputs"]} == {"file"}
    [output] = complete["outputs"]
    assert output["name"] == str((tmp_path / "customer_activity").absolute())

    contract = load_contract()
    fields = output["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        (f.name, f.dataType.simpleString().upper()) for f in contract.spark_schema.fields
    ]
    report = run_report(tmp_path)
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == report["output_rows"]
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [(c["name"], c["passed"]) for c in report["checks"]]
    for event in (start, complete):
        assert event["run"]["facets"]["entropy_data"]["dataProductId"] == "entropydata-customer-activity"
        assert event["run"]["facets"]["entropy_data"]["outputPortName"] == "customer_activity_v1"


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
    with lineage.closing():
        lineage.start([DatasetName("file", "/in")], DatasetName("file", "/out"), None, datetime.now(UTC))
    [event] = events(http_server)
    assert event["job"]["namespace"] == "analytics"


def test_without_configuration_there_are_no_events_and_no_warnings(no_lineage_environment, caplog):
    caplog.set_level(logging.INFO)
    lineage = Lineage.configure()
    lineage.fail([DatasetName("file", "/in")], DatasetName("file", "/out"), None, "boom")
    assert not lineage.enabled
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_unreachable_lineage_backend_is_only_a_warning(caplog):
    lineage = Lineage.configure(closed_port_url())
    assert lineage.enabled
    with lineage.closing():
        lineage.start([DatasetName("file", "/in")], DatasetName("file", "/out"), None, datetime.now(UTC))
    assert "lineage event START could not be sent" in caplog.text
