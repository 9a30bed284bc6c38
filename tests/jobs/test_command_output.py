"""What a person sees of a build run as a command: its steps, and no noise it cannot act on.

Runs the installed command in a process of its own: the JVM's start-up lines are only
printed when a JVM starts, and the test session's is already running.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from customer_activity_testing.outputs import AS_OF

pytestmark = pytest.mark.e2e

# What Spark and the JVM print on a plain local start unless told otherwise.
NOISE = (
    "Using incubator modules",
    "log4j2-defaults",
    "Setting default log level",
    "To adjust logging level",
    "NativeCodeLoader",
    "Truncated the string representation of a plan",
    "column tags skipped",
)
STEPS = (
    "starting Spark",
    "reading the contract",
    "reading the input tables",
    "building and staging the candidate",
    "auditing the candidate against the contract",
    "publishing",
)


def test_a_build_in_a_log_shows_each_step_with_its_time_and_none_of_sparks_start_up_noise(sample_source, output_copy):
    command = shutil.which("customer-activity", path=str(Path(sys.executable).parent))
    assert command, "the customer-activity command is not installed beside this Python"
    # Into a published output: a first publish's constraints are not what this test is about.
    arguments = ["build", "--source-dir", str(sample_source), "--output-dir", str(output_copy)]
    finished = subprocess.run(
        [command, *arguments, "--as-of", AS_OF.isoformat()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Build succeeded" in finished.stdout
    assert [line for line in finished.stderr.splitlines() if any(noise in line for noise in NOISE)] == []
    for step in STEPS[1:]:
        assert f"customer_activity.steps: {step} ..." in finished.stderr
        assert f"customer_activity.steps: {step}: done in " in finished.stderr
    assert f"customer_activity.steps: {STEPS[0]}" in finished.stderr
    # Not a terminal: no progress bar redrawn in place.
    assert "[Stage " not in finished.stderr
    assert "\r" not in finished.stderr
