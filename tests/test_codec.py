"""One JSON shape per model type (the codec), one plainifier, and old journals still read."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.brokers import SimBroker
from workbench.clock import SimClock
from workbench.journal import Journal, replay
from workbench.journal.catalog import catalog
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
    codec,
)
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.orders import OrderManager, rebuild
from workbench.plain import NotPlain, plain
from workbench.runs.records import RunRecord
from workbench.testing.sinks import ListSink

T0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")


def _models() -> list[object]:
    intent = OrderIntent("c1", "AAPL", Side.BUY, D(10), OrderType.BRACKET,
                         limit_price=D("101.25"), take_profit=D(110), stop_loss=D("95.5"),
                         bar_time=T0)
    return [
        Signal("sma", "AAPL", T0, entry=True, weight=0.5), intent,
        Order(intent, OrderStatus.PARTIALLY_FILLED, "b-1", D(4), D("101.2"), T0),
        Fill("x-1", "c1", "AAPL", Side.BUY, D(4), D("101.2000"), D("0.0100"), T0),
        Position("AAPL", D(-4), D("101.2")),
        Account(D("99000.5"), {"AAPL": Position("AAPL", D(4), D("101.2"))}),
    ]


@pytest.mark.parametrize("obj", _models(), ids=lambda o: type(o).__name__)
def test_every_model_type_has_one_shape_that_round_trips(obj):
    payload = json.loads(json.dumps(codec.encode(obj)))
    assert list(payload) == ["_type", *(f.name for f in dataclasses.fields(obj))]
    assert codec.decode(payload) == obj
    assert codec.decode({**payload, "extra": 1}, type(obj)) == obj  # extra fields ignored


def test_a_fill_has_the_same_shape_from_the_order_manager_and_the_journal(tmp_path):
    clock, sink = SimClock(T0), ListSink()
    broker = SimBroker(tmp_path / "broker.sqlite", costs=CostModel(fees_bps=1.0), cash=100_000)
    manager = OrderManager(broker, sink, clock)
    manager.start()
    manager.place(OrderIntent("c1", "AAPL", Side.BUY, D(10), bar_time=T0))
    clock.set(T0 + pd.Timedelta("1min"))
    broker.on_bars(clock.now(), {"AAPL": dict.fromkeys(("open", "high", "low", "close"), 100.0)})
    clock.set(T0 + pd.Timedelta("90s"))
    [fill] = manager.process_updates()
    broker.close()
    [journaled] = sink.of(ev.FILL)
    assert {k: v for k, v in journaled.items() if k != "source"} == codec.encode(fill)
    assert journaled["time"] == fill.time.isoformat() == "2025-03-03T14:31:00+00:00"
    run = tmp_path / "run"
    run.mkdir()
    with Journal.open(run, clock) as journal:
        journal.append(ev.FILL, fill)
    [event] = replay(run).events
    assert event.payload == codec.encode(fill) and event.model() == fill


# as the order manager wrote them before the shapes were unified: a fill's time was
# ``fill_time``, its ``time`` the manager's clock; nothing was tagged
OLD_JOURNAL = """\
{"type":"account_snapshot","seq":1,"ts":"2025-03-03T14:30:00+00:00","payload":{"cash":"100000","positions":[],"open_orders":[],"executions":[],"time":"2025-03-03T14:30:00+00:00"}}
{"type":"order_intent","seq":2,"ts":"2025-03-03T14:30:00+00:00","payload":{"client_order_id":"c1","symbol":"AAPL","side":"buy","quantity":"10","order_type":"market","limit_price":null,"stop_price":null,"take_profit":null,"stop_loss":null,"time_in_force":"day","bar_time":"2025-03-03T14:30:00+00:00","reason":"signal","time":"2025-03-03T14:30:00+00:00"}}
{"type":"broker_request","seq":3,"ts":"2025-03-03T14:30:00+00:00","payload":{"client_order_id":"c1","action":"submit","time":"2025-03-03T14:30:00+00:00"}}
{"type":"broker_reply","seq":4,"ts":"2025-03-03T14:30:00+00:00","payload":{"client_order_id":"c1","action":"submit","outcome":"accepted","status":"accepted","broker_order_id":"sim-00000001","time":"2025-03-03T14:30:00+00:00"}}
{"type":"fill","seq":5,"ts":"2025-03-03T14:31:30+00:00","payload":{"source":"stream","execution_id":"sim-x00000001","client_order_id":"c1","symbol":"AAPL","side":"buy","quantity":"10","price":"100.02","fee":"0.10002","fill_time":"2025-03-03T14:31:00+00:00","time":"2025-03-03T14:31:30+00:00"}}
{"type":"order_update","seq":6,"ts":"2025-03-03T14:31:30+00:00","payload":{"client_order_id":"c1","status":"filled","filled_quantity":"10","average_price":"100.02","broker_order_id":"sim-00000001","source":"fill","time":"2025-03-03T14:31:30+00:00"}}
{"type":"position","seq":7,"ts":"2025-03-03T14:31:30+00:00","payload":{"symbol":"AAPL","quantity":"10","average_price":"100.02","time":"2025-03-03T14:31:30+00:00"}}
"""


def test_a_journal_in_the_old_shapes_still_rebuilds_and_shows_in_the_catalog(tmp_path):
    clock = SimClock(T0)
    record = RunRecord.create("session", "sma", {}, "paper", None, clock, root=tmp_path)
    (record.path / "events").mkdir()
    (record.path / "events" / "000001.jsonl").write_text(OLD_JOURNAL)
    events = replay(record.path).events
    fill_time = pd.Timestamp("2025-03-03 14:31", tz="UTC")
    [fill] = [codec.decode(e.payload, Fill) for e in events if e.type == ev.FILL]
    assert fill == Fill("sim-x00000001", "c1", "AAPL", Side.BUY, D(10), D("100.02"),
                        D("0.10002"), fill_time)
    book = rebuild(events)
    order = book.orders["c1"]
    assert (order.status, order.filled_quantity, order.updated_at) == (
        OrderStatus.FILLED, D(10), fill_time)
    assert book.ledger.positions["AAPL"] == Position("AAPL", D(10), D("100.02"))
    con = catalog(tmp_path)
    assert con.sql("SELECT execution_id, time, qty FROM fills").fetchall() == [
        ("sim-x00000001", fill_time, D(10))]
    assert con.sql("SELECT client_order_id, status, filled_qty FROM orders").fetchall() == [
        ("c1", "filled", D(10))]


def test_plain_converts_once_for_every_writer():
    value = {"qty": D("1E+3"), "at": T0, "naive": pd.Timestamp("2026-01-02 09:30"),
             "side": Side.SELL, "n": np.int64(3), "x": np.float64("nan"), "nat": pd.NaT,
             "wait": pd.Timedelta("1min"), "tags": ("a", "b"), "path": Path("/x"),
             "curve": np.arange(2), T0: 1, 2: "two",
             "pos": Position("A", D(1), D("2.50"))}
    assert plain(value) == {
        "qty": "1000", "at": T0.isoformat(), "naive": "2026-01-02T09:30:00", "side": "sell",
        "n": 3, "x": None, "nat": None, "wait": "P0DT0H1M0S", "tags": ["a", "b"],
        "path": "/x", "curve": [0, 1], T0.isoformat(): 1, "2": "two",
        "pos": {"symbol": "A", "quantity": "1", "average_price": "2.50"}}
    assert plain(Position("A", D(1), D(2)), tag=True)["_type"] == "Position"
    assert plain({"fast": np.int64(10), "on": True, "side": Side.BUY}, strict=True) == {
        "fast": 10, "on": True, "side": "buy"}
    for bad in ({"f": float("inf")}, {"d": D(1)}, {1: 2}, {"o": object()}):
        with pytest.raises(NotPlain):
            plain(bad, strict=True, where="params")
    with pytest.raises(NotPlain, match="cannot write a object"):
        plain({"o": object()})
