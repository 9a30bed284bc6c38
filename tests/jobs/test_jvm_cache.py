"""The JVM's cache: Delta's jars as Ivy resolved them; the class archive, named for the Java runtime and jars it
fits, installed only when complete, made once."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from customer_activity_dev import jvm_cache

DELTA_JAR = "io.delta_delta-spark_4.2_2.13-4.4.0.jar"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(jvm_cache.SWITCH, raising=False)
    return tmp_path / "customer-activity"


def fake_java_home(root: Path, content: bytes) -> Path:
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_bytes(content)
    return root


def test_the_archive_is_named_for_the_java_runtime(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path / "jdk-a", b"a")))
    first = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    assert first is not None
    assert first.parent == cache
    assert first.name.startswith("spark-classes-")
    assert first.suffix == ".jsa"
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) == first
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path / "jdk-b", b"b")))
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) not in (None, first)
    # Updated in place: the JVM would refuse the archive, so it needs another.
    replaced = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    (tmp_path / "jdk-b" / "bin" / "java").write_bytes(b"b, updated")
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) not in (None, first, replaced)


def test_without_java_or_when_switched_off_there_is_no_archive(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk-here"))
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) is None
    assert jvm_cache.java_options(jvm_cache.known_delta_jars()) == []
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv(jvm_cache.SWITCH, "OFF")
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) is None


def test_a_session_uses_the_archive_only_once_it_exists(cache):
    assert jvm_cache.java_options(jvm_cache.known_delta_jars()) == []
    archive = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    assert archive is not None
    cache.mkdir()
    archive.write_bytes(b"classes")
    assert jvm_cache.java_options(jvm_cache.known_delta_jars()) == [
        f'"-XX:SharedArchiveFile={archive}"',
        "-Xlog:cds=off,cds+dynamic=off",
    ]


def test_the_training_run_writes_where_it_is_told_quoted_for_spark_submit(tmp_path):
    target = tmp_path / 'a "quoted" dir\\x' / "t.tmp"
    assert (
        jvm_cache.java_options(None, target)[0]
        == f'"-XX:ArchiveClassesAtExit={tmp_path}/a \\"quoted\\" dir\\\\x/t.tmp"'
    )


@pytest.mark.parametrize(("exit_code", "content"), [(1, b"half"), (0, b""), (137, b"")])
def test_an_archive_from_a_jvm_that_did_not_end_cleanly_is_never_installed(tmp_path, exit_code, content):
    written, archive = tmp_path / "a.tmp", tmp_path / "a.jsa"
    written.write_bytes(content)
    assert not jvm_cache.install(written, archive, exit_code)
    assert not archive.exists()
    assert not written.exists()


def test_a_complete_archive_replaces_the_old_one_at_once(tmp_path):
    written, archive = tmp_path / "a.tmp", tmp_path / "a.jsa"
    archive.write_bytes(b"old")
    written.write_bytes(b"new")
    assert jvm_cache.install(written, archive, 0)
    assert archive.read_bytes() == b"new"
    assert not written.exists()
    assert not jvm_cache.install(tmp_path / "never-written.tmp", archive, 0)
    assert archive.read_bytes() == b"new"


def test_only_training_files_abandoned_for_an_hour_are_removed(tmp_path):
    old, recent, other = (tmp_path / name for name in ("spark-classes-1.9.tmp", "spark-classes-1.8.tmp", "x.tmp"))
    for path in (old, recent, other):
        path.write_bytes(b"")
    now = old.stat().st_mtime + 3601
    os.utime(recent, (now - 60, now - 60))
    assert jvm_cache.remove_abandoned(tmp_path, now) == [old]
    assert sorted(path.name for path in tmp_path.iterdir()) == [recent.name, other.name]


@pytest.fixture
def known_jars(cache, tmp_path) -> list[Path]:
    jar = tmp_path / DELTA_JAR
    jar.write_bytes(b"PK")
    return jvm_cache.remember_delta_jars(jar.as_uri())


def test_a_failed_training_is_noted_and_not_tried_again_for_a_week(known_jars, monkeypatch, capsys):
    attempts = []

    def failing_training(archive: Path) -> str | None:
        attempts.append(archive)
        raise RuntimeError("no CDS in this JVM")

    monkeypatch.setattr(jvm_cache, "train", failing_training)
    assert jvm_cache.main() == 1
    archive = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    assert archive is not None
    note = jvm_cache.failure_note(archive)
    assert note.read_text() == "RuntimeError: no CDS in this JVM\n"
    assert "Spark starts without one" in capsys.readouterr().out
    assert jvm_cache.main() == 0
    assert attempts == [archive]
    assert not archive.exists()
    eight_days_ago = time.time() - 8 * 24 * 3600
    os.utime(note, (eight_days_ago, eight_days_ago))
    assert jvm_cache.main() == 1
    assert attempts == [archive, archive]


def test_a_training_that_says_what_went_wrong_leaves_that_in_the_note(known_jars, monkeypatch):
    monkeypatch.setattr(jvm_cache, "train", lambda archive: "the training run's JVM wrote no complete archive")
    assert jvm_cache.main() == 1
    archive = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    assert archive is not None
    assert jvm_cache.failure_note(archive).read_text() == "the training run's JVM wrote no complete archive\n"


@pytest.mark.parametrize("variable", ["SPARK_REMOTE", "DATABRICKS_RUNTIME_VERSION"])
def test_where_sessions_are_not_local_nothing_is_resolved_or_made(cache, monkeypatch, variable):
    monkeypatch.setenv(variable, "sc://localhost:15002")
    monkeypatch.setattr(jvm_cache, "_resolve_delta_jars", lambda: pytest.fail("resolved"))
    assert jvm_cache.main() == 0
    assert not cache.exists()


def test_an_existing_archive_is_not_made_again(known_jars, monkeypatch):
    monkeypatch.setattr(jvm_cache, "train", lambda archive: pytest.fail("trained again"))
    archive = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    assert archive is not None
    archive.write_bytes(b"classes")
    assert jvm_cache.main() == 0


def test_the_training_first_has_deltas_jars_resolved_and_stops_if_that_fails(cache, monkeypatch, capsys):
    def resolve_fails() -> None:
        raise subprocess.CalledProcessError(3, ["python"])

    monkeypatch.setattr(jvm_cache, "_resolve_delta_jars", resolve_fails)
    monkeypatch.setattr(jvm_cache, "train", lambda archive: pytest.fail("trained without Delta's jars"))
    assert jvm_cache.main() == 1
    assert "Delta Lake's jars could not be resolved (exit code 3)" in capsys.readouterr().out


def test_switched_off_nothing_is_resolved_or_made(cache, monkeypatch):
    monkeypatch.setenv(jvm_cache.SWITCH, "off")
    monkeypatch.setattr(jvm_cache, "_resolve_delta_jars", lambda: pytest.fail("resolved"))
    assert jvm_cache.main() == 0
    assert not cache.exists()


def test_the_jvm_options_dump_an_archive_that_a_jvm_then_starts_from(tmp_path):
    # The same dump-install-use cycle as the training run, with a JVM that only prints its version.
    java = jvm_cache.java_binary()
    assert java is not None
    written, archive = tmp_path / "a.tmp", tmp_path / "a.jsa"
    dump = [option.strip('"') for option in jvm_cache.java_options(None, written)]
    dumped = subprocess.run([str(java), *dump, "-version"], capture_output=True, text=True, check=False)
    assert jvm_cache.install(written, archive, dumped.returncode), dumped.stderr
    used = subprocess.run(
        [str(java), f"-XX:SharedArchiveFile={archive}", "-Xshare:on", "-version"], capture_output=True, check=False
    )
    assert used.returncode == 0
    # Why install() waits for a clean exit: a JVM given half an archive does not start
    # (and may crash, writing its error file where it runs).
    truncated = tmp_path / "truncated.jsa"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused = subprocess.run(
        [str(java), f"-XX:SharedArchiveFile={truncated}", "-Xshare:on", "-version"],
        capture_output=True,
        cwd=tmp_path,
        check=False,
    )
    assert refused.returncode != 0


def test_delta_jars_are_remembered_from_the_file_urls_ivy_gave_and_forgotten_when_one_is_gone(cache, tmp_path):
    assert jvm_cache.known_delta_jars() is None
    jars = [tmp_path / "ivy jars" / name for name in (DELTA_JAR, "io.delta_delta-storage-4.4.0.jar")]
    users_own = tmp_path / "mine" / "udfs.jar"
    for jar in [*jars, users_own]:
        jar.parent.mkdir(exist_ok=True)
        jar.write_bytes(b"PK")
    spark_jars = ",".join(jar.as_uri() for jar in [*jars, users_own, tmp_path / "ivy jars" / "not-there.jar"])
    assert jvm_cache.remember_delta_jars(spark_jars) == jars
    assert jvm_cache.known_delta_jars() == jars
    assert jvm_cache.delta_jars_file().parent == cache
    archive_with_jars = jvm_cache.archive_path(jvm_cache.known_delta_jars())
    jars[1].unlink()
    assert jvm_cache.known_delta_jars() is None
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) != archive_with_jars


def test_a_session_that_loaded_no_jars_records_none(cache):
    assert jvm_cache.remember_delta_jars("") == []
    assert not jvm_cache.delta_jars_file().exists()


def test_jars_without_delta_spark_among_them_are_not_deltas(cache, tmp_path):
    jar = tmp_path / "udfs.jar"
    jar.write_bytes(b"PK")
    assert jvm_cache.remember_delta_jars(jar.as_uri()) == []
    assert jvm_cache.known_delta_jars() is None


def test_switched_off_the_recorded_jars_are_not_used(known_jars, monkeypatch):
    assert jvm_cache.known_delta_jars() == known_jars
    monkeypatch.setenv(jvm_cache.SWITCH, "off")
    assert jvm_cache.known_delta_jars() is None


def test_a_cache_that_cannot_be_written_only_means_resolving_again(tmp_path, monkeypatch):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_directory))
    jar = tmp_path / DELTA_JAR
    jar.write_bytes(b"PK")
    assert jvm_cache.remember_delta_jars(jar.as_uri()) == []
    assert jvm_cache.known_delta_jars() is None
    assert jvm_cache.java_options(jvm_cache.known_delta_jars()) == []


def test_without_a_home_there_is_no_cache(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    assert jvm_cache.cache_dir() is None
    assert jvm_cache.known_delta_jars() is None
    assert jvm_cache.archive_path(jvm_cache.known_delta_jars()) is None
    assert jvm_cache.remember_delta_jars("") == []


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, ["/j/a.jar", "/j/b.jar"]),
        ("", ["/j/a.jar", "/j/b.jar"]),
        ("/h/x.jar", ["/h/x.jar", "/j/a.jar", "/j/b.jar"]),
        (os.pathsep.join(["/h/x.jar", "/j/a.jar", "/j/b.jar"]), ["/h/x.jar", "/j/a.jar", "/j/b.jar"]),
    ],
)
def test_delta_jars_go_after_what_spark_dist_classpath_holds_once(current, expected):
    jars = [Path("/j/a.jar"), Path("/j/b.jar")]
    assert jvm_cache.class_path_with(current, jars) == os.pathsep.join(str(Path(entry)) for entry in expected)


def test_only_the_most_recently_used_archives_are_kept(tmp_path):
    archives = [tmp_path / f"spark-classes-{n}.jsa" for n in range(5)]
    for age, archive in enumerate(archives):
        archive.write_bytes(b"")
        os.utime(archive, (1_000_000 - age, 1_000_000 - age))
    (tmp_path / "delta-jars-1.txt").write_text("kept: not an archive")

    assert jvm_cache.remove_older_archives(tmp_path, keep=3) == archives[3:]

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["delta-jars-1.txt", *(a.name for a in archives[:3])])
    assert jvm_cache.remove_older_archives(tmp_path / "empty", keep=3) == []
