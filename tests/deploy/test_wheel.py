"""The wheel that the bundle deploys: it builds, carries the contract, and its entry point runs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from customer_activity_testing import bundle_checks, reference
from customer_activity_testing.outputs import AS_OF, as_utc, run_report
from customer_activity_testing.outputs import published as published_rows
from customer_activity_testing.paths import REPOSITORY

pytestmark = pytest.mark.e2e


def build_wheel(wheel_dir: Path) -> Path:
    """Built with the bundle artifact's own command, into `wheel_dir`."""
    command = bundle_checks.load(REPOSITORY)["artifacts"]["customer_activity_wheel"]["build"].split()
    assert command[:3] == ["python3", "dev.py", "wheel"]
    subprocess.run(
        [sys.executable, *command[1:], "--wheel-dir", str(wheel_dir)],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = wheel_dir.glob("*.whl")
    return built


def wheel_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return next(line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Version: "))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_every_build_has_a_version_of_its_own_and_leaves_no_older_wheel_beside_it(wheel, tmp_path):
    """Serverless environments cache a wheel by name and version: a redeploy needs a new one."""
    (tmp_path / "customer_activity-0.9.0-py3-none-any.whl").write_bytes(b"an older build")
    (tmp_path / "notes.txt").write_text("not a wheel: kept")

    again = build_wheel(tmp_path)

    first, second = wheel_version(wheel), wheel_version(again)
    assert first != second
    assert re.fullmatch(r"\d+\.\d+\.\d+\+\d{20}(\.g[0-9a-f]+)?", second), second
    assert first.split("+")[0] == second.split("+")[0]
    assert again.name == f"customer_activity-{second}-py3-none-any.whl"
    assert (tmp_path / "notes.txt").exists()


def test_the_wheel_is_named_as_the_jobs_package_name_and_carries_the_contract(wheel):
    assert wheel.name.startswith(bundle_checks.wheel_name(REPOSITORY) + "-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "customer_activity/datacontracts/customer_activity_v1.odcs.yaml" in names
    assert "customer_activity/transforms/staging.py" in names
    # The Databricks job's lineage transport: a serverless task has no openlineage.yml of its own.
    assert "customer_activity/jobs/entropy_data.openlineage.yml" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_the_wheel_does_not_bring_its_own_spark(wheel):
    """Databricks serverless refuses environments that install PySpark."""
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA")))
        .decode()
    )
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required
    assert not [line for line in required if "pyspark" in line or "delta-spark" in line]


@pytest.fixture
def connect_server(spark) -> Iterator[str]:
    """A Spark Connect server inside the test session's own JVM; yields its address.

    The build runs as a thin client against it, as a serverless task runs against
    Databricks' compute, and the warm JVM spares a second one.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.spark.SparkEnv.get().conf()
    conf.set("spark.connect.grpc.binding.address", "127.0.0.1")
    conf.set("spark.connect.grpc.binding.port", str(port))
    service = jvm.org.apache.spark.sql.connect.service.SparkConnectService
    service.start(spark.sparkContext._jsc.sc())
    try:
        yield f"sc://127.0.0.1:{port}"
    finally:
        nothing = jvm.scala.Option.empty()
        service.stop(nothing, nothing)


def test_the_installed_wheels_entry_point_builds_over_spark_connect(wheel, sample_source, tmp_path, connect_server):
    """The wheel's console script, as the Databricks task calls it, over Spark Connect.

    Spark Connect is the protocol of Databricks serverless compute: it has no RDDs and
    no SparkContext, so a job that used them would fail here. A local Connect server
    stands in for the workspace.
    """
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The wheel's copy of the package comes first on the path, ahead of the checkout.
    environment = {**os.environ, "PYTHONPATH": str(target), "SPARK_REMOTE": connect_server}
    where = subprocess.run(
        [sys.executable, "-c", "from customer_activity.jobs.contract import default_contract_path as p; print(p())"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(target)
    output = tmp_path / "out"

    finished = subprocess.run(
        [
            str(target / "bin" / "customer-activity"),
            "build",
            "--source-dir",
            str(sample_source),
            "--output-dir",
            str(output),
            "--as-of",
            AS_OF.isoformat(),
        ],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Build succeeded" in finished.stdout
    # The run says which build ran: the wheel's own version, not the checkout's.
    assert f"(customer-activity {wheel_version(wheel)})" in finished.stdout
    assert run_report(output)["code_version"] == wheel_version(wheel)
    published = {row["organization_id"]: row for row in published_rows(output).to_pylist()}
    expected = reference.customer_activity(sample_source, AS_OF)
    assert published.keys() == expected.keys()
    for organization, row in expected.items():
        assert {k: as_utc(v) for k, v in published[organization].items() if k != "updated_at"} == {
            k: as_utc(v) for k, v in row.items()
        }
    assert run_report(output)["status"] == "succeeded"
