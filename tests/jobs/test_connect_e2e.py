"""The build over Spark Connect, the protocol Databricks serverless compute speaks.

Spark Connect has no RDDs and no SparkContext: a job that used them would fail here.
The job runs as its own process, exactly as the console command runs it, against a
local Spark Connect server (`SPARK_REMOTE=local[2]`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import reference
from local_run import AS_OF, run_report

pytestmark = pytest.mark.e2e


def test_build_over_spark_connect_matches_the_specification(sample_source, tmp_path):
    environment = {**os.environ, "SPARK_REMOTE": "local[2]", "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [sys.executable, "-m", "customer_activity.jobs.cli", "build"]
    arguments = ["--source-dir", str(sample_source), "--output-dir", str(tmp_path), "--as-of", AS_OF.isoformat()]

    finished = subprocess.run(command + arguments, env=environment, capture_output=True, text=True, timeout=600)

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Build succeeded" in finished.stdout
    published = {row["organization_id"]: row for row in pq.read_table(tmp_path / "customer_activity").to_pylist()}
    expected = reference.customer_activity(sample_source, AS_OF)
    assert published.keys() == expected.keys()
    assert all(published[org]["users_total"] == expected[org]["users_total"] for org in expected)
    assert all(published[org]["data_platform"] == expected[org]["data_platform"] for org in expected)
    report = run_report(tmp_path)
    assert report["status"] == "succeeded"
    assert report["inputs"]["organization"]["rows_after_staging"] == len(expected)
