"""The consumer-side contract test: datacontract-cli checks the *published* output.

The pre-publish audit guards what gets published; this test looks at the table the
way a consumer does, with the contract's own tool, against one of its servers: on
Databricks the catalog table (`production`, on the job's Spark session), locally the
Delta table as DuckDB reads it (`local`), exactly as the plain
`datacontract test --server local` does. Results are published to the marketplace
when an API key is configured; a failed publication is reported and never changes the verdict.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from datacontract.data_contract import DataContract
from datacontract.model.run import ResultEnum, Run
from datacontract.output.test_results_writer import write_test_result
from pyspark.sql import SparkSession
from rich.console import Console

from customer_activity.jobs import secrets
from customer_activity.jobs.catalog import DeltaPath, identifier
from customer_activity.jobs.contract import load_contract
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK, ConfigurationError
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.secrets import Secret
from customer_activity.jobs.session import create_spark_session

logger = logging.getLogger(__name__)

LOCAL_SERVER = "local"
PRODUCTION_SERVER = "production"


@dataclass(frozen=True)
class ResultsTarget:
    """Where test results are published: the marketplace's API and its key."""

    host: str | None
    api_key: Secret

    @classmethod
    def configured(cls, secret_scope: str | None, secret_key: str, host: str | None) -> ResultsTarget | None:
        """The target if an API key is configured: ENTROPY_DATA_API_KEY, else the secret scope."""
        api_key = secrets.configured_api_key(secret_scope, secret_key)
        if api_key is None:
            return None
        return cls(host=host or os.environ.get(secrets.HOST_VARIABLE) or None, api_key=api_key)


@dataclass(frozen=True)
class ContractTestConfig:
    """One consumer-side test: which published output, against which contract server."""

    output: OutputLocation
    server: str | None = None
    contract_path: Path | None = None
    secret_scope: str | None = None
    secret_key: str = secrets.DEFAULT_SECRET_KEY
    results_host: str | None = None

    def __post_init__(self) -> None:
        target = self.output.target
        if isinstance(target, DeltaPath):
            if self.server not in (None, LOCAL_SERVER):
                raise ConfigurationError(f"a local output is tested on the server {LOCAL_SERVER!r}")
            if not target.exists:
                raise ConfigurationError(f"nothing is published at {target}")


def check_testable_locally(path: Path) -> None:
    """Refuse a local table that datacontract-cli's local server cannot open.

    It reads the table with DuckDB's `delta_scan('<path>')`, the path put into the SQL
    string unescaped: a single quote in it ends the string, and the test would report a
    parser error as a broken contract.
    """
    if "'" in str(path.absolute()):
        raise ConfigurationError(
            f"{path.absolute()} holds a single quote, which datacontract-cli's local contract test cannot read: "
            "choose a directory without one"
        )


def test_contract(config: ContractTestConfig) -> int:
    """The `test-contract` command: test, print the result table, publish the results."""
    results = ResultsTarget.configured(config.secret_scope, config.secret_key, config.results_host)
    output = config.output
    target = output.target
    if isinstance(target, DeltaPath):
        server = LOCAL_SERVER
        run = verify_local(target.path, config.contract_path, results)
    else:
        server = config.server or PRODUCTION_SERVER
        location = (target.catalog, target.schema)
        run = verify_server(create_spark_session(), server, config.contract_path, location, results)
    print(f"Contract test of {output.published} (datacontract-cli, server '{server}'):")
    print_run(run)
    _report_publication(run, results)
    return EXIT_OK if _passed(run) else EXIT_CONTRACT_VIOLATION


def check_published(output: OutputLocation, contract_path: Path | None = None) -> bool:
    """Test a just-published local output; print the result table only when it fails."""
    target = output.target
    if not isinstance(target, DeltaPath):
        raise ConfigurationError(f"{output.published} is not a local output")
    run = verify_local(target.path, contract_path)
    passed = _passed(run)
    print()
    print(f"Contract test of the published output (datacontract-cli, server '{LOCAL_SERVER}'):")
    if passed:
        print(f"  {run.result.value}: {len(run.checks or [])} checks, none failed")
    else:
        print_run(run)
    return passed


def install_duckdb_delta() -> None:
    """DuckDB's delta extension, installed from its pinned package where DuckDB looks for it.

    datacontract-cli reads a local Delta table with DuckDB's `delta_scan`, and DuckDB
    would download the extension from its own server at first use: an unpinned binary,
    and a failure wherever only the package index can be reached. Installed from the
    package once (under ~/.duckdb, as `INSTALL delta` would), it also serves the plain
    `datacontract test --server local`.
    """
    # Only local runs read Delta with DuckDB; the wheel on Databricks has neither package.
    try:
        import duckdb  # noqa: PLC0415
        import duckdb_extension_delta  # noqa: PLC0415
    except ImportError as error:
        raise ConfigurationError(
            f"testing a local output needs DuckDB and its delta extension ({error.name} is missing): "
            "install the project's `local` extra (python3 dev.py shell-env does)"
        ) from None
    connection = duckdb.connect()
    try:
        query = "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'"
        installed = connection.sql(query).fetchone()
        if installed is not None and installed[0]:
            return
        extension = Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        extension /= "delta.duckdb_extension"
        if not extension.is_file():
            raise ConfigurationError(
                f"duckdb-extension-delta has no build for DuckDB {duckdb.__version__} ({extension} is missing): "
                "pin the two to the same version"
            )
        connection.install_extension(str(extension))
        logger.info("installed DuckDB's delta extension from %s", extension)
    finally:
        connection.close()


def verify_local(table: Path, contract_path: Path | None = None, results: ResultsTarget | None = None) -> Run:
    """Test a local Delta table against the contract's `local` server, pointed at `table`."""
    check_testable_locally(table)
    install_duckdb_delta()
    return _test(None, LOCAL_SERVER, contract_path, None, results, path=table.absolute())


def verify_server(
    spark: SparkSession,
    server: str,
    contract_path: Path | None = None,
    location: tuple[str, str] | None = None,
    results: ResultsTarget | None = None,
) -> Run:
    """Test the table a contract server names (on Databricks: `production`).

    `location` (catalog, schema) points the server elsewhere, so that a development
    deployment tests its own table rather than production's.
    """
    return _test(spark, server, contract_path, location, results)


def _test(
    spark: SparkSession | None,
    server: str,
    contract_path: Path | None,
    location: tuple[str, str] | None,
    results: ResultsTarget | None,
    path: Path | None = None,
) -> Run:
    if location is not None:
        identifier("catalog", location[0])
        identifier("schema", location[1])
    model = load_contract(contract_path).for_server(server, location, path)
    # datacontract-cli takes its settings keyed by their environment variable names.
    config = {"ENTROPY_DATA_API_KEY": results.api_key.reveal()} if results else None
    if results and results.host:
        config = {**(config or {}), "ENTROPY_DATA_HOST": results.host}
    # A file server is read with DuckDB (spark None); only catalog servers use the job's Spark
    # session. datacontract-cli defaults `spark` to None but annotates it as a SparkSession.
    run = DataContract(
        data_contract=model,
        spark=spark,  # type: ignore[arg-type]
        server=server,
        publish_test_results=results is not None,
        config=config,
    ).test()
    logger.info("contract test on server %s: %s", server, run.result)
    return run


def _passed(run: Run) -> bool:
    # `DataContract.test()` finishes the run, which settles its result.
    return run.result == ResultEnum.passed


def _report_publication(run: Run, results: ResultsTarget | None) -> None:
    """Say what happened to the results; a failed publication never changes the verdict."""
    if results is None:
        print("Test results not published: no marketplace API key is configured.")
    elif run.publish_succeeded:
        print("Test results published to the marketplace.")
    else:
        reasons = [log.message for log in run.logs or [] if log.level == "ERROR" and "publish" in log.message.lower()]
        detail = secrets.redact("; ".join(reasons) or "see the log above", results.api_key)
        print(f"Test results could NOT be published to the marketplace: {detail}", file=sys.stderr)


def print_run(run: Run, console: Console | None = None) -> None:
    """The result table datacontract-cli's own `test` command prints."""
    # After the table of a failed run, the writer ends datacontract-cli's own command with
    # typer.Exit; here the caller turns the verdict into the job's exit code.
    with contextlib.suppress(typer.Exit):
        write_test_result(run, console or Console(), output_format=None, output_path=None)
