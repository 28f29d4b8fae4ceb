"""The journal: encoding, one writer, seq, segments, torn tails, corruption, redaction, crashes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from workbench.clock import SimClock
from workbench.journal import (
    EVENT_TYPES,
    Journal,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    TornTailWarning,
    read_events,
    replay,
)
from workbench.model import (
    Account,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    TradingState,
)
from workbench.model import events as ev
from workbench.secrets import MASK

T0 = pd.Timestamp("2026-03-02 14:30", tz="UTC")


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def run(tmp_path) -> Path:
    path = tmp_path / "runs" / "20260302T143000Z-session-test-abc123"
    path.mkdir(parents=True)
    return path


def segment(run: Path, n: int = 1) -> Path:
    return run / "events" / f"{n:06d}.jsonl"


def _intent() -> OrderIntent:
    return OrderIntent("wb-1-AAPL-1", "AAPL", Side.BUY, Decimal(10), OrderType.BRACKET,
                       limit_price=Decimal("101.2500"), take_profit=Decimal(110),
                       stop_loss=Decimal("95.5"), bar_time=T0)


def _models() -> dict[str, object]:
    """A model object for each event type that carries one."""
    intent = _intent()
    return {
        ev.SIGNAL: Signal("sma", "AAPL", T0, entry=True, weight=0.5),
        ev.INTENT: intent,
        ev.ORDER_UPDATE: Order(intent, OrderStatus.PARTIALLY_FILLED, "b-1", Decimal(4),
                               Decimal("101.2"), T0),
        ev.FILL: Fill("x-1", intent.client_order_id, "AAPL", Side.BUY, Decimal(4),
                      Decimal("101.2000"), Decimal("0.0100"), T0),
        ev.POSITION: Position("AAPL", Decimal(-4), Decimal("101.2")),
        ev.EQUITY: Account(Decimal("99000.5"), {"AAPL": Position("AAPL", Decimal(4),
                                                                 Decimal("101.2"))}),
    }


def test_every_event_type_round_trips(run, clock):
    models = _models()
    with Journal.open(run, clock) as journal:
        for kind in sorted(EVENT_TYPES):
            clock.advance("1s")
            if kind in models:
                journal.append(kind, models[kind], note=kind)
            else:
                journal.append(kind, note=kind, qty=Decimal("1.50"), at=T0,
                               state=TradingState.HALTED, n=np.int64(3), tags=("a", "b"))
    result = replay(run)
    assert result.report.clean and result.report.events == len(EVENT_TYPES)
    lines = segment(run).read_bytes().splitlines()
    assert all(line.startswith(b'{"type":"%s",' % k.encode())  # the catalog relies on it
               for line, k in zip(lines, sorted(EVENT_TYPES), strict=True))
    for i, (kind, event) in enumerate(zip(sorted(EVENT_TYPES), result.events), start=1):
        assert (event.seq, event.type, event.ts) == (i, kind, T0 + pd.Timedelta(seconds=i))
        assert event.payload["note"] == kind
        if kind in models:
            assert event.model() == models[kind]
            assert event.payload["_type"] == type(models[kind]).__name__
        else:
            assert event.payload == {"note": kind, "qty": "1.50", "at": T0.isoformat(),
                                     "state": "halted", "n": 3, "tags": ["a", "b"]}


def test_values_are_encoded_plainly(run, clock):
    with Journal.open(run, clock) as journal:
        journal.append(ev.BAR, big=Decimal("1E+3"), nan=float("nan"), inf=np.float64("inf"),
                       nat=pd.NaT, naive=pd.Timestamp("2026-01-02 09:30"),
                       keys={T0: 1, 2: "two"}, side=Side.SELL, path=Path("/x"))
        with pytest.raises(JournalError, match="cannot journal a object"):
            journal.append(ev.BAR, thing=object())
        with pytest.raises(JournalError, match="'Fill event' is not a lowercase word"):
            journal.append("Fill event", qty=1)
        with pytest.raises(JournalError, match="given twice"):
            journal.append(ev.POSITION, Position("A", Decimal(1), Decimal(1)), symbol="B")
        assert journal.last_seq == 1  # refused events take no seq
        journal.append("plugin_note", qty=1)  # a word not in EVENT_TYPES is accepted too
    line = json.loads(segment(run).read_text().splitlines()[0])
    assert line["payload"] == {"big": "1000", "nan": None, "inf": None, "nat": None,
                               "naive": "2026-01-02T09:30:00",
                               "keys": {T0.isoformat(): 1, "2": "two"}, "side": "sell",
                               "path": "/x"}
    assert segment(run).read_bytes().isascii()


def test_seq_continues_after_reopen_and_across_segments(run, clock):
    for _ in range(3):
        with Journal.open(run, clock, segment_bytes=2048) as journal:
            for i in range(20):
                journal.append(ev.BAR, symbol="AAPL", i=i, pad="x" * 100)
    events = list(read_events(run))
    assert [e.seq for e in events] == list(range(1, 61))
    files = sorted((run / "events").glob("*.jsonl"))
    assert len(files) > 3 and all(f.stat().st_size <= 2048 for f in files)
    assert [e.seq for e in read_events(run, after_seq=47)] == list(range(48, 61))
    assert list(read_events(run, after_seq=60)) == []
    with Journal.open(run, clock) as journal:
        assert journal.last_seq == 60
        assert journal.append_durable(ev.INTENT, _intent()).seq == 61


def test_reopening_syncs_what_a_crashed_writer_left_unsynced(run, clock, monkeypatch):
    """Events appended without a sync (a staged group) outlive a process crash in the page
    cache; a restart acts on them, so opening the journal makes them durable first."""
    with Journal.open(run, clock) as journal:
        journal.append(ev.INTENT, _intent())
    synced = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd) or real(fd))
    with Journal.open(run, clock) as journal:
        assert len(synced) == 1 and journal.last_seq == 1
    empty = run.parent / "empty"
    empty.mkdir()
    synced.clear()
    Journal.open(empty, clock).close()
    assert len(synced) == 1  # the close's: nothing to sync at the open of an empty journal


def test_second_writer_refused_here_and_in_another_process(run, clock):
    code = ("import sys\nfrom workbench.clock import SimClock\nfrom workbench.journal import "
            "Journal, JournalLocked\ntry:\n    Journal.open(sys.argv[1], SimClock('2026-01-02'))\n"
            "except JournalLocked as e:\n    print(e)\n    sys.exit(3)\n")
    with Journal.open(run, clock) as journal:
        journal.append(ev.SESSION_START)
        mine = f"already open for writing \\(pid {os.getpid()}\\)"
        with pytest.raises(JournalLocked, match=mine):
            Journal.open(run, clock)
        other = subprocess.run([sys.executable, "-c", code, str(run)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
        assert other.returncode == 3 and "a run has one writer" in other.stdout
        assert [e.seq for e in read_events(run)] == [1]  # reading takes no lock
        journal.append(ev.HEARTBEAT)
    with Journal.open(run, clock) as journal:  # released on close
        assert journal.last_seq == 2


def _write_events(run: Path, clock: SimClock, n: int) -> None:
    with Journal.open(run, clock) as journal:
        for i in range(n):
            journal.append(ev.BAR, symbol="AAPL", i=i)


@pytest.mark.parametrize("tail, reason", [
    (b'{"type":"bar","seq":4,"ts":"2026-03-02T14:3', "no newline"),
    (b'{"type":"bar","seq":4,"ts":"2026-03-02T14:30:00+00:00","payload":{}}', "no newline"),
    (b"\x00\x00\x00\x00\n", "not a valid event"),
])
def test_torn_tail_ends_the_replay_and_is_set_aside_on_open(run, clock, tail, reason):
    _write_events(run, clock, 3)
    whole = segment(run).read_bytes()
    with open(segment(run), "ab") as f:
        f.write(tail)
    with pytest.warns(TornTailWarning, match="line 4"):
        result = replay(run)
    assert [e.seq for e in result.events] == [1, 2, 3]
    torn = result.report.torn
    assert (torn.segment, torn.line, torn.offset, torn.length) == (
        segment(run), 4, len(whole), len(tail))
    assert torn.reason.startswith(reason) and "torn tail" in result.report.summary()
    with pytest.warns(TornTailWarning, match="set aside"):
        journal = Journal.open(run, clock)
    with journal:
        assert journal.recovered == torn and journal.last_seq == 3
        journal.append(ev.HEARTBEAT)
    assert (run / "events" / f"000001.jsonl.{len(whole)}.torn").read_bytes() == tail
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [e.seq for e in replay(run).events] == [1, 2, 3, 4]


@pytest.mark.parametrize("bad", [b"garbage\n", b'{"seq":2}\n', b"\n"])
def test_corrupt_line_in_the_middle_names_segment_and_line(run, clock, bad):
    _write_events(run, clock, 3)
    lines = segment(run).read_bytes().splitlines(keepends=True)
    segment(run).write_bytes(lines[0] + bad + b"".join(lines[1:]))
    with pytest.raises(JournalCorrupt, match=r"000001\.jsonl line 2") as err:
        replay(run)
    assert (err.value.segment, err.value.line) == (segment(run), 2)


def test_corrupt_line_before_a_torn_tail_is_still_corrupt(run, clock):
    _write_events(run, clock, 3)
    with open(segment(run), "ab") as f:
        f.write(b"oops\n{\"seq\":5")
    with pytest.raises(JournalCorrupt, match="line 4"):
        replay(run)
    with pytest.raises(JournalCorrupt, match="line 4"):
        Journal.open(run, clock)


def test_a_seq_gap_is_corruption(run, clock):
    _write_events(run, clock, 3)
    lines = segment(run).read_bytes().splitlines(keepends=True)
    segment(run).write_bytes(lines[0] + lines[2])
    with pytest.raises(JournalCorrupt, match="line 2: seq 3 follows 1"):
        replay(run)


def test_secrets_never_reach_the_journal(run, clock, monkeypatch):
    key, secret = "PKCANARY0123456789AB", 'canary"Secret\\6f1d'
    monkeypatch.setenv("ALPACA_API_KEY", key)
    monkeypatch.setenv("ALPACA_SECRET_KEY", secret)
    with Journal.open(run, clock) as journal:
        journal.append(ev.CONFIG, url=f"https://x?key={key}", nested=[{key: secret}])
        journal.append(ev.SIGNAL, Signal(f"strategy-{key}", "AAPL", T0))
        journal.append(ev.ERROR, message=str(RuntimeError(f"denied for {secret}")))
    text = segment(run).read_text()
    assert key not in text and secret not in text and json.dumps(secret)[1:-1] not in text
    events = replay(run).events
    assert events[0].payload == {"url": f"https://x?key={MASK}", "nested": [{MASK: MASK}]}
    assert events[1].model().strategy == f"strategy-{MASK}"



def test_a_secret_set_changed_or_removed_between_events_is_seen_by_the_next_one(run, clock,
                                                                               monkeypatch):
    """The journal remembers the environment's secrets between events (scanning it is most
    of an event's cost) but looks again whenever the environment changed."""
    first, second = "tok-first-0123456789", "tok-second-0123456789"
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    with Journal.open(run, clock) as journal:
        journal.append(ev.ERROR, message=f"a {first}")  # not a secret yet
        monkeypatch.setenv("SMTP_PASSWORD", first)
        journal.append(ev.ERROR, message=f"b {first}")
        monkeypatch.setenv("SMTP_PASSWORD", second)
        journal.append(ev.ERROR, message=f"c {first} {second}")
        monkeypatch.delenv("SMTP_PASSWORD")
        journal.append(ev.ERROR, message=f"d {second}")
    assert [e.payload["message"] for e in replay(run).events] == [
        f"a {first}", f"b {MASK}", f"c {first} {MASK}", f"d {second}"]

def test_a_failed_write_stops_the_journal_and_leaves_whole_lines(run):
    """A write cut short (file size limit, like a full disk): the partial line is
    removed, later appends are refused, the journal stays whole."""
    out = subprocess.run([sys.executable, "-m", "tests.journal_procs", "fsize", str(run),
                          "20000"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # the rest of a short write is tried again, which says why it cannot be written
    assert "File too large" in report["errors"][0] and "failed earlier" in report["errors"][1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = replay(run)
    assert result.report.clean and result.last_seq == report["last_seq"] > 10


def test_sigkill_mid_write_leaves_a_torn_tail_that_replay_and_reopen_handle(run, clock):
    proc = subprocess.Popen([sys.executable, "-m", "tests.journal_procs", "burst", str(run)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        acked = 0
        while acked < 3:
            acked = int(proc.stdout.readline())
        _kill_mid_write(proc, segment(run))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    rest = proc.stdout.read().split()
    acked = int(rest[-1]) if rest else acked
    with pytest.warns(TornTailWarning):
        result = replay(run)
    assert result.report.torn is not None, "the kill did not land mid-write"
    assert [e.seq for e in result.events] == list(range(1, result.last_seq + 1))
    assert result.last_seq >= acked  # every acknowledged append survived the process
    for event in result.events:
        assert hashlib.md5(event.payload["pad"].encode()).hexdigest() == event.payload["check"]
    with pytest.warns(TornTailWarning), Journal.open(run, clock) as journal:
        assert journal.append(ev.SESSION_START).seq == result.last_seq + 1
    assert replay(run).report.clean


def _kill_mid_write(proc: subprocess.Popen, path: Path) -> None:
    """SIGKILL ``proc`` at a moment its journal ends in a partial line (a write under way)."""
    deadline = time.monotonic() + 20
    with open(path, "rb") as f:
        while time.monotonic() < deadline:
            size = os.fstat(f.fileno()).st_size
            if size and os.pread(f.fileno(), 1, size - 1) != b"\n":
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=8), data=st.data())
def test_any_truncation_replays_the_whole_events_before_it(texts, data):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        with Journal.open(run, SimClock(T0)) as journal:
            for text in texts:
                journal.append(ev.ALERT, text=text)
        raw = segment(run).read_bytes()
        cut = data.draw(st.integers(0, len(raw)))
        segment(run).write_bytes(raw[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TornTailWarning)
            result = replay(run)
        whole = raw[:cut].count(b"\n")
        assert [e.payload["text"] for e in result.events] == texts[:whole]
        assert (result.report.torn is None) == (cut == 0 or raw[cut - 1:cut] == b"\n")
