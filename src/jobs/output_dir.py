"""A local output directory: checked before any work, one build at a time, no leftovers.

Everything the job writes, renames or deletes lives in the output directory under
names of its own (the table, the hidden staging area, the lock, the run report). The
job follows no symbolic link among them: a link could send a delete or a write out
of the directory, so a link where the job expects its own file or directory is
refused before anything is read.

One build at a time: a build holds an exclusive lock on `.customer_activity.lock`
while it stages, audits and publishes. The operating system releases the lock when
the process ends, however it ends, so a killed build never blocks the next one;
that next one removes what the killed one left behind (staged candidates,
temporary files) and reports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from customer_activity.jobs.errors import ConfigurationError, OutputBusyError

logger = logging.getLogger(__name__)

LOCK_FILE = ".customer_activity.lock"


def _strerror(error: OSError) -> str:
    return error.strerror or type(error).__name__


def replace_file(path: Path, text: str) -> None:
    """Replace the file at `path` with `text` in one rename; never writes through a symbolic link.

    Readers see the old file or the new one, never half of one. The temporary file is
    `.<name>.<random>.tmp` beside it, removed on failure.
    """
    if path.is_symlink():
        raise OSError(f"{path} is a symbolic link")
    # A fresh, exclusively created file (mkstemp) cannot be a link someone placed.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_usable(directory: Path, owned: tuple[str, ...]) -> None:
    """Refuse, with one line, an output directory the build could not finish in.

    `owned` are the names the job writes under `directory`: none of them, nor
    anything inside them, may be a symbolic link.
    """
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(f"the output directory {directory} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(f"the output directory {directory} cannot be created ({_strerror(error)})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".customer_activity.probe."):
            pass
    except OSError as error:
        raise ConfigurationError(f"the output directory {directory} is not writable ({_strerror(error)})") from None
    for name in owned:
        link = _first_link(directory / name)
        if link is not None:
            raise ConfigurationError(
                f"{link} is a symbolic link; the job writes and deletes under {directory} and follows no link "
                "out of it: remove the link, or choose another --output-dir"
            )


def _first_link(path: Path) -> Path | None:
    """`path` or the first symbolic link below it, without following any."""
    if path.is_symlink():
        return path
    if not path.is_dir():
        return None
    for root, directories, files in os.walk(path):
        for name in sorted(directories + files):
            if (Path(root) / name).is_symlink():
                return Path(root) / name
    return None


@contextlib.contextmanager
def exclusive(directory: Path, run_id: str) -> Iterator[None]:
    """Hold the output's lock for `run_id`; another build holding it ends this one at once."""
    path = directory / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise ConfigurationError(f"the lock {path} cannot be opened ({_strerror(error)})") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            # The lock's holder line is written into it: a hard link would carry that write out of the directory.
            raise ConfigurationError(
                f"the lock {path} is not a plain file of its own (a hard link or a device?): remove it and run again"
            )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(
                f"another build is publishing into {directory} ({_holder(descriptor)}); this one stopped "
                "without changing anything: run it again when that one has finished"
            ) from None
        except OSError as error:
            raise ConfigurationError(
                f"the output directory {directory} cannot be locked ({_strerror(error)}): "
                "choose a local file system for --output-dir"
            ) from None
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        yield
    finally:
        # Closing releases the lock. The file stays: removing it would let a third build
        # lock a new file while a second still waits on the old one.
        os.close(descriptor)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _holder(descriptor: int) -> str:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
        return f"run {holder['run_id']}, process {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its details are not readable"


def remove_leftovers(directory: Path, staging_area: Path, temporary: tuple[Path, ...]) -> list[str]:
    """Remove what builds that died left behind; returns what was removed, relative to `directory`.

    Call it only while holding the lock: then no other build is using any of it.
    """
    removed = []
    entries = sorted(staging_area.iterdir()) if staging_area.is_dir() and not staging_area.is_symlink() else []
    for path in (*entries, *temporary):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
        except OSError as error:
            # One stubborn entry should not stop this build: the next one tries again.
            logger.warning("could not remove %s, left by an earlier build: %s", path, _strerror(error))
            continue
        removed.append(str(path.relative_to(directory)))
    if removed:
        logger.warning("removed what earlier builds that did not finish left in %s: %s", directory, ", ".join(removed))
    return removed
