"""The consumer-side contract test: datacontract-cli checks the *published* output.

The pre-publish audit guards what gets published; this test looks at the table the
way a consumer does, with the contract's own tool, against one of its servers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datacontract.data_contract import DataContract
from datacontract.model.run import Run
from datacontract.output.test_results_writer import write_test_result
from pyspark.sql import DataFrame, SparkSession
from rich.console import Console

from customer_activity.jobs.catalog import identifier
from customer_activity.jobs.contract import OUTPUT_SCHEMA, default_contract_path
from customer_activity.jobs.errors import ContractDefinitionError
from customer_activity.jobs.secrets import Secret

logger = logging.getLogger(__name__)

LOCAL_SERVER = "local"
PRODUCTION_SERVER = "production"


@dataclass(frozen=True)
class ResultsTarget:
    """Where test results are published: the marketplace's API and its key."""

    host: str | None
    api_key: Secret


def verify_dataframe(
    spark: SparkSession, published: DataFrame, contract_path: Path | None = None, results: ResultsTarget | None = None
) -> Run:
    """Test a published output that is read as a DataFrame (the contract's `local` server).

    datacontract-cli's dataframe server finds the data as a view named like the
    contract's schema, so the published output is registered under that name.
    """
    published.createOrReplaceTempView(OUTPUT_SCHEMA)
    return _test(spark, LOCAL_SERVER, contract_path, None, results)


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
    spark: SparkSession, server: str, contract_path: Path | None, location: tuple[str, str] | None, results: ResultsTarget | None
) -> Run:
    path = contract_path or default_contract_path()
    model = DataContract(data_contract_file=str(path)).get_data_contract()
    [target] = [s for s in model.servers or [] if s.server == server] or [None]
    if target is None:
        raise ContractDefinitionError(f"data contract {path} has no server named {server!r}")
    if location is not None:
        catalog, schema = location
        identifier("catalog", catalog)
        identifier("schema", schema)
        target.catalog, target.schema_ = catalog, schema
    # datacontract-cli takes its settings keyed by their environment variable names.
    config = {"ENTROPY_DATA_API_KEY": results.api_key.reveal()} if results else None
    if results and results.host:
        config = {**(config or {}), "ENTROPY_DATA_HOST": results.host}
    run = DataContract(
        data_contract=model, spark=spark, server=server, publish_test_results=results is not None, config=config
    ).test()
    logger.info("contract test on server %s: %s", server, run.result)
    return run


def print_run(run: Run, console: Console | None = None) -> None:
    """The result table datacontract-cli's own `test` command prints."""
    write_test_result(run, console or Console(), output_format=None, output_path=None)
