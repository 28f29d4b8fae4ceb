"""Issue 12: reconciliation reads the Alpaca account's order and fill history since the run
began (``AlpacaBroker.orders(since)``: ``status=all`` pages; FILL activities), so a filled
order deleted at the broker between a kill and a restart is a difference, not a silent
exit 0. On the fake Alpaca (loopback)."""

from __future__ import annotations

import pandas as pd
import pytest
from alpaca.trading.requests import GetOrdersRequest
from alpaca_broker_helpers import D, apply_until, broker, publish, wait_for
from test_alpaca_broker_restart import _journal, _restart

from workbench.brokers.alpaca.history import order_history
from workbench.brokers.base import TemporaryBrokerError
from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderStatus, OrderType, Side
from workbench.orders import OrderManager
from workbench.testing.sinks import ListSink

T0 = pd.Timestamp("2026-11-23T15:00:00Z")


def _filled_and_open(fake):
    b = broker(fake)
    wait_for(lambda: b.connected, 10, "the stream")
    m = OrderManager(b, ListSink(), SimClock(T0))
    m.start()
    m.place(OrderIntent("h1", "AAPL", Side.BUY, D(2)))
    fake.set_clock("2026-11-23T15:00:01Z")  # orders created at distinct times (pages)
    m.place(OrderIntent("h2", "AAPL", Side.BUY, D(1), OrderType.LIMIT, limit_price=D(10)))
    fake.set_clock("2026-11-23T15:00:02Z")
    m.place(OrderIntent("h3", "AAPL", Side.BUY, D(1)))
    publish(fake, "2026-11-23T15:01:00Z")
    apply_until(m, lambda: all(m.order(c).status is OrderStatus.FILLED for c in ("h1", "h3")),
                what="h1, h3 filled")
    return b, m


def test_the_order_history_lists_ended_and_open_orders_page_by_page(fake):
    b, _ = _filled_and_open(fake)
    try:
        history = b.orders(since=T0)
        assert [o.client_order_id for o in history] == ["h1", "h2", "h3"]
        assert [o.status is OrderStatus.FILLED for o in history] == [True, False, True]
        assert history[1].is_open
        def read(q):
            return b._client.get_orders(GetOrdersRequest(**q))
        for page in (2, 3):
            paged = order_history(read, b._labels.learn, T0, page=page)
            assert [o.client_order_id for o in paged] == ["h1", "h2", "h3"]
        assert b.orders(since=T0 + pd.Timedelta(hours=1)) == []
        fake.set_clock("2026-11-23T15:00:02Z")
        b.submit(OrderIntent("h4", "AAPL", Side.BUY, D(1), OrderType.LIMIT,
                             limit_price=D(10)))  # h3 and h4: one time, a page of two
        with pytest.raises(TemporaryBrokerError, match="cannot be paged"):
            order_history(read, b._labels.learn, T0 + pd.Timedelta(seconds=2), page=2)
    finally:
        b.close()


def test_a_filled_order_deleted_at_alpaca_between_kill_and_restart_is_a_difference(fake):
    b, m = _filled_and_open(fake)
    events = _journal(m)
    b.close()
    with fake.book.lock:  # the fill and its order gone from the account's history
        fake.book.fills[:] = [f for f in fake.book.fills if f.client_order_id != "h1"]
    again, _, rec = _restart(fake, events)
    try:
        assert not rec.ok
        assert any(d.kind == "fill" and "h1" in d.ours and "deleted" in d.broker
                   for d in rec.differences), rec.message
    finally:
        again.close()
