"""A build where Delta Lake's jars cannot be had: one clear message, nothing published.

Runs the installed command in a process of its own, because the jars are resolved when
a JVM starts and the test session's JVM is already running. Ivy is pointed at an
empty repository and an empty cache, so resolution fails the same way on every
machine, also on one that could reach Maven Central.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from customer_activity.jobs.errors import EXIT_USAGE
from customer_activity_testing.outputs import AS_OF

pytestmark = pytest.mark.e2e

IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="empty"/>
  <resolvers>
    <filesystem name="empty">
      <artifact pattern="{repository}/[organisation]/[module]/[revision]/[artifact].[ext]"/>
    </filesystem>
  </resolvers>
</ivysettings>
"""


def test_delta_without_its_jars_fails_with_a_clear_message_and_publishes_nothing(sample_source, tmp_path):
    repository = tmp_path / "empty-repository"
    repository.mkdir()
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(IVY_SETTINGS.format(repository=repository))
    command = shutil.which("customer-activity", path=str(Path(sys.executable).parent))
    assert command, "the customer-activity command is not installed beside this Python"
    output = tmp_path / "output"
    # Not the jars and the class archive that dev.py hands the commands it starts.
    given = {k: v for k, v in os.environ.items() if k not in ("SPARK_DIST_CLASSPATH", "SPARK_SUBMIT_OPTS")}
    environment = given | {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYSPARK_SUBMIT_ARGS": (
            f"--conf spark.jars.ivySettings={settings} --conf spark.jars.ivy={tmp_path / 'ivy-cache'} pyspark-shell"
        ),
    }
    environment.pop("SPARK_REMOTE", None)
    arguments = ["build", "--source-dir", str(sample_source), "--output-dir", str(output), "--as-of", AS_OF.isoformat()]
    finished = subprocess.run(
        [command, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert finished.returncode == EXIT_USAGE, finished.stderr[-2000:]
    assert "unresolved dependency: io.delta#delta-spark" in finished.stderr  # the path under test
    last_line = finished.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "customer-activity build failed: the output port is a Delta table, and Spark could not load Delta Lake's jars"
    )
    assert "check that Maven Central can be reached" in last_line
    assert not (output / "customer_activity").exists()
