"""CI's guard of the data contracts: lint, changelog and breaking changes against a base revision.

    python .ci/contract_guard.py BASE      # BASE: the target branch (origin/main) or a commit

For every `datacontracts/**/*.odcs.yaml` of this checkout, in this order and with the
datacontract-cli commands a data engineer would type:
1. `datacontract lint FILE`: the contract must be valid ODCS;
2. `datacontract changelog BASE_FILE FILE`: what changed, written to the log and, on
   GitHub Actions, to the job summary;
3. `datacontract breaking BASE_FILE FILE` (consumer perspective): a change that breaks
   consumers (a removed column, a changed type, a looser guarantee) must come with a new
   major `version`, or the guard fails. So must a changed or removed id of a quality rule
   or SLA property: the marketplace attaches published test results to rules by these ids.
A contract that BASE has and this checkout lost breaks its consumers too. A contract new
in this checkout, or unchanged since BASE, is only linted.

The providers' contracts this product reads (snapshots in `datacontracts/input_ports/`) are
also compared with what the marketplace publishes now (`GET /api/datacontracts/{id}` with
ENTROPY_DATA_API_KEY, at ENTROPY_DATA_HOST): a published change that removes or retypes a
column the job reads fails the guard, with the changelog; any other change is reported.
No key or no answer is a warning: the guard cannot tell, and says so.

    python .ci/contract_guard.py --refresh  # replace the snapshots by the published contracts

Exit code 0 when every contract passes, 1 when one does not, 2 when the guard cannot run
(an unknown BASE, no datacontract command).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = "datacontracts"
SNAPSHOTS = f"{CONTRACTS}/input_ports"
DEFAULT_HOST = "https://api.entropy-data.com"
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


def rule_ids(contract: dict[str, Any]) -> set[str]:
    """The ids of a contract's quality rules and SLA properties."""
    ids = {sla.get("id") for sla in contract.get("slaProperties") or []}
    for schema in contract.get("schema") or []:
        for owner in [schema, *(schema.get("properties") or [])]:
            ids.update(rule.get("id") for rule in owner.get("quality") or [])
    return {i for i in ids if i}


def breaking_reasons(breaks_consumers: bool, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why a change from `old` to `new` needs a new major version; `breaks_consumers` is datacontract-cli's verdict."""
    reasons = ["breaking changes for consumers (see `datacontract breaking` above)"] if breaks_consumers else []
    # datacontract-cli reports a changed id as information only; the results published under it lose their rule.
    lost = sorted(rule_ids(old) - rule_ids(new))
    if lost:
        reasons.append(f"ids of quality rules or SLA properties changed or removed ({', '.join(lost)})")
    return reasons


def guard(path: str, base: str, scratch: Path) -> Verdict:
    verdict = Verdict(path)
    if datacontract("lint", path).returncode != 0:
        verdict.problems.append("`datacontract lint` failed: the contract is not valid ODCS")
        return verdict
    before = git("show", f"{base}:{path}")
    if before.returncode != 0:
        verdict.notes.append(f"new since {base}: linted only")
        return verdict
    if before.stdout == (ROOT / path).read_text():
        verdict.notes.append(f"unchanged since {base}")
        return verdict
    base_file = scratch / Path(path).name
    base_file.write_text(before.stdout)
    verdict.changelog = datacontract("changelog", str(base_file), path).stdout.strip()
    old, new = yaml.safe_load(before.stdout), yaml.safe_load((ROOT / path).read_text())
    reasons = breaking_reasons(datacontract("breaking", str(base_file), path).returncode != 0, old, new)
    if not reasons:
        verdict.notes.append("no change breaks consumers")
        return verdict
    old_version, new_version = old.get("version"), new.get("version")
    try:
        bumped = major(new_version, path) > major(old_version, f"{path} at {base}")
    except ValueError as error:
        verdict.problems.append(str(error))
        return verdict
    if bumped:
        verdict.notes.append(f"breaking changes, released as a new major version ({old_version} -> {new_version})")
    else:
        verdict.problems.append(
            f"{'; '.join(reasons)} without a new major version "
            f"({old_version} -> {new_version}): keep the change compatible, or publish it as a new major version"
        )
    return verdict


def published_contract(contract_id: str) -> tuple[dict[str, Any] | None, str]:
    """The contract the marketplace publishes under `contract_id`, or None and why not."""
    key = os.environ.get("ENTROPY_DATA_API_KEY")
    host = os.environ.get("ENTROPY_DATA_HOST") or DEFAULT_HOST
    if not key:
        return None, "ENTROPY_DATA_API_KEY is not set"
    url = f"{host.rstrip('/')}/api/datacontracts/{urllib.parse.quote(contract_id, safe='')}"
    request = urllib.request.Request(url, headers={"x-api-key": key, "accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read()), ""
    except urllib.error.HTTPError as error:
        return None, f"{url} answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return None, f"{url} could not be read ({type(error).__name__}: {error})"


def read_columns() -> dict[str, set[str]]:
    """Per raw table, the columns the job reads: its input ports (the installed product)."""
    from customer_activity.transforms.input_ports import INPUT_PORTS  # noqa: PLC0415 - only where a snapshot is compared

    return {table: set(port.required_columns) for table, port in INPUT_PORTS.items()}


def refused_by_the_build(contract_file: Path) -> list[str]:
    """What a build would refuse in this contract before reading anything (keys, timestamps, types)."""
    from customer_activity.jobs import errors, input_contract, inputs  # noqa: PLC0415 - as read_columns

    try:
        inputs.check_ports(input_contract.load_provider_contract(contract_file))
    except errors.InputError as error:
        return [line.strip().removeprefix("- ") for line in str(error).splitlines()[1:]]
    return []


def provider_side(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract without the servers this product adds to its snapshot (the local sample's)."""
    servers = [s for s in contract.get("servers") or [] if s.get("type") != "local"]
    return {**contract, "servers": servers}


def columns(contract: dict[str, Any]) -> dict[tuple[str, str], tuple[object, object]]:
    """(table, column) -> (logicalType, physicalType) of an ODCS document."""
    return {
        (str(table["name"]), str(prop["name"])): (prop.get("logicalType"), prop.get("physicalType"))
        for table in contract.get("schema") or []
        for prop in table.get("properties") or []
    }


def drift(path: str, scratch: Path) -> Verdict:
    """The snapshot at `path` against the provider's published contract, from this product's side."""
    verdict = Verdict(f"{path} (published)")
    snapshot = yaml.safe_load((ROOT / path).read_text())
    published, unavailable = published_contract(str(snapshot["id"]))
    if published is None:
        verdict.notes.append(f"warning: not compared with the published contract: {unavailable}")
        print(f"::warning::{path}: not compared with the published contract: {unavailable}", flush=True)
        return verdict
    published_file = scratch / f"published-{Path(path).name}"
    published_file.write_text(yaml.safe_dump(published, sort_keys=False))
    verdict.changelog = datacontract("changelog", path, str(published_file)).stdout.strip()
    before, after = columns(snapshot), columns(published)
    try:
        read = read_columns()
    except ImportError as error:
        verdict.problems.append(f"the product is not installed, so what the job reads is unknown ({error})")
        return verdict
    for table, names in sorted(read.items()):
        for name in sorted(names):
            if (table, name) not in after:
                verdict.problems.append(f"the published contract drops {table}.{name}, which the job reads")
            elif after[(table, name)] != before.get((table, name)):
                verdict.problems.append(
                    f"the published contract retypes {table}.{name}, which the job reads: "
                    f"{before.get((table, name))} -> {after[(table, name)]} (logical, physical type)"
                )
    if not verdict.problems:
        verdict.problems += [f"a build would refuse it: {p}" for p in refused_by_the_build(published_file)]
    if verdict.problems:
        verdict.problems.append("adapt the job to the provider's change before refreshing the snapshot")
    elif provider_side(published) != provider_side(snapshot):
        verdict.notes.append(
            f"the published contract (version {published.get('version')}) differs from the snapshot "
            f"(version {snapshot.get('version')}) compatibly: refresh it with `python .ci/contract_guard.py --refresh`"
        )
    else:
        verdict.notes.append("the published contract equals the snapshot")
    return verdict


def refresh() -> int:
    """Replace every snapshot by the provider's published contract, keeping the snapshot's local servers."""
    for path in sorted((ROOT / SNAPSHOTS).glob("*.odcs.yaml")):
        snapshot = yaml.safe_load(path.read_text())
        published, unavailable = published_contract(str(snapshot["id"]))
        if published is None:
            print(f"contract guard: {path.relative_to(ROOT)} not refreshed: {unavailable}", file=sys.stderr)
            return 2
        servers = published.setdefault("servers", [])
        names = {server.get("server") for server in servers}
        # The servers this product added to test the sample raw tables: not the provider's to publish.
        local = [s for s in snapshot.get("servers") or [] if s.get("type") == "local" and s["server"] not in names]
        servers.extend(local)
        path.write_text(yaml.safe_dump(published, sort_keys=False, allow_unicode=True))
        print(f"refreshed {path.relative_to(ROOT)} to version {published.get('version')}")
    return 0


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
    parser.add_argument(
        "base", nargs="?", help="git revision to compare with: the target branch, or the commit before a push"
    )
    parser.add_argument("--refresh", action="store_true", help="replace the snapshots by the published contracts")
    args = parser.parse_args(argv)
    if args.refresh:
        return refresh()
    if args.base is None:
        parser.error("the base revision is required")
    base = args.base
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
        verdicts += [drift(path, Path(scratch)) for path in present if path.startswith(f"{SNAPSHOTS}/")]
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
