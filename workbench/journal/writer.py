"""The writer of a run's journal: one process per run, append only.

``runs/<run_id>/events/`` holds JSON Lines segments ``000001.jsonl``, ``000002.jsonl``…,
a new one begun when the current one would pass ``segment_bytes``. The writer holds an
exclusive ``flock`` on ``events/.writer.lock`` for as long as it is open; a second
writer gets :class:`~workbench.journal.events.JournalLocked` (within a quarter second: a
reader asking whether the lock is held, ``workbench status``, is not a writer). A write
the disk refuses for lack of space fails the journal with
:class:`~workbench.journal.events.JournalDiskFull`, a plain message (what was written
before it stays whole: a partial line is cut off). Each event is one
``os.write`` of its whole line on an ``O_APPEND`` descriptor, so readers see whole lines
(or, while it is being written or if the process dies mid-write, a torn last line they
skip). :meth:`Journal.append_durable` also ``fdatasync``\\s before returning: call it for
anything a broker call will depend on. :meth:`Journal.sync` makes everything appended so
far durable with one ``fdatasync``: a bar's intents are appended, synced once, then sent
(group commit, :meth:`workbench.orders.OrderManager.commit`).

Opening a journal whose last line is torn (a crash) sets that line aside in
``<segment>.<offset>.torn``, rewrites the segment without it (atomic rename, so readers
never see a file shrink) and continues ``seq`` after the last whole event. Opening also
syncs the current segment: after a process crash, events appended but never synced (a
group's intents staged before its sync) survive in the page cache, a restart reads them
and acts on them (settles, resends), so they are made durable first.
"""

from __future__ import annotations

import errno
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Self

import pandas as pd

from workbench.clock import Clock
from workbench.fsutil import atomic_write, exclusive_lock, fsync_dir
from workbench.journal.events import (
    Event,
    JournalDiskFull,
    JournalError,
    JournalLocked,
    encode_event,
    make_payload,
)
from workbench.journal.reader import TornTail, TornTailWarning, events_dir, segment_tail, segments
from workbench.times import to_utc

__all__ = ["LOCK_FILE", "SEGMENT_BYTES", "Journal"]

SEGMENT_BYTES = 64 * 2**20
LOCK_FILE = ".writer.lock"
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def _segment_name(index: int) -> str:
    return f"{index:06d}.jsonl"


def _take_lock(folder: Path) -> int:
    """The descriptor holding the run's writer lock; JournalLocked if another holds it."""
    try:
        fd = exclusive_lock(folder / LOCK_FILE, wait=False)
    except BlockingIOError:  # the holder wrote its pid in the file
        holder = (folder / LOCK_FILE).read_bytes()[:32].decode("ascii", "replace").strip()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise JournalLocked(f"the journal of run {folder.parent.name} is already open for "
                            f"writing{who}: a run has one writer") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _set_aside(path: Path, end: int, torn: TornTail) -> Path:
    """Move the torn tail of ``path`` (bytes from ``end``) to a ``.torn`` file beside it."""
    data = path.read_bytes()
    aside = path.with_name(f"{path.name}.{torn.offset}.torn")
    atomic_write(aside, lambda p: p.write_bytes(data[end:]), overwrite=True)
    atomic_write(path, lambda p: p.write_bytes(data[:end]), overwrite=True)
    warnings.warn(f"{torn.describe()}; set aside in {aside.name}", TornTailWarning, stacklevel=4)
    return aside


def _recover(folder: Path) -> tuple[int, TornTail | None]:
    """The last whole event's seq (0 for none), setting a torn tail aside first."""
    recovered = None
    for path in reversed(segments(folder)):
        event, end, torn = segment_tail(path)
        if torn is not None:
            _set_aside(path, end, torn)
            recovered = recovered or torn
        if event is not None:
            return event.seq, recovered
    return 0, recovered


class Journal:
    """The open journal of one run. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, folder: Path, clock: Clock, segment_bytes: int, lock_fd: int,
                 last_seq: int, recovered: TornTail | None) -> None:
        self._folder = folder
        self._clock = clock
        self._segment_bytes = int(segment_bytes)
        self._lock_fd = lock_fd
        self._seq = last_seq
        self._recovered = recovered
        self._mutex = threading.Lock()
        self._failed: str | None = None
        self._now: Any = None  # the clock's last time, and (UTC, ISO text) of it
        self._ts: tuple[pd.Timestamp, str] = (pd.Timestamp(0, tz="UTC"), "")
        files = segments(folder)
        self._index = int(files[-1].name.split(".")[0]) if files else 1
        self._fd = os.open(folder / _segment_name(self._index), _APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        if not files:
            fsync_dir(folder)
        elif self._size:  # what a restart reads (the page cache) is on disk before it acts
            os.fdatasync(self._fd)

    @classmethod
    def open(cls, run_dir: Any, clock: Clock, *, segment_bytes: int = SEGMENT_BYTES) -> Journal:
        """Open the run's journal for writing (creating ``events/``); JournalLocked if taken.

        ``run_dir``: the run folder, a ``RunRecord`` or a run id under ``runs/``.
        """
        folder = events_dir(run_dir)
        if not folder.parent.is_dir():
            raise JournalError(f"no run folder at {folder.parent}")
        if segment_bytes < 1024:
            raise JournalError(f"segment_bytes must be at least 1024, got {segment_bytes}")
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            fsync_dir(folder.parent)
        lock_fd = _take_lock(folder)
        try:
            last_seq, recovered = _recover(folder)
            return cls(folder, clock, segment_bytes, lock_fd, last_seq, recovered)
        except BaseException:
            os.close(lock_fd)
            raise

    # -- state --
    @property
    def folder(self) -> Path:
        """The ``events/`` folder."""
        return self._folder

    @property
    def last_seq(self) -> int:
        """The seq of the last event appended (0 before the first)."""
        return self._seq

    @property
    def segment(self) -> Path:
        """The segment being written."""
        return self._folder / _segment_name(self._index)

    @property
    def recovered(self) -> TornTail | None:
        """The torn tail set aside when this journal was opened, if there was one."""
        return self._recovered

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"seq {self._seq}"
        return f"Journal({self._folder.parent.name!r}, {state})"

    # -- writing --
    def append(self, kind: str, obj: Any = None, /, **fields: Any) -> Event:
        """Append one event and return it (its payload as given; readers see its JSON).

        ``obj``: a model dataclass or a mapping whose fields open the payload; ``fields``
        add to it. The line reaches the OS at once (readers see it) but not the disk:
        see :meth:`append_durable`.
        """
        return self._append(kind, make_payload(obj, fields), durable=False)

    def append_durable(self, kind: str, obj: Any = None, /, **fields: Any) -> Event:
        """:meth:`append`, then ``fdatasync``: the event survives a crash of the machine."""
        return self._append(kind, make_payload(obj, fields), durable=True)

    def _stamp(self) -> tuple[pd.Timestamp, str]:
        """The clock's time in UTC and its ISO text; the last ones again while the clock
        hands out the same object (a simulated clock does for every event of a bar)."""
        now = self._clock.now()
        if now is not self._now:
            ts = to_utc(now)
            self._now, self._ts = now, (ts, ts.isoformat())
        return self._ts

    def _append(self, kind: str, payload: dict[str, Any], durable: bool) -> Event:
        with self._mutex:
            self._check_writable()
            ts, stamp = self._stamp()
            line = encode_event(self._seq + 1, ts, kind, payload, stamp=stamp)
            self._write(line)
            self._seq += 1
            if durable:
                self._sync()
            return Event(self._seq, ts, kind, payload)

    def _check_writable(self) -> None:
        if self.closed:
            raise JournalError(f"the journal of {self._folder.parent.name} is closed")
        if self._failed:
            raise JournalError(f"the journal of {self._folder.parent.name} failed earlier "
                               f"({self._failed}); nothing more is written")

    def _write(self, line: bytes) -> None:
        try:
            if self._size and self._size + len(line) > self._segment_bytes:
                self._roll()
            written = os.write(self._fd, line)
            while written < len(line):  # a short write (the disk filling up): the rest,
                more = os.write(self._fd, line[written:])  # which says why it cannot
                if more <= 0:
                    raise OSError(f"short write: {written} of {len(line)} bytes")
                written += more
        except OSError as e:
            self._fail(e)
        self._size += len(line)

    def _fail(self, error: OSError) -> None:
        """Undo a partial line if possible, refuse every later append, raise."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # the next open sets the torn line aside
        run = self._folder.parent.name
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            self._failed = "disk full"
            raise JournalDiskFull(
                f"disk full: the journal of run {run} cannot be written ({self.segment}: "
                f"{os.strerror(error.errno).lower()}); nothing more is journaled, so nothing "
                "more is traded; every event before it is on disk. Free space, then restart "
                "the run (it reconciles with the broker first)") from error
        self._failed = f"{type(error).__name__}: {error}"
        raise JournalError(f"journal write failed in {self.segment}: {self._failed}") from error

    def _roll(self) -> None:
        """Seal the current segment (durable) and continue in a new one (an error: raised
        to :meth:`_write`, which fails the journal)."""
        path = self._folder / _segment_name(self._index + 1)
        fd = os.open(path, _APPEND | os.O_EXCL, 0o644)
        try:
            os.fdatasync(self._fd)
        except OSError:
            os.close(fd)
            path.unlink()
            raise
        os.close(self._fd)
        self._fd, self._index, self._size = fd, self._index + 1, 0
        fsync_dir(self._folder)

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as e:
            self._fail(e)

    def sync(self) -> None:
        """Make every appended event durable."""
        with self._mutex:
            self._check_writable()
            self._sync()

    def close(self) -> None:
        """Sync, close the segment and release the writer lock (twice is fine)."""
        with self._mutex:
            if self.closed:
                return
            try:
                if not self._failed:
                    os.fdatasync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1
                os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
