"""OpenLineage run events of the build: START, then COMPLETE or FAIL.

Where they go:
- to Entropy Data (`build --lineage entropy-data`, what the Databricks job does): the
  transport configuration that ships with the product (entropy_data.openlineage.yml),
  with the marketplace's host and its API key from the environment or a Databricks
  secret scope. Without a key, lineage is off with a warning;
- otherwise the standard OpenLineage way (OPENLINEAGE_URL, OPENLINEAGE_CONFIG, an
  openlineage.yml, OPENLINEAGE__TRANSPORT__* variables) or the --lineage-url flag.
  Without any of these, no events are sent and nothing is said about it.
Every event names the data product and the output port in Entropy Data's `entropy_data`
run facet. Lineage is an observer: an unreachable or failing lineage backend is logged
as a warning and never fails the build.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import urlencode

import attr
import yaml
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.generated.base import DatasetFacet, RunFacet

from customer_activity.jobs import secrets
from customer_activity.jobs.audit import CheckResult
from customer_activity.jobs.contract import OutputContract
from customer_activity.jobs.errors import ConfigurationError
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.secrets import Secret, redact
from customer_activity.transforms.input_ports import INPUT_PORTS

logger = logging.getLogger(__name__)

PRODUCER = "https://github.com/entropy-data/customer-activity"
DEFAULT_NAMESPACE = "customer-activity"
JOB_NAME = "customer_activity.build"
OUTPUT_PORT = "customer_activity_v1"
# The data product's id, as the ODPS file and the contract's `dataProduct` give it (a test
# keeps the three equal): a run that fails before its contract is read is still linked.
DATA_PRODUCT_ID = "entropydata-customer-activity"
ENTROPY_DATA_TRANSPORT = "entropy_data.openlineage.yml"


@attr.define
class EntropyDataRunFacet(RunFacet):
    """Links a run to the data product and output port it builds, as Entropy Data reads it.

    Entropy Data's lineage API takes these from the `entropy_data` run facet (or from query
    parameters); `outputPortId` replaced `outputPortName`, which it still accepts as a
    deprecated alias.
    """

    dataProductId: str  # noqa: N815 - OpenLineage facets use camelCase
    outputPortId: str  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return "https://entropy-data.com/spec/facets/1-0-0/EntropyDataRunFacet.json"


def _databricks_namespace() -> str:
    host = os.environ.get("DATABRICKS_HOST", "").removeprefix("https://").rstrip("/")
    return f"databricks://{host}" if host else "databricks"


def _client(url: str | None) -> OpenLineageClient | None:
    """A client if lineage is configured anywhere; None (silently) if not."""
    if url:
        # A few quick retries: lineage must not hold up the build when its backend is down.
        retry = {"total": 3, "connect": 3, "read": 3, "backoff_factor": 0.3}
        return OpenLineageClient(config={"transport": {"type": "http", "url": url, "timeout": 5, "retry": retry}})
    # Without configuration the client falls back to printing events to the console,
    # with a warning; here no configuration means no lineage.
    client_logger = logging.getLogger("openlineage.client.client")
    level = client_logger.level
    client_logger.setLevel(logging.ERROR)
    try:
        client = OpenLineageClient()
    finally:
        client_logger.setLevel(level)
    explicit = bool(client.config.transport and client.config.transport.get("type"))
    if client.transport.kind == "noop" or (client.transport.kind == "console" and not explicit):
        return None
    return client


def entropy_data_transport(host: str, api_key: Secret) -> dict[str, object]:
    """The shipped transport configuration, completed with the marketplace's host and key."""
    shipped = resources.files("customer_activity.jobs").joinpath(ENTROPY_DATA_TRANSPORT).read_text()
    transport: dict[str, object] = yaml.safe_load(shipped)["transport"]
    transport["url"] = host.rstrip("/")
    # Entropy Data documents the link as query parameters, which win over the run facet.
    # `outputPortName`, the deprecated alias of `outputPortId`, is what its API clients up to
    # entropy-data-sdk 0.1.1 still send: with both, a server of either age finds the port.
    link = urlencode({"dataProductId": DATA_PRODUCT_ID, "outputPortId": OUTPUT_PORT, "outputPortName": OUTPUT_PORT})
    transport["endpoint"] = f"{transport['endpoint']}?{link}"
    # openlineage-python sends it as `Authorization: Bearer <key>`, which Entropy Data accepts.
    transport["auth"] = {"type": "api_key", "apiKey": api_key.reveal()}
    return transport


class Lineage:
    """Emits the events of one build run; every method is safe to call when disabled."""

    def __init__(self, client: OpenLineageClient | None, namespace: str | None = None) -> None:
        self._client = client
        self.namespace = namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
        self.run_id = str(uuid.uuid4())
        self.source: InputLocation | None = None
        self.inputs: list[InputDataset] = []
        self.output: OutputDataset | None = None
        # The marketplace the events go to (host and key), which the build also asks for the
        # provider's published contract; None where events go elsewhere or nowhere.
        self.marketplace: tuple[str, Secret] | None = None

    def about(self, source: InputLocation, output: OutputLocation) -> None:
        """The datasets the run's events name: the build's input and output tables, as
        OpenLineage names catalog tables."""
        namespace = _databricks_namespace()
        self.source = source
        self.inputs = input_datasets(source, namespace, None)
        self.output = OutputDataset(namespace=namespace, name=str(output.table))

    @classmethod
    def configure(cls, url: str | None = None, namespace: str | None = None) -> Lineage:
        try:
            return cls(_client(url), namespace)
        # A broken lineage configuration, whatever the client raises, must not stop the build.
        except Exception as error:  # noqa: BLE001
            logger.warning("lineage is off: its configuration could not be used (%s)", error)
            return cls(None, namespace)

    @classmethod
    def to_entropy_data(cls, host: str, api_key: Secret | None, namespace: str | None = None) -> Lineage:
        """Events to Entropy Data's lineage API at `host`; off, with a warning, without a key."""
        if api_key is None:
            logger.warning("lineage is off: no Entropy Data API key is configured")
            return cls(None, namespace)
        try:
            lineage = cls(OpenLineageClient(config={"transport": entropy_data_transport(host, api_key)}), namespace)
            lineage.marketplace = (host, api_key)
            return lineage
        # As in `configure`; the message is redacted, for it is built from the configuration.
        except Exception as error:  # noqa: BLE001
            logger.warning("lineage is off: %s", redact(str(error), api_key))
            return cls(None, namespace)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def _job(self) -> Job:
        return Job(
            namespace=self.namespace,
            name=JOB_NAME,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SPARK", jobType="JOB"),
                "documentation": documentation_job.DocumentationJobFacet(
                    description="Builds the Customer Activity output port, one row per customer organisation."
                ),
            },
        )

    def _run(self, contract: OutputContract | None, nominal: datetime | None, **facets: RunFacet) -> Run:
        run_facets: dict[str, RunFacet] = dict(facets)
        product = (contract.data_product_id if contract is not None else None) or DATA_PRODUCT_ID
        run_facets["entropy_data"] = EntropyDataRunFacet(dataProductId=product, outputPortId=OUTPUT_PORT)
        if nominal is not None:
            run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(nominalStartTime=nominal.isoformat())
        return Run(runId=self.run_id, facets=run_facets)

    def _emit(self, state: RunState, run: Run, output: OutputDataset | None = None) -> None:
        if self._client is None:
            return
        output = output or self.output
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=run,
            job=self._job(),
            producer=PRODUCER,
            inputs=self.inputs,
            outputs=[output] if output else [],
        )
        try:
            self._client.emit(event)
        # Lineage is an observer: its outage, of whatever kind, is not the build's.
        except Exception as error:  # noqa: BLE001
            logger.warning("lineage event %s could not be sent: %s", state.value, error)

    def start(self, contract: OutputContract | None, nominal: datetime) -> None:
        if contract is not None and self.source is not None and self.output is not None:
            self.inputs = input_datasets(self.source, self.output.namespace, contract)
        self._emit(RunState.START, self._run(contract, nominal))

    def complete(self, contract: OutputContract, rows: int | None, checks: Sequence[CheckResult]) -> None:
        output = None
        if self.output is not None and self.source is not None:
            output = output_dataset(self.output, contract, rows, checks, self.source)
        self._emit(RunState.COMPLETE, self._run(contract, None), output)

    def fail(self, contract: OutputContract | None, error: str) -> None:
        message = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
        self._emit(RunState.FAIL, self._run(contract, None, errorMessage=message))

    @contextmanager
    def closing(self) -> Iterator[Lineage]:
        try:
            yield self
        finally:
            if self._client is not None:
                try:
                    self._client.close(timeout=10)
                # Closing flushes queued events; a transport failing at it is only worth a warning.
                except Exception as error:  # noqa: BLE001
                    logger.warning("lineage transport did not close cleanly: %s", error)


def columns_read(contract: OutputContract) -> dict[str, list[str]]:
    """The raw columns the build reads, per table, as the contract's column lineage declares them."""
    read: dict[str, list[str]] = {}
    direct = [pair for sources in contract.column_sources.values() for pair in sources.columns]
    for table, column in dict.fromkeys([*direct, *contract.indirect_sources]):
        read.setdefault(table, []).append(column)
    return read


def input_datasets(source: InputLocation, namespace: str, contract: OutputContract | None) -> list[InputDataset]:
    """The raw tables, as OpenLineage names catalog tables; once the contract is read, each with a
    schema facet of just the columns the build reads of it."""
    read = columns_read(contract) if contract is not None else None

    def facets(table: str) -> dict[str, DatasetFacet]:
        if read is None:
            return {}
        fields = [schema_dataset.SchemaDatasetFacetFields(name=column) for column in read.get(table, [])]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

    return [InputDataset(namespace, str(source.table(table)), facets=facets(table)) for table in INPUT_PORTS]


def column_lineage(
    contract: OutputContract, source: InputLocation, namespace: str
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each output column's raw sources (DIRECT, with how), and those every column depends on (INDIRECT)."""

    def field(table: str, column: str, kind: str, subtype: str) -> column_lineage_dataset.InputField:
        transformation = column_lineage_dataset.Transformation(type=kind, subtype=subtype)
        name = str(source.table(table))
        return column_lineage_dataset.InputField(namespace, name, column, transformations=[transformation])

    fields = {
        name: column_lineage_dataset.Fields(
            inputFields=[field(t, c, "DIRECT", sources.transformation) for t, c in sources.columns]
        )
        for name, sources in contract.column_sources.items()
    }
    # Each takes part in the window that keeps the latest version per key (the key, the version
    # columns, the others as tie-breakers); the keys also in joins.
    dataset = [field(t, c, "INDIRECT", "WINDOW") for t, c in contract.indirect_sources]
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=dataset)


def output_dataset(
    output: OutputDataset,
    contract: OutputContract,
    rows: int | None,
    checks: Sequence[CheckResult],
    source: InputLocation,
) -> OutputDataset:
    """The output port with its contract schema, its column lineage, row count and pre-publish checks."""
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=field.name,
                type=field.dataType.simpleString().upper(),
                description=contract.column_descriptions.get(field.name),
            )
            for field in contract.spark_schema.fields
        ]
    )
    assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(assertion=check.name, success=check.passed, severity="error")
            for check in checks
        ]
    )
    return OutputDataset(
        namespace=output.namespace,
        name=output.name,
        # The client types this facet as an input facet, after a spec slip that OpenLineage
        # is undoing (OpenLineage/OpenLineage#1876): assertions describe any dataset, and
        # here they are the output's own pre-publish checks.
        facets={
            "schema": schema,
            "columnLineage": column_lineage(contract, source, output.namespace),
            "dataQualityAssertions": assertions,  # type: ignore[dict-item]
        },
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
        },
    )


ENTROPY_DATA = "entropy-data"
STANDARD = "standard"


@dataclass(frozen=True)
class LineageSettings:
    """Where lineage events go.

    `standard`: the OpenLineage configuration of the environment, or `url`.
    `entropy-data`: Entropy Data's lineage API at `host` (default: ENTROPY_DATA_HOST, else
    Entropy Data's), with the API key from ENTROPY_DATA_API_KEY or the Databricks secret scope.
    """

    target: str = STANDARD
    url: str | None = None
    namespace: str | None = None
    host: str | None = None
    secret_scope: str | None = None
    secret_key: str = secrets.DEFAULT_SECRET_KEY

    def __post_init__(self) -> None:
        if self.target not in (STANDARD, ENTROPY_DATA):
            raise ConfigurationError(f"lineage goes to {STANDARD!r} or {ENTROPY_DATA!r}, not {self.target!r}")
        if self.target == ENTROPY_DATA and self.url:
            raise ConfigurationError(f"give --lineage-url or --lineage {ENTROPY_DATA}, not both")
        if self.target == STANDARD and (self.host or self.secret_scope):
            raise ConfigurationError(f"--entropy-data-host and --secret-scope need --lineage {ENTROPY_DATA}")

    def open(self) -> Lineage:
        """The build's lineage; off, with a warning, whatever keeps it from working."""
        if self.target == ENTROPY_DATA:
            try:
                api_key = secrets.configured_api_key(self.secret_scope, self.secret_key)
            # Lineage is an observer: a secret scope that cannot be read (no permission,
            # dbutils failing) turns it off and must not stop the build.
            except Exception as error:  # noqa: BLE001
                logger.warning("lineage is off: the Entropy Data API key could not be read (%s)", error)
                return Lineage(None, self.namespace)
            return Lineage.to_entropy_data(secrets.marketplace_host(self.host), api_key, self.namespace)
        return Lineage.configure(self.url, self.namespace)
