"""Local builds as the job tests use them: one as-of date, and how to inspect the output."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from customer_activity.jobs.cli import main

AS_OF = date(2026, 11, 20)


def delta_table(output_dir: Path, version: int | None = None) -> DeltaTable:
    """The published table as an independent reader (delta-rs, no Spark) sees it."""
    return DeltaTable(str(output_dir / "customer_activity"), version=version)


def published(output_dir: Path, version: int | None = None) -> pa.Table:
    """The published rows, at the current or an earlier Delta version."""
    return delta_table(output_dir, version).to_pyarrow_table()


def fingerprint(output_dir: Path) -> dict[str, object]:
    """What a reader of `<output_dir>/customer_activity` sees: its commits, its schema and its rows."""
    table = delta_table(output_dir)
    rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in table.to_pyarrow_table().to_pylist())
    return {
        "version": table.version(),
        "schema": str(table.schema()),
        "rows": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
    }


def table_files(output_dir: Path) -> dict[str, str]:
    """The published table byte for byte: each file's path and a digest of its content."""
    table = output_dir / "customer_activity"
    return {
        str(path.relative_to(table)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(table.rglob("*"))
        if path.is_file()
    }


def run_report(output_dir: Path) -> dict[str, object]:
    return json.loads((output_dir / "customer_activity_run_report.json").read_text())


def as_utc(value: object) -> object:
    """Timestamps as naive UTC: Parquet readers differ in whether they attach a zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def build(source: Path, output: Path, *extra: str) -> int:
    """`customer-activity build` from `source` into `output` for the tests' as-of date."""
    return main(
        ["build", "--source-dir", str(source), "--output-dir", str(output), "--as-of", AS_OF.isoformat(), *extra]
    )


# What the internal schema keeps between builds: the run history and the quarantine.
KEPT_INTERNAL_TABLES = {"customer_activity_runs", "customer_activity_quarantine"}


def staged_leftovers(output_dir: Path) -> set[str]:
    """What a build left in the local internal schema besides the tables kept there: staged candidates."""
    return {entry.name for entry in (output_dir / ".customer_activity.staging").iterdir()} - KEPT_INTERNAL_TABLES
