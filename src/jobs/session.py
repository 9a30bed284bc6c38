"""The job's Spark session: Databricks' own, a Spark Connect one, or embedded local Spark."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from importlib import metadata, resources
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from customer_activity.jobs.errors import ConfigurationError

_LOCAL_SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    # A laptop run handles thousands of rows, not billions: Spark's default of 200
    # shuffle partitions would mean 200 tiny tasks per stage.
    "spark.sql.shuffle.partitions": "8",
    # Spark's default of 1 GiB runs out of heap on a sample of 100 000 organisations;
    # this is a ceiling the JVM grows into, not memory it takes up front.
    "spark.driver.memory": "4g",
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
# The throughput collector, without G1's concurrent threads competing for a laptop's or a CI
# machine's few cores: a command's build 0.95-0.97 of the wall time at 500, 20 000 and 100 000
# organisations (alternating runs), the test suite 3:08-3:10 instead of 3:23-3:34 (2 cores).
_JVM_OPTIONS = ("-XX:+UseParallelGC",)
# A command's JVM lives for one build. On small inputs the optimising compiler spends
# more CPU compiling Spark than its code then saves: without it a build took 0.85 of the
# wall time at 500 organisations, 0.92 at 100 000 (355 MiB of raw Parquet). On large ones
# the compiled code is what counts: at 44 million raw rows the same build took 1.85 times
# as long without it (docs/performance.md). The raw files' size decides, before the JVM starts.
_SHORT_RUN_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
LARGE_INPUT_BYTES = 512 * 2**20
# Spark's launcher always adds the Vector API's incubator module, and the JVM says so
# first thing on standard error, beyond any log configuration's reach (JEP 11).
_INCUBATOR_WARNING = b"WARNING: Using incubator modules"
# How Ivy names the jar of delta-spark (io.delta_delta-spark_2.13-4.0.1.jar).
DELTA_JAR_PREFIX = "io.delta_delta-spark_"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def create_spark_session(
    remote: str | None = None, warehouse: Path | None = None, long_lived: bool = False, input_bytes: int = 0
) -> SparkSession:
    """The job's session: Databricks' own, a Spark Connect one, or embedded local Spark with Delta.

    Every session works in UTC: timestamps without an offset are UTC instants.
    `warehouse` is where a local session's catalog keeps managed tables. A local session
    that will run many builds (a test session, a benchmark) is `long_lived`; a command's
    runs one and ends, over `input_bytes` of raw files.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        spark = SparkSession.builder.getOrCreate()
    elif remote or os.environ.get("SPARK_REMOTE"):
        builder = SparkSession.builder
        spark = (builder.remote(remote) if remote else builder).getOrCreate()
    else:
        spark = _local_session(local_conf(warehouse, long_lived, input_bytes))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def local_conf(warehouse: Path | None, long_lived: bool, input_bytes: int = 0) -> dict[str, str]:
    """The settings of an embedded session."""
    conf = {**_LOCAL_SESSION_CONF, **DELTA_CONF}
    if warehouse is not None:
        conf["spark.sql.warehouse.dir"] = str(warehouse.absolute())
    # Spark's own progress bar, for a person at a terminal; a log gets the build's step lines only.
    conf["spark.ui.showConsoleProgress"] = "true" if sys.stderr.isatty() else "false"
    quick = not long_lived and input_bytes < LARGE_INPUT_BYTES
    # A file URI: no space, quote, backslash or comma for Spark's or log4j's parsing to split.
    log_configuration = Path(str(resources.files("customer_activity.jobs") / "log4j2-local.properties")).as_uri()
    java_options = [
        *(_SHORT_RUN_JVM_OPTIONS if quick else ()),
        *_JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={log_configuration}",
    ]
    # Spark's place for defaults: a user's own spark.driver.extraJavaOptions add to them.
    conf["spark.driver.defaultJavaOptions"] = " ".join(java_options)
    return conf


def _local_session(conf: dict[str, str]) -> SparkSession:
    """An embedded session with Delta, its jars from the class path if there, else resolved by Ivy."""
    # Embedded Spark talks only to itself: binding to loopback needs no network and
    # avoids guessing (and warning about) the machine's external address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # A development environment put Delta's jars on the class path (`python3 dev.py` does,
    # from where Ivy put them once); otherwise Spark resolves them with Ivy, from Maven
    # Central on the first run, named as delta-spark's configure_spark_with_delta_pip names them.
    resolve = DELTA_JAR_PREFIX not in os.environ.get("SPARK_DIST_CLASSPATH", "")
    if resolve:
        conf = {**conf, "spark.jars.packages": f"io.delta:delta-spark_2.13:{metadata.version('delta-spark')}"}
    spark_conf = SparkConf().setMaster("local[*]").setAppName("customer-activity").setAll(list(conf.items()))
    try:
        # Only a process's first session starts a JVM; later ones use its gateway.
        if SparkContext._gateway is None:
            _start_jvm(spark_conf)
        return SparkSession.builder.config(conf=spark_conf).getOrCreate()
    except Exception as error:
        if not resolve:
            raise
        raise ConfigurationError(
            "the output port is a Delta table, and Spark could not load Delta Lake's jars "
            f"({str(error).splitlines()[0]}). The first run downloads them from Maven Central "
            "into Ivy's cache under your home directory: check that Maven Central can be reached, "
            "or provide the jars with spark.jars."
        ) from error


def _start_jvm(conf: SparkConf) -> None:
    """Start the session's JVM as the builder would, its standard error through a filter (what
    PySpark's `popen_kwargs` are for), read from before it starts: Ivy's output never waits."""
    reading, writing = os.pipe()
    forwarding = threading.Thread(target=_forward_jvm_errors, args=(reading,), daemon=True)
    forwarding.start()
    try:
        SparkContext(conf=conf, gateway=launch_gateway(conf, popen_kwargs={"stderr": writing}))  # type: ignore[no-untyped-call]
    except BaseException:
        os.close(writing)
        # A JVM that failed to start has ended: what it said is passed on within moments.
        forwarding.join(timeout=2)
        raise
    os.close(writing)


def _forward_jvm_errors(descriptor: int) -> None:
    """The JVM's standard error on ours as it comes (a progress bar has no line ends), without
    the incubator warning; read to its end whatever befalls the writing, lest the JVM wait."""
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        first = stream.readline()
        pending = b"" if first.startswith(_INCUBATOR_WARNING) else first
        while True:
            with contextlib.suppress(OSError):
                while pending:
                    pending = pending[os.write(2, pending) :]
            if not (pending := stream.read(65536)):
                return
