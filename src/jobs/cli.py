"""`customer-activity`: the command-line entry points.

Thin by design: parse arguments, build a configuration, call one job function, turn
its outcome into a message and an exit code (documented in the README).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

from datacontract.model.run import Run
from pyspark.sql import SparkSession

from customer_activity.jobs import contract_test, io, marketplace, sample_data, secrets
from customer_activity.jobs.build import BuildConfig, run_build
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.contract import default_contract_path
from customer_activity.jobs.errors import (
    EXIT_CONTRACT_VIOLATION,
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    ConfigurationError,
    CustomerActivityError,
)
from customer_activity.jobs.lineage import DEFAULT_NAMESPACE, Lineage
from customer_activity.jobs.report import RunReport

logger = logging.getLogger("customer_activity")

DEFAULT_WORKDIR = Path("local-run")
# The ODPS file sits at the top of the checkout; CI publishes from there.
DEFAULT_PRODUCT_FILE = Path("customer-activity.odps.yaml")


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

    build = commands.add_parser(
        "build",
        help="build and publish the output port, from Parquet directories or from Unity Catalog",
        description="Inputs and output are either directories (--source-dir, --output-dir) or, on "
        "Databricks, schemas of one catalog (--catalog, --source-schema, --output-schema).",
    )
    build.add_argument("--source-dir", type=Path, help="directory with one Parquet dataset per raw table")
    build.add_argument("--output-dir", type=Path, help="the output port goes to <output-dir>/customer_activity")
    _catalog_arguments(build, source=True)
    build.add_argument("--as-of", type=_as_of_or_today, default=None, help="as-of date D, YYYY-MM-DD (default: today in UTC)")
    build.add_argument("--table-format", choices=io.TABLE_FORMATS, default=None, help="parquet (default for directories) or delta (always in a catalog)")
    build.add_argument("--contract", type=Path, default=None, help="ODCS contract (default: the product's own)")
    build.add_argument("--lineage-url", default=None, help="OpenLineage HTTP endpoint (default: the OPENLINEAGE_* configuration; none: no events)")
    build.add_argument("--lineage-namespace", default=None, help=f"OpenLineage job namespace (default: OPENLINEAGE_NAMESPACE or {DEFAULT_NAMESPACE})")

    publish = commands.add_parser(
        "publish",
        help="publish the data contract and the data product to the Entropy Data marketplace",
        description="PUTs the ODCS contract, then the ODPS data product, as JSON. The API key comes "
        f"from {secrets.API_KEY_VARIABLE}; the host from --host or {marketplace.HOST_VARIABLE}.",
    )
    publish.add_argument("--host", default=None, help=f"API base URL (default: {marketplace.HOST_VARIABLE}, else {marketplace.DEFAULT_HOST})")
    publish.add_argument("--contract", type=Path, default=None, help="ODCS contract (default: the product's own)")
    publish.add_argument("--product", type=Path, default=None, help=f"ODPS file (default: {DEFAULT_PRODUCT_FILE} of the checkout)")
    publish.add_argument("--dry-run", action="store_true", help="print the requests instead of sending them")
    publish.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)")

    generate = commands.add_parser("generate", help="write a deterministic sample of the seven raw tables")
    generate.add_argument("--output-dir", type=Path, required=True)
    generate.add_argument("--organizations", type=_positive, default=500)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--as-of", type=_as_of, default=None)

    test = commands.add_parser(
        "test-contract",
        help="test a published output with datacontract-cli, optionally publishing the results",
        description="Tests a local output (--output-dir, server 'local') or the catalog table "
        "(--catalog, --output-schema, server 'production'). Results are published to Entropy Data "
        "when an API key is configured: ENTROPY_DATA_API_KEY, or --secret-scope on Databricks.",
    )
    test.add_argument("--output-dir", type=Path)
    _catalog_arguments(test, source=False)
    test.add_argument("--server", default=None, help="contract server to test (default: local or production)")
    test.add_argument("--table-format", choices=io.TABLE_FORMATS, default="parquet")
    test.add_argument("--contract", type=Path, default=None)
    test.add_argument("--secret-scope", default=None, help="Databricks secret scope holding the marketplace API key")
    test.add_argument("--secret-key", default="entropy-data-api-key", help="key of the API key in that scope (default: %(default)s)")
    test.add_argument("--entropy-data-host", default=None, help="marketplace API base URL (default: ENTROPY_DATA_HOST, else Entropy Data's)")
    return parser


def _as_of_or_today(text: str) -> date | None:
    """Like --as-of, but empty means today: a job parameter may be passed on empty."""
    return _as_of(text) if text.strip() else None


def _catalog_arguments(parser: argparse.ArgumentParser, source: bool) -> None:
    parser.add_argument("--catalog", help="Unity Catalog catalog of the input and output schemas")
    if source:
        parser.add_argument("--source-schema", help="schema of the raw input tables")
    parser.add_argument("--output-schema", help="schema of the output table customer_activity")


def _output(args: argparse.Namespace, default_format: str) -> io.OutputLocation:
    if args.output_dir is not None:
        if args.catalog or args.output_schema:
            raise ConfigurationError("give either --output-dir or --catalog with --output-schema, not both")
        return io.OutputLocation(directory=args.output_dir, table_format=args.table_format or default_format)
    if not (args.catalog and args.output_schema):
        raise ConfigurationError("give --output-dir, or --catalog and --output-schema")
    if args.table_format not in (None, "delta"):
        raise ConfigurationError("a catalog table is always Delta; leave out --table-format")
    return io.OutputLocation(table=TableName(args.catalog, args.output_schema, io.OUTPUT_TABLE), table_format="delta")


def _source(args: argparse.Namespace) -> io.InputLocation:
    if args.source_dir is not None:
        if args.source_schema:
            raise ConfigurationError("give either --source-dir or --source-schema, not both")
        return io.InputLocation(directory=args.source_dir)
    if not (args.catalog and args.source_schema):
        raise ConfigurationError("give --source-dir, or --catalog and --source-schema")
    return io.InputLocation(catalog=args.catalog, schema=args.source_schema)


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
    output = _output(args, default_format="parquet")
    config = BuildConfig(
        source=_source(args),
        output=output,
        as_of=args.as_of or _today(),
        contract_path=args.contract,
    )
    spark = io.create_spark_session(output.table_format)
    with Lineage.configure(args.lineage_url, args.lineage_namespace).closing() as lineage:
        report = run_build(spark, config, lineage)
    print(summary(report, config.output.report_path))
    return EXIT_OK


def _publish(args: argparse.Namespace) -> int:
    host = args.host or os.environ.get(marketplace.HOST_VARIABLE) or marketplace.DEFAULT_HOST
    items = marketplace.documents(args.contract or default_contract_path(), args.product or DEFAULT_PRODUCT_FILE)
    if args.dry_run:
        for document in items:
            print(marketplace.describe(document, host))
            print()
        print(f"Dry run: nothing was sent to {host}.")
        return EXIT_OK
    api_key = secrets.api_key_from_environment()
    if api_key is None:
        raise ConfigurationError(f"{secrets.API_KEY_VARIABLE} is not set: the marketplace needs an API key")
    for line in marketplace.publish(items, host, api_key, timeout_seconds=args.timeout):
        print(line)
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
    with Lineage.configure().closing() as lineage:
        report = run_build(spark, config, lineage)
    print(summary(report, config.output.report_path))
    passed = _contract_test(spark, config.output, None, full=False)
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return EXIT_OK if passed else EXIT_CONTRACT_VIOLATION


def _test_contract(args: argparse.Namespace) -> int:
    output = _output(args, default_format="parquet")
    if output.directory is not None and not Path(output.published).exists():
        raise ConfigurationError(f"nothing is published at {output.published}")
    results = _results_target(args)
    spark = io.create_spark_session(output.table_format)
    if output.table is None:
        run = contract_test.verify_dataframe(spark, io.read_published(spark, output), args.contract, results)
        server = contract_test.LOCAL_SERVER
    else:
        server = args.server or contract_test.PRODUCTION_SERVER
        location = (output.table.catalog, output.table.schema)
        run = contract_test.verify_server(spark, server, args.contract, location, results)
    print(f"Contract test of {output.published} (datacontract-cli, server '{server}'):")
    contract_test.print_run(run)
    _report_publication(run, results)
    return EXIT_OK if run.has_passed() else EXIT_CONTRACT_VIOLATION


def _results_target(args: argparse.Namespace) -> contract_test.ResultsTarget | None:
    """Where to publish test results, if an API key is configured at all."""
    api_key = secrets.api_key_from_environment()
    if api_key is None and args.secret_scope:
        api_key = secrets.api_key_from_databricks(args.secret_scope, args.secret_key)
    if api_key is None:
        return None
    host = args.entropy_data_host or os.environ.get("ENTROPY_DATA_HOST") or None
    return contract_test.ResultsTarget(host=host, api_key=api_key)


def _report_publication(run: Run, results: contract_test.ResultsTarget | None) -> None:
    """Say what happened to the results; a failed publication never changes the verdict."""
    if results is None:
        print("Test results not published: no marketplace API key is configured.")
    elif run.publish_succeeded:
        print("Test results published to the marketplace.")
    else:
        reasons = [log.message for log in run.logs or [] if log.level == "ERROR" and "publish" in log.message.lower()]
        detail = secrets.redact("; ".join(reasons) or "see the log above", results.api_key)
        print(f"Test results could NOT be published to the marketplace: {detail}", file=sys.stderr)


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


_COMMANDS = {
    "run": _run,
    "build": _build,
    "generate": _generate,
    "test-contract": _test_contract,
    "publish": _publish,
}


if __name__ == "__main__":
    sys.exit(main())
