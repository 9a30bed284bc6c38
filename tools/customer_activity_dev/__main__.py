"""`python -m customer_activity_dev run|generate`: what `python3 dev.py run` and `generate` call.

Thin, like the job's own command line: arguments to one call each, errors to a message
and the job's exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from customer_activity.jobs import build, secrets
from customer_activity.jobs.cli import as_of_date
from customer_activity.jobs.errors import EXIT_INTERNAL_ERROR, CustomerActivityError
from customer_activity_dev import local_run, sample_data

# Where `run` puts its sample input and output, relative to where it is started.
DEFAULT_WORKDIR = Path("local-run")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dev.py", description="The Customer Activity data product, locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="generate sample raw tables, build the output locally, test it against the contract"
    )
    run.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where sample input and output go (default: %(default)s)"
    )
    generate = commands.add_parser("generate", help="write a deterministic sample of the seven raw tables")
    generate.add_argument("--output-dir", type=Path, required=True, help="where the raw tables go")
    generate.add_argument(
        "--children", type=positive, default=1, help="rounds of children per organisation (default: %(default)s)"
    )
    for command in (run, generate):
        command.add_argument(
            "--organizations", type=positive, default=500, help="size of the sample (default: %(default)s)"
        )
        command.add_argument("--seed", type=int, default=42, help="seed of the sample (default: %(default)s)")
        command.add_argument(
            "--as-of", type=as_of_date, default=None, help="as-of date D, YYYY-MM-DD (default: today in UTC)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build.steps.setLevel(logging.INFO)
    secrets.mask_credentials_in_logs()
    as_of = args.as_of or datetime.now(UTC).date()
    try:
        if args.command == "generate":
            return sample_data.write_sample(args.output_dir, args.organizations, as_of, args.seed, args.children)
        config = local_run.LocalRunConfig(args.workdir, args.organizations, args.seed, as_of)
        return local_run.run(config)
    except CustomerActivityError as error:
        print(f"{args.command} failed: {secrets.mask_url_credentials(str(error))}", file=sys.stderr)
        return error.exit_code
    except Exception:
        logging.getLogger("customer_activity").exception("internal error")
        print(f"{args.command} failed with an internal error (see above)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
