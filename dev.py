#!/usr/bin/env python3
"""Set up the project's environment when needed, then run the job or the tests.

    python3 dev.py run   [--workdir DIR --organizations N ...]  # the main job, locally
    python3 dev.py test  [pytest options]                  # the test suite
    python3 dev.py generate --output-dir DIR [...]         # only the sample raw tables
    python3 dev.py check                                   # static checks: ruff, mypy
    python3 dev.py bench [benchmarks/run.py options]       # the performance benchmark
    python3 dev.py bench-process [whole_process.py options]  # whole processes, at scale
    python3 dev.py consumer-views [--check]                # render the dashboard and the alert
    python3 dev.py shell-env                               # only create/refresh .venv and the JVM cache

Needs Python 3.11+ and Java 17+ (PySpark 4). Everything else goes into `.venv`,
pinned by requirements/constraints.txt; the environment is rebuilt only when
pyproject.toml or the constraints change, or when a module is added or removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP = VENV / ".customer-activity-installed"
SOURCES = ROOT / "src"
# Local developer tooling, outside the package the bundle deploys; on the environment's path.
TOOLS = ROOT / "tools"
# uv resolves and installs the ~80 pinned packages (PySpark alone is 450 MB) several
# times faster than pip; it is itself installed from the package index with pip.
UV_VERSION = "0.13.9"
MIN_JAVA = 17
# When the command was typed, and how long dev.py's own set-up took (read by `run`'s summary).
STARTED_VARIABLE, SETUP_VARIABLE = "CUSTOMER_ACTIVITY_STARTED_AT", "CUSTOMER_ACTIVITY_SETUP_SECONDS"


def fail(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_python() -> None:
    # dev.py runs under whatever python3 the user has; an older one must hear why it stops.
    if sys.version_info < (3, 11):  # noqa: UP036
        fail(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")


def check_prerequisites() -> None:
    check_python()
    java = Path(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        fail(f"Java {MIN_JAVA}+ is needed by PySpark and was not found (install e.g. openjdk-17-jre-headless)")
    output = subprocess.run([str(java), "-version"], check=False, capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', output)
    if not match or int(match.group(1)) < MIN_JAVA:
        fail(f"Java {MIN_JAVA}+ is needed by PySpark, found: {output.splitlines()[0] if output else 'nothing'}")


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    # The strict editable install links each module and data file; a new or removed one
    # needs the links made again.
    for path in sorted(SOURCES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(SOURCES)).encode())
    return digest.hexdigest()


def ensure_environment() -> None:
    check_prerequisites()
    wanted = fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: setting up .venv (first run, or dependencies changed)...", flush=True)
    if not (BIN / "python").exists() and not (BIN / "python.exe").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    python = str(BIN / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"], check=True)
    # `src/` is installed as the package `customer_activity`. setuptools' default
    # editable install maps that with an import hook that only a running interpreter
    # follows; the strict mode instead links the files into a tree on a plain `.pth`
    # path, which mypy, pyright, ruff and editors resolve like any installed package.
    subprocess.run(
        [
            str(BIN / "uv"),
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--constraint",
            str(CONSTRAINTS),
            "--config-settings",
            "editable_mode=strict",
            "--editable",
            f"{ROOT}[local,dev]",
        ],
        check=True,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "customer-activity-tools.pth").write_text(f"{TOOLS}\n")
    STAMP.write_text(wanted)


def jvm_cache_environment() -> dict[str, str]:
    """Spark's jars and classes saved once for faster JVM starts (tools/customer_activity_dev/jvm_cache.py),
    as the variables that hand them to the commands started here; only an optimisation."""
    python = str(BIN / "python")
    result = subprocess.run(
        [python, "-m", "customer_activity_dev.jvm_cache"], cwd=ROOT, stderr=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        # The training run's own log says why; everything works without the archive.
        print("\n".join(result.stderr.splitlines()[-20:]), file=sys.stderr)
    found = subprocess.run(
        [python, "-m", "customer_activity_dev.jvm_cache", "env"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    try:
        variables: dict[str, str] = json.loads(found.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}
    return variables


def static_checks(argv: list[str]) -> int:
    """Lint, formatting and types, configured in pyproject.toml; non-zero on any finding.

    Arguments (say, a path) go to both ruff commands; mypy checks what pyproject.toml names.
    """
    checks = {
        "ruff check": [str(BIN / "ruff"), "check", *argv],
        "ruff format --check": [str(BIN / "ruff"), "format", "--check", *argv],
        "mypy": [str(BIN / "mypy")],
    }
    failed = [name for name, check in checks.items() if subprocess.run(check, cwd=ROOT, check=False).returncode != 0]
    if failed:
        print(f"dev.py check: findings from {', '.join(failed)}", file=sys.stderr)
        return 1
    print("dev.py check: no findings")
    return 0


def main(argv: list[str]) -> int:
    commands = {
        "run": [str(BIN / "python"), "-m", "customer_activity_dev", "run"],
        "generate": [str(BIN / "python"), "-m", "customer_activity_dev", "generate"],
        "test": [str(BIN / "python"), "-m", "pytest"],
        "bench": [str(BIN / "python"), str(ROOT / "benchmarks" / "run.py")],
        "bench-process": [str(BIN / "python"), str(ROOT / "benchmarks" / "whole_process.py")],
        "check": None,
        "shell-env": None,
        "consumer-views": [str(BIN / "python"), str(ROOT / "resources" / "dashboard" / "consumer_views.py")],
    }
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if not argv or argv[0] not in commands:
        print(__doc__)
        print(f"dev.py: unknown command {argv[0]!r}" if argv else "dev.py: give a command", file=sys.stderr)
        return 2
    started = time.time()
    ensure_environment()
    if argv[0] == "check":
        return static_checks(argv[1:])
    command = commands[argv[0]]
    environment = dict(os.environ)
    if argv[0] in {"run", "test", "bench", "bench-process", "shell-env"}:
        environment.update(jvm_cache_environment())
    if command is None:
        print(f"dev.py: environment ready: {VENV}")
        return 0
    if argv[0] == "run":
        # The run says how long the person waited, this set-up included.
        environment[STARTED_VARIABLE] = repr(started)
        environment[SETUP_VARIABLE] = f"{time.time() - started:.1f}"
    return subprocess.run([*command, *argv[1:]], cwd=ROOT, env=environment, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
