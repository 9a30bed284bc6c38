"""The wheel that the bundle deploys: it builds, carries the contract, and its entry point runs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import bundle_checks
from conftest import REPOSITORY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built the way the bundle's artifact builds it."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(REPOSITORY)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = dist.glob("*.whl")
    return built


def test_the_wheel_is_named_as_the_jobs_package_name_and_carries_the_contract(wheel):
    assert wheel.name.startswith(bundle_checks.wheel_name(REPOSITORY) + "-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "customer_activity/datacontracts/customer_activity_v1.odcs.yaml" in names
    assert "customer_activity/transforms/staging.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_the_wheel_does_not_bring_its_own_spark(wheel):
    """Databricks serverless refuses environments that install PySpark."""
    metadata = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA"))).decode()
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required and not [line for line in required if "pyspark" in line or "delta-spark" in line]


def test_the_installed_wheels_entry_point_runs_the_local_end_to_end_path(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The wheel's copy of the package comes first on the path, ahead of the checkout.
    environment = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "from customer_activity.jobs.contract import default_contract_path as p; print(p())"],
        env=environment, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(target)

    finished = subprocess.run(
        [str(target / "bin" / "customer-activity"), "run", "--workdir", str(tmp_path / "work"), "--organizations", "20"],
        env=environment, capture_output=True, text=True, timeout=600,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Build succeeded" in finished.stdout
    assert "output rows: 20" in finished.stdout
    assert "passed:" in finished.stdout and "none failed" in finished.stdout
