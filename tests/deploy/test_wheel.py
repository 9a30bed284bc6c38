"""The wheel that the bundle deploys: it builds, carries the contract, and its entry point runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from customer_activity_testing import bundle_checks, reference
from customer_activity_testing.outputs import AS_OF, as_utc, run_report
from customer_activity_testing.outputs import published as published_rows
from customer_activity_testing.paths import REPOSITORY

pytestmark = pytest.mark.e2e


def build_wheel(wheel_dir: Path) -> Path:
    """Built with the bundle artifact's own command, into `wheel_dir` instead of dist/bundle."""
    command = bundle_checks.load(REPOSITORY)["artifacts"]["customer_activity_wheel"]["build"].split()
    assert command[:1] == ["python3"]
    assert command[-3:] == ["--wheel-dir", "dist/bundle", "."]
    subprocess.run(
        [sys.executable, *command[1:-2], str(wheel_dir), "."],
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


def test_the_wheel_is_named_as_the_jobs_package_name_and_carries_the_contract(wheel):
    assert wheel.name.startswith(bundle_checks.wheel_name(REPOSITORY) + "-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "customer_activity/datacontracts/customer_activity_v1.odcs.yaml" in names
    assert "customer_activity/datacontracts/input_ports/entropydata_postgres_raw_v1.odcs.yaml" in names
    assert "customer_activity/transforms/staging.py" in names
    # The Databricks job's lineage transport: a serverless task has no openlineage.yml of its own.
    assert "customer_activity/jobs/entropy_data.openlineage.yml" in names
    # Only what runs on Databricks: no tests, no local tooling (the sample, the JVM cache).
    assert not [n for n in names if n.startswith(("tests/", "customer_activity_dev/")) or "jvm_cache" in n]


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
    # The run history's row goes through Connect's own conversion of the nested report.
    assert "run history" not in finished.stderr
    history = DeltaTable(str(output / ".customer_activity.staging" / "customer_activity_runs"))
    [run] = history.to_pyarrow_table().to_pylist()
    assert (run["status"], run["code_version"]) == ("succeeded", wheel_version(wheel))
    assert dict(run["inputs"])["organization"]["rows"] == run_report(output)["inputs"]["organization"]["rows"]
