"""`customer-activity`: the command-line entry points.

Thin by design: parse arguments, build a configuration, call one job function, turn
its outcome into a message and an exit code (documented in the README).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession

from customer_activity.jobs import contract_test, io, sample_data
from customer_activity.jobs.build import BuildConfig, run_build
from customer_activity.jobs.errors import (
    EXIT_CONTRACT_VIOLATION,
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    ConfigurationError,
    CustomerActivityError,
)
from customer_activity.jobs.report import RunReport

logger = logging.getLogger("customer_activity")

DEFAULT_WORKDIR = Path("local-run")


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customer-activity",
        description="Build the Customer Activity data product: one row per customer organisation.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="generate sample raw tables, build the output locally, test it against the contract",
    )
    run.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where sample input and output go (default: %(default)s)")
    run.add_argument("--organizations", type=_positive, default=500, help="size of the sample (default: %(default)s)")
    run.add_argument("--seed", type=int, default=42, help="seed of the sample (default: %(default)s)")
    run.add_argument("--as-of", type=_as_of, default=None, help="as-of date D, YYYY-MM-DD (default: today in UTC)")

    build = commands.add_parser("build", help="build and publish the output port from raw Parquet tables")
    build.add_argument("--source-dir", type=Path, required=True, help="directory with one Parquet dataset per raw table")
    build.add_argument("--output-dir", type=Path, required=True, help="the output port goes to <output-dir>/customer_activity")
    build.add_argument("--as-of", type=_as_of, default=None, help="as-of date D, YYYY-MM-DD (default: today in UTC)")
    build.add_argument("--table-format", choices=io.TABLE_FORMATS, default="parquet", help="default: %(default)s")
    build.add_argument("--contract", type=Path, default=None, help="ODCS contract (default: the product's own)")

    generate = commands.add_parser("generate", help="write a deterministic sample of the seven raw tables")
    generate.add_argument("--output-dir", type=Path, required=True)
    generate.add_argument("--organizations", type=_positive, default=500)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--as-of", type=_as_of, default=None)

    test = commands.add_parser("test-contract", help="test a published local output with datacontract-cli")
    test.add_argument("--output-dir", type=Path, required=True)
    test.add_argument("--table-format", choices=io.TABLE_FORMATS, default="parquet")
    test.add_argument("--contract", type=Path, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except CustomerActivityError as error:
        print(f"customer-activity {args.command} failed: {error}", file=sys.stderr)
        return error.exit_code
    except Exception:
        logger.exception("internal error")
        print(f"customer-activity {args.command} failed with an internal error (see above)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _generate(args: argparse.Namespace) -> int:
    counts = sample_data.generate(args.output_dir, args.organizations, args.as_of or _today(), args.seed)
    for table, rows in counts.items():
        print(f"{table:<20} {rows:>9} rows")
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    config = BuildConfig(
        source=io.InputLocation(directory=args.source_dir),
        output=io.OutputLocation(directory=args.output_dir, table_format=args.table_format),
        as_of=args.as_of or _today(),
        contract_path=args.contract,
    )
    spark = io.create_spark_session(args.table_format)
    report = run_build(spark, config)
    print(summary(report, config.output.report_path))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    as_of = args.as_of or _today()
    source, output = args.workdir / "raw", args.workdir / "output"
    counts = sample_data.generate(source, args.organizations, as_of, args.seed)
    print(f"Generated {sum(counts.values())} raw rows for {args.organizations} organisations in {source}")
    config = BuildConfig(
        source=io.InputLocation(directory=source),
        output=io.OutputLocation(directory=output),
        as_of=as_of,
    )
    spark = io.create_spark_session()
    report = run_build(spark, config)
    print(summary(report, config.output.report_path))
    passed = _contract_test(spark, config.output, None, full=False)
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return EXIT_OK if passed else EXIT_CONTRACT_VIOLATION


def _test_contract(args: argparse.Namespace) -> int:
    output = io.OutputLocation(directory=args.output_dir, table_format=args.table_format)
    if not Path(output.published).exists():
        raise ConfigurationError(f"nothing is published at {output.published}")
    spark = io.create_spark_session(args.table_format)
    return EXIT_OK if _contract_test(spark, output, args.contract) else EXIT_CONTRACT_VIOLATION


def _contract_test(spark: SparkSession, output: io.OutputLocation, contract: Path | None, full: bool = True) -> bool:
    """Test the published output; `full=False` prints the result table only when it fails."""
    run = contract_test.verify_dataframe(spark, io.read_published(spark, output), contract)
    passed = run.has_passed()
    print()
    print(f"Contract test of the published output (datacontract-cli, server '{contract_test.LOCAL_SERVER}'):")
    if full or not passed:
        contract_test.print_run(run)
    else:
        print(f"  {run.result.value}: {len(run.checks)} checks, none failed")
    return passed


def summary(report: RunReport, report_path: Path | None) -> str:
    """A short human summary of a build: rows per layer, checks, where the output is."""
    lines = [
        f"Build {report.status}: as-of {report.as_of}, contract {report.contract_id} v{report.contract_version}",
        "",
        f"  {'input table':<20} {'raw rows':>9} {'NULL keys':>9} {'superseded':>10} {'bad times':>9} {'staged':>9}",
    ]
    for table, t in report.inputs.items():
        lines.append(
            f"  {table:<20} {t.rows:>9} {t.null_key_rows_dropped:>9} {t.superseded_versions_removed:>10}"
            f" {t.unparseable_timestamp_rows:>9} {t.rows_after_staging:>9}"
        )
    lines += [
        "",
        f"  output rows: {report.output_rows}",
        f"  pre-publish checks passed: {report.checks_passed}/{len(report.checks)}",
        f"  output ({report.table_format}): {report.output}",
    ]
    if report_path is not None:
        lines.append(f"  run report: {report_path}")
    lines.append("  durations: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.durations_seconds.items()))
    return "\n".join(lines)


_COMMANDS = {"run": _run, "build": _build, "generate": _generate, "test-contract": _test_contract}


if __name__ == "__main__":
    sys.exit(main())
