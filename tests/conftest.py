"""Shared fixtures: one local Spark session for the whole run, a generated sample, a published output."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from customer_activity.jobs import session
from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import EXIT_OK
from customer_activity_dev import sample_data
from customer_activity_testing.http_server import RecordingServer
from customer_activity_testing.marketplace import LoopbackMarketplace
from customer_activity_testing.outputs import AS_OF


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    local = session.create_spark_session(warehouse=tmp_path_factory.mktemp("warehouse"), long_lived=True)
    # Test frames hold a handful of rows: fewer partitions, fewer tiny tasks.
    local.conf.set("spark.sql.shuffle.partitions", "2")
    yield local
    local.stop()


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def marketplace() -> Iterator[LoopbackMarketplace]:
    """A loopback Entropy Data marketplace on 127.0.0.1, with no documents and no access agreements yet."""
    loopback = LoopbackMarketplace()
    with RecordingServer(loopback) as server:
        loopback.server = server
        yield loopback


@pytest.fixture(scope="session")
def sample_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw tables for 150 organisations with every kind of mess the generator makes."""
    source = tmp_path_factory.mktemp("raw")
    sample_data.generate(source, organizations=150, as_of=AS_OF, seed=7)
    return source


@pytest.fixture(scope="session")
def published_output(sample_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output of one good `customer-activity build` over the sample; tests only read it."""
    output = tmp_path_factory.mktemp("published")
    assert (
        main(["build", "--source-dir", str(sample_source), "--output-dir", str(output), "--as-of", AS_OF.isoformat()])
        == EXIT_OK
    )
    return output


@pytest.fixture
def source(sample_source: Path, tmp_path: Path) -> Path:
    """A private copy of the sample's raw tables, for a test that breaks or rewrites them."""
    copy = tmp_path / "raw"
    shutil.copytree(sample_source, copy)
    return copy


@pytest.fixture
def output_copy(published_output: Path, tmp_path: Path) -> Path:
    """A private copy of the published output, for a test that tries to replace it."""
    copy = tmp_path / "out"
    shutil.copytree(published_output, copy)
    return copy
