"""`customer-activity`: the command-line entry points.

Thin by design: each command parses its arguments, builds a configuration and calls
one job function, which returns the exit code; errors become a message and their own
exit code here (documented in the README).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from customer_activity.jobs import build, local_catalog, publishing, secrets
from customer_activity.jobs.build import BuildConfig, as_of_problem
from customer_activity.jobs.catalog import TableName
from customer_activity.jobs.change import ChangeLimits
from customer_activity.jobs.contract import default_contract_path, load_contract
from customer_activity.jobs.errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    ConfigurationError,
    ContractDefinitionError,
    CustomerActivityError,
    InputError,
)
from customer_activity.jobs.inputs import InputLocation
from customer_activity.jobs.lineage import DEFAULT_NAMESPACE, LineageSettings
from customer_activity.jobs.lineage import ENTROPY_DATA as LINEAGE_ENTROPY_DATA
from customer_activity.jobs.lineage import STANDARD as LINEAGE_STANDARD
from customer_activity.jobs.publishing import OUTPUT_TABLE, OutputLocation
from customer_activity.jobs.report import code_version, record_restore
from customer_activity.jobs.session import create_spark_session

logger = logging.getLogger("customer_activity")

# The ODPS file sits at the top of the checkout; CI publishes from there.
DEFAULT_PRODUCT_FILE = Path("customer-activity.odps.yaml")


def as_of_date(text: str) -> date | None:
    """A YYYY-MM-DD day; empty means today (None), as a job parameter may be passed on empty."""
    if not text.strip():
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError as error:  # "month must be in 1..12", "day is out of range for month"
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: {error}") from None
    problem = as_of_problem(day)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return day


_EXIT_CODES = """exit codes:
  0  success
  1  internal error (a bug: the stack trace is printed)
  2  invalid usage or configuration
  3  input tables missing or unusable
  4  contract broken, or the candidate changed beyond the change limits: nothing published
     (test-contract: the table failed its test)
  5  the marketplace refused a document or could not be reached
  6  another writer committed to the table meanwhile, nothing published: run again"""


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: a global option typed after the command works, a wrong one shows this command's usage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{"formatter_class": argparse.RawDescriptionHelpFormatter, **kwargs})
        self.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log every step")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


def _command(commands: Any, name: str, summary: str, description: str, *examples: str) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  customer-activity {e}" for e in examples) + "\n\n" + _EXIT_CODES
    wrapped = textwrap.fill(description, 79)
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=wrapped, epilog=epilog)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customer-activity",
        description="Build the Customer Activity data product: one row per customer organisation.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {code_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    build = _command(
        commands,
        "build",
        "build and publish the output port (Delta), from Parquet directories or from Unity Catalog",
        "Reads the raw tables, builds the candidate, audits it against the contract and publishes it. "
        "Give either --source-dir and --output-dir (local) or --catalog, --source-schema and "
        "--output-schema (Databricks).",
        "build --source-dir local-run/raw --output-dir local-run/output",
        "build --source-dir raw --output-dir out --as-of 2026-11-20 -v",
        "build --catalog main --source-schema raw --output-schema customer_activity",
    )
    _location_arguments(build, source=True)
    build.add_argument(
        "--as-of",
        type=as_of_date,
        metavar="YYYY-MM-DD",
        help="the day the activity is counted up to (default: today in UTC)",
    )
    build.add_argument("--contract", type=Path, metavar="FILE", help="ODCS contract (default: the product's own)")
    gate = build.add_argument_group("change gate (a candidate far from the published table is not published)")
    gate.add_argument(
        "--change-limits",
        type=_change_limits,
        default=ChangeLimits(),
        metavar="NAME=PCT,...",
        help="how far each figure may move, in percent of the published one: "
        + ", ".join(f"{f.name} (default {getattr(ChangeLimits(), f.name):g})" for f in fields(ChangeLimits)),
    )
    gate.add_argument(
        "--accept-change",
        type=_reason,
        metavar="REASON",
        help="publish this once whatever the change, for the reason given (logged and kept in the run report); "
        "empty: no override",
    )
    lineage = build.add_argument_group("lineage (optional; the Databricks job sends it to Entropy Data)")
    lineage.add_argument(
        "--lineage-url", help="OpenLineage HTTP endpoint (default: the OPENLINEAGE_* configuration; none: no events)"
    )
    lineage.add_argument(
        "--lineage",
        choices=[LINEAGE_STANDARD, LINEAGE_ENTROPY_DATA],
        default=LINEAGE_STANDARD,
        help=f"where lineage events go: the OpenLineage configuration ({LINEAGE_STANDARD}, the default) or "
        f"Entropy Data's lineage API with the product's own transport ({LINEAGE_ENTROPY_DATA})",
    )
    _marketplace_arguments(lineage, f"with --lineage {LINEAGE_ENTROPY_DATA}: ")
    lineage.add_argument(
        "--lineage-namespace", help=f"OpenLineage job namespace (default: OPENLINEAGE_NAMESPACE or {DEFAULT_NAMESPACE})"
    )

    publish = _command(
        commands,
        "publish",
        "publish the data contract and the data product to the Entropy Data marketplace",
        "PUTs the ODCS contract, then the ODPS data product, as JSON. The API key comes "
        f"from {secrets.API_KEY_VARIABLE}; the host from --host or {secrets.HOST_VARIABLE}.",
        "publish --dry-run",
        "publish --host https://api.entropy-data.com",
    )
    publish.add_argument("--host", help=f"API base URL (default: {secrets.HOST_VARIABLE}, else {secrets.DEFAULT_HOST})")
    publish.add_argument("--contract", type=Path, metavar="FILE", help="ODCS contract (default: the product's own)")
    publish.add_argument("--product", type=Path, help=f"ODPS file (default: {DEFAULT_PRODUCT_FILE} of the checkout)")
    publish.add_argument("--dry-run", action="store_true", help="print the requests instead of sending them")
    publish.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)")

    test = _command(
        commands,
        "test-contract",
        "test a published output with datacontract-cli, optionally publishing the results",
        "Tests a published output from the consumer's side, through the contract's catalog server "
        "pointed at it. Give --output-dir, or --catalog and --output-schema. Results are published to "
        f"Entropy Data when an API key is configured: {secrets.API_KEY_VARIABLE}, or --secret-scope.",
        "test-contract --output-dir local-run/output",
        "test-contract --catalog main --output-schema customer_activity",
    )
    _location_arguments(test, source=False)
    test.add_argument(
        "--server", default="production", help="the contract's catalog server to test (default: %(default)s)"
    )
    test.add_argument("--contract", type=Path, metavar="FILE", help="ODCS contract (default: the product's own)")
    _marketplace_arguments(test.add_argument_group("publishing the results (optional)"), "")

    restore = _command(
        commands,
        "restore",
        "bring back the previously published version of the output port, in one transaction",
        "For the day a contract-valid but wrong table went out: restores the rows published before the "
        "current ones (or --version N), as a new Delta version; time travel keeps them all. Give "
        "--output-dir, or --catalog and --output-schema.",
        "restore --output-dir local-run/output",
        "restore --output-dir local-run/output --version 1",
        "restore --catalog main --output-schema customer_activity",
    )
    _location_arguments(restore, source=False)
    restore.add_argument("--version", type=int, help="the Delta version to restore (default: the previous one)")
    return parser


def _change_limits(text: str) -> ChangeLimits:
    try:
        return ChangeLimits.parse(text)
    except ConfigurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _reason(text: str) -> str | None:
    """An override's reason; empty means none, as the job parameter passes it when unset."""
    if text and not text.strip():
        raise argparse.ArgumentTypeError("needs a reason: who looked at the change, and why it is right")
    return text.strip() or None


def _marketplace_arguments(parser: Any, purpose: str) -> None:
    """Where Entropy Data is and where its API key comes from, for `purpose`."""
    parser.add_argument(
        "--entropy-data-host",
        help=f"{purpose}the API base URL (default: {secrets.HOST_VARIABLE}, else {secrets.DEFAULT_HOST})",
    )
    parser.add_argument(
        "--secret-scope",
        help=f"{purpose}Databricks secret scope holding the API key, where {secrets.API_KEY_VARIABLE} is not set",
    )
    parser.add_argument(
        "--secret-key",
        default=secrets.DEFAULT_SECRET_KEY,
        help="key of the API key in that scope (default: %(default)s)",
    )


def _location_arguments(parser: argparse.ArgumentParser, source: bool) -> None:
    local = parser.add_argument_group("local directories")
    if source:
        local.add_argument(
            "--source-dir", type=Path, metavar="DIR", help="directory with one Parquet dataset per raw table"
        )
    local.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="the output port is <output-dir>/customer_activity"
    )
    databricks = parser.add_argument_group("Unity Catalog (Databricks)")
    databricks.add_argument("--catalog", metavar="NAME", help="catalog of the input and output schemas")
    if source:
        databricks.add_argument("--source-schema", metavar="NAME", help="schema of the raw input tables")
    databricks.add_argument("--output-schema", metavar="NAME", help="schema of the output table customer_activity")
    if source:
        databricks.add_argument(
            "--staging-schema",
            metavar="NAME",
            help="schema where a build stages its candidate, unseen by consumers (default: <output-schema>_staging)",
        )


# The command line's edge: a directory a person gives becomes catalog names here
# (local_catalog), and nowhere deeper in the job.


def _check_locations(args: argparse.Namespace) -> None:
    """Either form of each location, complete, before a session is started."""
    staging_schema = getattr(args, "staging_schema", None)
    if args.output_dir is not None and (args.catalog or args.output_schema or staging_schema):
        raise ConfigurationError("give either --output-dir or --catalog with --output-schema, not both")
    if args.output_dir is None and not (args.catalog and args.output_schema):
        raise ConfigurationError("give --output-dir, or --catalog and --output-schema")
    if args.output_dir is None:
        _catalog_output(args)  # its names are checked where they are made
    if not hasattr(args, "source_dir"):
        return
    if args.source_dir is not None and args.source_schema:
        raise ConfigurationError("give either --source-dir or --source-schema, not both")
    if args.source_dir is None and not (args.catalog and args.source_schema):
        raise ConfigurationError("give --source-dir, or --catalog and --source-schema")
    if args.source_dir is not None and args.output_dir is None:
        # A directory is mounted in Spark's own catalog, which a workspace's output schema is not part of.
        raise ConfigurationError("--source-dir goes with --output-dir; a catalog output reads --source-schema")
    if args.source_dir is not None and args.output_dir is not None:
        local_catalog.check_output_outside_input(args.source_dir, args.output_dir)
    if args.source_dir is not None and not args.source_dir.is_dir():
        state = "is not a directory" if args.source_dir.exists() else "does not exist"
        raise InputError(f"the source directory {args.source_dir} {state}")


def _output(spark: SparkSession, args: argparse.Namespace, published: bool = False) -> OutputLocation:
    """The output the arguments name; `published`: one a build has published (to restore or test)."""
    if args.output_dir is not None and published:
        return local_catalog.mount_published(spark, args.output_dir)
    if args.output_dir is not None:
        return local_catalog.mount_output(spark, args.output_dir, datetime.now(UTC))
    return _catalog_output(args)


def _catalog_output(args: argparse.Namespace) -> OutputLocation:
    table = TableName(args.catalog, args.output_schema, OUTPUT_TABLE)
    return OutputLocation(table, staging_schema=getattr(args, "staging_schema", None))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    build.steps.setLevel(logging.INFO)
    secrets.mask_credentials_in_logs()
    try:
        return _COMMANDS[args.command](args)
    except CustomerActivityError as error:
        print(f"customer-activity {args.command} failed: {secrets.mask_url_credentials(str(error))}", file=sys.stderr)
        return error.exit_code
    except Exception:
        logger.exception("internal error")
        print(f"customer-activity {args.command} failed with an internal error (see above)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


# Each command imports the modules only it uses, in its own function: a `build` on a
# job cluster then loads neither the marketplace client nor the contract test engine
# (each start pays for every import).


def _build(args: argparse.Namespace) -> int:
    lineage = LineageSettings(
        target=args.lineage,
        url=args.lineage_url,
        namespace=args.lineage_namespace,
        host=args.entropy_data_host,
        secret_scope=args.secret_scope,
        secret_key=args.secret_key,
    )
    _check_locations(args)
    source_dir: Path | None = args.source_dir
    # Made before Spark starts, so that its names are checked first.
    source = (
        local_catalog.source_location(source_dir) if source_dir else InputLocation(args.catalog, args.source_schema)
    )
    if args.contract is not None and not args.contract.is_file():
        raise ContractDefinitionError(f"data contract not found: {args.contract}")
    # The contract is read and linted (a second of Python) while Spark's JVM starts; the
    # build then finds it read, or reads it again and reports what was wrong with it (a
    # future keeps its error to itself until asked for it, which nothing here does).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(load_contract, args.contract)
        build.steps.info("starting Spark")
        spark = create_spark_session(input_bytes=local_catalog.source_bytes(source_dir))
    config = BuildConfig(
        source=source,
        # The output first: one that cannot be published to is refused before any input is read.
        output=_output(spark, args),
        # A directory is mounted where the build reads its inputs: its problems are the build's.
        prepare_inputs=(lambda session: local_catalog.mount_source(session, source_dir)) if source_dir else None,
        as_of=args.as_of or datetime.now(UTC).date(),
        contract_path=args.contract,
        change_limits=args.change_limits,
        accept_change=args.accept_change,
        report_path=args.output_dir / local_catalog.REPORT_FILE if args.output_dir else None,
    )
    with lineage.open().closing() as events:
        report = build.run_build(spark, config, events)
    print(report.summary(config.report_path))
    return EXIT_OK


def _publish_to_marketplace(args: argparse.Namespace) -> int:
    from customer_activity.jobs import marketplace  # noqa: PLC0415

    config = marketplace.PublishConfig(
        contract=args.contract or default_contract_path(),
        product=args.product or DEFAULT_PRODUCT_FILE,
        host=args.host,
        dry_run=args.dry_run,
        timeout_seconds=args.timeout,
    )
    return marketplace.publish_product(config)


def _restore(args: argparse.Namespace) -> int:
    _check_locations(args)
    spark = create_spark_session()
    output = _output(spark, args, published=True)
    restored, committed = publishing.restore(spark, output, args.version)
    print(f"Restored {output.published} to its version {restored}; it is now version {committed}.")
    if args.output_dir is not None:
        # The run report beside the table must not go on naming the rows that were rolled back.
        record_restore(args.output_dir / local_catalog.REPORT_FILE, restored, committed, datetime.now(UTC))
    return EXIT_OK


def _test_contract(args: argparse.Namespace) -> int:
    from customer_activity.jobs import contract_test  # noqa: PLC0415

    _check_locations(args)
    spark = create_spark_session()
    config = contract_test.ContractTestConfig(
        output=_output(spark, args, published=True),
        server=args.server,
        contract_path=args.contract,
        secret_scope=args.secret_scope,
        secret_key=args.secret_key,
        results_host=args.entropy_data_host,
    )
    return contract_test.test_contract(spark, config)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": _build,
    "test-contract": _test_contract,
    "publish": _publish_to_marketplace,
    "restore": _restore,
}


if __name__ == "__main__":
    sys.exit(main())
