"""The embedded session's settings: a command's JVM is set up for one build, a test session's for many."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import urllib.parse
from pathlib import Path

import pyspark
import pytest

from customer_activity.jobs import session
from customer_activity_dev import jvm_cache

JIT_OPTION = "-XX:TieredStopAtLevel=1"
COLLECTOR_OPTION = "-XX:+UseParallelGC"
JAVA_OPTIONS = "spark.driver.defaultJavaOptions"


def java_options(**settings) -> list[str]:
    return shlex.split(session.local_conf(None, **settings)[JAVA_OPTIONS])


def test_a_command_over_small_inputs_runs_without_the_optimising_compiler_and_with_the_throughput_collector():
    assert java_options(long_lived=False)[:2] == [JIT_OPTION, COLLECTOR_OPTION]
    assert java_options(long_lived=False, input_bytes=session.LARGE_INPUT_BYTES - 1)[:2] == [
        JIT_OPTION,
        COLLECTOR_OPTION,
    ]


def test_a_command_over_large_inputs_keeps_the_optimising_compiler():
    assert java_options(long_lived=False, input_bytes=session.LARGE_INPUT_BYTES)[:1] == [COLLECTOR_OPTION]


def test_a_long_lived_session_keeps_it_as_this_test_session_does(spark):
    assert java_options(long_lived=True)[:1] == [COLLECTOR_OPTION]
    assert JIT_OPTION not in jvm_arguments(spark)
    assert COLLECTOR_OPTION in jvm_arguments(spark)


def test_the_jvm_logs_with_the_packaged_configuration_which_exists(spark):
    [option] = [o for o in java_options(long_lived=True) if o.startswith("-Dlog4j2.configurationFile=")]
    uri = option.split("=", 1)[1]
    assert uri.startswith("file:///")
    assert Path(urllib.parse.unquote(uri.removeprefix("file://"))).is_file()
    assert option in jvm_arguments(spark)


@pytest.mark.parametrize("terminal", [True, False])
def test_sparks_progress_bar_is_shown_at_a_terminal_only(monkeypatch, terminal):
    stream = io.StringIO()
    stream.isatty = lambda: terminal  # type: ignore[method-assign]
    monkeypatch.setattr(session.sys, "stderr", stream)
    assert session.local_conf(None, long_lived=False)["spark.ui.showConsoleProgress"] == str(terminal).lower()


def test_spark_submit_gives_the_jvm_the_archive_intact_and_deltas_jars_after_sparks_own(tmp_path, monkeypatch):
    # What spark-submit's launcher makes of the session's settings, without starting Spark.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / 'a "cache" with\\ spaces'))
    monkeypatch.delenv(jvm_cache.SWITCH, raising=False)
    delta_jar = tmp_path / "ivy" / "io.delta_delta-spark_2.13-4.0.1.jar"
    delta_jar.parent.mkdir()
    delta_jar.write_bytes(b"jar")
    archive = jvm_cache.archive_path([delta_jar])
    java = jvm_cache.java_binary()
    assert archive is not None
    assert java is not None
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"classes")
    options = session.local_conf(None, long_lived=False)[JAVA_OPTIONS]
    spark_home = Path(pyspark.__file__).parent
    launcher = [str(java), "-cp", str(spark_home / "jars" / "*"), "org.apache.spark.launcher.Main"]
    # What dev.py hands the commands it starts.
    given = {k: v for k, v in os.environ.items() if k not in ("SPARK_DIST_CLASSPATH", "SPARK_SUBMIT_OPTS")}
    environment = (
        given
        | {"SPARK_HOME": str(spark_home), "SPARK_SCALA_VERSION": "2.13"}
        | jvm_cache.environment(given, [delta_jar])
    )
    submit = ["org.apache.spark.deploy.SparkSubmit", "--conf", f"{JAVA_OPTIONS}={options}", "pyspark-shell"]
    launched = subprocess.run([*launcher, *submit], capture_output=True, text=True, env=environment, check=True)
    command = launched.stdout.split("\0")
    ours = command.index(JIT_OPTION)
    assert command[ours : ours + 2] == [JIT_OPTION, "-XX:+UseParallelGC"]
    assert f"-XX:SharedArchiveFile={archive}" in command
    assert "-Xlog:cds=off,cds+dynamic=off" in command
    class_path = command[command.index("-cp") + 1].split(os.pathsep)
    assert class_path[-1] == str(delta_jar)
    assert any(Path(entry).parent == spark_home / "jars" for entry in class_path[:-1])


def test_this_test_sessions_jvm_got_the_archive_it_was_given(spark):
    # dev.py makes the archive before the tests and hands it to them, so this session started from it.
    given = shlex.split(os.environ.get("SPARK_SUBMIT_OPTS", ""))
    archive_options = [option for option in given if option.startswith("-XX:SharedArchiveFile=")]
    if not archive_options:
        pytest.skip("started without dev.py, which hands the tests the class archive")
    assert archive_options == [argument for argument in jvm_arguments(spark) if argument in archive_options]


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


def test_deltas_classes_come_from_the_class_path_unless_ivy_resolved_them_for_this_session(spark):
    # Handed over by dev.py, Spark's launcher put them on the class path, where the class
    # archive can hold them; otherwise Ivy resolved them for this session.
    resolved_by_ivy = spark.sparkContext.getConf().get("spark.jars.packages", None) is not None
    assert resolved_by_ivy != (session.DELTA_JAR_PREFIX in os.environ.get("SPARK_DIST_CLASSPATH", ""))
    if not resolved_by_ivy:
        jvm = spark.sparkContext._jvm
        loader = jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension").getClassLoader()
        assert loader.equals(jvm.java.lang.ClassLoader.getSystemClassLoader())


@pytest.mark.parametrize(
    ("written", "passed_on"),
    [
        (b"WARNING: Using incubator modules: jdk.incubator.vector\nWARN X: kept\n[Stage 1:> (0 + 1) / 2]\r", 1),
        (b"Ivy Default Cache set to: /cache\n:: resolving dependencies ::\n", 0),
        (b"", 0),
    ],
)
def test_the_jvms_standard_error_is_passed_on_whole_but_for_the_incubator_notice(capfd, written, passed_on):
    reading, writing = os.pipe()
    os.write(writing, written)
    os.close(writing)

    session._forward_jvm_errors(reading)

    assert capfd.readouterr().err == b"".join(written.splitlines(keepends=True)[passed_on:]).decode()
