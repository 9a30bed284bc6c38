"""The whole-process benchmark's measurements: wall time to the command's exit, CPU and peak memory of its processes."""

from __future__ import annotations

import sys

import pytest
import whole_process


def test_a_run_is_timed_to_its_exit_with_the_cpu_and_peak_memory_of_its_processes(tmp_path):
    # A parent that leaves a child holding 200 MiB behind it, as PySpark leaves its JVM.
    child = "import time; x = b'1' * (200 * 2**20); time.sleep(0.5)"
    # It sleeps after its work: the CPU it spent is read while it is still there.
    parent = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
        "sum(range(4 * 10**7)); time.sleep(0.5)"
    )

    wall, cpu, peak = whole_process.run_once([sys.executable, "-c", parent], tmp_path / "log")

    assert 0 < wall < 5
    assert cpu > 0.2
    assert peak >= 200


def test_a_failing_command_voids_the_measurement_and_names_its_log(tmp_path):
    with pytest.raises(SystemExit, match="failed with exit code 3"):
        whole_process.run_once([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path / "log")
    assert "boom" in (tmp_path / "log").read_text()


def test_the_summary_is_of_medians_and_the_highest_peak():
    runs = whole_process.Runs("build", wall_seconds=[10.0, 30.0, 12.0], cpu_seconds=[20.0, 21.0, 19.0])
    runs.peak_rss_mib = [900.0, 1200.0, 1000.0]
    summary = runs.summary()
    assert (summary["wall_seconds_median"], summary["cpu_seconds_median"]) == (12.0, 20.0)
    assert summary["peak_rss_mib_max"] == 1200.0


def test_a_scale_is_organisations_with_rounds_of_children_one_unless_given():
    assert whole_process.scale("500") == (500, 1)
    assert whole_process.scale("300000x4") == (300_000, 4)
    assert [whole_process.scale(s) for s in whole_process.SCALES][-1][0] * 4 * 40 >= 40_000_000
