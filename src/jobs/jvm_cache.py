"""What makes a local Spark JVM start faster, kept in the user's cache between runs.

Delta Lake's jars. `configure_spark_with_delta_pip` has Spark resolve them with Ivy at
every start (from Maven Central the first time, from Ivy's cache after that) and load them
through a class loader of their own. The first session records where Ivy put them; later
sessions put them on the JVM's class path (after Spark's own jars, as Spark's loader did)
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
(`python -m customer_activity.jobs.jvm_cache`). Local sessions use the archive when it
exists; without it they start as before. The training run first makes sure Delta's jars are
known, so that the archive holds Delta's classes too.

A JVM maps a truncated archive and dies of it, so the archive is written under a temporary
name and renamed only after its JVM exited cleanly. The archive only fits the Java runtime
and the jars it was made with: its name carries a digest of both, and the JVM itself refuses
one that does not fit (silently: the session then starts without it).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

# "off" keeps local sessions from using an archive and the training run from making one.
SWITCH = "CUSTOMER_ACTIVITY_CLASS_ARCHIVE"
# The archive's warnings (a stale or foreign archive, classes it cannot hold) name
# nothing a user can act on; the JVM then simply loads those classes itself.
_QUIET = "-Xlog:cds=off,cds+dynamic=off"
_TRAINING_ORGANIZATIONS = 50
_TRAINING_AS_OF = date(2026, 1, 1)
# A training run that ended without renaming its file (killed, machine stopped)
# leaves it behind; after this long no training run still writes it.
_ABANDONED_AFTER_SECONDS = 3600


def cache_dir() -> Path:
    """Where archives are kept: the user's cache, like Ivy's jars and pip's wheels."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "customer-activity"


def _versions_digest() -> hashlib._Hash:
    digest = hashlib.sha256()
    # Delta's jars come from Ivy in the version delta-spark names; Spark's from the pyspark package.
    for package in ("pyspark", "delta-spark"):
        digest.update(importlib.metadata.version(package).encode() + b"\0")
    return digest


def delta_jars_file() -> Path:
    """Where the jars Ivy resolved for this pyspark and delta-spark are listed."""
    return cache_dir() / f"delta-jars-{_versions_digest().hexdigest()[:16]}.txt"


def known_delta_jars() -> list[Path] | None:
    """Delta's jars as the first session recorded them; None if not recorded or one is gone."""
    if os.environ.get(SWITCH, "").lower() == "off":
        return None
    try:
        jars = [Path(line) for line in delta_jars_file().read_text().splitlines() if line]
    except OSError:
        return None
    return jars if jars and all(jar.is_file() for jar in jars) else None


def remember_delta_jars(spark_jars: str) -> list[Path]:
    """Record the jars a session's `spark.jars` names (file URLs Ivy resolved), for later sessions."""
    jars = [Path(unquote(urlparse(uri).path)) for uri in spark_jars.split(",") if uri.strip()]
    jars = [jar for jar in jars if jar.suffix == ".jar" and jar.is_file()]
    if jars:
        _write_atomically(delta_jars_file(), "".join(f"{jar}\n" for jar in jars))
    return jars


def class_path_with(current: str | None, jars: Sequence[Path]) -> str:
    """SPARK_DIST_CLASSPATH with `jars` appended: Spark's launcher puts it after Spark's own jars."""
    entries = current.split(os.pathsep) if current else []
    return os.pathsep.join([*entries, *(str(jar) for jar in jars if str(jar) not in entries)])


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    written.write_text(text)
    written.replace(path)


def java_binary() -> Path | None:
    """The java that spark-submit starts: $JAVA_HOME/bin/java, else the first on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if not found or not Path(found).exists():
        return None
    return Path(found).resolve()


def archive_path() -> Path | None:
    """The archive for this Java runtime and these jars, or None when archives are switched off."""
    if os.environ.get(SWITCH, "").lower() == "off":
        return None
    java = java_binary()
    spec = importlib.util.find_spec("pyspark")
    if java is None or spec is None or spec.origin is None:
        return None
    digest = _versions_digest()
    java_stat = java.stat()
    delta_jars = known_delta_jars() or []
    for part in (
        str(java),
        str(java_stat.st_size),
        str(java_stat.st_mtime_ns),
        str(Path(spec.origin).resolve().parent),
    ):
        digest.update(part.encode() + b"\0")
    for jar in delta_jars:
        digest.update(str(jar).encode() + b"\0")
    return cache_dir() / f"spark-classes-{digest.hexdigest()[:16]}.jsa"


def _quoted(option: str) -> str:
    # spark-submit splits extraJavaOptions like a shell: a path with a space needs quotes.
    escaped = option.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def java_options(dump_to: Path | None = None) -> list[str]:
    """JVM options of a local session: write the archive to `dump_to`, else use the archive if made."""
    if dump_to is not None:
        return [_quoted(f"-XX:ArchiveClassesAtExit={dump_to}"), _QUIET]
    archive = archive_path()
    if archive is None or not archive.is_file():
        return []
    return [_quoted(f"-XX:SharedArchiveFile={archive}"), _QUIET]


def failure_note(archive: Path) -> Path:
    """Written when training failed, so that every later start does not try again; delete it to retry."""
    return archive.with_suffix(".failed")


def install(written: Path, archive: Path, jvm_exit_code: int) -> bool:
    """Rename a training run's archive into place if its JVM wrote it completely; remove it otherwise."""
    if jvm_exit_code == 0 and written.is_file() and written.stat().st_size > 0:
        written.replace(archive)
        return True
    written.unlink(missing_ok=True)
    return False


def remove_abandoned(directory: Path, now: float) -> list[Path]:
    """Temporary files of training runs that ended without renaming them."""
    removed = []
    for leftover in directory.glob("spark-classes-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - leftover.stat().st_mtime > _ABANDONED_AFTER_SECONDS:
                leftover.unlink()
                removed.append(leftover)
    return removed


def train(archive: Path) -> bool:
    """Generate, build and contract-test a small sample in a JVM that writes the archive when it exits."""
    # Imported here: checking whether an archive exists must not pay for Spark's imports.
    from pyspark import SparkContext  # noqa: PLC0415

    from customer_activity.jobs import local_run, session  # noqa: PLC0415

    remove_abandoned(archive.parent, time.time())
    written = archive.with_name(f"{archive.stem}.{os.getpid()}.tmp")
    code = None
    with tempfile.TemporaryDirectory(prefix="customer-activity-training-") as workdir:
        spark = session.create_spark_session(warehouse=Path(workdir) / "warehouse", dump_classes_to=written)
        gateway = SparkContext._gateway
        if gateway is None:
            raise RuntimeError("the session has no local JVM")
        try:
            # The run's own summary is not what the user asked for here.
            with contextlib.redirect_stdout(io.StringIO()):
                code = local_run.run(
                    local_run.LocalRunConfig(
                        Path(workdir), organizations=_TRAINING_ORGANIZATIONS, as_of=_TRAINING_AS_OF
                    )
                )
        finally:
            spark.stop()
            # The JVM ends when its standard input closes, and writes the archive on its way out.
            gateway.proc.stdin.close()
            jvm_exit_code = gateway.proc.wait()
            if code != 0:
                written.unlink(missing_ok=True)
    return code == 0 and install(written, archive, jvm_exit_code)


def _resolve_delta_jars() -> None:
    """A session of its own resolves Delta's jars with Ivy and records them (see session.py)."""
    subprocess.run(
        [sys.executable, "-c", "from customer_activity.jobs import session; session.create_spark_session()"],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def main() -> int:
    """Make the archive if this environment has none yet; 1 if that failed (and is not tried again)."""
    if os.environ.get(SWITCH, "").lower() == "off":
        return 0
    if known_delta_jars() is None:
        try:
            _resolve_delta_jars()
        except subprocess.CalledProcessError as error:
            print(f"Delta Lake's jars could not be resolved (exit code {error.returncode}); no class archive made.")
            return 1
    archive = archive_path()
    if archive is None or archive.is_file() or failure_note(archive).exists():
        return 0
    archive.parent.mkdir(parents=True, exist_ok=True)
    print("Saving the classes Spark loads, to start its JVM faster from now on (once, under a minute)...", flush=True)
    started = time.perf_counter()
    try:
        made = train(archive)
        problem = "" if made else "the training run's JVM did not write it"
    # The archive only saves time: whatever keeps it from being made must not stop the command.
    except Exception as error:  # noqa: BLE001
        made, problem = False, f"{type(error).__name__}: {error}"
    if made:
        print(f"Saved {archive} in {time.perf_counter() - started:.0f} s.")
        return 0
    failure_note(archive).write_text(problem + "\n")
    print(f"No class archive ({problem}); Spark starts without one. Delete {failure_note(archive)} to try again.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
