"""Whole-process benchmark: `customer-activity build` against the straightforward port, each a process.

    python3 dev.py bench-process                         # 500, 100 000, and 300 000 organisations x 4
    python3 dev.py bench-process --scales 300000x4 --repetitions 2

What a user waits for: each command from its start to its exit, JVM start-up and
settings included. The build chooses its session's settings from the raw files' size;
the port (`benchmarks/straightforward.py`) runs as a plain Spark job would (all local
cores, 4 shuffle partitions, Spark's default 1 GiB driver), or with --tuned-port in the
session the build would choose. For each scale it generates the sample once (kept in `benchmarks/data/`), runs each
command once to warm the machine's caches, then `--repetitions` pairs, alternating which
goes first. Per run it records the wall time, the CPU time and the peak resident memory
of the largest process of the run (the JVM), read from /proc while it runs. The build's
published rows must equal the port's, or the comparison is void.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import run

from customer_activity.jobs import publishing

HERE = Path(__file__).resolve().parent
# Organisations x rounds of children: the quickstart's size, the old benchmark's largest, and
# 300 000 organisations with four rounds of children each (about 49 million raw rows).
SCALES = ("500", "100000", "300000x4")


def scale(text: str) -> tuple[int, int]:
    """`N` or `NxC`: N organisations with C rounds of children each (1 if not given)."""
    organizations, _, children = text.partition("x")
    return int(organizations), int(children or 1)


@dataclass
class Runs:
    """The measured runs of one command at one scale."""

    name: str
    wall_seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | list[float]]:
        return {
            "wall_seconds_median": round(statistics.median(self.wall_seconds), 2),
            "cpu_seconds_median": round(statistics.median(self.cpu_seconds), 2),
            "peak_rss_mib_max": max(self.peak_rss_mib),
            "wall_seconds": [round(s, 2) for s in self.wall_seconds],
            "cpu_seconds": [round(s, 2) for s in self.cpu_seconds],
            "peak_rss_mib": self.peak_rss_mib,
        }


def _session_members(session: int) -> list[int]:
    """The processes of a session (the command, spark-submit's JVM and their children)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # A zombie has ended: nothing more to read of it.
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def run_once(command: list[str], log: Path) -> tuple[float, float, float]:
    """Wall seconds until the command exits, and CPU seconds and peak MiB of its processes."""
    seen: dict[int, tuple[float, float]] = {}
    with log.open("ab") as output:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
        wall = None
        # The JVM outlives the Python process by a moment: its figures are read until it is gone.
        while True:
            if wall is None and process.poll() is not None:
                wall = time.monotonic() - started
            members = _session_members(process.pid)
            for pid in members:
                cpu, peak = run.process_cpu_seconds(pid), run.process_peak_rss_mib(pid)
                if cpu is not None and peak is not None:
                    seen[pid] = (cpu, max(peak, seen.get(pid, (0.0, 0.0))[1]))
            if wall is not None and not members:
                break
            time.sleep(0.2)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}; see {log}")
    return wall, sum(cpu for cpu, _ in seen.values()), round(max(peak for _, peak in seen.values()), 1)


def measure(source: Path, work: Path, repetitions: int, tuned_port: bool = False) -> dict[str, object]:
    command = shutil.which("customer-activity", path=str(Path(sys.executable).parent)) or "customer-activity"
    as_of = run.AS_OF.isoformat()
    commands = {
        "build": [command, "build", "--source-dir", str(source), "--output-dir", str(work / "build"), "--as-of", as_of],
        "straightforward": [sys.executable, str(HERE / "straightforward.py"), str(source), str(work / "port"), as_of],
    }
    if not tuned_port:
        commands["straightforward"].append("--plain")
    measured = {name: Runs(name) for name in commands}
    log = work / "commands.log"
    for repetition in range(repetitions + 1):
        order = list(commands) if repetition % 2 == 0 else list(reversed(commands))
        for name in order:
            if name == "build":
                shutil.rmtree(work / "build", ignore_errors=True)
            wall, cpu, peak = run_once(commands[name], log)
            if repetition > 0:  # the first round warms the file caches
                measured[name].wall_seconds.append(wall)
                measured[name].cpu_seconds.append(cpu)
                measured[name].peak_rss_mib.append(peak)
            print(f"  {name:<16} {wall:7.1f} s wall {cpu:7.1f} s CPU {peak:7.0f} MiB", flush=True)
    if run.published_rows(work / "build" / publishing.OUTPUT_TABLE) != run.published_rows(work / "port"):
        raise SystemExit("the build and the straightforward implementation disagree: the comparison is void")
    pairs = zip(measured["build"].wall_seconds, measured["straightforward"].wall_seconds, strict=True)
    ratios = sorted(build / port for build, port in pairs)
    return {
        "build": measured["build"].summary(),
        "straightforward": measured["straightforward"].summary(),
        "build_vs_straightforward_wall": {
            "median": round(statistics.median(ratios), 3),
            "min": round(ratios[0], 3),
            "max": round(ratios[-1], 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scales", type=scale, nargs="+", default=[scale(s) for s in SCALES], help="N or NxC (C rounds of children)"
    )
    parser.add_argument("--repetitions", type=int, default=3, help="measured pairs per scale")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data", help="where generated samples are kept")
    parser.add_argument("--results", type=Path, default=None, help="results file (default: benchmarks/results/)")
    parser.add_argument(
        "--tuned-port", action="store_true", help="the port in the job's own session instead of a plain Spark job's"
    )
    args = parser.parse_args(argv)

    scales = []
    for organizations, children in args.scales:
        source = run.ensure_sample(args.data_dir, organizations, args.seed, children)
        files = sorted(source.rglob("*.parquet"))
        raw_rows = sum(pq.read_metadata(file).num_rows for file in files)
        work = args.data_dir / "work" / f"whole-process-{organizations}x{children}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"{organizations} organisations, {raw_rows} raw rows: a warm-up pair, {args.repetitions} pairs")
        described = {"organizations": organizations, "children": children, "raw_rows": raw_rows}
        described["raw_bytes"] = sum(file.stat().st_size for file in files)
        scales.append(described | measure(source, work, args.repetitions, args.tuned_port))
        ratio = scales[-1]["build_vs_straightforward_wall"]
        print(f"  build / straightforward, wall: {ratio['median']} ({ratio['min']}-{ratio['max']})")
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": "whole process",
        "straightforward_session": "the job's own"
        if args.tuned_port
        else "a plain Spark job's (straightforward.py --plain)",
        "as_of": run.AS_OF.isoformat(),
        "repetitions": args.repetitions,
        "machine": {"cpus": os.cpu_count(), "java": run._java_version(), "python": sys.version.split()[0]},
        "scales": scales,
    }
    target = args.results or HERE / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-whole-process.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
