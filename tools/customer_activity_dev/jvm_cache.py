"""What makes a local Spark JVM start faster, kept in the user's cache between runs.

Delta Lake's jars. `configure_spark_with_delta_pip` has Spark resolve them with Ivy at
every start (from Maven Central the first time, from Ivy's cache after that) and load them
through a class loader of their own. A first session records where Ivy put them; later
ones get them on the JVM's class path (after Spark's own jars, as Spark's loader did)
and skip Ivy: measured at 500 organisations with the class archive, `build` 13.5 s instead
of 15.3 s, whole process.

A class-data-sharing archive of the classes a local Spark session loads. Every local JVM
loads, parses and verifies the same ~18 000 classes of Spark before it has read a row: at
the quickstart's size that is several seconds of every command. HotSpot can map them from
an archive instead (class data sharing; dynamic archives, JDK 13 and later).
Measured at 500 organisations, whole process: `build` 16-18 s instead of 21 s.

The archive is made by a training run: a small sample generated, built and contract-tested
in a JVM started with `-XX:ArchiveClassesAtExit`, which writes the classes it loaded when it
exits. `python3 dev.py` runs it once, before `run`, `test` and `bench`
(`python -m customer_activity_dev.jvm_cache`), and hands the commands it starts the
variables that use both (`environment`); without them Spark starts as before. The
training run first makes sure Delta's jars are known, so that the archive holds Delta's
classes too.

A JVM given a truncated archive may crash, so the archive is written under a temporary name
and renamed only after its JVM exited cleanly. The archive only fits the Java runtime and the
jars it was made with: its name carries a digest of both (paths, sizes, modification times),
and the JVM itself refuses one that does not fit (silently: the session then starts without
it). An archive is about 200 MB.

Both are only optimisations: a cache that cannot be read or written, a JVM without class
data sharing, a failed training run, each leaves Spark starting the way it did without them.
`CUSTOMER_ACTIVITY_CLASS_ARCHIVE=off` switches both off.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from customer_activity.jobs.report import replace_file

logger = logging.getLogger(__name__)

# "off" switches the recorded jars and the archive off, for sessions and the training run.
SWITCH = "CUSTOMER_ACTIVITY_CLASS_ARCHIVE"
# The archive's warnings (a stale or foreign archive, classes it cannot hold) name
# nothing a user can act on; the JVM then simply loads those classes itself.
_QUIET = "-Xlog:cds=off,cds+dynamic=off"
_TRAINING_ORGANIZATIONS = 50
_TRAINING_AS_OF = date(2026, 1, 1)
# A training run that ended without renaming its file (killed, machine stopped)
# leaves it behind; after this long no training run still writes it.
_ABANDONED_AFTER_SECONDS = 3600
# A failed training is not tried at every start; its cause (a full disk, a killed JVM)
# may be gone after this long.
_RETRY_AFTER_SECONDS = 7 * 24 * 3600
# Archives kept in the cache: this environment's and those of a few others (another clone, an
# earlier PySpark); the least recently used go first.
_ARCHIVES_KEPT = 3
_SWITCHES_TO_REMOTE = ("SPARK_REMOTE", "DATABRICKS_RUNTIME_VERSION")


def switched_off() -> bool:
    return os.environ.get(SWITCH, "").lower() == "off"


def cache_dir() -> Path | None:
    """The user's cache, like Ivy's jars and pip's wheels; None where there is no home to hold it."""
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:
        return None
    return Path(base) / "customer-activity"


def _digest(parts: Iterable[object]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(str(part).encode() + b"\0")
    return digest.hexdigest()[:16]


def _versions() -> list[str]:
    # Delta's jars come from Ivy in the version delta-spark names; Spark's from the pyspark package.
    return [importlib.metadata.version(package) for package in ("pyspark", "delta-spark")]


def delta_jars_file() -> Path | None:
    """Where the jars Ivy resolved for this pyspark and delta-spark are listed."""
    directory = cache_dir()
    return None if directory is None else directory / f"delta-jars-{_digest(_versions())}.txt"


def known_delta_jars() -> list[Path] | None:
    """Delta's jars as the first session recorded them; None if not recorded, one is gone, or switched off."""
    listing = delta_jars_file()
    if switched_off() or listing is None:
        return None
    try:
        jars = [Path(line) for line in listing.read_text().splitlines() if line]
    except (OSError, UnicodeDecodeError):
        return None
    return jars if jars and all(jar.is_file() for jar in jars) else None


def ivy_jars(spark_jars: str) -> list[Path]:
    """The jars Ivy put beside delta-spark's, of those a session's `spark.jars` names (file URLs).

    A user's own jars (`--jars`, spark-defaults) are elsewhere, and stay the user's to give.
    """
    jars = [Path(url2pathname(urlparse(uri.strip()).path)) for uri in spark_jars.split(",") if uri.strip()]
    retrieved = {jar.parent for jar in jars if jar.name.startswith("io.delta_delta-spark_")}
    return [jar for jar in jars if jar.parent in retrieved and jar.suffix == ".jar" and jar.is_file()]


def remember_delta_jars(spark_jars: str) -> list[Path]:
    """Record Delta's jars from a session's `spark.jars`, for later sessions; [] if none or not writable."""
    jars = ivy_jars(spark_jars)
    listing = delta_jars_file()
    if not jars or listing is None or switched_off():
        return []
    try:
        listing.parent.mkdir(parents=True, exist_ok=True)
        replace_file(listing, "".join(f"{jar}\n" for jar in jars))
    except OSError as error:
        logger.info("Delta's jars not recorded in %s (%s): the next session resolves them again", listing, error)
        return []
    return jars


def class_path_with(current: str | None, jars: Sequence[Path]) -> str:
    """SPARK_DIST_CLASSPATH with `jars` appended: Spark's launcher puts it after Spark's own jars."""
    entries = current.split(os.pathsep) if current else []
    return os.pathsep.join([*entries, *(str(jar) for jar in jars if str(jar) not in entries)])


def java_binary() -> Path | None:
    """The java that spark-submit starts: $JAVA_HOME/bin/java, else the first on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if not found or not Path(found).exists():
        return None
    return Path(found).resolve()


def _identity(path: Path) -> list[object]:
    # The JVM checks a class path entry's size and modification time against the archive's.
    status = path.stat()
    return [path, status.st_size, status.st_mtime_ns]


def archive_path(delta_jars: Sequence[Path] | None) -> Path | None:
    """The archive for this Java runtime, Spark's jars and `delta_jars` (known_delta_jars());
    None when switched off or not possible here."""
    java = java_binary()
    spec = importlib.util.find_spec("pyspark")
    directory = cache_dir()
    if switched_off() or java is None or spec is None or spec.origin is None or directory is None:
        return None
    # A reinstalled pyspark rewrites its jars directory, which changes that directory's time.
    spark_jars = Path(spec.origin).resolve().parent / "jars"
    try:
        parts = [*_versions(), *_identity(java), *_identity(spark_jars)]
        for jar in delta_jars or []:
            parts += _identity(jar)
    except OSError:
        return None
    return directory / f"spark-classes-{_digest(parts)}.jsa"


def _quoted(option: str) -> str:
    # spark-submit splits Java options like a shell: a path with a space needs quotes.
    escaped = option.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def java_options(delta_jars: Sequence[Path] | None, dump_to: Path | None = None) -> list[str]:
    """JVM options of a local session: write the archive to `dump_to`, else use the archive if made."""
    if dump_to is not None:
        return [_quoted(f"-XX:ArchiveClassesAtExit={dump_to}"), _QUIET]
    archive = archive_path(delta_jars)
    if archive is None or not archive.is_file():
        return []
    # Its modification time says when it was last used: the newest are the ones kept.
    with contextlib.suppress(OSError):
        os.utime(archive)
    return [_quoted(f"-XX:SharedArchiveFile={archive}"), _QUIET]


def failure_note(archive: Path) -> Path:
    """Written when training failed, so that every start does not try again for a while; delete it to retry."""
    return archive.with_suffix(".failed")


def _failed_recently(archive: Path, now: float) -> bool:
    try:
        return now - failure_note(archive).stat().st_mtime < _RETRY_AFTER_SECONDS
    except OSError:
        return False


def install(written: Path, archive: Path, jvm_exit_code: int) -> bool:
    """Rename a training run's archive into place if its JVM wrote it completely; remove it otherwise."""
    if jvm_exit_code == 0 and written.is_file() and written.stat().st_size > 0:
        written.replace(archive)
        return True
    written.unlink(missing_ok=True)
    return False


def _last_used(path: Path) -> float:
    # Another clone may remove an archive between the listing and this look.
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def remove_older_archives(directory: Path, keep: int = _ARCHIVES_KEPT) -> list[Path]:
    """Archives of other environments beyond the `keep` most recently used (each about 200 MB)."""
    archives = sorted(directory.glob("spark-classes-*.jsa"), key=_last_used, reverse=True)
    for old in archives[keep:]:
        # A JVM that maps an archive keeps reading it after the unlink; the next start makes a new one.
        with contextlib.suppress(OSError):
            old.unlink()
    return archives[keep:]


def remove_abandoned(directory: Path, now: float) -> list[Path]:
    """Temporary files of training runs that ended without renaming them."""
    removed = []
    for leftover in directory.glob("spark-classes-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - leftover.stat().st_mtime > _ABANDONED_AFTER_SECONDS:
                leftover.unlink()
                removed.append(leftover)
    return removed


def train(archive: Path) -> str | None:
    """Generate, build and contract-test a small sample in a JVM that writes the archive when it exits.

    Returns None once the archive is in place, else what went wrong.
    """
    # Imported here: checking whether an archive exists must not pay for Spark's imports.
    from pyspark import SparkContext  # noqa: PLC0415

    from customer_activity.jobs import session  # noqa: PLC0415
    from customer_activity.jobs.errors import EXIT_OK  # noqa: PLC0415
    from customer_activity.jobs.lineage import Lineage  # noqa: PLC0415
    from customer_activity_dev import local_run  # noqa: PLC0415

    remove_abandoned(archive.parent, time.time())
    written = archive.with_name(f"{archive.stem}.{os.getpid()}.tmp")
    passed = False
    output = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="customer-activity-training-") as workdir:
        # The run's own session then is this one, which writes the archive: its JVM gets
        # the jars as every later one will, and the option to dump the classes it loaded.
        os.environ.update(environment(os.environ, known_delta_jars(), dump_to=written))
        spark = session.create_spark_session(warehouse=Path(workdir) / "warehouse")
        gateway = SparkContext._gateway
        if gateway is None:
            spark.stop()
            return "the session has no local JVM"
        try:
            # Without lineage and without output: a throwaway sample.
            with contextlib.redirect_stdout(output):
                config = local_run.LocalRunConfig(
                    Path(workdir), organizations=_TRAINING_ORGANIZATIONS, as_of=_TRAINING_AS_OF
                )
                passed = local_run.run(config, lineage=Lineage(None)) == EXIT_OK
        finally:
            spark.stop()
            # The JVM ends when its standard input closes, and writes the archive on its way out.
            gateway.proc.stdin.close()
            jvm_exit_code = gateway.proc.wait()
            # A failed run's archive would hold the classes of a failure, if any at all.
            if not passed:
                written.unlink(missing_ok=True)
    if not passed:
        return "the training run's contract test failed: " + " ".join(output.getvalue().split()[-40:])
    if not install(written, archive, jvm_exit_code):
        return f"the training run's JVM wrote no complete archive (exit code {jvm_exit_code})"
    return None


_PRINT_JARS = (
    "from customer_activity.jobs import session\n"
    "print(session.create_spark_session().sparkContext.getConf().get('spark.jars', ''))"
)


def _resolve_delta_jars() -> None:
    """A session of its own resolves Delta's jars with Ivy; they are recorded for later sessions."""
    environment = {k: v for k, v in os.environ.items() if k != "SPARK_DIST_CLASSPATH"}
    found = subprocess.run(
        [sys.executable, "-c", _PRINT_JARS], capture_output=True, text=True, check=True, env=environment
    )
    remember_delta_jars(found.stdout.strip().splitlines()[-1] if found.stdout.strip() else "")


def environment(
    current: Mapping[str, str], delta_jars: Sequence[Path] | None, dump_to: Path | None = None
) -> dict[str, str]:
    """The variables that start local Spark from the cache: Delta's jars on the class path, the archive.

    SPARK_DIST_CLASSPATH is what Spark's launcher puts after its own jars (and what the
    job's session looks at before it resolves Delta's jars); SPARK_SUBMIT_OPTS what it
    gives the JVM. Empty when there is nothing to use.
    """
    variables = {}
    if delta_jars:
        variables["SPARK_DIST_CLASSPATH"] = class_path_with(current.get("SPARK_DIST_CLASSPATH"), delta_jars)
    options = java_options(delta_jars, dump_to)
    if options:
        variables["SPARK_SUBMIT_OPTS"] = " ".join(filter(None, [current.get("SPARK_SUBMIT_OPTS", ""), *options]))
    return variables


def main(argv: Sequence[str] = ()) -> int:
    """Make the archive if this environment has none yet; 1 if that failed (not tried again for a week).

    With `env`, print the variables that start local Spark from the cache, as JSON.
    """
    if list(argv) == ["env"]:
        print(json.dumps(environment(os.environ, known_delta_jars())))
        return 0
    if switched_off() or any(os.environ.get(variable) for variable in _SWITCHES_TO_REMOTE):
        return 0
    delta_jars = known_delta_jars()
    if delta_jars is None:
        print("Resolving Delta Lake's jars once (from Maven Central the first time)...", flush=True)
        try:
            _resolve_delta_jars()
        except subprocess.CalledProcessError as error:
            print(f"Delta Lake's jars could not be resolved (exit code {error.returncode}); no class archive made.")
            return 1
        delta_jars = known_delta_jars()
    archive = archive_path(delta_jars)
    if archive is None or archive.is_file() or _failed_recently(archive, time.time()):
        return 0
    print("Saving the classes Spark loads (about 200 MB), to start its JVM faster (once, about a minute)...")
    started = time.perf_counter()
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        problem = train(archive)
    # The archive only saves time: whatever keeps it from being made must not stop the command.
    except Exception as error:  # noqa: BLE001
        problem = f"{type(error).__name__}: {error}"
    if problem is None:
        print(f"Saved {archive} in {time.perf_counter() - started:.0f} s.")
        for old in remove_older_archives(archive.parent):
            print(f"Removed {old}, the least recently used class archive beyond {_ARCHIVES_KEPT}.")
        return 0
    note = failure_note(archive)
    with contextlib.suppress(OSError):
        note.write_text(problem + "\n")
    print(f"No class archive ({problem}); Spark starts without one. Delete {note} to try again before a week is over.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
