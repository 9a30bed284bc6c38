"""CI's guard of the data contracts: lint, changelog and breaking changes against a base revision.

    python .ci/contract_guard.py BASE      # BASE: the target branch (origin/main) or a commit

For every `datacontracts/**/*.odcs.yaml` of this checkout, in this order and with the
datacontract-cli commands a data engineer would type:
1. `datacontract lint FILE`: the contract must be valid ODCS;
2. `datacontract changelog BASE_FILE FILE`: what changed, written to the log and, on
   GitHub Actions, to the job summary;
3. `datacontract breaking BASE_FILE FILE` (consumer perspective): a change that breaks
   consumers (a removed column, a changed type, a looser guarantee) must come with a new
   major `version`, or the guard fails.
A contract that BASE has and this checkout lost breaks its consumers too. A contract new
in this checkout is only linted. Exit code 0 when every contract passes, 1 when one does
not, 2 when the guard cannot run (an unknown BASE, no datacontract command).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = "datacontracts"
# datacontract-cli prints rich tables; outside a terminal they wrap at 80 columns.
WIDE_OUTPUT = {"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass
class Verdict:
    """What the guard found about one contract file."""

    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changelog: str = ""


def datacontract_command() -> str | None:
    """The datacontract CLI of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "datacontract"
    return str(beside) if beside.is_file() else shutil.which("datacontract")


def datacontract(*args: str) -> subprocess.CompletedProcess[str]:
    command = [datacontract_command() or "datacontract", *args]
    print(f"$ datacontract {' '.join(args)}", flush=True)
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, **WIDE_OUTPUT}
    )
    print(result.stdout + result.stderr, flush=True)
    return result


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def major(version: object, where: str) -> int:
    text = str(version or "")
    head = text.split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"{where}: version {text!r} does not start with a major number")
    return int(head)


def guard(path: str, base: str, scratch: Path) -> Verdict:
    verdict = Verdict(path)
    if datacontract("lint", path).returncode != 0:
        verdict.problems.append("`datacontract lint` failed: the contract is not valid ODCS")
        return verdict
    before = git("show", f"{base}:{path}")
    if before.returncode != 0:
        verdict.notes.append(f"new since {base}: linted only")
        return verdict
    base_file = scratch / Path(path).name
    base_file.write_text(before.stdout)
    verdict.changelog = datacontract("changelog", str(base_file), path).stdout.strip()
    breaking = datacontract("breaking", str(base_file), path)
    if breaking.returncode == 0:
        verdict.notes.append("no change breaks consumers")
        return verdict
    old_version = yaml.safe_load(before.stdout).get("version")
    new_version = yaml.safe_load((ROOT / path).read_text()).get("version")
    try:
        bumped = major(new_version, path) > major(old_version, f"{path} at {base}")
    except ValueError as error:
        verdict.problems.append(str(error))
        return verdict
    if bumped:
        verdict.notes.append(f"breaking changes, released as a new major version ({old_version} -> {new_version})")
    else:
        verdict.problems.append(
            f"breaking changes for consumers (see `datacontract breaking` above) without a new major version "
            f"({old_version} -> {new_version}): keep the change compatible, or publish it as a new major version"
        )
    return verdict


def removed_contracts(base: str, present: list[str]) -> list[Verdict]:
    listed = git("ls-tree", "-r", "--name-only", base, "--", CONTRACTS)
    if listed.returncode != 0:
        return []
    before = {name for name in listed.stdout.split() if name.endswith(".odcs.yaml")}
    return [
        Verdict(path, problems=[f"removed since {base}: its consumers lose their contract; retire it first"])
        for path in sorted(before - set(present))
    ]


def summary(base: str, verdicts: list[Verdict]) -> str:
    lines = [f"## Data contracts against `{base}`", ""]
    for verdict in verdicts:
        mark = "❌" if verdict.problems else "✅"
        lines.append(f"### {mark} `{verdict.path}`")
        lines.extend(f"- **{problem}**" for problem in verdict.problems)
        lines.extend(f"- {note}" for note in verdict.notes)
        if verdict.changelog:
            lines += ["", "<details><summary>Changelog</summary>", "", "```text", verdict.changelog, "```"]
            lines.append("</details>")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("base", help="git revision to compare with: the target branch, or the commit before a push")
    base = parser.parse_args(argv).base
    if datacontract_command() is None:
        print("contract guard: the datacontract command was not found (pip install datacontract-cli)", file=sys.stderr)
        return 2
    if git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        print(f"contract guard: the base revision {base!r} is not in this clone (fetch it first)", file=sys.stderr)
        return 2
    # Ours, and the snapshots of the providers' contracts we read (datacontracts/input_ports/).
    present = sorted(str(p.relative_to(ROOT)) for p in (ROOT / CONTRACTS).rglob("*.odcs.yaml"))
    with tempfile.TemporaryDirectory() as scratch:
        verdicts = [guard(path, base, Path(scratch)) for path in present]
    verdicts += removed_contracts(base, present)
    report = summary(base, verdicts)
    print(report)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(os.environ["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as file:
            file.write(report + "\n")
    failed = [v.path for v in verdicts if v.problems]
    if failed:
        print(f"contract guard: {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
