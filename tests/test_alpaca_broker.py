"""AlpacaBroker through the real alpaca-py client against the loopback fake: orders placed,
filled (stream, then a restarted adapter's lookups), canceled; positions, account; paper/live
refusals (fault test 22)."""

from __future__ import annotations

import pytest
from alpaca_broker_helpers import (
    KEY,
    D,
    apply_until,
    at_fake,
    broker,
    drain_until,
    posts,
    publish,
    start_fake,
    wait_for,
)

from workbench.brokers.base import Broker, OrderNotFound, OrderRejected
from workbench.errors import ConfigError
from workbench.model import OrderIntent, OrderStatus, OrderType, Side

S = OrderStatus


@pytest.fixture
def b(fake):
    adapter = broker(fake)
    # updates sent before the stream listens are not replayed to it (as at Alpaca): wait
    wait_for(lambda: adapter.connected, 10, "the trade-updates stream connected")
    yield adapter
    adapter.close()


def _fills(updates):
    return {u.fill.execution_id: u.fill for u in updates if u.fill is not None}


def test_is_a_broker_and_streams(b):
    assert isinstance(b, Broker)
    drain_until(b, lambda _: b.connected)
    assert b.connected


def test_market_limit_stop_and_bracket_fill_via_stream_and_after_restart(fake, b):
    drain_until(b, lambda _: b.connected)
    intents = [
        OrderIntent("m1", "AAPL", Side.BUY, D(3)),
        OrderIntent("l1", "AAPL", Side.BUY, D(2), OrderType.LIMIT, limit_price=D("99.5")),
        OrderIntent("s1", "AAPL", Side.BUY, D(1), OrderType.STOP, stop_price=D("100.5")),
        OrderIntent("b1", "AAPL", Side.BUY, D(2), OrderType.BRACKET, take_profit=D("110.004"),
                    stop_loss=D("90.006")),
    ]
    placed = [b.submit(i) for i in intents]
    assert [o.status for o in placed] == [S.ACCEPTED] * 4
    bracket = placed[3]
    assert [leg.client_order_id for leg in bracket.legs] == ["b1.sl", "b1.tp"]
    assert {leg.leg: leg.parent_id for leg in bracket.legs} == {"stop_loss": "b1", "take_profit": "b1"}
    # prices rounded to the cent, never past the asked price: sell legs round up
    assert bracket.stop_loss == D("90.01") and bracket.take_profit == D("110.01")
    assert any(e[1] == "price_rounded" for e in b.events)
    assert len(posts(fake)) == 4

    publish(fake, "2026-11-23T15:01:00Z")
    got = drain_until(b, lambda us: len(_fills(us)) == 4)
    fills = _fills(got)
    by_order = {f.client_order_id: f for f in fills.values()}
    assert set(by_order) == {"m1", "l1", "s1", "b1"}
    assert by_order["m1"].quantity == D(3) and by_order["m1"].price == D(100)
    assert by_order["l1"].price <= D("99.5")
    assert all(f.fee == 0 for f in fills.values())
    assert {u.order.status for u in got if u.fill is not None} == {S.FILLED}

    pos = b.positions()
    assert pos["AAPL"].quantity == D(8)
    assert b.account().cash == D(100_000) - sum(f.quantity * f.price for f in fills.values())
    open_ids = {o.client_order_id for o in b.open_orders()}
    assert open_ids == {"b1.sl", "b1.tp"}  # the legs of the filled entry, named ours

    # a restarted adapter finds the same executions by lookup, and names the legs
    again = broker(fake, stream=False)
    try:
        assert {f.execution_id for f in again.fills()} == set(fills)
        assert [f.execution_id for f in again.fills("l1")] == [by_order["l1"].execution_id]
        found = again.get_order("b1")
        assert found.status is S.FILLED and found.filled_quantity == D(2)
        assert [leg.client_order_id for leg in found.legs] == ["b1.sl", "b1.tp"]
        sl = again.get_order("b1.sl")
        assert sl.parent_id == "b1" and sl.leg == "stop_loss" and sl.stop_price == D("90.01")
        assert {o.client_order_id for o in again.open_orders()} == {"b1.sl", "b1.tp"}
        assert again.get_order("nope") is None
    finally:
        again.close()

    # the take profit fills on a later bar; its sibling is canceled (one cancels the other)
    publish(fake, "2026-11-23T15:02:00Z", h=111.0, c=110.5)
    got = drain_until(b, lambda us: any(u.fill and u.order.client_order_id == "b1.tp" for u in us)
                      and any(u.order.client_order_id == "b1.sl" and u.order.status is S.CANCELED
                              for u in us))
    tp = next(u for u in got if u.fill and u.order.client_order_id == "b1.tp")
    assert tp.order.parent_id == "b1" and tp.fill.side is Side.SELL
    assert b.positions()["AAPL"].quantity == D(6)


def test_cancel(fake, b):
    b.submit(OrderIntent("l2", "AAPL", Side.BUY, D(1), OrderType.LIMIT, limit_price=D("50")))
    b.cancel("l2")
    got = drain_until(b, lambda us: any(u.order.status is S.CANCELED for u in us))
    assert any(u.event == "canceled" and u.order.client_order_id == "l2" for u in got)
    assert at_fake(fake, "l2")[0]["status"] == "canceled"
    with pytest.raises(OrderRejected):
        b.cancel("l2")  # no longer open
    with pytest.raises(OrderNotFound):
        b.cancel("never-placed")


def test_a_stop_level_that_rounding_would_cross_is_refused_unsent(fake, b):
    bad = OrderIntent("x1", "AAPL", Side.BUY, D(1), OrderType.BRACKET,
                      take_profit=D("100.001"), stop_loss=D("100.0001"))
    with pytest.raises(OrderRejected, match="wrong side"):
        b.submit(bad)
    assert posts(fake) == []


# -- fault test 22: paper/live agreement, refused before any order ------------------------
def test_live_keys_in_paper_mode_are_refused_before_any_request(fake):
    with pytest.raises(ConfigError, match="live key") as e:
        broker(fake, "paper", key="AKLIVEKEY0001")
    assert "AKLIVEKEY0001" not in str(e.value)
    assert fake.requests == []


def test_paper_keys_in_live_mode_are_refused_before_any_request(fake):
    with pytest.raises(ConfigError, match="paper key"):
        broker(fake, "live", key=KEY, paper_setting=False)
    assert fake.requests == []


def test_live_mode_needs_the_setting_too(fake):
    with pytest.raises(ConfigError, match="alpaca.paper"):
        broker(fake, "live", key="ZZNEUTRAL01")
    assert fake.requests == []


def test_live_mode_against_a_paper_account_is_refused_after_reading_it(fake):
    fake2 = start_fake(key="ZZNEUTRAL01")
    try:
        with pytest.raises(ConfigError, match="paper account"):
            broker(fake2, "live", key="ZZNEUTRAL01", paper_setting=False)
        assert [(r.method, r.path) for r in fake2.requests] == [("GET", "/v2/account")]
    finally:
        fake2.stop()


# -- the stream: duplicates, out of order, drops, a running event loop --------------------
def test_duplicate_and_reordered_updates_reach_the_manager_once_in_state_order(fake, b):
    import pandas as pd

    from workbench.clock import SimClock
    from workbench.orders import OrderManager
    from workbench.testing.sinks import ListSink

    drain_until(b, lambda _: b.connected)
    m = OrderManager(b, ListSink(), SimClock(pd.Timestamp("2026-11-23T15:00:00Z")))
    fake.hub.faults.trading.reorder(2)  # the "new" is held and sent after the fill
    m.place(OrderIntent("r1", "AAPL", Side.BUY, D(2)))
    publish(fake, "2026-11-23T15:01:00Z")
    apply_until(m, lambda: m.order("r1").status is S.FILLED, what="r1 filled")
    fake.hub.faults.trading.duplicate(2)  # the "new" and the fill of d1, each sent twice
    m.place(OrderIntent("d1", "AAPL", Side.BUY, D(1)))
    publish(fake, "2026-11-23T15:02:00Z")
    apply_until(m, lambda: m.order("d1").status is S.FILLED and b.stream.duplicates >= 2,
                what="d1 filled, its new and fill each seen twice")
    assert b.stream.duplicates >= 2
    assert {f.execution_id for f in fake.fills} == set(m.book.executions)
    assert m.positions()["AAPL"].quantity == fake.positions["AAPL"].quantity == D(3)
    assert m.anomalies == []
    assert m.reconcile().ok


def test_connected_follows_the_stream(fake, b):
    wait_for(lambda: b.connected, what="connected")
    fake.hub.disconnect("trading")
    wait_for(lambda: not b.connected, what="disconnected seen")
    assert any(e[1] == "stream_disconnected" for e in b.events)
    wait_for(lambda: b.connected, timeout=10, what="alpaca-py's own reconnect")


def test_works_from_inside_a_running_event_loop(fake):
    """A Jupyter kernel's loop is running: the stream must not need the caller's loop."""
    import asyncio

    async def in_kernel():
        adapter = broker(fake)
        try:
            for _ in range(250):
                if adapter.connected:
                    break
                await asyncio.sleep(0.02)
            adapter.submit(OrderIntent("j1", "AAPL", Side.BUY, D(1)))
            return adapter.connected, [u.event for u in adapter.updates()] or \
                [u.event for u in drain_until(adapter, lambda us: us)]
        finally:
            adapter.close()
    connected, events = asyncio.run(in_kernel())
    assert connected and events[0] == "accepted"


def test_fills_while_down_are_adopted_after_a_restart_without_a_second_order(fake, b):
    import json

    import pandas as pd

    from workbench.clock import SimClock
    from workbench.orders import OrderManager
    from workbench.testing.sinks import ListSink

    clock = SimClock(pd.Timestamp("2026-11-23T15:00:00Z"))
    m = OrderManager(b, ListSink(), clock)
    m.start()
    m.place(OrderIntent("b1", "AAPL", Side.BUY, D(2), OrderType.BRACKET, take_profit=D("110"),
                        stop_loss=D("90")))
    m.place(OrderIntent("m1", "AAPL", Side.BUY, D(1)))
    b.close()  # the runner is down ...
    publish(fake, "2026-11-23T15:01:00Z")  # ... when both fill

    events = [(t, json.loads(json.dumps(p, default=str))) for t, p in m.sink.events]
    again = broker(fake)
    try:
        m2 = OrderManager.from_journal(again, ListSink(), clock, events)
        rec = m2.reconcile()
        assert rec.ok, rec.message
        assert {f.client_order_id for f in rec.adopted_fills} == {"b1", "m1"}
        assert m2.order("b1").status is S.FILLED and m2.order("m1").status is S.FILLED
        assert {c for c, o in m2.open_orders().items()} == {"b1.sl", "b1.tp"}
        assert m2.positions()["AAPL"].quantity == D(3)
        assert len(posts(fake)) == 2  # nothing was sent again

        wait_for(lambda: again.connected, what="stream after restart")
        publish(fake, "2026-11-23T15:02:00Z", h=111.0, c=110.5)
        apply_until(m2, lambda: m2.order("b1.sl").status is S.CANCELED,
                    what="take profit filled, stop canceled")
        assert m2.order("b1.tp").status is S.FILLED
        assert m2.positions()["AAPL"].quantity == D(1) == fake.positions["AAPL"].quantity
        assert m2.reconcile().ok
    finally:
        again.close()


def test_refused_credentials_are_a_config_error_naming_no_secret(fake):
    from workbench.brokers.alpaca import AlpacaBroker
    from workbench.config import Credentials, Settings

    with pytest.raises(ConfigError, match="credentials refused") as e:
        AlpacaBroker("paper", settings=Settings(), url=fake.url, stream=False,
                     credentials=Credentials(api_key=KEY, secret_key="wrong-secret-123"))
    assert "wrong-secret-123" not in str(e.value)
    assert [r.path for r in fake.requests] == ["/v2/account"]


def test_a_malformed_update_is_dropped_loudly_and_the_next_ones_flow(fake, b):
    drain_until(b, lambda _: b.connected)
    b.stream._queue.put({"event": "fill", "order": {"client_order_id": "x"}})  # no id, no qty
    b.submit(OrderIntent("ok1", "AAPL", Side.BUY, D(1)))
    got = drain_until(b, lambda us: any(u.order.client_order_id == "ok1" for u in us))
    assert [u.order.client_order_id for u in got] == ["ok1"]
    assert [e[1] for e in b.events if e[1] == "update_malformed"] == ["update_malformed"]


def test_paper_mode_against_a_live_account_is_refused_after_reading_it():
    live = start_fake(key="ZZNEUTRAL01", paper=False)
    try:
        with pytest.raises(ConfigError, match="live account"):
            broker(live, "paper", key="ZZNEUTRAL01")
        assert [(r.method, r.path) for r in live.requests] == [("GET", "/v2/account")]
    finally:
        live.stop()


def test_an_oco_protection_fills_and_cancels_under_the_sim_brokers_ids(fake, b):
    drain_until(b, lambda _: b.connected)
    b.submit(OrderIntent("e1", "AAPL", Side.BUY, D(2)))
    publish(fake, "2026-11-23T15:01:00Z")
    drain_until(b, lambda us: any(u.fill for u in us))
    oco = b.submit(OrderIntent("x1", "AAPL", Side.SELL, D(2), OrderType.OCO,
                               take_profit=D("105"), stop_loss=D("95")))
    # Alpaca's oco is a take-profit limit carrying x1 with a stop leg; ours is the sim's
    assert oco.order_type is OrderType.OCO and oco.stop_loss == D(95) and oco.take_profit == D(105)
    assert [(leg.client_order_id, leg.leg) for leg in oco.legs] == [("x1.tp", "take_profit")]
    assert {o.client_order_id for o in b.open_orders()} == {"x1", "x1.tp"}
    b.submit(OrderIntent("x2", "AAPL", Side.SELL, D(1), OrderType.OCO, take_profit=D("120"),
                         stop_loss=D("80")))
    b.cancel("x2")  # cancels Alpaca's parent, so both sides end
    publish(fake, "2026-11-23T15:02:00Z", o=99.0, l=94.0, c=94.5)
    got = drain_until(b, lambda us: any(u.fill and u.order.client_order_id == "x1" for u in us)
                      and any(u.order.client_order_id == "x1.tp"
                              and u.order.status is S.CANCELED for u in us))
    stop_fill = next(u.fill for u in got if u.fill and u.order.client_order_id == "x1")
    assert stop_fill.price == D(95) and stop_fill.side is Side.SELL
    assert b.get_order("x2").status is S.CANCELED
    assert b.get_order("x2.tp").status is S.CANCELED
    assert "AAPL" not in b.positions()
