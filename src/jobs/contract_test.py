"""The consumer-side contract test: datacontract-cli checks the *published* output.

The pre-publish audit guards what gets published; this test looks at the table the
way a consumer does, with the contract's own tool, against one of its servers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datacontract.data_contract import DataContract
from datacontract.model.run import Run
from datacontract.output.test_results_writer import write_test_result
from pyspark.sql import DataFrame, SparkSession
from rich.console import Console

from customer_activity.jobs.contract import OUTPUT_SCHEMA, default_contract_path

logger = logging.getLogger(__name__)

LOCAL_SERVER = "local"
PRODUCTION_SERVER = "production"


def verify_dataframe(spark: SparkSession, published: DataFrame, contract_path: Path | None = None) -> Run:
    """Test a published output that is read as a DataFrame (the contract's `local` server).

    datacontract-cli's dataframe server finds the data as a view named like the
    contract's schema, so the published output is registered under that name.
    """
    published.createOrReplaceTempView(OUTPUT_SCHEMA)
    return _test(spark, LOCAL_SERVER, contract_path)


def verify_server(spark: SparkSession, server: str, contract_path: Path | None = None) -> Run:
    """Test the table a contract server names (on Databricks: `production`)."""
    return _test(spark, server, contract_path)


def _test(spark: SparkSession, server: str, contract_path: Path | None) -> Run:
    path = contract_path or default_contract_path()
    run = DataContract(data_contract_file=str(path), spark=spark, server=server).test()
    logger.info("contract test on server %s: %s", server, run.result)
    return run


def print_run(run: Run, console: Console | None = None) -> None:
    """The result table datacontract-cli's own `test` command prints."""
    write_test_result(run, console or Console(), output_format=None, output_path=None)
