"""Benchmark: the project's build against the straightforward dbt port and the scan floor.

    python3 dev.py bench                                   # 20 000 and 100 000 organisations
    python3 dev.py bench --organizations 20000 --repetitions 3

For every scale it generates (once, then reuses) the sample raw tables, and then, in
one Spark session with the job's own local settings, measures:

  (a) build            the project's whole `build`: read and check the inputs, stage,
                       transform, write the candidate, audit it against the contract,
                       publish it, write the run report;
  (b) straightforward  the dbt models ported as they are (benchmarks/straightforward.py),
                       from the same checked inputs to Parquet (the build publishes Delta);
  (c) scan floor       reading every input column the output depends on, once;

and, to show where (a)'s time goes, (a-) the build's transforms alone, written like (b).
Each runs once to warm up, then `--repetitions` times, interleaved and in rotating
order so that no variant always runs on a cooler machine; the median counts. The
ratios (a)/(b) and (a)/(c), the JVM's CPU seconds (its process CPU time over the run, every thread: on a shared
machine far steadier than wall time), its peak heap and resident memory per variant
and a description of the machine are printed and written to a JSON results file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import straightforward
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from customer_activity.jobs import inputs, local_catalog, publishing, session
from customer_activity.jobs.build import BuildConfig, run_build
from customer_activity.jobs.contract import load_contract
from customer_activity.transforms import output_ports
from customer_activity.transforms.staging import STAGING_MODELS, stage_all
from customer_activity_dev import sample_data

HERE = Path(__file__).resolve().parent
AS_OF = date(2026, 11, 20)
# The targets of the performance issue, checked at 100 000 organisations and more.
TARGET_SCALE = 100_000
TARGET_VS_STRAIGHTFORWARD = 0.8
TARGET_VS_SCAN_FLOOR = 2.5


def floor_columns(table: str) -> list[str]:
    """The input columns the output depends on: the staging model's, with its versions."""
    model = STAGING_MODELS[table]
    return [model.port.key, *model.columns, *model.port.technical_columns]


class JvmMemory:
    """Peak memory of the Spark JVM, reset before each measured run.

    Two views: the heap Spark's operators actually used (the peaks of the heap's memory
    pools, from the JVM's own management beans), and the process's resident memory
    (Linux: writing 5 to /proc/<pid>/clear_refs resets its high-water mark to the
    current size; the JVM rarely returns memory, so this is mostly how far the heap
    has grown).
    """

    def __init__(self, spark: SparkSession) -> None:
        management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
        self._pools = [pool for pool in management.getMemoryPoolMXBeans() if str(pool.getType()) == "Heap memory"]
        self._pid = self._find_jvm()

    @staticmethod
    def _find_jvm() -> int | None:
        parent = str(os.getpid())
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == parent and fields.get("Name", "").strip() == "java":
                return int(status.parent.name)
        return None

    def reset(self) -> None:
        for pool in self._pools:
            pool.resetPeakUsage()
        if self._pid is not None:
            with contextlib.suppress(OSError):
                Path(f"/proc/{self._pid}/clear_refs").write_text("5")

    def peak_heap_mib(self) -> float:
        return round(sum(pool.getPeakUsage().getUsed() for pool in self._pools) / 1024**2, 1)

    def cpu_seconds(self) -> float | None:
        """The JVM process's CPU time so far, all threads (JIT and GC included); None off Linux."""
        return None if self._pid is None else process_cpu_seconds(self._pid)

    def peak_rss_mib(self) -> float | None:
        return None if self._pid is None else process_peak_rss_mib(self._pid)


def process_cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far, every thread; None once it is gone, or off Linux."""
    try:
        # After the command name in parentheses: utime and stime are fields 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_peak_rss_mib(pid: int) -> float | None:
    """A process's peak resident memory so far; None once it is gone (a zombie has none), or off Linux."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((round(int(line.split()[1]) / 1024, 1) for line in status if line.startswith("VmHWM:")), None)


@dataclass
class Variant:
    name: str
    run: Callable[[], None]
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_heap_mib: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None


def ensure_sample(data_dir: Path, organizations: int, seed: int, children: int = 1) -> Path:
    """The raw tables of one scale, generated once and kept for later runs."""
    rounds = f"-children-{children}" if children > 1 else ""
    source = data_dir / f"organizations-{organizations}{rounds}-seed-{seed}-as-of-{AS_OF.isoformat()}"
    done = source / ".complete"
    if not done.exists():
        shutil.rmtree(source, ignore_errors=True)
        print(f"generating the sample for {organizations} organisations in {source} ...", flush=True)
        started = time.perf_counter()
        sample_data.generate(source, organizations, AS_OF, seed, children)
        done.write_text(f"{time.perf_counter() - started:.1f} s\n")
    return source


def variants(spark: SparkSession, source: Path, work: Path) -> list[Variant]:
    location = local_catalog.mounted_source(spark, source)
    contract = load_contract()

    def build() -> None:
        output = local_catalog.mount_output(spark, work / "build", datetime.now(UTC))
        run_build(spark, BuildConfig(source=location, output=output, as_of=AS_OF))

    def transforms_only() -> None:
        raw = inputs.read_raw_tables(spark, location)
        candidate = output_ports.customer_activity(stage_all(raw), AS_OF, datetime.now(UTC), contract.spark_schema)
        candidate.write.mode("overwrite").parquet(str(work / "transforms"))

    def straightforward_port() -> None:
        raw = inputs.read_raw_tables(spark, location)
        result = straightforward.customer_activity(spark, raw, AS_OF, datetime.now(UTC))
        result.write.mode("overwrite").parquet(str(work / "straightforward"))

    def scan_floor() -> None:
        for table in STAGING_MODELS:
            spark.read.parquet(str(source / table)).select(*floor_columns(table)).write.format("noop").mode(
                "overwrite"
            ).save()

    return [
        Variant("build", build),
        Variant("build transforms only", transforms_only),
        Variant("straightforward", straightforward_port),
        Variant("scan floor", scan_floor),
    ]


def _naive_utc(value: object) -> object:
    # Delta's reader returns timestamps in UTC, Parquet's without a zone: the same instants.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def published_rows(path: Path) -> list[dict[str, object]]:
    """The rows at `path` without `updated_at`: a Delta table (the build's) or Parquet files."""
    table = DeltaTable(str(path)).to_pyarrow_table() if (path / "_delta_log").is_dir() else pq.read_table(path)
    rows = [{key: _naive_utc(value) for key, value in row.items()} for row in table.drop(["updated_at"]).to_pylist()]
    return sorted(rows, key=lambda row: row["organization_id"])


def measure(spark: SparkSession, source: Path, work: Path, repetitions: int, memory: JvmMemory) -> list[Variant]:
    measured = variants(spark, source, work)
    for variant in measured:
        variant.run()
    for repetition in range(repetitions):
        shift = repetition % len(measured)
        for variant in measured[shift:] + measured[:shift]:
            memory.reset()
            started, cpu_before = time.perf_counter(), memory.cpu_seconds()
            variant.run()
            variant.seconds.append(time.perf_counter() - started)
            cpu_after = memory.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                variant.cpu_seconds.append(cpu_after - cpu_before)
            variant.peak_heap_mib.append(memory.peak_heap_mib())
            rss = memory.peak_rss_mib()
            if rss is not None:
                variant.peak_rss_mib.append(rss)
        print(f"  repetition {repetition + 1}/{repetitions} done", flush=True)
    if published_rows(work / "build" / publishing.OUTPUT_TABLE) != published_rows(work / "straightforward"):
        raise SystemExit("the build and the straightforward implementation disagree: the comparison is void")
    return measured


def _java_version() -> str:
    java = Path(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java:
        return "unknown"
    output = subprocess.run([str(java), "-version"], check=False, capture_output=True, text=True).stderr
    return output.splitlines()[0] if output else "unknown"


def describe_machine(spark: SparkSession) -> dict[str, object]:
    cpu = "unknown"
    memory_gib: float | None = None
    if Path("/proc/cpuinfo").exists():
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1).strip() if match else cpu
    if Path("/proc/meminfo").exists():
        match = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        memory_gib = round(int(match.group(1)) / 1024**2, 1) if match else None
    conf = spark.conf
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": sys.version.split()[0],
        "java": _java_version(),
        "spark": spark.version,
        "spark_settings": {
            key: conf.get(key, None)
            for key in (
                "spark.master",
                "spark.driver.memory",
                "spark.sql.shuffle.partitions",
                "spark.sql.adaptive.enabled",
            )
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """A ratio of CPU medians, None where the JVM's CPU time could not be read."""
    return None if numerator is None or not denominator else round(numerator / denominator, 3)


def _shown(value: object) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(organizations: int, source: Path, measured: list[Variant]) -> dict[str, object]:
    by_name = {variant.name: variant for variant in measured}
    build, floor, port = by_name["build"].median, by_name["scan floor"].median, by_name["straightforward"].median
    input_rows = {
        table: sum(pq.read_metadata(f).num_rows for f in (source / table).glob("*.parquet")) for table in STAGING_MODELS
    }
    result = {
        "organizations": organizations,
        "input_rows": input_rows,
        "variants": {
            variant.name: {
                "median_seconds": round(variant.median, 3),
                "seconds": [round(s, 3) for s in variant.seconds],
                "median_jvm_cpu_seconds": _rounded(variant.median_cpu),
                "jvm_cpu_seconds": [round(s, 3) for s in variant.cpu_seconds],
                "peak_jvm_heap_mib": max(variant.peak_heap_mib),
                "peak_jvm_rss_mib": max(variant.peak_rss_mib) if variant.peak_rss_mib else None,
            }
            for variant in measured
        },
        "build_vs_straightforward": round(build / port, 3),
        "build_vs_scan_floor": round(build / floor, 3),
        "transforms_vs_straightforward": round(by_name["build transforms only"].median / port, 3),
        "cpu_build_vs_straightforward": _ratio(by_name["build"].median_cpu, by_name["straightforward"].median_cpu),
        "cpu_build_vs_scan_floor": _ratio(by_name["build"].median_cpu, by_name["scan floor"].median_cpu),
    }
    print(f"\n{organizations} organisations, {sum(input_rows.values())} raw rows")
    print(f"  {'variant':<24} {'median s':>9} {'JVM CPU s':>9} {'heap MiB':>9} {'RSS MiB':>8}   runs (wall s)")
    for variant in measured:
        rss = max(variant.peak_rss_mib) if variant.peak_rss_mib else float("nan")
        runs = ", ".join(f"{s:.2f}" for s in variant.seconds)
        print(
            f"  {variant.name:<24} {variant.median:>9.2f} {_shown(variant.median_cpu):>9}"
            f" {max(variant.peak_heap_mib):>9.0f} {rss:>8.0f}   {runs}"
        )
    verdict = organizations >= TARGET_SCALE
    print(f"  {'':<34} {'wall':>5} {'CPU':>5}")
    for label, key, target in (
        ("(a)/(b) build / straightforward", "build_vs_straightforward", TARGET_VS_STRAIGHTFORWARD),
        ("(a)/(c) build / scan floor", "build_vs_scan_floor", TARGET_VS_SCAN_FLOOR),
    ):
        ratio = result[key]
        status = (
            ("meets" if ratio <= target else "MISSES") + f" the target <= {target} (wall)"
            if verdict
            else "(targets apply from 100 000)"
        )
        print(f"  {label:<34} {ratio:5.2f} {_shown(result['cpu_' + key]):>5}  {status}")
    print(f"  (a-)/(b) transforms only / straightforward {result['transforms_vs_straightforward']:.2f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--organizations", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data", help="where generated samples are kept")
    parser.add_argument(
        "--results", type=Path, default=None, help="results file (default: benchmarks/results/<UTC time>.json)"
    )
    args = parser.parse_args(argv)

    spark = session.create_spark_session(long_lived=True)
    memory = JvmMemory(spark)
    machine = describe_machine(spark)
    print(f"machine: {machine['cpus']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB; Spark {machine['spark']}")
    scales = []
    for organizations in args.organizations:
        source = ensure_sample(args.data_dir, organizations, args.seed)
        work = args.data_dir / "work" / str(organizations)
        shutil.rmtree(work, ignore_errors=True)
        print(f"measuring {organizations} organisations: warm-up, then {args.repetitions} repetitions ...", flush=True)
        scales.append(report(organizations, source, measure(spark, source, work, args.repetitions, memory)))
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": AS_OF.isoformat(),
        "repetitions": args.repetitions,
        "machine": machine,
        "python_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "scales": scales,
    }
    target = args.results or HERE / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {target}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
