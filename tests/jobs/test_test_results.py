"""The contract test publishes its results when a key is configured; a failed publication
is reported and never changes the verdict."""

from __future__ import annotations

import pytest

from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import EXIT_OK
from customer_activity_testing.http_server import Answer

pytestmark = pytest.mark.e2e

KEY = "ed_test_results_k3y"


def test_results_are_posted_with_the_key_and_a_refusal_keeps_the_passing_verdict(
    published_output, http_server, monkeypatch, capsys
):
    monkeypatch.setenv("ENTROPY_DATA_API_KEY", KEY)
    monkeypatch.setenv("ENTROPY_DATA_HOST", http_server.url)
    http_server.answer(Answer(500, '{"detail": "storage unavailable"}'))

    assert main(["test-contract", "--output-dir", str(published_output)]) == EXIT_OK

    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", "/api/test-results")
    assert request.headers["x-api-key"] == KEY
    body = request.json()
    assert body["dataContractId"] == "entropydata-customer-activity-v1"
    assert body["result"] == "passed"
    assert body["checks"]
    captured = capsys.readouterr()
    assert "could NOT be published" in captured.err
    assert "storage unavailable" in captured.err
    assert KEY not in captured.out + captured.err


def test_without_a_key_nothing_is_sent_and_that_is_said(published_output, http_server, monkeypatch, capsys):
    monkeypatch.delenv("ENTROPY_DATA_API_KEY", raising=False)
    monkeypatch.setenv("ENTROPY_DATA_HOST", http_server.url)

    assert main(["test-contract", "--output-dir", str(published_output)]) == EXIT_OK

    assert http_server.requests == []
    assert "not published: no marketplace API key" in capsys.readouterr().out
