"""The job's Spark session: Databricks' own, a Spark Connect one, or embedded local Spark."""

from __future__ import annotations

import os
from pathlib import Path

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
    # Delta rebuilds a table's state from its log in 50 partitions by default, sized for
    # logs of clusters; a local table's log is a few files, and 50 tiny tasks made every
    # read and commit of it cost seconds (an ADD CONSTRAINT 3 s instead of 0.5 s).
    "spark.databricks.delta.snapshotPartitions": "2",
    # Spark keeps 100 compiled query classes by default, fewer than one build generates:
    # a second build in the same session (run's contract test, a notebook, the tests)
    # compiled everything again, and the JVM then compiled those classes again too.
    # Measured on the 150-organisation sample, warm: 4.0 s instead of 5.6 s per build.
    "spark.sql.codegen.cache.maxEntries": "2000",
}
# The throughput collector, without G1's concurrent threads competing for a laptop's or
# a CI machine's few cores: a command's build 0.95-0.97 of the wall time at 500, 20 000
# and 100 000 organisations (alternating runs), the test suite 3:08-3:10 instead of
# 3:23-3:34 (2 cores).
_JVM_OPTIONS = ("-XX:+UseParallelGC",)
# A command's JVM lives for one build. The optimising compiler spends more CPU compiling
# Spark than its code then saves: without it a build takes 0.85 of the wall time at 500
# organisations, 0.92 at 100 000. A session running dozens of builds gains from it (the
# test suite took 4:00 without it).
_SHORT_RUN_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
# How Ivy names the jar of delta-spark (io.delta_delta-spark_2.13-4.0.1.jar).
DELTA_JAR_PREFIX = "io.delta_delta-spark_"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def create_spark_session(
    remote: str | None = None, warehouse: Path | None = None, long_lived: bool = False
) -> SparkSession:
    """The job's session: Databricks' own, a Spark Connect one, or embedded local Spark with Delta.

    Every session works in UTC: timestamps without an offset are UTC instants.
    `warehouse` is where a local session's catalog keeps managed tables. A local session
    that will run many builds (a test session, a benchmark) is `long_lived`; a command's
    runs one and ends.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        spark = SparkSession.builder.getOrCreate()
    elif remote or os.environ.get("SPARK_REMOTE"):
        builder = SparkSession.builder
        spark = (builder.remote(remote) if remote else builder).getOrCreate()
    else:
        spark = _local_session(local_conf(warehouse, long_lived))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def local_conf(warehouse: Path | None, long_lived: bool) -> dict[str, str]:
    """The settings of an embedded session."""
    conf = {**_LOCAL_SESSION_CONF, **DELTA_CONF}
    if warehouse is not None:
        conf["spark.sql.warehouse.dir"] = str(warehouse.absolute())
    java_options = [*([] if long_lived else _SHORT_RUN_JVM_OPTIONS), *_JVM_OPTIONS]
    # Spark's place for defaults: a user's own spark.driver.extraJavaOptions add to them.
    conf["spark.driver.defaultJavaOptions"] = " ".join(java_options)
    return conf


def _local_session(conf: dict[str, str]) -> SparkSession:
    """An embedded session with Delta, its jars from the class path if there, else resolved by Ivy."""
    # Embedded Spark talks only to itself: binding to loopback needs no network and
    # avoids guessing (and warning about) the machine's external address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[*]").appName("customer-activity")
    for key, value in conf.items():
        builder = builder.config(key, value)
    if DELTA_JAR_PREFIX in os.environ.get("SPARK_DIST_CLASSPATH", ""):
        # A development environment put Delta's jars on the class path (`python3 dev.py`
        # does, from where Ivy put them once): nothing to resolve.
        return builder.getOrCreate()
    # delta-spark is in the `local` extra only: Databricks brings Delta with its Spark.
    from delta import configure_spark_with_delta_pip  # noqa: PLC0415

    try:
        # Spark resolves Delta's jars with Ivy: from Maven Central on the first run,
        # from the cache under ~/.ivy2* after that.
        return configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as error:
        raise ConfigurationError(
            "the output port is a Delta table, and Spark could not load Delta Lake's jars "
            f"({str(error).splitlines()[0]}). The first run downloads them from Maven Central "
            "into Ivy's cache under your home directory: check that Maven Central can be reached, "
            "or provide the jars with spark.jars."
        ) from error
