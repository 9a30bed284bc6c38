"""Local builds as the job tests use them: one as-of date, and how to inspect the output."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

from customer_activity.jobs.cli import main

AS_OF = date(2026, 11, 20)


def fingerprint(output_dir: Path) -> dict[str, str]:
    """Every file a reader of `<output_dir>/customer_activity` sees, with its content hash."""
    published = (output_dir / "customer_activity").resolve()
    return {
        str(path.relative_to(published)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(published.rglob("*"))
        if path.is_file()
    } | {"<resolves to>": str(published)}


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
