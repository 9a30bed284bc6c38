"""Against a loopback marketplace: `publish` checks the inputs' access agreements; a build, the provider's contract."""

from __future__ import annotations

import logging
from datetime import date

import pytest
import yaml

from customer_activity.jobs import marketplace as marketplace_module
from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import provider_contract_path
from customer_activity.jobs.errors import EXIT_OK, EXIT_PUBLISH_ERROR, ConfigurationError, PublishError
from customer_activity.jobs.input_contract import compare_published, load_provider_contract
from customer_activity.jobs.secrets import Secret
from customer_activity_testing.http_server import Answer, closed_port_url
from customer_activity_testing.marketplace import CONSUMER
from customer_activity_testing.paths import REPOSITORY

KEY = "ed_test_5ecr3t-k3y-never-shown"
PRODUCT = REPOSITORY / "customer-activity.odps.yaml"
PORT = "input port entropydata_postgres (entropydata-postgres/raw_v1)"


@pytest.fixture(autouse=True)
def with_key(monkeypatch):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)


def publish(marketplace, capsys) -> tuple[int, str, str]:
    code = main(["publish", "--host", marketplace.url, "--product", str(PRODUCT)])
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    return code, captured.out, captured.err


def test_an_active_agreement_passes(marketplace, capsys):
    agreement = marketplace.agreement()
    code, out, _ = publish(marketplace, capsys)
    assert code == EXIT_OK
    assert (
        f"input port entropydata_postgres: access agreement {agreement} with entropydata-postgres/raw_v1 is active"
        in out
    )


@pytest.mark.parametrize(
    ("status", "active", "start", "state"),
    [
        ("requested", False, None, "requested, not active"),
        ("rejected", False, None, "rejected, not active"),
        ("approved", False, date(2999, 1, 1), "approved, not active (it starts on 2999-01-01)"),
        ("approved", False, date(2020, 1, 1), "approved, not active (it ended on 2021-01-01)"),
    ],
)
def test_an_agreement_that_is_not_active_fails_naming_its_state(marketplace, capsys, status, active, start, state):
    end = date(2021, 1, 1) if start == date(2020, 1, 1) else None
    agreement = marketplace.agreement(status, active=active, start=start, end=end)
    code, _, err = publish(marketplace, capsys)
    assert code == EXIT_PUBLISH_ERROR
    assert f"the data product {CONSUMER} lacks an active access agreement for its inputs" in err
    assert f"{PORT}: agreement {agreement} is {state}" in err
    # The product is published all the same: an access request needs it in the marketplace.
    assert f"/api/dataproducts/{CONSUMER}" in marketplace.documents


def test_a_missing_agreement_fails_and_says_how_to_request_one(marketplace, capsys):
    marketplace.agreement(provider=("entropydata-postgres", "another_port"))
    marketplace.agreement(consumer="another-data-product")
    code, _, err = publish(marketplace, capsys)
    assert code == EXIT_PUBLISH_ERROR
    assert (
        f"{PORT}: no access agreement; request one with `entropy-data access request entropydata-postgres raw_v1 "
        f"--consumer-dataproduct {CONSUMER} --purpose '...'`"
    ) in err


def test_an_active_agreement_on_a_later_page_is_found(marketplace, capsys):
    marketplace.page_size = 1
    marketplace.agreement("requested", active=False)
    marketplace.agreement()
    assert publish(marketplace, capsys)[0] == EXIT_OK
    assert [r.path.split("?")[1].split("&")[0] for r in marketplace.server.requests if r.method == "GET"] == [
        "p=0",
        "p=1",
    ]


def test_a_failing_marketplace_is_retried_then_named_without_the_key(marketplace):
    marketplace.server.answer(*[Answer(503, f'{{"detail": "down, key {KEY}"}}')] * 4)
    ports = marketplace_module.input_ports(yaml.safe_load(PRODUCT.read_text()))
    connection = marketplace_module.Connection(marketplace.url, Secret(KEY), backoff_seconds=0.01)
    with pytest.raises(PublishError) as raised:
        marketplace_module.check_access(CONSUMER, ports, connection)
    message = str(raised.value)
    assert (
        f"reading the access agreements of {CONSUMER} failed: the marketplace failed, also after 4 attempts" in message
    )
    assert "down, key ***" in message
    assert len(marketplace.server.requests) == 4


def test_the_dry_run_names_the_agreements_it_would_check(marketplace, capsys):
    assert main(["publish", "--host", marketplace.url, "--product", str(PRODUCT), "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"GET {marketplace.url}/api/access?consumerDataProductId={CONSUMER}" in out
    assert "then: an active access agreement for entropydata-postgres/raw_v1" in out
    assert marketplace.server.requests == []


def test_an_input_port_that_names_no_provider_is_refused():
    port = {"name": "raw", "version": "1.0.0", "contractId": "c", "customProperties": None}
    with pytest.raises(ConfigurationError, match=r"input port raw names no provider: .* dataProductId, outputPortId"):
        marketplace_module.input_ports({"inputPorts": [port]})
    assert marketplace_module.input_ports({"inputPorts": None}) == []


@pytest.fixture
def provider():
    return load_provider_contract(provider_contract_path())


def test_a_build_warns_when_the_provider_publishes_another_version(marketplace, provider, caplog):
    marketplace.documents[f"/api/datacontracts/{provider.id}"] = {"id": provider.id, "version": "2.0.0"}
    compare_published(provider, (marketplace.url, Secret(KEY)))
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"publishes version 2.0.0 of its contract {provider.id}" in warning.getMessage()
    assert f"snapshot is version {provider.version}" in warning.getMessage()


def test_the_same_version_published_is_no_warning(marketplace, provider, caplog):
    marketplace.documents[f"/api/datacontracts/{provider.id}"] = {"id": provider.id, "version": provider.version}
    compare_published(provider, (marketplace.url, Secret(KEY)))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("answer", [Answer(500, f'{{"detail": "{KEY}"}}'), Answer(body="not json"), None])
def test_a_marketplace_that_cannot_answer_is_a_warning_that_never_shows_the_key(marketplace, provider, caplog, answer):
    if answer is None:
        url = closed_port_url()
    else:
        marketplace.server.answer(*[answer] * 4)
        url = marketplace.url
    caplog.set_level(logging.DEBUG)
    compare_published(provider, (url, Secret(KEY)))
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"the provider's contract {provider} could not be compared with the published one" in warning.getMessage()
    assert KEY not in caplog.text


def test_without_a_marketplace_key_nothing_is_asked(provider, caplog):
    caplog.set_level(logging.INFO)
    compare_published(provider, None)
    assert "was not compared with the published one: no marketplace key" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
