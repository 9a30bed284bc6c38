"""The `run` command, the README's first: sample data, build, contract test, summary.

Everything a new user needs to see the product work on one machine, without a
workspace: the sample goes to `<workdir>/raw`, the output port to `<workdir>/output`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from customer_activity.jobs import sample_data
from customer_activity.jobs.build import BuildConfig, run_build
from customer_activity.jobs.contract_test import check_published, check_testable_locally
from customer_activity.jobs.errors import EXIT_CONTRACT_VIOLATION, EXIT_OK, ConfigurationError
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.lineage import Lineage
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.session import create_spark_session


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
        # Said before anything is generated or published, not after the build.
        check_testable_locally(self.output)

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
    started = time.perf_counter()
    counts = sample_data.generate(config.source, config.organizations, config.as_of, config.seed)
    print(f"Generated {sum(counts.values())} raw rows for {config.organizations} organisations in {config.source}")
    build = BuildConfig(
        source=InputLocation(directory=config.source),
        output=OutputLocation(directory=config.output),
        as_of=config.as_of,
    )
    spark = create_spark_session()
    with (lineage or Lineage.configure()).closing() as emitting:
        report = run_build(spark, build, emitting)
    print(report.summary(build.output.report_path))
    passed = check_published(build.output)
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return EXIT_OK if passed else EXIT_CONTRACT_VIOLATION
