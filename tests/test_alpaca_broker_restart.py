"""Fault tests 5 and 7 of failure-modes.md on AlpacaBroker, through the real alpaca-py client
against the fake.

5. A kill at each point of an order's life leaves the journal as it was at the last sync;
   the restarted run (a new adapter, the manager rebuilt from that journal, reconciled with
   ``resend=True`` as the session's start does) ends with exactly one order at the broker
   and positions equal to the broker's. The kill itself (a real ``kill -9`` of a session
   process) is proven on the simulated broker in tests/test_session.py through the same
   manager code; here the cut journal stands for it, so the broker side is the real adapter.
7. A manual order or a position changed at the broker behind the run's back is an
   unexplained difference at reconcile: the result is not ok (the session halts on it).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from alpaca_broker_helpers import D, apply_until, broker, posts, publish, wait_for

from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderStatus, Side
from workbench.orders import OrderManager
from workbench.testing.sinks import ListSink

S = OrderStatus
T0 = pd.Timestamp("2026-11-23T15:00:00Z")


class _SyncedSink(ListSink):
    """A list journal whose sync is a no-op (``stage`` needs a sink that can sync)."""

    def sync(self) -> None:
        pass


def _journal(m: OrderManager) -> list:
    """The manager's events as a journal file gives them back (plain JSON)."""
    return [(t, json.loads(json.dumps(p, default=str))) for t, p in m.sink.events]


def _cut(events: list, last: str) -> list:
    """The journal as it stood right after the first ``last`` event (the kill's moment)."""
    kinds = [t for t, _ in events]
    return events[: kinds.index(last) + 1]


def _restart(fake, events):
    """The run restarted a few minutes later (past the broker's ack window)."""
    again = broker(fake)
    wait_for(lambda: again.connected, 10, "the restarted adapter's stream")
    later = SimClock(T0 + pd.Timedelta(minutes=5))
    m2 = OrderManager.from_journal(again, ListSink(), later, events)
    return again, m2, m2.reconcile(resend=True)


def test_5_killed_after_the_intent_is_journaled_sends_it_once_on_restart(fake):
    b = broker(fake)
    m = OrderManager(b, _SyncedSink(), SimClock(T0))
    m.start()
    m.stage(OrderIntent("k1", "AAPL", Side.BUY, D(2)))  # journaled; the kill comes before the send
    events = _journal(m)
    b.close()
    assert posts(fake) == []
    again, m2, rec = _restart(fake, events)
    try:
        assert rec.ok, rec.message
        assert len(posts(fake)) == 1 and [o["client_order_id"] for o in fake.orders] == ["k1"]
        publish(fake, "2026-11-23T15:01:00Z")
        apply_until(m2, lambda: m2.order("k1").status is S.FILLED, what="k1")
        assert m2.positions()["AAPL"].quantity == D(2) == fake.positions["AAPL"].quantity
    finally:
        again.close()


@pytest.mark.parametrize("last", ["broker_request", "broker_reply", "fill"])
def test_5_killed_after_the_send_never_sends_twice(fake, last):
    """After the POST (request journaled, reply not), after the reply, and in the middle of
    fill handling (the fill journaled, its order update and position not)."""
    b = broker(fake)
    wait_for(lambda: b.connected, 10, "the stream")
    m = OrderManager(b, ListSink(), SimClock(T0))
    m.start()
    m.place(OrderIntent("k2", "AAPL", Side.BUY, D(3)))
    publish(fake, "2026-11-23T15:01:00Z")
    apply_until(m, lambda: m.order("k2").status is S.FILLED, what="k2 filled")
    events = _cut(_journal(m), last)
    b.close()
    again, m2, rec = _restart(fake, events)
    try:
        assert rec.ok, rec.message
        assert len(posts(fake)) == 1  # the one POST of the first life
        assert m2.order("k2").status is S.FILLED
        assert m2.positions()["AAPL"].quantity == D(3) == fake.positions["AAPL"].quantity
    finally:
        again.close()


def test_7_a_manual_order_at_the_broker_is_a_difference(fake):
    b = broker(fake)
    m = OrderManager(b, ListSink(), SimClock(T0))
    m.start()
    fake.manual_order(symbol="MSFT", qty=1, side="buy", type="limit", limit_price=10.0)
    try:
        rec = m.reconcile()
        assert not rec.ok
        assert "order" in {d.kind for d in rec.differences}, rec.message
    finally:
        b.close()


def test_7_a_position_changed_behind_the_run_is_a_difference(fake):
    b = broker(fake)
    wait_for(lambda: b.connected, 10, "the stream")
    m = OrderManager(b, ListSink(), SimClock(T0))
    m.start()
    m.place(OrderIntent("k3", "AAPL", Side.BUY, D(2)))
    publish(fake, "2026-11-23T15:01:00Z")
    apply_until(m, lambda: m.order("k3").status is S.FILLED, what="k3 filled")
    assert m.reconcile().ok
    fake.set_position("AAPL", 5, 100.0)
    try:
        rec = m.reconcile()
        assert not rec.ok
        assert ("position", "AAPL") in {(d.kind, d.key) for d in rec.differences}, rec.message
    finally:
        b.close()
