"""The job's Spark session: Databricks' own, a Spark Connect one, or embedded local Spark."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from customer_activity.jobs.errors import ConfigurationError

_LOCAL_SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # A laptop run handles thousands of rows, not billions: Spark's default of 200
    # shuffle partitions would mean 200 tiny tasks per stage.
    "spark.sql.shuffle.partitions": "8",
    # Spark's default of 1 GiB runs out of heap on a sample of 100 000 organisations;
    # this is a ceiling the JVM grows into, not memory it takes up front.
    "spark.driver.memory": "4g",
    "spark.log.level": "WARN",
}
_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def create_spark_session(table_format: str = "parquet", remote: str | None = None) -> SparkSession:
    """The job's session: Databricks' own, a Spark Connect one, or embedded local Spark.

    Every session works in UTC: timestamps without an offset are UTC instants.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        spark = SparkSession.builder.getOrCreate()
    elif remote or os.environ.get("SPARK_REMOTE"):
        builder = SparkSession.builder
        spark = (builder.remote(remote) if remote else builder).getOrCreate()
    else:
        spark = _local_session(table_format)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def _local_session(table_format: str) -> SparkSession:
    # Embedded Spark talks only to itself: binding to loopback needs no network and
    # avoids guessing (and warning about) the machine's external address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[*]").appName("customer-activity")
    for key, value in _LOCAL_SESSION_CONF.items():
        builder = builder.config(key, value)
    if table_format != "delta":
        return builder.getOrCreate()
    # delta-spark is in the `local` extra only: Databricks brings Delta with its Spark.
    from delta import configure_spark_with_delta_pip  # noqa: PLC0415

    for key, value in _DELTA_CONF.items():
        builder = builder.config(key, value)
    try:
        return configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as error:
        raise ConfigurationError(
            "--table-format delta needs Delta Lake's jars, and Spark could not load them "
            f"({str(error).splitlines()[0]}). Use --table-format parquet where the Maven "
            "repository cannot be reached, or provide the jars with spark.jars."
        ) from error
