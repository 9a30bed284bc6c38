"""`python3 dev.py run`, the README's first command: sample data, build, contract test, summary.

Everything a new user needs to see the product work on one machine, without a
workspace: the sample goes to `<workdir>/raw`, the output port to `<workdir>/output`,
both mounted in the local catalog as `build --source-dir --output-dir` mounts them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from datacontract.model.run import ResultEnum
from pyspark.sql import SparkSession

from customer_activity.jobs import local_catalog
from customer_activity.jobs.build import BuildConfig, run_build
from customer_activity.jobs.contract_test import PRODUCTION_SERVER, print_run, verify_server
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK, ConfigurationError
from customer_activity.jobs.lineage import Lineage
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.session import create_spark_session
from customer_activity_dev import sample_data

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRunConfig:
    """One local run: where it works, how big and which sample, and for which day."""

    workdir: Path
    organizations: int = 500
    seed: int = 42
    as_of: date = field(default_factory=lambda: datetime.now(UTC).date())

    def __post_init__(self) -> None:
        if self.organizations < 1:
            raise ConfigurationError(f"the sample needs at least one organisation, not {self.organizations}")

    @property
    def source(self) -> Path:
        return self.workdir / "raw"

    @property
    def output(self) -> Path:
        return self.workdir / "output"


def run(config: LocalRunConfig, lineage: Lineage | None = None) -> int:
    """Generate, build and test; EXIT_CONTRACT_VIOLATION if the published output fails its contract.

    Lineage goes where OpenLineage's own configuration says, unless `lineage` is given.
    """
    # From when the command was typed where dev.py says so (its set-up included), else from here.
    started = _seconds("CUSTOMER_ACTIVITY_STARTED_AT") or time.time()
    counts = sample_data.generate(config.source, config.organizations, config.as_of, config.seed)
    print(f"Generated {sum(counts.values())} raw rows for {config.organizations} organisations in {config.source}")
    spark = create_spark_session(input_bytes=local_catalog.source_bytes(config.source))
    output = local_catalog.mount_output(spark, config.output, datetime.now(UTC))
    build = BuildConfig(
        source=local_catalog.source_location(config.source),
        prepare_inputs=lambda session: local_catalog.mount_source(session, config.source),
        output=output,
        as_of=config.as_of,
        report_path=config.output / local_catalog.REPORT_FILE,
        # Every run generates its sample anew (another size, another day): the change gate
        # still measures it against the last output, and this says why it may publish.
        accept_change=f"dev.py run: a newly generated sample of {config.organizations} organisations",
    )
    with (lineage or Lineage.configure()).closing() as emitting:
        report = run_build(spark, build, emitting)
    print(report.summary(build.report_path))
    passed = check_published(spark, output)
    install_duckdb_delta()
    print("\nLook at it: the README's 'Look at the output' (deltalake, DuckDB, Spark, earlier versions);")
    print(f"test it again: .venv/bin/customer-activity test-contract --output-dir {config.output}")
    print(done_message(time.time() - started, _seconds("CUSTOMER_ACTIVITY_SETUP_SECONDS") or 0.0))
    return EXIT_OK if passed else EXIT_CONTRACT_VIOLATION


def _seconds(variable: str) -> float | None:
    """A time dev.py handed over; None when there is none (started otherwise) or it is not a number."""
    try:
        return float(os.environ.get(variable, ""))
    except ValueError:
        return None


def done_message(waited: float, setup: float) -> str:
    """The time the person waited; dev.py's own set-up (the environment, the class archive) said apart."""
    if setup < 0.5:
        return f"Done in {waited:.1f} s."
    return f"Done in {waited:.1f} s: {setup:.1f} s preparing the environment, {waited - setup:.1f} s the run."


def check_published(spark: SparkSession, output: OutputLocation) -> bool:
    """Test a just-published output as its consumers would; print the result table only when it fails."""
    run = verify_server(spark, PRODUCTION_SERVER, output=output)
    passed = run.result == ResultEnum.passed
    print()
    print(f"Contract test of the published output (datacontract-cli, server '{PRODUCTION_SERVER}'):")
    if passed:
        print(f"  {run.result.value}: {len(run.checks or [])} checks, none failed")
    else:
        print_run(run)
    return passed


def install_duckdb_delta() -> None:
    """DuckDB's delta extension, installed from its pinned package where DuckDB looks for it.

    For the plain `datacontract test --server local` of docs/local.md, which reads the local Delta
    table with DuckDB's `delta_scan`: DuckDB would download the extension from its own
    server at first use, an unpinned binary, and a failure where only the package index
    can be reached. Installed from the package (under ~/.duckdb, as `INSTALL delta` would).
    Only a convenience: the run's own contract test reads the table through the catalog.
    """
    try:
        import duckdb  # noqa: PLC0415
        import duckdb_extension_delta  # noqa: PLC0415
    except ImportError as error:
        logger.warning("DuckDB's delta extension is not installed (%s is missing)", error.name)
        return
    connection = duckdb.connect()
    try:
        query = "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'"
        installed = connection.sql(query).fetchone()
        if installed is not None and installed[0]:
            return
        extension = Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        extension /= "delta.duckdb_extension"
        if not extension.is_file():
            logger.warning("duckdb-extension-delta has no build for DuckDB %s (%s)", duckdb.__version__, extension)
            return
        connection.install_extension(str(extension))
        logger.info("installed DuckDB's delta extension from %s", extension)
    finally:
        connection.close()
