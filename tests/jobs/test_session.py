"""The embedded session's settings: a command's JVM is set up for one build, a test session's for many."""

from __future__ import annotations

from pathlib import Path

from customer_activity.jobs import jvm_cache, session

JIT_OPTION = "-XX:TieredStopAtLevel=1"
SHORT_RUN_OPTIONS = f"{JIT_OPTION} -XX:+UseParallelGC"


def test_a_commands_session_runs_without_the_optimising_compiler_and_with_the_throughput_collector(monkeypatch):
    monkeypatch.setenv(jvm_cache.SWITCH, "off")
    assert session.local_conf(None, long_lived=False)["spark.driver.extraJavaOptions"] == SHORT_RUN_OPTIONS


def test_a_long_lived_session_keeps_it_as_this_test_session_does(spark, monkeypatch):
    monkeypatch.setenv(jvm_cache.SWITCH, "off")
    assert "spark.driver.extraJavaOptions" not in session.local_conf(None, long_lived=True)
    assert JIT_OPTION not in jvm_arguments(spark)


def test_a_session_starts_from_the_class_archive_when_there_is_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache with a space"))
    assert "spark.driver.extraJavaOptions" not in session.local_conf(None, long_lived=True)
    archive = jvm_cache.archive_path()
    assert archive is not None
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"classes")
    options = session.local_conf(None, long_lived=False)["spark.driver.extraJavaOptions"]
    assert options == f'{SHORT_RUN_OPTIONS} "-XX:SharedArchiveFile={archive}" -Xlog:cds=off,cds+dynamic=off'


def test_this_test_session_was_started_from_the_archive_if_one_was_made(spark):
    # dev.py makes the archive before the tests; the JVM must have been given it through
    # spark-submit's option parsing intact, quotes removed.
    archive = jvm_cache.archive_path()
    given = f"-XX:SharedArchiveFile={archive}" in jvm_arguments(spark)
    assert given == (archive is not None and archive.is_file())


def jvm_arguments(spark) -> list[str]:
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    return [str(argument) for argument in runtime.getInputArguments()]


def test_the_warehouse_is_given_to_spark_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert session.local_conf(Path("warehouse"), long_lived=True)["spark.sql.warehouse.dir"] == str(
        tmp_path / "warehouse"
    )


def test_without_a_warehouse_spark_keeps_its_own_default():
    assert "spark.sql.warehouse.dir" not in session.local_conf(None, long_lived=False)


def test_deltas_classes_come_from_the_class_path_once_its_jars_are_known(spark):
    # Recorded by the first session (dev.py's training run makes sure of one): then Spark's
    # launcher put them on the class path, where the class archive can hold them.
    jvm = spark.sparkContext._jvm
    loader = jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension").getClassLoader()
    from_class_path = loader.equals(jvm.java.lang.ClassLoader.getSystemClassLoader())
    assert from_class_path == (jvm_cache.known_delta_jars() is not None)
