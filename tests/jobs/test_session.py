"""The embedded session's settings: a command's JVM is set up for one build, a test session's for many."""

from __future__ import annotations

from pathlib import Path

from customer_activity.jobs import session

JIT_OPTION = "-XX:TieredStopAtLevel=1"


def test_a_commands_session_runs_without_the_optimising_compiler():
    assert session.local_conf(None, long_lived=False)["spark.driver.extraJavaOptions"] == JIT_OPTION


def test_a_long_lived_session_keeps_it_as_this_test_session_does(spark):
    assert "spark.driver.extraJavaOptions" not in session.local_conf(None, long_lived=True)
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert JIT_OPTION not in [str(argument) for argument in runtime.getInputArguments()]


def test_the_warehouse_is_given_to_spark_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert session.local_conf(Path("warehouse"), long_lived=True)["spark.sql.warehouse.dir"] == str(
        tmp_path / "warehouse"
    )


def test_without_a_warehouse_spark_keeps_its_own_default():
    assert "spark.sql.warehouse.dir" not in session.local_conf(None, long_lived=False)
