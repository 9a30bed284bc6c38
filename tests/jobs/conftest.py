"""Shared inputs for the job tests: one generated sample, written once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_activity.jobs import sample_data
from customer_activity.jobs.cli import main
from customer_activity.jobs.errors import EXIT_OK
from local_run import AS_OF


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
    assert main(["build", "--source-dir", str(sample_source), "--output-dir", str(output), "--as-of", AS_OF.isoformat()]) == EXIT_OK
    return output
