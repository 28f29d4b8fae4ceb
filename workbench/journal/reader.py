"""Reading a run's journal: every whole event in order, a torn tail tolerated.

Reading takes no lock and works while the writer appends. A line is whole when it ends
in a newline and decodes as an event. The last line of the last segment may be torn (the
writer died mid-write, or is writing it right now): the read ends at the last whole
event and says so (:class:`TornTail` in the report, a :class:`TornTailWarning`). A bad
line anywhere else is damage: :class:`~workbench.journal.events.JournalCorrupt`, naming
the segment and line. A line whose checksum does not match is a bad line
(:func:`~workbench.journal.events.decode_line`), never an event. ``seq`` starts at 1 and
must rise by one from line to line: a missing segment or line is damage too, naming the
missing events. Lines written before checksums are read unverified, said once per journal
(:class:`~workbench.journal.events.UnverifiedJournalWarning`, ``report.unverified``); after
a checksummed line, a line without a checksum is damage.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from workbench import paths
from workbench.journal.events import (
    Event,
    JournalCorrupt,
    UnverifiedJournalWarning,
    decode_event,
    decode_line,
)

__all__ = [
    "EVENTS_DIR", "ReadReport", "ReplayResult", "TornTail", "TornTailWarning",
    "events_dir", "read_events", "replay", "segment_tail", "segments",
]

EVENTS_DIR = "events"
_SEGMENT = re.compile(r"^(\d+)\.jsonl$")


class TornTailWarning(RuntimeWarning):
    """The journal ends in an incomplete line; reading stopped at the last whole event."""


@dataclasses.dataclass(frozen=True, slots=True)
class TornTail:
    """The incomplete end of a journal: where it is and why it is not an event."""

    segment: Path
    line: int  # 1-based line number in the segment
    offset: int  # byte offset of the line's start
    length: int  # bytes of the torn line
    reason: str  # "no newline" or "not a valid event: ..."

    def describe(self) -> str:
        return (f"torn tail in {self.segment.name} line {self.line} (offset {self.offset}, "
                f"{self.length} bytes, {self.reason}): ignored")


@dataclasses.dataclass(slots=True)
class ReadReport:
    """What a read saw: segments read, events returned, their seq range, a torn tail."""

    events_dir: Path
    segments: int = 0
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    torn: TornTail | None = None
    unverified: int = 0  # events read from lines written before checksums

    @property
    def clean(self) -> bool:
        return self.torn is None

    def summary(self) -> str:
        seqs = f"seq {self.first_seq}..{self.last_seq}" if self.events else "no events"
        torn = f"; {self.torn.describe()}" if self.torn else ""
        return f"{self.events} events in {self.segments} segment(s), {seqs}{torn}"


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    """All whole events of a run, in order, and the report of the read."""

    events: list[Event]
    report: ReadReport

    def of_type(self, *types: str) -> list[Event]:
        return [e for e in self.events if e.type in types]

    @property
    def last_seq(self) -> int:
        return self.report.last_seq or 0


def events_dir(run_dir: Any) -> Path:
    """``<run>/events`` for a run folder, a :class:`RunRecord`, or a run id under ``runs/``."""
    path = Path(getattr(run_dir, "path", run_dir))
    if not path.exists() and len(path.parts) == 1:
        path = paths.runs_dir() / path
    return path / EVENTS_DIR


def segments(folder: Path) -> list[Path]:
    """The segment files of an events folder, in order."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _SEGMENT.match(p.name))]
    return [p for _, p in sorted(found)]


# -- one segment --------------------------------------------------------------------------


def _parse(line: bytes, where: tuple[Path, int] | None = None) -> tuple[Event | None, str]:
    """The event of a whole line, or None and why the line is not one (a line without
    its checksum gives its event and the reason "unverified")."""
    if not line.endswith(b"\n"):
        return None, "no newline"
    try:
        event, verified = decode_line(line, where)
    except ValueError as e:
        return None, f"not a valid event: {e}"
    return event, "" if verified else "unverified"


_WARNED: set[Path] = set()  # journals said to be unverified (once each per process)


def _warn_unverified(report: ReadReport) -> None:
    folder = report.events_dir
    if report.unverified and folder not in _WARNED:
        _WARNED.add(folder)
        warnings.warn(f"the journal {folder} holds {report.unverified} event(s) written "
                      "before journal checksums: read unverified", UnverifiedJournalWarning,
                      stacklevel=3)


def _first_seq(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            return decode_event(f.readline()).seq
    except (OSError, ValueError):
        return None


class _Scan:
    """Reads segments in order, checking seq continuity and filling the report."""

    def __init__(self, report: ReadReport, after_seq: int | None) -> None:
        self.report = report
        self.after = after_seq
        self.prev: int | None = None
        self.verified_from: int | None = None  # the seq of the first checksummed line

    def segment(self, path: Path, last: bool) -> Iterator[Event]:
        self.report.segments += 1
        offset = 0
        with open(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                event = self._event(f, path, number, offset, line, last)
                offset += len(line)
                if event is None:
                    return
                if self.after is None or event.seq > self.after:
                    self._count(event)
                    yield event

    def _event(self, f: BinaryIO, path: Path, number: int, offset: int, line: bytes,
               last: bool) -> Event | None:
        event, reason = _parse(line, (path, number))
        if event is not None:
            self._check_seq(event.seq, path, number)
            if reason != "unverified":
                self.verified_from = self.verified_from or event.seq
            elif self.verified_from is not None:
                raise JournalCorrupt(f"corrupt journal: {path} line {number}: no checksum, "
                                     f"though every event from seq {self.verified_from} "
                                     "has one", path, number)
            else:
                self.report.unverified += 1
            return event
        # A line without a newline is the end of what the writer has written so far; a
        # whole line that is not an event is only a torn tail when nothing follows it.
        if last and (not line.endswith(b"\n") or not f.read(1)):
            self.report.torn = TornTail(path, number, offset, len(line), reason)
            return None
        raise JournalCorrupt(f"corrupt journal: {path} line {number}: {reason}", path, number)

    def _check_seq(self, seq: int, path: Path, number: int) -> None:
        if self.prev is not None and seq != self.prev + 1:
            missing = (f" (events {self.prev + 1}..{seq - 1} are missing)"
                       if seq > self.prev + 1 else "")
            raise JournalCorrupt(f"corrupt journal: {path} line {number}: seq {seq} follows "
                                 f"{self.prev}{missing}", path, number)
        if self.prev is None and self.after is None and seq != 1:
            raise JournalCorrupt(f"corrupt journal: {path} line {number}: the journal begins "
                                 f"at seq {seq} (events 1..{seq - 1} are missing)", path, number)
        self.prev = seq

    def _count(self, event: Event) -> None:
        r = self.report
        r.events += 1
        r.first_seq = event.seq if r.first_seq is None else r.first_seq
        r.last_seq = event.seq


def read_events(run_dir: Any, after_seq: int | None = None, *,
                report: ReadReport | None = None, warn: bool = True) -> Iterator[Event]:
    """The whole events of a run in order (only those after ``after_seq`` if given).

    A torn tail ends the iteration quietly but for a :class:`TornTailWarning` (``warn``)
    and ``report.torn``; a corrupt line elsewhere raises ``JournalCorrupt``.
    """
    folder = events_dir(run_dir)
    report = report if report is not None else ReadReport(folder)
    scan = _Scan(report, after_seq)
    files = segments(folder)
    for i, path in enumerate(files):
        last = i == len(files) - 1
        if not last and after_seq is not None:
            nxt = _first_seq(files[i + 1])
            if nxt is not None and nxt <= after_seq + 1:
                continue  # every event of this segment is at or before after_seq
        yield from scan.segment(path, last)
    _warn_unverified(report)
    if report.torn is not None and warn:
        warnings.warn(report.torn.describe(), TornTailWarning, stacklevel=2)


def replay(run_dir: Any) -> ReplayResult:
    """Every whole event of a run and the report; warns about a torn tail, never raises
    for one (a corrupt line before the tail raises ``JournalCorrupt``)."""
    report = ReadReport(events_dir(run_dir))
    events = list(read_events(run_dir, report=report, warn=False))
    if report.torn is not None:
        warnings.warn(report.torn.describe(), TornTailWarning, stacklevel=2)
    return ReplayResult(events, report)


# -- the tail of the last segment (for the writer) ----------------------------------------


def segment_tail(path: Path) -> tuple[Event | None, int, TornTail | None]:
    """The last whole event of a segment, the byte length of its whole lines, its torn tail.

    The tail is what follows the last newline, or, when that is nothing, a last line
    that is not a valid event. A bad line before it raises ``JournalCorrupt``.
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    torn_start, reason = (end, "no newline") if end < len(data) else (None, None)
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        event, why = _parse(data[start:end])
        if event is not None:
            return event, end, _torn(path, data, torn_start, reason)
        if torn_start is not None:
            number = data.count(b"\n", 0, start) + 1
            raise JournalCorrupt(f"corrupt journal: {path} line {number}: {why}", path, number)
        torn_start, reason, end = start, why, start
    return None, 0, _torn(path, data, torn_start, reason)


def _torn(path: Path, data: bytes, start: int | None, reason: str | None) -> TornTail | None:
    if start is None:
        return None
    return TornTail(path, data.count(b"\n", 0, start) + 1, start, len(data) - start,
                    reason or "")
