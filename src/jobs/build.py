"""The build job: input ports -> staging -> intermediate -> output port, guarded by the contract.

Order of events, each step only after the previous one succeeded:
1. read the contract and derive the output schema from it; read the provider's contract and
   hold the input ports to it (warning where the marketplace publishes another version);
2. read and check every input table (missing tables or columns stop the run here);
3. build the candidate and write it to a staging location while the raw rows that break the
   provider's row rules are quarantined beside it; beyond its tolerances the run stops here
   (see `input_contract`);
4. audit the staged candidate against the contract;
5. compare it with the published table (the change gate, see `change`);
6. publish it in one atomic step.
Whatever fails, the published output stays exactly as it was, and a run report
says what happened.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from customer_activity.jobs import change, history, input_contract, inputs, publishing, secrets
from customer_activity.jobs.audit import aggregate, audit, plain_metrics
from customer_activity.jobs.contract import OutputContract, load_contract, provider_contract_path
from customer_activity.jobs.errors import (
    ChangeRefusedError,
    ConfigurationError,
    ContractDefinitionError,
    ContractViolationError,
    CustomerActivityError,
)
from customer_activity.jobs.input_contract import ProviderContract
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.lineage import Lineage
from customer_activity.jobs.publishing import OutputLocation
from customer_activity.jobs.report import RunReport, TableReport
from customer_activity.transforms import output_ports, staging
from customer_activity.transforms.staging import STAGING_MODELS

logger = logging.getLogger(__name__)
# Each step of a build as it starts and ends: what a person at a terminal, or a job's log,
# follows while a long build runs (the command line shows it without --verbose).
steps = logging.getLogger("customer_activity.steps")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# As-of dates a build accepts: far beyond any real use on both sides, and well inside
# what Python and Spark can compute with (the 30-day window, sample histories).
EARLIEST_AS_OF, LATEST_AS_OF = date(1900, 1, 1), date(2999, 12, 31)


def as_of_problem(as_of: date) -> str | None:
    """Why `as_of` cannot be a build's as-of date, or None."""
    if EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        return None
    return (
        f"the as-of date {as_of.isoformat()} is out of range: it must lie between {EARLIEST_AS_OF} and {LATEST_AS_OF}"
    )


@dataclass(frozen=True)
class BuildConfig:
    """One build: where the inputs are, where the output goes, and for which day.

    The run report goes to `report_path` when there is one. `change_limits` bound how far
    the candidate may move from the published table; `accept_change`, a person's reason
    for letting a larger change through this once. `prepare_inputs` is a step
    the command line adds to make the inputs available in the catalog (it mounts a
    directory there): it runs where the build reads its inputs, so that its errors are
    the build's, and returns, per raw table and column, the rows that lack the column.
    """

    source: InputLocation
    output: OutputLocation
    as_of: date = field(default_factory=lambda: _utc_now().date())
    contract_path: Path | None = None
    report_path: Path | None = None
    prepare_inputs: Callable[[SparkSession], Mapping[str, Mapping[str, int]]] | None = None
    change_limits: change.ChangeLimits = field(default_factory=change.ChangeLimits)
    accept_change: str | None = None
    started_at: datetime = field(default_factory=_utc_now)
    run_id: str = field(default_factory=lambda: f"{_utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ConfigurationError("started_at must be timezone-aware (UTC)")
        problem = as_of_problem(self.as_of)
        if problem:
            raise ConfigurationError(problem)


# How long the run report waits for Spark to hand over observed metrics after the build's
# write, which its listener bus may do a moment later.
_OBSERVATION_WAIT_SECONDS = 1.0


def _observed(observation: Observation, deadline: float) -> dict[str, int] | None:
    """The observed metrics, or None where Spark collected none by `deadline`."""
    # Classic Spark 4.0's `get` waits forever for a plan that ran no task (an empty table);
    # Spark Connect's raises. So classic Spark's own future is asked whether it is done.
    java = getattr(observation, "_jo", None)
    try:
        while java is not None and not java.future().isCompleted():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return dict(observation.get)
    # Spark raises errors of several kinds here (and a cluster may refuse the JVM call):
    # the counts are then taken directly.
    except Exception:  # noqa: BLE001
        return None


def _counted(
    what: str, deadline: float, observation: Observation, frame: DataFrame, metrics: list[Column]
) -> dict[str, int]:
    """The observed metrics, or, where Spark collected none, the same counted directly."""
    observed = _observed(observation, deadline)
    if observed is not None:
        return observed
    # Spark collects no observed metrics from a plan that ran no task (an empty table):
    # count directly, which is cheap for exactly that case.
    logger.info("%s were not observed while the build ran; counted directly", what)
    return {name: int(value) for name, value in aggregate(frame, metrics).items()}


def _observe(observation: Observation, frame: DataFrame, metrics: list[Column]) -> DataFrame:
    if type(frame).__module__.startswith("pyspark.sql.connect"):
        # The Spark Connect client of Spark 4.0 (and Databricks Connect 17) fails on a plan
        # where one observation feeds both sides of a join, as a staged table that two
        # models read does (SPARK-56322, fixed in Spark 4.2): the counts are then taken
        # directly after the build, at the cost of another pass over each table.
        return frame
    return frame.observe(observation, *metrics)


class StagingCounts:
    """What staging did to one input table, for the run report, observed while the build runs.

    Raw rows and NULL keys are observed on the raw scan; kept rows and unparseable
    timestamps between staging's steps, on the deduplicated rows only.
    """

    def __init__(self, table: str, raw: DataFrame, rows_missing_columns: Mapping[str, int] | None = None) -> None:
        self.model = STAGING_MODELS[table]
        self.raw = raw
        self.rows_missing_columns = dict(rows_missing_columns or {})
        self._raw_observed: tuple[Observation, DataFrame, list[Column]] | None = None
        self._kept_observed: tuple[Observation, DataFrame, list[Column]] | None = None

    def stage(self) -> DataFrame:
        """The table's staging model, with the counts attached."""
        metrics = [
            F.count(F.lit(1)).alias("rows"),
            F.count_if(F.col(self.model.port.key).isNull()).alias("null_key_rows"),
        ]
        self._raw_observed = (Observation(f"{self.model.port.table}_raw"), self.raw, metrics)
        return staging.stage(_observe(*self._raw_observed), self.model, on_kept=self._observe_kept)

    def _observe_kept(self, parsed: DataFrame) -> DataFrame:
        metrics = [
            F.count(F.lit(1)).alias("rows"),
            F.count_if(F.col(staging.UNPARSEABLE)).alias("unparseable_timestamp_rows"),
        ]
        self._kept_observed = (Observation(f"{self.model.port.table}_kept"), parsed, metrics)
        return _observe(*self._kept_observed)

    def report(self, deadline: float | None = None) -> TableReport:
        """The counts; call it after the staged frame has been computed.

        Metrics Spark has not handed over by `deadline` (time.monotonic()) are counted directly.
        """
        if self._raw_observed is None or self._kept_observed is None:
            raise RuntimeError("report() before stage(): nothing was counted")
        deadline = time.monotonic() + _OBSERVATION_WAIT_SECONDS if deadline is None else deadline
        raw = _counted(f"{self.model.port.table}'s raw rows", deadline, *self._raw_observed)
        kept = _counted(f"{self.model.port.table}'s kept rows", deadline, *self._kept_observed)
        # Only versioned tables drop rows without a key; test results keep them all.
        dropped = raw["null_key_rows"] if self.model.port.versioned else 0
        return TableReport(
            rows=raw["rows"],
            null_key_rows_dropped=dropped,
            superseded_versions_removed=raw["rows"] - dropped - kept["rows"],
            unparseable_timestamp_rows=kept["unparseable_timestamp_rows"],
            rows_after_staging=kept["rows"],
            rows_missing_columns=self.rows_missing_columns,
        )


def stage_with_counts(
    raw: Mapping[str, DataFrame], rows_missing_columns: Mapping[str, Mapping[str, int]] | None = None
) -> tuple[dict[str, DataFrame], dict[str, StagingCounts]]:
    """Staging models over the raw tables, counting what staging drops as the build runs."""
    missing = rows_missing_columns or {}
    counts = {table: StagingCounts(table, frame, missing.get(table)) for table, frame in raw.items()}
    return {table: count.stage() for table, count in counts.items()}, counts


def build_candidate(staged: dict[str, DataFrame], config: BuildConfig, contract: OutputContract) -> DataFrame:
    try:
        return output_ports.customer_activity(staged, config.as_of, config.started_at, contract.spark_schema)
    except output_ports.ContractColumnsMissingError as error:
        raise ContractDefinitionError(f"{contract.path}: {error}") from error


@contextmanager
def _timed(report: RunReport, step: str, doing: str) -> Iterator[None]:
    steps.info("%s ...", doing)
    started = time.perf_counter()
    try:
        yield
    finally:
        report.durations_seconds[step] = round(time.perf_counter() - started, 3)
    steps.info("%s: done in %.1f s", doing, report.durations_seconds[step])


def run_build(spark: SparkSession, config: BuildConfig, lineage: Lineage | None = None) -> RunReport:
    """Build, audit and publish the output port; raises a CustomerActivityError on failure.

    With `lineage`, the run is announced (START) and its end reported (COMPLETE or FAIL).
    """
    lineage = lineage or Lineage(None)
    lineage.about(config.source, config.output)
    contract: OutputContract | None = None
    report = RunReport(
        run_id=config.run_id,
        as_of=config.as_of.isoformat(),
        updated_at=config.started_at.isoformat(),
        contract_id="",
        contract_version="",
        output=config.output.published,
        table_format=publishing.TABLE_FORMAT,
    )
    # Checked before anything is read: a build that cannot publish writes no report.
    config.output.check_usable(spark)
    try:
        with _timed(report, "load_contract", "reading the contract"):
            contract = load_contract(config.contract_path)
        report.contract_id, report.contract_version = contract.id, contract.version
        provider = input_contract.load_provider_contract(provider_contract_path())
        inputs.check_ports(provider)
        input_contract.compare_published(provider, lineage.marketplace)
        lineage.start(contract, config.started_at)
        _run(spark, config, contract, provider, report)
        lineage.complete(contract, report.output_rows, report.checks)
        return report
    except Exception as error:
        explained = isinstance(error, CustomerActivityError)
        message = str(error) if explained else f"internal error: {type(error).__name__}: {error}"
        report.status = "refused" if isinstance(error, ChangeRefusedError) else "failed"
        report.error = secrets.mask_url_credentials(message)
        lineage.fail(contract, report.error)
        raise
    except BaseException as error:
        # Interrupted (Ctrl-C, a stop signal turned into SystemExit): the report says so,
        # rather than showing a run that never ended.
        report.status, report.error = "failed", f"interrupted: {type(error).__name__}"
        raise
    finally:
        report.finished_at = _utc_now().isoformat()
        _write_report(report, config.report_path)
        history.record(spark, config.output, report)


def _run(
    spark: SparkSession, config: BuildConfig, contract: OutputContract, provider: ProviderContract, report: RunReport
) -> None:
    """The build itself; fills `report` as it goes.

    The quarantine runs beside it, in a thread: its Spark job fills the gaps the build's leave
    on the cores. Leaving the block waits for it, so that a build that fails still leaves its
    evidence.
    """
    with ThreadPoolExecutor(max_workers=1) as background:
        _build(spark, config, contract, provider, report, background)


def _build(
    spark: SparkSession,
    config: BuildConfig,
    contract: OutputContract,
    provider: ProviderContract,
    report: RunReport,
    background: ThreadPoolExecutor,
) -> None:
    report.leftovers_removed = config.output.remove_leftovers(spark, config.started_at)
    started_from = config.output.version_now(spark)
    with _timed(report, "read_inputs", "reading the input tables"):
        missing = config.prepare_inputs(spark) if config.prepare_inputs else {}
        raw = inputs.read_raw_tables(spark, config.source)
    # The raw rows that break the provider's row rules, quarantined in one pass beside the build.
    quarantined = background.submit(
        input_contract.quarantine, spark, config.output, raw, provider, config.run_id, config.started_at
    )
    staged, counts = stage_with_counts(raw, missing)
    candidate = build_candidate(staged, config, contract)
    # The audit's plain checks are observed on the rows as they are written: the audit
    # then reads the staged candidate once, for its distinct counts only.
    written = Observation("customer_activity_candidate")
    with publishing.StagingArea(spark, config.output, config.run_id) as staging_area:
        with _timed(report, "build_and_stage", "building and staging the candidate"):
            # A candidate of another schema is the audit's to name, not the observation's to fail on.
            if not contract.schema_differences(candidate.schema):
                candidate = _observe(written, candidate, plain_metrics(contract))
            staged_output = staging_area.write(candidate)
        # One wait for all: once one table's metrics have arrived, the others' have too.
        deadline = time.monotonic() + _OBSERVATION_WAIT_SECONDS
        report.inputs = {table: count.report(deadline) for table, count in counts.items()}
        observed = _observed(written, deadline)
        with _timed(report, "quarantine", "quarantining the raw rows that break the provider's contract"):
            for table, broken in quarantined.result().items():
                report.inputs[table].quarantined = broken
        if any(table.quarantined for table in report.inputs.values()):
            report.quarantine_table = str(config.output.internal(input_contract.QUARANTINE_TABLE))
            where = f"{report.quarantine_table} (run_id '{config.run_id}')"
            input_contract.check_tolerances(provider, report.inputs, where)
        # The change gate's query runs while the audit runs its own: both are mostly small
        # Spark jobs, which fill each other's gaps, and the snapshot the gate loads is the one
        # publishing needs: side by side the gate costs a build no measurable time
        # (docs/performance.md), one after the other it took 1.2 s at 100 000 organisations.
        # Its own executor: leaving it waits for the query, before the staged candidate goes.
        published = config.output.published_rows(spark, started_from)
        with ThreadPoolExecutor(max_workers=1) as pool:
            compared = pool.submit(change.compare, staged_output, published, started_from, config.change_limits)
            with _timed(report, "audit", "auditing the candidate against the contract"):
                view = f"customer_activity_candidate_{uuid.uuid4().hex[:12]}"
                result = audit(staged_output, contract, view, observed=observed)
            report.checks, report.output_rows = result.checks, result.rows
            if result.failures:
                raise ContractViolationError(result.failures)
            with _timed(report, "change_gate", "comparing the candidate with the published table"):
                report.change = compared.result()
        if report.change.exceeded and config.accept_change is None:
            raise report.change.refusal()
        if report.change.exceeded:
            # Recorded only where it let something through: a reason given in advance (dev.py run's) is no override.
            report.change.accepted = config.accept_change
            logger.warning("the change limits are exceeded, and overridden for this build: %s", config.accept_change)
        with _timed(report, "publish", "publishing"):
            report.published_version = staging_area.publish(contract, started_from)
    report.status = "succeeded"


def _write_report(report: RunReport, path: Path | None) -> None:
    """Write the run report; a failure to do so is logged, never raised over the run's own outcome."""
    if path is None:
        return
    try:
        report.write(path)
    except Exception as error:  # noqa: BLE001 - whatever it is, the run's own outcome comes first
        logger.error("the run report could not be written to %s: %s: %s", path, type(error).__name__, error)
