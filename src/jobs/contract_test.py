"""The consumer-side contract test: datacontract-cli checks the *published* output.

The pre-publish audit guards what gets published; this test looks at the table the
way a consumer does, with the contract's own tool, against its catalog server
(`production`), pointed at the table tested: on Databricks the Unity Catalog table,
locally the table the command line mounted in Spark's catalog, both through the job's
Spark session. Results are published to the marketplace when an API key is configured;
a failed publication is reported and never changes the verdict.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer
from datacontract.data_contract import DataContract
from datacontract.model.run import ResultEnum, Run
from datacontract.output.test_results_writer import write_test_result
from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession
from rich.console import Console

from customer_activity.jobs import secrets
from customer_activity.jobs.contract import load_contract
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK
from customer_activity.jobs.publishing import OutputLocation, has_information_schema
from customer_activity.jobs.secrets import Secret

logger = logging.getLogger(__name__)

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
        return (
            None
            if api_key is None
            else cls(host=host or os.environ.get(secrets.HOST_VARIABLE) or None, api_key=api_key)
        )


@dataclass(frozen=True)
class ContractTestConfig:
    """One consumer-side test: which published output, against which contract server."""

    output: OutputLocation
    server: str = PRODUCTION_SERVER
    contract_path: Path | None = None
    secret_scope: str | None = None
    secret_key: str = secrets.DEFAULT_SECRET_KEY
    results_host: str | None = None


def test_contract(spark: SparkSession, config: ContractTestConfig) -> int:
    """The `test-contract` command: test, print the result table, publish the results."""
    results = ResultsTarget.configured(config.secret_scope, config.secret_key, config.results_host)
    run = verify_server(spark, config.server, config.contract_path, config.output, results)
    print(f"Contract test of {config.output.published} (datacontract-cli, server '{config.server}'):")
    print_run(run)
    _report_publication(run, results)
    return EXIT_OK if _passed(run) else EXIT_CONTRACT_VIOLATION


def verify_server(
    spark: SparkSession,
    server: str,
    contract_path: Path | None = None,
    output: OutputLocation | None = None,
    results: ResultsTarget | None = None,
) -> Run:
    """Test the table a contract server names, on `spark`.

    `output` points the server at its table instead, so that a development deployment, or a
    local output, is tested rather than production's table.
    """
    location = (output.table.catalog, output.table.schema) if output is not None else None
    model = load_contract(contract_path).for_server(server, location)
    # datacontract-cli takes its settings keyed by their environment variable names.
    config = {"ENTROPY_DATA_API_KEY": results.api_key.reveal()} if results else None
    if results and results.host:
        config = {**(config or {}), "ENTROPY_DATA_HOST": results.host}
    with _quiet_catalog_fallbacks(local=location is not None and not has_information_schema(spark, location[0])):
        # Failed samples show the marketplace which organisations broke a rule; datacontract-cli
        # leaves out the columns the contract classifies as personal (or secret).
        run = DataContract(
            data_contract=model,
            spark=spark,
            server=server,
            publish_test_results=results is not None,
            config=config,
            include_failed_samples=True,
        ).test()
    logger.info("contract test on server %s: %s", server, run.result)
    return run


@contextlib.contextmanager
def _quiet_catalog_fallbacks(local: bool) -> Iterator[None]:
    """Quiet about what datacontract-cli does where a catalog has no information_schema (Spark's
    own): the query it expects to fail (PySpark logs each with a useless trace; a local JVM's
    listener bus is quiet by configuration) and, there, its note that it compares logical types."""
    query_logger, run_logger = PySparkLogger.getLogger("SQLQueryContextLogger"), logging.getLogger(Run.__module__)
    level = query_logger.level
    query_logger.setLevel(logging.CRITICAL)
    if local:
        run_logger.addFilter(_logical_type_fallback)
    try:
        yield
    finally:
        query_logger.setLevel(level)
        run_logger.removeFilter(_logical_type_fallback)


def _logical_type_fallback(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Could not read the column types")


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
