"""The journal's tail reader: only complete new lines from a byte offset, across segment
rotation and a writer's recovery, never a half-written line."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from workbench.clock import SimClock
from workbench.journal import HEARTBEAT, Journal, JournalCorrupt
from workbench.journal.reader import segments
from workbench.journal.tail import JournalTail

T0 = pd.Timestamp("2026-11-20 14:30", tz="UTC")


def _run(tmp_path: Path, name: str = "run") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _lines(tmp_path: Path, n: int) -> list[bytes]:
    """``n`` event lines as the writer writes them (seq 1..n), from another run."""
    source = _run(tmp_path, "source")
    with Journal.open(source, SimClock(T0)) as journal:
        for i in range(n):
            journal.append(HEARTBEAT, bar=i)
    return (source / "events" / "000001.jsonl").read_bytes().splitlines(keepends=True)


def test_a_half_written_line_is_never_reported_until_it_is_whole(tmp_path):
    lines = _lines(tmp_path, 4)
    run = _run(tmp_path)
    (run / "events").mkdir()
    segment = run / "events" / "000001.jsonl"
    tail = JournalTail(run)
    assert tail.read() == []  # nothing written yet
    half = len(lines[2]) // 2
    segment.write_bytes(lines[0] + lines[1] + lines[2][:half])
    assert [e.seq for e in tail.read()] == [1, 2]
    assert tail.position == ("000001.jsonl", len(lines[0] + lines[1]))
    assert tail.read() == []  # still half a line
    with open(segment, "ab") as f:
        f.write(lines[2][half:-1])  # all but its newline: still not a line
    assert tail.read() == []
    with open(segment, "ab") as f:
        f.write(lines[2][-1:] + lines[3])
    assert [e.seq for e in tail.read()] == [3, 4]
    assert tail.read() == [] and tail.last_seq == 4


def test_rotation_while_the_writer_appends_loses_and_repeats_nothing(tmp_path):
    run = _run(tmp_path)
    tail = JournalTail(run)
    seen = []
    with Journal.open(run, SimClock(T0), segment_bytes=1024) as journal:
        for i in range(120):
            journal.append(HEARTBEAT, bar=i, note="x" * 40)
            if i % 7 == 0:
                seen += [e.seq for e in tail.read()]
    seen += [e.seq for e in tail.read()]
    files = segments(run / "events")
    assert len(files) > 5
    assert seen == list(range(1, 121))
    total = sum(p.stat().st_size for p in files)
    assert tail.bytes_read == total  # each byte read once: no re-parse from the start
    assert tail.position == (files[-1].name, files[-1].stat().st_size)


def test_at_end_starts_after_the_last_whole_event_even_in_a_later_segment(tmp_path):
    run = _run(tmp_path)
    with Journal.open(run, SimClock(T0), segment_bytes=1024) as journal:
        for i in range(40):
            journal.append(HEARTBEAT, bar=i, note="y" * 40)
        tail = JournalTail.at_end(run)
        assert tail.last_seq == 40 and tail.read() == []
        journal.append(HEARTBEAT, bar=40)
    assert [e.seq for e in tail.read()] == [41]
    assert JournalTail.at_end(_run(tmp_path, "empty")).last_seq is None
    assert [e.seq for e in JournalTail(run, after_seq=39).read()] == [40, 41]


def test_a_torn_tail_is_held_back_then_set_aside_by_the_writer(tmp_path):
    run = _run(tmp_path)
    with Journal.open(run, SimClock(T0)) as journal:
        journal.append(HEARTBEAT, bar=0)
    segment = run / "events" / "000001.jsonl"
    tail = JournalTail(run)
    assert [e.seq for e in tail.read()] == [1]
    with open(segment, "ab") as f:
        f.write(b'{"seq": 2, "ty\n')  # a whole line that is no event, last in the journal
    assert tail.read() == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Journal.open(run, SimClock(T0)) as journal:  # recovery rewrites the segment
            journal.append(HEARTBEAT, bar=1)
    assert [e.seq for e in tail.read()] == [2]


def test_a_bad_line_with_lines_after_it_is_damage(tmp_path):
    lines = _lines(tmp_path, 2)
    run = _run(tmp_path)
    (run / "events").mkdir()
    (run / "events" / "000001.jsonl").write_bytes(lines[0] + b"garbage\n" + lines[1])
    tail = JournalTail(run)
    with pytest.raises(JournalCorrupt, match="000001.jsonl line 2: not a valid event"):
        tail.read()
