"""The catalog: DuckDB views over every run, only whole events, no lock, and a dashboard
reading while a session writes (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from workbench.clock import SimClock
from workbench.journal import Journal
from workbench.journal.catalog import VIEWS, catalog
from workbench.model import Fill, Order, OrderIntent, OrderStatus, OrderType, Position, Side
from workbench.model import events as ev
from workbench.runs.records import RunRecord

T0 = pd.Timestamp("2026-03-02 14:30", tz="UTC")
D = Decimal


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


def _session(root: Path | None, clock: SimClock) -> RunRecord:
    return RunRecord.create("session", "sma_cross", {"fast": 10}, "paper", None, clock, root=root)


def _trade(journal: Journal, clock: SimClock) -> None:
    """cid1 fills in two parts, cid2 is rejected, cid3 never gets past the intent."""
    buy = OrderIntent("cid1", "AAPL", Side.BUY, D(10), bar_time=T0)
    journal.append_durable(ev.INTENT, buy)
    journal.append(ev.BROKER_REQUEST, client_order_id="cid1")
    journal.append(ev.BROKER_REPLY, client_order_id="cid1", status="accepted",
                   broker_order_id="b1")
    for n, (qty, price, filled, avg, status) in enumerate([
            (4, "100", 4, "100", OrderStatus.PARTIALLY_FILLED),
            (6, "101", 10, "100.6", OrderStatus.FILLED)]):
        clock.advance("1min")
        journal.append(ev.FILL, Fill(f"x{n}", "cid1", "AAPL", Side.BUY, D(qty), D(price),
                                     D("0.01"), clock.now()))
        journal.append(ev.ORDER_UPDATE, Order(buy, status, "b1", D(filled), D(avg), clock.now()))
        journal.append(ev.POSITION, Position("AAPL", D(filled), D(avg)))
    sell = OrderIntent("cid2", "MSFT", Side.SELL, D(5), OrderType.LIMIT, limit_price=D(300))
    journal.append_durable(ev.INTENT, sell)
    journal.append(ev.BROKER_REPLY, client_order_id="cid2", status="rejected")
    journal.append_durable(ev.INTENT, OrderIntent("cid3", "SPY", Side.BUY, D(1)))
    journal.append(ev.POSITION, Position("MSFT", D(0), D(0)))
    journal.append(ev.EQUITY, equity=D("100000"), cash=D("100000"))
    journal.append(ev.EQUITY, equity=D("100006.5"), cash=D("98993.99"))


def test_views_over_runs_orders_fills_positions_equity(tmp_path, clock):
    root = tmp_path / "runs"
    record = _session(root, clock)
    with Journal.open(record.path, clock) as journal:
        _trade(journal, clock)
    record.finish("succeeded")
    other = RunRecord.create("backtest", "rsi", {}, "backtest", None, clock, root=root)
    con = catalog(root)
    for view, columns in VIEWS.items():
        assert tuple(con.sql(f"SELECT * FROM {view} LIMIT 0").columns) == columns, view
    runs = con.sql("SELECT run_id, kind, status, outcome, started_at, params FROM runs "
                   "ORDER BY kind").fetchall()
    assert [r[:4] for r in runs] == [(other.run_id, "backtest", "running", None),
                                     (record.run_id, "session", "finished", "succeeded")]
    assert runs[1][4] == T0 and json.loads(runs[1][5]) == {"fast": 10}
    orders = con.sql("SELECT client_order_id, symbol, side, order_type, qty, limit_price, "
                     "status, filled_qty, avg_price, broker_order_id, events FROM orders "
                     "ORDER BY client_order_id").fetchall()
    assert orders == [
        ("cid1", "AAPL", "buy", "market", D(10), None, "filled", D(10), D("100.6"), "b1", 5),
        ("cid2", "MSFT", "sell", "limit", D(5), D(300), "rejected", D(0), None, None, 2),
        ("cid3", "SPY", "buy", "market", D(1), None, "new", D(0), None, None, 1),
    ]
    fills = con.sql("SELECT execution_id, qty, price, fee, time FROM fills ORDER BY seq").fetchall()
    assert fills == [("x0", D(4), D(100), D("0.01"), T0 + pd.Timedelta("1min")),
                     ("x1", D(6), D(101), D("0.01"), T0 + pd.Timedelta("2min"))]
    assert con.sql("SELECT symbol, qty, avg_price FROM positions ORDER BY symbol").fetchall() == [
        ("AAPL", D(10), D("100.6")), ("MSFT", D(0), D(0))]
    assert con.sql("SELECT equity, cash FROM equity ORDER BY seq").fetchall() == [
        (D("100000"), D("100000")), (D("100006.5"), D("98993.99"))]
    events = con.sql("SELECT run_id, seq, type FROM events ORDER BY seq").fetchall()
    assert [e[1] for e in events] == list(range(1, 16))
    assert {e[0] for e in events} == {record.run_id}
    snap = catalog(root, snapshot=True)
    for view in VIEWS:
        query = f"SELECT * FROM {view} ORDER BY ALL"
        assert snap.sql(query).fetchall() == con.sql(query).fetchall(), view


@pytest.mark.parametrize("intent_type", [ev.INTENT, *ev.LEGACY_ALIASES])
def test_orders_in_the_order_managers_own_terms(tmp_path, clock, intent_type):
    """``intent``/``order_unknown`` events (or the old spelling ``order_intent`` of runs
    journaled before the names were unified), fills with ``fill_time`` and updates
    without quantities: the filled quantity and average price come from the fills."""
    root = tmp_path / "runs"
    record = _session(root, clock)
    with Journal.open(record.path, clock) as journal:
        for cid in ("a", "b"):
            journal.append_durable(intent_type, client_order_id=cid, symbol="AAPL",
                                   side="buy", quantity="10", order_type="market")
        journal.append(ev.ORDER_UNKNOWN, client_order_id="b", action="submit", error="504")
        for n, (qty, price) in enumerate([("4", "100"), ("6", "101")]):
            journal.append(ev.FILL, execution_id=f"x{n}", client_order_id="a", symbol="AAPL",
                           side="buy", quantity=qty, price=price, fee="0",
                           fill_time=T0 + pd.Timedelta(seconds=n), time=T0 + pd.Timedelta("1h"))
        journal.append(ev.ORDER_UPDATE, client_order_id="a", status="filled")
    con = catalog(root)
    assert con.sql("SELECT client_order_id, status, qty, filled_qty, avg_price FROM orders "
                   "ORDER BY 1").fetchall() == [("a", "filled", D(10), D(10), D("100.6")),
                                                ("b", "unknown", D(10), D(0), None)]
    assert con.sql("SELECT time FROM fills ORDER BY seq").fetchall() == [
        (T0,), (T0 + pd.Timedelta(seconds=1),)]


def test_only_whole_lines_are_visible_and_damage_never_fails_a_query(tmp_path, clock):
    root = tmp_path / "runs"
    record = _session(root, clock)
    with Journal.open(record.path, clock) as journal:
        for i in range(3):
            journal.append(ev.BAR, i=i)
    seg = record.path / "events" / "000001.jsonl"
    whole_but_no_newline = b'{"type":"bar","seq":4,"ts":"2026-03-02T14:30:00+00:00","payload":{}}'
    con = catalog(root)
    for tail in (b'{"type":"bar","seq":4,"ts":"2026-03', whole_but_no_newline):
        seg.write_bytes(seg.read_bytes().rsplit(b"\n", 1)[0] + b"\n" + tail)
        assert con.sql("SELECT max(seq), count(*) FROM events").fetchall() == [(3, 3)]
    lines = seg.read_bytes().split(b"\n")
    seg.write_bytes(b"\n".join([lines[0], b"garbage", b'[1]', *lines[1:]]))
    assert con.sql("SELECT list(seq ORDER BY seq) FROM events").fetchall() == [([1, 2, 3],)]
    damaged = _session(root, clock)
    (damaged.path / "events").mkdir()
    good = b'{"type":"bar","seq":1,"ts":"2026-03-02T14:30:00+00:00","payload":{}}\n'
    (damaged.path / "events" / "000001.jsonl").write_bytes(good + b"\xff\n")  # not UTF-8
    (damaged.path / "manifest.json").write_bytes(b"\xff not json")
    # the good line of a segment that is not UTF-8 is read; every bad line is listed
    assert con.sql("SELECT count(*) FROM events").fetchall() == [(4,)]
    assert con.sql("SELECT count(*) FROM runs").fetchall() == [(1,)]
    listed = con.sql("SELECT run_id, segment, line, reason FROM damage").fetchall()
    assert sorted(listed) == sorted([
        (record.run_id, "000001.jsonl", 2, "not a valid event"),
        (record.run_id, "000001.jsonl", 3, "not a valid event"),
        (damaged.run_id, "000001.jsonl", 2, "not UTF-8 (a damaged byte)")])


def test_views_are_live_snapshot_is_not_and_default_root_is_runs(workbench_home, clock):
    live, snap = catalog(), catalog(snapshot=True)
    assert live.sql("SELECT count(*) FROM runs").fetchall() == [(0,)]
    record = _session(None, clock)
    assert record.path.parent == workbench_home / "runs"
    with Journal.open(record.path, clock) as journal:
        journal.append(ev.EQUITY, equity=D(1), cash=D(1))
        assert live.sql("SELECT count(*) FROM equity").fetchall() == [(1,)]
        journal.append(ev.EQUITY, equity=D(2), cash=D(1))
        assert live.sql("SELECT max(equity) FROM equity").fetchall() == [(D(2),)]
    assert live.sql("SELECT count(*) FROM runs").fetchall() == [(1,)]
    assert snap.sql("SELECT count(*) FROM events").fetchall() == [(0,)]
    assert catalog(snapshot=True).sql("SELECT count(*) FROM equity").fetchall() == [(2,)]


def test_catalog_takes_no_lock_and_writes_no_file(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    record = _session(root, clock)
    journal = Journal.open(record.path, clock)
    journal.append(ev.HEARTBEAT)
    before = sorted(p for p in tmp_path.rglob("*"))
    con = catalog(root)
    for view in VIEWS:
        con.sql(f"SELECT * FROM {view}").fetchall()
    journal.close()  # a restart of the session while the catalog is open and queried
    with Journal.open(record.path, clock) as journal:
        journal.append(ev.HEARTBEAT)
    assert con.sql("SELECT count(*) FROM events").fetchall() == [(2,)]
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_dashboard_reads_while_a_session_writes(tmp_path):
    """Acceptance: a reader process queries every view every 100 ms while a writer process
    journals a fast replay session (reopening its journal every second). The reader never
    errors and never sees an incomplete event; the writer never sees a lock error."""
    root = tmp_path / "runs"
    root.mkdir()
    w_out, r_out = tmp_path / "writer.json", tmp_path / "reader.json"
    procs = {
        "reader": [str(root), str(r_out), str(w_out)],
        "writer": [str(root), str(w_out), "5"],
    }
    running = {name: subprocess.Popen([sys.executable, "-m", "tests.journal_procs", name, *args],
                                      cwd=ROOT) for name, args in procs.items()}
    for name, proc in running.items():
        assert proc.wait(timeout=90) == 0, f"{name} exited {proc.returncode}"
    writer, reader = json.loads(w_out.read_text()), json.loads(r_out.read_text())
    assert writer["errors"] == [] and writer["reopens"] >= 3, writer
    assert writer["events"] > 2000 and writer["orders"] > 100, writer
    assert reader["errors"] == [] and reader["problems"] == [], reader
    assert reader["queries"] >= 10 and reader["tail_events"] == writer["events"], reader
    assert reader["seen"] == {writer["run_id"]: writer["events"]}, reader
    assert len(list(root.glob("*/events/*.jsonl"))) >= 2  # segments rolled meanwhile
