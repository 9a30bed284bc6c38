"""The plain `datacontract test --server local` command of docs/local.md, run as a user runs it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from customer_activity_dev.local_run import install_duckdb_delta
from customer_activity_testing.paths import REPOSITORY


def readme_command() -> list[str]:
    page = (REPOSITORY / "docs" / "local.md").read_text()
    [line] = [line for line in page.splitlines() if re.match(r"\.venv/bin/datacontract test --server local ", line)]
    return shlex.split(line)


def checkout(output_dir: Path, root: Path) -> Path:
    """A checkout at `root` whose local-run/output is `output_dir`, as `dev.py run` leaves it."""
    (root / "local-run").mkdir(parents=True)
    (root / "local-run" / "output").symlink_to(output_dir.absolute(), target_is_directory=True)
    shutil.copytree(REPOSITORY / "datacontracts", root / "datacontracts")
    # What the first `run` does on a new machine.
    install_duckdb_delta()
    return root


def run_readme_command(root: Path) -> subprocess.CompletedProcess[str]:
    command = readme_command()
    datacontract = Path(sys.executable).parent / Path(command[0]).name
    return subprocess.run(
        [str(datacontract), *command[1:]],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent), "HOME": str(Path.home())},
    )


def checks_run(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"Ran (\d+) checks", result.stdout)
    return int(match.group(1)) if match else 0
