"""Publishing the data product and its contract to the Entropy Data marketplace.

Uses Entropy Data's own API client (entropy-data-sdk). Its transport retries only
failed connections; publishing adds httpx-retries' retries with exponential back-off
(and the server's Retry-After) on timeouts, 429 and 5xx answers, which is safe because
both calls are idempotent PUTs of a whole document. Any other 4xx answer is never
retried: it says something about the request.
The API key travels only in the `x-api-key` header and never shows up in output,
logs or error messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import yaml
from entropy_data_sdk import ApiError, EntropyDataClient
from httpx_retries import Retry, RetryTransport

from customer_activity.jobs.errors import EXIT_OK, ConfigurationError, PublishError
from customer_activity.jobs.secrets import API_KEY_VARIABLE, Secret, api_key_from_environment, marketplace_host, redact

logger = logging.getLogger(__name__)

_RETRIED_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Document:
    """One document to publish: what it is, where it goes, and its JSON body."""

    kind: str
    id: str
    path: str
    body: dict[str, object]


def _load(file: Path, kind: str) -> dict[str, object]:
    try:
        document = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{kind} file not found: {file}") from None
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{kind} file {file} is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not document.get("id"):
        raise ConfigurationError(f"{kind} file {file} has no id")
    # Through JSON once, so that YAML dates and the like become what the API receives.
    body: dict[str, object] = json.loads(json.dumps(document, default=str))
    return body


def _segment(value: object) -> str:
    """An id as one URL path segment: `/`, `?` or `..` in it cannot change the request."""
    return quote(str(value), safe="")


def documents(contract: Path, product: Path) -> list[Document]:
    """The contract first: the product's output port refers to it by id."""
    contract_body = _load(contract, "data contract")
    product_body = _load(product, "data product")
    return [
        Document(
            "data contract",
            str(contract_body["id"]),
            f"/api/datacontracts/{_segment(contract_body['id'])}",
            contract_body,
        ),
        Document(
            "data product", str(product_body["id"]), f"/api/dataproducts/{_segment(product_body['id'])}", product_body
        ),
    ]


def describe(document: Document, host: str) -> str:
    """What a dry run prints: the request as it would be sent, key masked."""
    return f"PUT {host.rstrip('/')}{document.path}\ncontent-type: application/json\nx-api-key: ***\n\n" + json.dumps(
        document.body, indent=2, ensure_ascii=False
    )


class _LoggedRetry(Retry):
    """httpx-retries' policy, with each retry in the job's log (the library logs it only for debugging)."""

    def sleep(self, response: httpx.Response | Exception) -> None:
        reason = f"HTTP {response.status_code}" if isinstance(response, httpx.Response) else type(response).__name__
        logger.warning("%s; retrying (attempt %d of %d)", reason, self.attempts_made, self.total + 1)
        super().sleep(response)


_EXPLANATIONS = {
    401: "the API key was rejected",
    403: "the API key is not allowed to publish this",
    404: "the API was not found at this address (is the host right?)",
    422: "the marketplace rejected the document as invalid",
}


def publish(
    items: Sequence[Document],
    host: str,
    api_key: Secret,
    *,
    timeout_seconds: float = 30.0,
    attempts: int = 4,
    backoff_seconds: float = 0.5,
) -> list[str]:
    """PUT every document in order; stops at the first failure with a PublishError."""
    # A server's Retry-After is honoured up to half a minute a wait: publishing never hangs for long.
    retry = _LoggedRetry(
        total=attempts - 1, backoff_factor=backoff_seconds, status_forcelist=_RETRIED_STATUSES, max_backoff_wait=30.0
    )
    transport = RetryTransport(httpx.HTTPTransport(retries=0), retry)
    published = []
    with EntropyDataClient(api_key.reveal(), host, timeout=timeout_seconds, transport=transport) as client:
        for document in items:
            try:
                response = client.http.put_json(document.path, document.body)
            except ApiError as error:
                explanation = _EXPLANATIONS.get(error.status_code)
                if explanation is None and error.status_code in _RETRIED_STATUSES:
                    explanation = f"the marketplace failed, also after {attempts} attempts"
                reason = f"{explanation} " if explanation else ""
                raise PublishError(
                    redact(
                        f"publishing the {document.kind} {document.id} failed: {reason}"
                        f"(HTTP {error.status_code}: {error.message})",
                        api_key,
                    )
                ) from None
            except httpx.HTTPError as error:
                raise PublishError(
                    redact(
                        f"publishing the {document.kind} {document.id} failed: {host} could not be reached "
                        f"after {attempts} attempts ({type(error).__name__}: {error})",
                        api_key,
                    )
                ) from None
            link = response.location_html
            published.append(f"published the {document.kind} {document.id}" + (f": {link}" if link else ""))
            logger.info(published[-1])
    return published


@dataclass(frozen=True)
class PublishConfig:
    """What the `publish` command sends, and where."""

    contract: Path
    product: Path
    host: str | None = None
    dry_run: bool = False
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ConfigurationError(f"the timeout must be positive, not {self.timeout_seconds}")


def publish_product(config: PublishConfig) -> int:
    """The `publish` command: the contract, then the data product; or only show them (dry run)."""
    host = marketplace_host(config.host)
    items = documents(config.contract, config.product)
    if config.dry_run:
        for document in items:
            print(describe(document, host))
            print()
        print(f"Dry run: nothing was sent to {host}.")
        return EXIT_OK
    api_key = api_key_from_environment()
    if api_key is None:
        raise ConfigurationError(f"{API_KEY_VARIABLE} is not set: the marketplace needs an API key")
    for line in publish(items, host, api_key, timeout_seconds=config.timeout_seconds):
        print(line)
    return EXIT_OK
