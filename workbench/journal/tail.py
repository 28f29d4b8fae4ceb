"""Following a journal as it grows: only the new whole lines, read from a byte offset.

    tail = JournalTail.at_end(run_dir)      # after the last whole event (or from the start:
    for event in tail.read(): ...           #   JournalTail(run_dir)); each read: what is new

What a watcher polling a live journal (the supervisor's heartbeats) needs, without
parsing the journal from its start at each poll as :func:`~workbench.journal.reader.
read_events` does. The tail keeps the segment it is in and the byte offset of the first
line it has not returned; a read opens that segment by name, reads from the offset and
returns the events of the *complete* lines only: a line without its newline (being
written right now) stays unread until a later read finds it whole, so a half-written
line is never reported. A whole line that does not decode is held back while it is the
last line of the journal (a torn tail the writer will set aside when it reopens); with
anything after it, it is damage (a line whose checksum does not match among them):
:class:`~workbench.journal.events.JournalCorrupt`.

Rotation: the writer creates segment N+1 only after its last write to segment N, so when
N+1 exists the tail reads N to its end, then goes on in N+1 from its start. A segment the
writer rewrote on reopening (a torn tail set aside, :mod:`workbench.journal.writer`) keeps
every whole line the tail has read: the offset stays valid; should a segment ever be
shorter than the offset, the tail reads it again from the start and returns only events
after the last seq it returned. Reading takes no lock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.journal.events import Event, JournalCorrupt, decode_line
from workbench.journal.reader import events_dir, segment_tail, segments

__all__ = ["JournalTail"]


def _number(path: Path) -> int:
    return int(path.name.split(".", 1)[0])


class JournalTail:
    """The events appended to a run's journal since the last :meth:`read` (see the module
    doc). ``after_seq``: start from the journal's beginning but return only later events."""

    def __init__(self, run_dir: Any, *, after_seq: int | None = None) -> None:
        self.folder = events_dir(run_dir)
        self.last_seq = after_seq
        self.bytes_read = 0  # bytes read from disk by this tail (for measurements)
        self._segment: Path | None = None
        self._offset = 0
        self._line = 0  # whole lines passed in the current segment

    @classmethod
    def at_end(cls, run_dir: Any) -> JournalTail:
        """A tail after the last whole event of the journal (a torn tail not passed)."""
        tail = cls(run_dir)
        files = segments(tail.folder)
        if files:
            _, end, _ = segment_tail(files[-1])
            tail._segment, tail._offset = files[-1], end
            with open(files[-1], "rb") as f:
                tail._line = f.read(end).count(b"\n")
            for path in reversed(files):
                event, _, _ = segment_tail(path)
                if event is not None:
                    tail.last_seq = event.seq
                    break
        return tail

    @property
    def position(self) -> tuple[str | None, int]:
        """``(segment name, byte offset)`` of the next line to read."""
        return (None if self._segment is None else self._segment.name), self._offset

    def read(self) -> list[Event]:
        """The events of the whole lines appended since the last read, in order."""
        out: list[Event] = []
        while True:
            files = segments(self.folder)
            if self._segment is None:
                if not files:
                    return out
                self._segment, self._offset, self._line = files[0], 0, 0
            later = [p for p in files if _number(p) > _number(self._segment)]
            out += self._read_segment(sealed=bool(later))
            if not later:
                return out
            self._segment, self._offset, self._line = later[0], 0, 0

    def _read_segment(self, sealed: bool) -> list[Event]:
        path = self._segment
        assert path is not None
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset:  # rewritten shorter: again, by seq
                    self._offset, self._line = 0, 0
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.bytes_read += len(data)
        end = data.rfind(b"\n") + 1
        if sealed and end < len(data):
            raise JournalCorrupt(f"corrupt journal: {path} line {self._line + 1}: no newline "
                                 "in a sealed segment", path, self._line + 1)
        out, start = [], 0
        while start < end:
            stop = data.index(b"\n", start) + 1
            try:
                event, _ = decode_line(data[start:stop])
            except ValueError as e:
                if stop == len(data) and not sealed:
                    break  # the last line: a torn tail, unless more follows it
                raise JournalCorrupt(f"corrupt journal: {path} line {self._line + 1}: not a "
                                     f"valid event: {e}", path, self._line + 1) from None
            self._line += 1
            self._offset += stop - start
            start = stop
            if self.last_seq is None or event.seq > self.last_seq:
                self.last_seq = event.seq
                out.append(event)
        return out
