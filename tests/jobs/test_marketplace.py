"""Publishing to the marketplace, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import logging

import pytest
import yaml

from customer_activity.jobs import marketplace
from customer_activity.jobs.cli import main
from customer_activity.jobs.contract import default_contract_path
from customer_activity.jobs.errors import EXIT_OK, EXIT_PUBLISH_ERROR, PublishError
from customer_activity.jobs.secrets import Secret, mask_credentials_in_logs, mask_url_credentials
from customer_activity_testing.http_server import Answer, closed_port_url
from customer_activity_testing.paths import REPOSITORY

KEY = "ed_test_5ecr3t-k3y-never-shown"
PRODUCT = REPOSITORY / "customer-activity.odps.yaml"
CONTRACT_PATH = "/api/datacontracts/entropydata-customer-activity-v1"
PRODUCT_PATH = "/api/dataproducts/entropydata-customer-activity"


@pytest.fixture
def documents():
    return marketplace.documents(default_contract_path(), PRODUCT)


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)


def publish(documents, server, **options):
    return marketplace.publish(documents, server.url, Secret(KEY), backoff_seconds=0.01, **options)


def test_publish_puts_the_contract_then_the_product_as_json_with_the_key_header(marketplace, with_key, capsys):
    marketplace.agreement()
    assert main(["publish", "--host", marketplace.url, "--product", str(PRODUCT)]) == EXIT_OK

    contract, product, access = marketplace.server.requests
    assert (access.method, access.path) == (
        "GET",
        "/api/access?p=0&consumerDataProductId=entropydata-customer-activity",
    )
    assert (contract.method, contract.path) == ("PUT", CONTRACT_PATH)
    assert (product.method, product.path) == ("PUT", PRODUCT_PATH)
    assert contract.json() == yaml.safe_load(default_contract_path().read_text())
    assert product.json() == yaml.safe_load(PRODUCT.read_text())
    assert access.headers["x-api-key"] == KEY
    for request in (contract, product):
        assert request.headers["x-api-key"] == KEY
        assert request.headers["content-type"] == "application/json"
    assert KEY not in capsys.readouterr().out


def test_publishing_twice_sends_the_same_documents_again(http_server, documents):
    publish(documents, http_server)
    publish(documents, http_server)
    first, second = http_server.requests[:2], http_server.requests[2:]
    assert [(r.path, r.body) for r in first] == [(r.path, r.body) for r in second]


def test_the_marketplace_link_is_reported(http_server, documents):
    http_server.answer(Answer(headers={"location-html": "https://app.example/contracts/x"}))
    assert publish(documents, http_server)[0] == (
        "published the data contract entropydata-customer-activity-v1: https://app.example/contracts/x"
    )


def test_dry_run_shows_both_payloads_and_sends_nothing(http_server, with_key, capsys):
    assert main(["publish", "--host", http_server.url, "--product", str(PRODUCT), "--dry-run"]) == EXIT_OK

    out = capsys.readouterr().out
    assert f"PUT {http_server.url}{CONTRACT_PATH}" in out
    assert f"PUT {http_server.url}{PRODUCT_PATH}" in out
    assert '"apiVersion": "v3.1.0"' in out
    assert '"kind": "DataProduct"' in out
    assert "x-api-key: ***" in out
    assert KEY not in out
    assert http_server.requests == []


def test_server_errors_are_retried_with_back_off_until_they_pass(http_server, documents):
    http_server.answer(Answer(503), Answer(502))
    publish(documents, http_server)
    assert [r.path for r in http_server.requests] == [CONTRACT_PATH] * 3 + [PRODUCT_PATH]


def test_a_timeout_is_retried(http_server, documents):
    http_server.answer(Answer(delay_seconds=1.5))
    publish(documents, http_server, timeout_seconds=0.5)
    assert [r.path for r in http_server.requests] == [CONTRACT_PATH] * 2 + [PRODUCT_PATH]


def test_persistent_server_errors_fail_after_the_last_attempt(http_server, documents):
    http_server.answer(*[Answer(500, '{"detail": "database is down"}')] * 4)
    with pytest.raises(
        PublishError, match=r"the marketplace failed, also after 4 attempts \(HTTP 500: database is down\)"
    ):
        publish(documents, http_server)
    assert len(http_server.requests) == 4


@pytest.mark.parametrize(
    ("status", "explanation"),
    [
        (401, "the API key was rejected"),
        (403, "the API key lacks the permission for this"),
        (404, "the API was not found at this address"),
        (422, "the marketplace rejected the document as invalid"),
    ],
)
def test_client_errors_are_not_retried_and_explained_with_the_servers_words(
    http_server, documents, status, explanation
):
    http_server.answer(Answer(status, '{"detail": "field \'schema\' is wrong"}'))
    with pytest.raises(PublishError) as raised:
        publish(documents, http_server)
    message = str(raised.value)
    assert message.startswith("publishing the data contract entropydata-customer-activity-v1 failed: " + explanation)
    assert f"(HTTP {status}: field 'schema' is wrong)" in message
    assert len(http_server.requests) == 1, "a 4xx must not be retried, and the product must not follow"


def test_an_unreachable_host_is_named_after_the_retries(documents):
    url = closed_port_url()
    with pytest.raises(PublishError, match=rf"{url} could not be reached after 4 attempts \(ConnectError"):
        marketplace.publish(documents, url, Secret(KEY), backoff_seconds=0.01)


def test_the_key_never_appears_in_output_logs_or_errors(http_server, with_key, capsys, caplog):
    """Even when the server echoes the key back in its error."""
    http_server.answer(Answer(401, f'{{"detail": "unknown key {KEY}"}}'))
    caplog.set_level(logging.DEBUG)

    assert main(["-v", "publish", "--host", http_server.url, "--product", str(PRODUCT)]) == EXIT_PUBLISH_ERROR

    captured = capsys.readouterr()
    assert "unknown key ***" in captured.err
    assert KEY not in captured.out + captured.err + caplog.text


def test_a_missing_key_is_a_clear_error_and_sends_nothing(http_server, monkeypatch, capsys):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)
    assert main(["publish", "--host", http_server.url, "--product", str(PRODUCT)]) == 2
    assert "ENTROPY_DATA_API_KEY is not set" in capsys.readouterr().err
    assert http_server.requests == []


def test_a_secret_does_not_print():
    secret = Secret(KEY)
    assert KEY not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == KEY


def test_credentials_in_a_url_are_masked_and_nothing_else_is():
    text = (
        "PUT https://alice:s3cret@api.example.com/api/x failed; see s3://token@bucket/key and https://api.example.com"
    )
    assert mask_url_credentials(text) == (
        "PUT https://***@api.example.com/api/x failed; see s3://***@bucket/key and https://api.example.com"
    )
    assert mask_url_credentials("no address here: user@example.com") == "no address here: user@example.com"
    assert (
        mask_url_credentials("https://alice:p@ss@host/x?to=bob@example.com") == "https://***@host/x?to=bob@example.com"
    )


def test_a_logged_traceback_is_masked_too(caplog):
    mask_credentials_in_logs()
    try:
        raise ConnectionError("cannot reach https://alice:s3cret@api.example.com/x")
    except ConnectionError:
        logging.getLogger("customer_activity.test").exception("publishing to %s failed", "https://bob:pw@h/")

    assert caplog.records, "nothing was logged"
    assert "s3cret" not in caplog.text
    assert "pw@" not in caplog.text
    assert "https://***@api.example.com/x" in caplog.text
    assert "https://***@h/" in caplog.text


def test_credentials_in_the_host_url_never_appear_in_retry_warnings_or_errors(
    http_server, with_key, capsys, caplog, monkeypatch
):
    http_server.answer(*[Answer(503)] * 4)
    # The command's back-off (0.5 s, doubling) is the same code with shorter waits.
    monkeypatch.setattr(marketplace, "publish", functools.partial(marketplace.publish, backoff_seconds=0.01))
    host = http_server.url.replace("http://", "http://alice:s3cret@")
    caplog.set_level(logging.DEBUG)

    assert main(["-v", "publish", "--host", host, "--product", str(PRODUCT)]) == EXIT_PUBLISH_ERROR

    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err + caplog.text
    assert "http://***@127.0.0.1" in caplog.text
    assert "retrying (attempt 1 of 4)" in caplog.text
