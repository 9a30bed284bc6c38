"""The run report: what a build read, dropped, repaired, checked and wrote."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

from customer_activity.jobs.audit import CheckResult
from customer_activity.jobs.change import Change

logger = logging.getLogger(__name__)


def code_version() -> str:
    """The installed build of this product: on Databricks, tells which deployment ran."""
    try:
        return metadata.version("customer-activity")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@dataclass
class TableReport:
    rows: int = 0
    null_key_rows_dropped: int = 0
    superseded_versions_removed: int = 0
    unparseable_timestamp_rows: int = 0
    rows_after_staging: int = 0
    # Per column the output uses: raw rows from files that lack it (dlt added it later).
    rows_missing_columns: dict[str, int] = field(default_factory=dict)
    # Per row rule of the provider's contract: the raw rows that break it, copied to the quarantine
    # as evidence (the build treats them as the specification says).
    quarantined: dict[str, int] = field(default_factory=dict)


@dataclass
class RunReport:
    run_id: str
    as_of: str
    updated_at: str
    contract_id: str
    contract_version: str
    output: str
    table_format: str
    status: str = "running"
    finished_at: str | None = None
    inputs: dict[str, TableReport] = field(default_factory=dict)
    # Where the raw rows breaking the provider's rules went (each table's `quarantined`), if any did.
    quarantine_table: str | None = None
    output_rows: int | None = None
    # The Delta version the build committed: time travel and `restore` find it by this.
    published_version: int | None = None
    checks: list[CheckResult] = field(default_factory=list)
    # The candidate against the published table; None where the build stopped before the gate.
    change: Change | None = None
    durations_seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # What builds that died left under the output, removed by this one.
    leftovers_removed: list[str] = field(default_factory=list)
    code_version: str = field(default_factory=code_version)

    def summary(self, report_path: Path | None) -> str:
        """A short human summary of a build: rows per layer, checks, where the output is."""
        lines = [
            f"Build {self.status}: as-of {self.as_of}, contract {self.contract_id} v{self.contract_version}"
            f" (customer-activity {self.code_version})",
            "",
            f"  {'input table':<20} {'raw rows':>9} {'NULL keys':>9} {'superseded':>10} {'bad times':>9} {'staged':>9}",
        ]
        lines.extend(
            f"  {table:<20} {t.rows:>9} {t.null_key_rows_dropped:>9} {t.superseded_versions_removed:>10}"
            f" {t.unparseable_timestamp_rows:>9} {t.rows_after_staging:>9}"
            for table, t in self.inputs.items()
        )
        missing = [
            f"{table}.{column} {rows}"
            for table, t in self.inputs.items()
            for column, rows in t.rows_missing_columns.items()
        ]
        if missing:
            lines += ["", "  raw rows from files without the column (NULL there): " + ", ".join(missing)]
        if self.quarantine_table:
            lines += ["", f"  raw rows breaking the provider's rules, quarantined in {self.quarantine_table}:"]
            lines.extend(
                f"    {table:<20} " + ", ".join(f"{rule} {rows}" for rule, rows in t.quarantined.items())
                for table, t in self.inputs.items()
                if t.quarantined
            )
        lines += [
            "",
            f"  output rows: {self.output_rows}",
            f"  pre-publish checks passed: {sum(check.passed for check in self.checks)}/{len(self.checks)}",
            *([f"  {self.change.summary()}"] if self.change is not None else []),
            f"  output ({self.table_format}): {self.output}"
            + (f", version {self.published_version}" if self.published_version is not None else ""),
        ]
        if report_path is not None:
            lines.append(f"  run report: {report_path}")
        lines.append("  durations: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.durations_seconds.items()))
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        """Replace the report at `path` in one rename; never writes through a symbolic link."""
        replace_file(path, json.dumps(asdict(self), indent=2) + "\n")


def record_restore(path: Path, restored: int, version: int, at: datetime) -> None:
    """Note in the last build's report that version `version` now serves the rows of `restored`."""
    try:
        if not path.is_file():
            return
        report = json.loads(path.read_text())
        report["published_version"] = version
        report["restored"] = {"rows_of_version": restored, "version": version, "restored_at": at.isoformat()}
        replace_file(path, json.dumps(report, indent=2) + "\n")
    # The restore is committed: a report that cannot be updated is worth a warning, not a failure.
    except (OSError, ValueError, TypeError) as error:
        logger.warning("the run report %s could not record the restore: %s", path, error)


def replace_file(path: Path, text: str) -> None:
    """Replace the file at `path` with `text` in one rename; never writes through a symbolic link.

    Readers see the old file or the new one, never half of one. The temporary file is
    `.<name>.<random>.tmp` beside it, removed on failure.
    """
    if path.is_symlink():
        raise OSError(f"{path} is a symbolic link")
    # A fresh, exclusively created file (mkstemp) cannot be a link someone placed.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
