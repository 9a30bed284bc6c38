"""One local Spark session for the whole test run, configured as the jobs configure it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from customer_activity.jobs import io
from http_server import RecordingServer

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_SCHEMAS = REPOSITORY.parent / "shared" / "schemas"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = io.create_spark_session()
    # Test frames hold a handful of rows: fewer partitions, fewer tiny tasks.
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server
