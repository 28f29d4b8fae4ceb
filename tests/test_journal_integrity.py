"""The integrity of the record (issue 12, point 4): every journal line carries a checksum;
a damaged line (a flipped byte, a non-UTF-8 byte, a damaged number) is reported with its
file and line by every reader, never turned into an event; missing segments and events are
named; the catalog's ``damage`` view lists all of it and its other views show only whole,
verified events; journals written before checksums still read, said once."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from workbench.clock import SimClock
from workbench.journal import (
    Journal,
    JournalCorrupt,
    UnverifiedJournalWarning,
    read_events,
    replay,
)
from workbench.journal.catalog import catalog
from workbench.journal.events import SUM_SUFFIX, line_checksum
from workbench.journal.tail import JournalTail
from workbench.model import OrderIntent, Side
from workbench.model import events as ev
from workbench.runs.records import RunRecord

T0 = pd.Timestamp("2026-03-02 14:30", tz="UTC")


def _record(root: Path) -> RunRecord:
    return RunRecord.create("session", "sma_cross", {}, "paper", None, SimClock(T0), root=root)


def _orders(root: Path, n: int = 5, **kw) -> RunRecord:
    """A run whose journal holds the intents cid1..cidN (a quantity of 10 each)."""
    record = _record(root)
    with Journal.open(record.path, SimClock(T0), **kw) as journal:
        for i in range(1, n + 1):
            journal.append(ev.INTENT, OrderIntent(f"cid{i}", "AAPL", Side.BUY, Decimal(10)))
    return record


def _segment(record: RunRecord, n: int = 1) -> Path:
    return record.path / "events" / f"{n:06d}.jsonl"


def _damage_line(path: Path, number: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


def _strip_sums(path: Path) -> None:
    """The segment as a journal written before checksums (no ``sum`` member)."""
    lines = [line[:-SUM_SUFFIX] + b"}" if line_checksum(line) else line
             for line in path.read_bytes().split(b"\n")]
    path.write_bytes(b"\n".join(lines))


def test_every_line_carries_a_checksum_of_its_canonical_bytes(tmp_path):
    record = _orders(tmp_path)
    lines = _segment(record).read_bytes().splitlines(keepends=True)
    assert len(lines) == 5 and all(line_checksum(line) is True for line in lines)
    assert lines[0].startswith(b'{"type":"intent","seq":1,') and b',"sum":"' in lines[0]
    assert [e.payload["client_order_id"] for e in replay(record.path).events] == [
        f"cid{i}" for i in range(1, 6)]


# each would read as an event without the checksum: another order id (a phantom order),
# another quantity, a byte that is not UTF-8 inside a string
DAMAGE = {"flipped byte": (b'"cid3"', b'"cid7"'), "damaged number": (b'"10"', b'"19"'),
          "non-UTF-8 byte": (b'"AAPL"', b'"AA\xffL"')}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_line_is_named_by_every_reader_never_an_event(tmp_path, kind):
    record = _orders(tmp_path)
    _damage_line(_segment(record), 3, *DAMAGE[kind])
    where = r"000001\.jsonl line 3: not a valid event: checksum mismatch"
    with pytest.raises(JournalCorrupt, match=where) as err:
        replay(record.path)
    assert (err.value.segment, err.value.line) == (_segment(record), 3)
    with pytest.raises(JournalCorrupt, match=where):
        JournalTail(record.path).read()
    con = catalog(tmp_path)
    ids = con.sql("SELECT list(client_order_id ORDER BY client_order_id) FROM orders").fetchall()
    assert ids == [(["cid1", "cid2", "cid4", "cid5"],)]  # no cid7, no cid3 of quantity 19
    reason = ("not UTF-8 (a damaged byte)" if kind == "non-UTF-8 byte"
              else "checksum mismatch (changed after it was written)")
    assert con.sql("SELECT * FROM damage").fetchall() == [
        (record.run_id, "000001.jsonl", 3, reason)]


def test_a_non_utf8_segment_shows_its_good_lines_and_names_the_bad_one(tmp_path):
    """Before, one byte that is not UTF-8 made the catalog skip the whole segment."""
    record = _record(tmp_path)
    with Journal.open(record.path, SimClock(T0)) as journal:
        for i in range(13):
            journal.append(ev.POSITION, symbol=f"S{i:02d}", quantity="5", average_price="1.5")
        journal.append(ev.EQUITY, equity="100000", cash="99000")
    _damage_line(_segment(record), 14, b'"cash"', b'"c\x80sh"')
    con = catalog(tmp_path)
    assert con.sql("SELECT count(*) FROM positions WHERE qty <> 0").fetchall() == [(13,)]
    assert con.sql("SELECT count(*) FROM equity").fetchall() == [(0,)]
    assert con.sql("SELECT segment, line, reason FROM damage").fetchall() == [
        ("000001.jsonl", 14, "not UTF-8 (a damaged byte)")]


def test_missing_segments_and_events_are_named(tmp_path):
    record = _orders(tmp_path, 40, segment_bytes=1024)
    files = sorted((record.path / "events").glob("*.jsonl"))
    assert len(files) >= 4
    first_of = [int(f.read_bytes().split(b'"seq":')[1].split(b",")[0]) for f in files]
    files[1].unlink()  # a middle segment
    with pytest.raises(JournalCorrupt, match=rf"{files[2].name} line 1: seq {first_of[2]} "
                       rf"follows {first_of[1] - 1} \(events {first_of[1]}\.\.{first_of[2] - 1} "
                       "are missing\\)"):
        replay(record.path)
    con = catalog(tmp_path)
    assert con.sql("SELECT segment, line, reason FROM damage").fetchall() == [
        (files[1].name, None, "segment missing"),
        (files[2].name, 1, f"events {first_of[1]}..{first_of[2] - 1} missing")]
    files[0].unlink()  # the beginning
    with pytest.raises(JournalCorrupt, match=r"the journal begins at seq \d+ \(events 1\.\."):
        replay(record.path)
    assert con.sql("SELECT count(*) FROM damage WHERE reason = 'segment missing'"
                   ).fetchall() == [(2,)]


def test_old_journals_without_checksums_read_said_once(tmp_path):
    record = _orders(tmp_path)
    _strip_sums(_segment(record))
    assert line_checksum(_segment(record).read_bytes().splitlines()[0]) is None
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert len(replay(record.path).events) == 5
        assert len(list(read_events(record.path))) == 5
    unverified = [w for w in said if issubclass(w.category, UnverifiedJournalWarning)]
    assert len(unverified) == 1 and "5 event(s) written before journal checksums" in str(
        unverified[0].message)
    assert catalog(tmp_path).sql("SELECT count(*) FROM events").fetchall() == [(5,)]
    # the old run restarted by today's writer: its new lines carry checksums
    with Journal.open(record.path, SimClock(T0)) as journal:
        journal.append(ev.HEARTBEAT, bars=1)
        journal.append(ev.HEARTBEAT, bars=2)
        journal.append(ev.HEARTBEAT, bars=3)
    assert [e.seq for e in replay(record.path).events] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert catalog(tmp_path).sql("SELECT count(*) FROM damage").fetchall() == [(0,)]
    # once the journal has checksums, a line without one is damage
    lines = _segment(record).read_bytes().split(b"\n")
    lines[6] = lines[6][:-SUM_SUFFIX] + b"}"
    _segment(record).write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=r"line 7: no checksum, though every event from "
                                             "seq 6 has one"):
        replay(record.path)
    assert catalog(tmp_path).sql("SELECT line, reason FROM damage").fetchall() == [
        (7, "no checksum, though the events before it have one")]
