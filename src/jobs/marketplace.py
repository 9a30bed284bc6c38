"""Publishing the data product and its contract to the Entropy Data marketplace, and checking its access.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import yaml
from entropy_data_sdk import ApiError, EntropyDataClient
from entropy_data_sdk.models import Access
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
    403: "the API key lacks the permission for this",
    404: "the API was not found at this address (is the host right?)",
    422: "the marketplace rejected the document as invalid",
}


@dataclass(frozen=True)
class Connection:
    """Where the marketplace is and how to ask it: key, timeout, retries."""

    host: str
    api_key: Secret
    timeout_seconds: float = 30.0
    attempts: int = 4
    backoff_seconds: float = 0.5

    def client(self) -> EntropyDataClient:
        # A server's Retry-After is honoured up to half a minute a wait: publishing never hangs for long.
        retry = _LoggedRetry(
            total=self.attempts - 1,
            backoff_factor=self.backoff_seconds,
            status_forcelist=_RETRIED_STATUSES,
            max_backoff_wait=30.0,
        )
        transport = RetryTransport(httpx.HTTPTransport(retries=0), retry)
        return EntropyDataClient(self.api_key.reveal(), self.host, timeout=self.timeout_seconds, transport=transport)

    def failure(self, doing: str, error: Exception) -> PublishError:
        """`doing` failed with `error` (an ApiError or an httpx.HTTPError): a PublishError without the key."""
        if isinstance(error, ApiError):
            explanation = _EXPLANATIONS.get(error.status_code)
            if explanation is None and error.status_code in _RETRIED_STATUSES:
                explanation = f"the marketplace failed, also after {self.attempts} attempts"
            reason = f"{explanation} " if explanation else ""
            text = f"{doing} failed: {reason}(HTTP {error.status_code}: {error.message})"
        else:
            text = (
                f"{doing} failed: {self.host} could not be reached after {self.attempts} attempts "
                f"({type(error).__name__}: {error})"
            )
        return PublishError(redact(text, self.api_key))


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
    connection = Connection(host, api_key, timeout_seconds, attempts, backoff_seconds)
    published = []
    with connection.client() as client:
        for document in items:
            try:
                response = client.http.put_json(document.path, document.body)
            except (ApiError, httpx.HTTPError) as error:
                raise connection.failure(f"publishing the {document.kind} {document.id}", error) from None
            link = response.location_html
            published.append(f"published the {document.kind} {document.id}" + (f": {link}" if link else ""))
            logger.info(published[-1])
    return published


@dataclass(frozen=True)
class ProviderPort:
    """What an input port of the ODPS file reads: the provider's data product and output port."""

    name: str
    data_product_id: str
    output_port_id: str

    @property
    def provider(self) -> str:
        return f"{self.data_product_id}/{self.output_port_id}"


def input_ports(product: Mapping[str, object]) -> list[ProviderPort]:
    """The ODPS input ports, each naming its provider's data product and output port."""
    ports = []
    for port in product.get("inputPorts") or []:  # type: ignore[attr-defined]
        custom = {p.get("property"): p.get("value") for p in port.get("customProperties") or []}
        missing = [name for name in ("dataProductId", "outputPortId") if not custom.get(name)]
        if missing:
            raise ConfigurationError(
                f"the data product's input port {port.get('name')} names no provider: "
                f"customProperties {', '.join(missing)} are missing"
            )
        ports.append(ProviderPort(str(port.get("name")), str(custom["dataProductId"]), str(custom["outputPortId"])))
    return ports


def _agreement_state(access: Access, today: date) -> str:
    info = access.info
    status = info.status.value if info.status is not None else "without a status"
    if status == "approved" and info.startDate is not None and info.startDate > today:
        return f"approved, not active (it starts on {info.startDate.isoformat()})"
    if status == "approved" and info.endDate is not None and info.endDate < today:
        return f"approved, not active (it ended on {info.endDate.isoformat()})"
    return f"{status}, not active"


def check_access(consumer: str, ports: Sequence[ProviderPort], connection: Connection) -> list[str]:
    """Every input port has an active access agreement for `consumer`; else a PublishError naming each that has not.

    Entropy Data's Databricks connector grants the provider's tables only on an active
    agreement, to the consumer data product's service principal the job runs as: without
    one, the job could read its inputs only with rights the agreement does not govern.
    """
    agreements: list[Access] = []
    with connection.client() as client:
        page = 0
        while True:
            try:
                listed = client.access.list(page=page, consumer_data_product_id=consumer)
            except (ApiError, httpx.HTTPError) as error:
                raise connection.failure(f"reading the access agreements of {consumer}", error) from None
            agreements.extend(listed)
            # The SDK returns a Page (a list that knows whether another page follows), typed as a list.
            if not getattr(listed, "has_next", False):
                break
            page += 1
    checked, problems = [], []
    for port in ports:
        matching = [
            a
            for a in agreements
            if (a.provider.dataProductId, a.provider.outputPortId) == (port.data_product_id, port.output_port_id)
        ]
        active = [a for a in matching if a.info.active]
        if active:
            checked.append(f"input port {port.name}: access agreement {active[0].id} with {port.provider} is active")
        elif matching:
            today = datetime.now(UTC).date()
            states = "; ".join(f"agreement {a.id} is {_agreement_state(a, today)}" for a in matching)
            problems.append(f"input port {port.name} ({port.provider}): {states}")
        else:
            problems.append(
                f"input port {port.name} ({port.provider}): no access agreement; request one with "
                f"`entropy-data access request {port.data_product_id} {port.output_port_id} "
                f"--consumer-dataproduct {consumer} --purpose '...'`"
            )
    if problems:
        raise PublishError(
            redact(
                f"the data product {consumer} lacks an active access agreement for its inputs, so the job may not "
                "read them:\n" + "\n".join(f"  - {p}" for p in problems),
                connection.api_key,
            )
        )
    for line in checked:
        logger.info(line)
    return checked


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
    """The `publish` command: the contract, then the data product, then the inputs' access agreements.

    The product is published first: an access request needs the consumer data product in
    the marketplace. A dry run only shows the requests.
    """
    host = marketplace_host(config.host)
    items = documents(config.contract, config.product)
    product = items[-1].body
    ports = input_ports(product)
    if config.dry_run:
        for document in items:
            print(describe(document, host))
            print()
        print(f"GET {host.rstrip('/')}/api/access?consumerDataProductId={_segment(product['id'])}")
        print("  then: an active access agreement for " + (", ".join(p.provider for p in ports) or "no input port"))
        print(f"Dry run: nothing was sent to {host}.")
        return EXIT_OK
    api_key = api_key_from_environment()
    if api_key is None:
        raise ConfigurationError(f"{API_KEY_VARIABLE} is not set: the marketplace needs an API key")
    for line in publish(items, host, api_key, timeout_seconds=config.timeout_seconds):
        print(line)
    for line in check_access(str(product["id"]), ports, Connection(host, api_key, config.timeout_seconds)):
        print(line)
    return EXIT_OK
