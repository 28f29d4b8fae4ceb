"""Durable file writes: a reader sees a whole file or none, and a crash loses nothing acknowledged.

Also the one file lock every writer takes (the store, a run's journal, a broker file):
:func:`exclusive_lock`, and :func:`lock_held`, whether a process holds one (a run's
liveness: ``workbench status``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "exclusive_lock",
    "fsync_dir",
    "fsync_file",
    "lock_held",
    "named_errors",
    "naming",
    "read_json",
]

# a lock taken without waiting is tried again for this long: a reader asking whether the
# lock is held (lock_held) holds it for a few microseconds, and must never make a writer
# that starts at that moment believe another writer has it
_PROBE_GRACE_S = 0.25


def naming(error: OSError, path: Path | str) -> OSError:
    """``error`` as the same kind of error naming ``path`` (a write into a full disk said as
    "No space left on device: <path>", never an anonymous errno); unchanged if it names one."""
    if error.filename is not None or error.errno is None:
        return error
    try:
        return type(error)(error.errno, error.strerror or str(error), str(path))
    except TypeError:  # a subclass with another signature
        return OSError(error.errno, error.strerror or str(error), str(path))


@contextlib.contextmanager
def named_errors(path: Path | str, *, remove: Path | None = None) -> Iterator[None]:
    """An ``OSError`` raised in the block re-raised naming ``path`` (:func:`naming`), after
    deleting ``remove`` (a partial temporary file) if given."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as e:
        if remove is not None:
            Path(remove).unlink(missing_ok=True)
        raise naming(e, path) from e


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fsync_file(path)


def atomic_write(path: Path, write: Callable[[Path], Any], *, overwrite: bool = False) -> None:
    """``write`` a temporary file beside ``path``, fsync it, then move it into place in one step.

    Without ``overwrite`` an existing ``path`` is never replaced: ``FileExistsError``.
    """
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        write(tmp)
        fsync_file(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:  # disk full, quota, permissions: said with the file's name
        raise naming(e, path) from e
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _publish_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # atomic, and fails rather than clobber
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def exclusive_lock(path: Path | str, *, wait: bool) -> int:
    """An exclusive ``flock`` on ``path`` (created if missing): the descriptor that holds it.

    The lock lasts until the descriptor is closed (``os.close``) or the process dies, however
    it dies; the file itself is never deleted, so every process locks the same file.
    ``wait=False``: ``BlockingIOError`` when another descriptor holds the lock (after
    trying for a quarter of a second: a :func:`lock_held` probe is not a holder).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if wait:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            _lock_soon(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lock_soon(fd: int) -> None:
    deadline = time.monotonic() + _PROBE_GRACE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def lock_held(path: Path | str) -> bool:
    """Whether a process holds the :func:`exclusive_lock` on ``path`` now (False when the
    file does not exist). Asked by taking a shared lock without waiting and letting it go
    at once; the file is never created or written."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor lets go of a shared lock taken on it
    return False


def read_json(path: Path | str) -> Any:
    """The JSON document at ``path``; None when it is missing, unreadable or not JSON (a
    record's optional file)."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
