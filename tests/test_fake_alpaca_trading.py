"""The fake Alpaca server's trading REST through the real alpaca-py ``TradingClient``.

Fills are driven by hand with ``fake.publish(minute, bars)`` (what the replay does each
minute), so every price below is exact; tests/test_fake_alpaca_replay.py checks them against
the simulated broker over a replayed day.
"""

from __future__ import annotations

import time
import uuid
import warnings
from decimal import Decimal

import pandas as pd
import pytest
from fake_alpaca_hub import RecordingHub

from workbench.errors import ConfigError
from workbench.testing import FakeAlpaca

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import (
        OrderClass,
        OrderSide,
        OrderStatus,
        QueryOrderStatus,
        TimeInForce,
    )
    from alpaca.trading.requests import (
        ClosePositionRequest,
        GetCalendarRequest,
        GetOrderByIdRequest,
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        ReplaceOrderRequest,
        StopLimitOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )

KEY, SECRET = "PKFAKETRADING1", "fake-trading-secret"
DAY = pd.Timestamp("2026-11-23 15:00", tz="UTC")  # 10:00 New York, a Monday


def minute(n: int) -> pd.Timestamp:
    return DAY + pd.Timedelta(minutes=n)


def bar(symbol: str, o: float, h: float, lo: float, c: float) -> dict:
    return {"S": symbol, "o": o, "h": h, "l": lo, "c": c, "v": 1000.0, "n": 10, "vw": c}


@pytest.fixture
def hub():
    return RecordingHub()


@pytest.fixture
def fake(hub):
    with FakeAlpaca(key=KEY, secret=SECRET, hub=hub, idle_timeout=60) as fake:
        fake.set_clock(DAY + pd.Timedelta(seconds=30))
        yield fake


@pytest.fixture
def client(fake):
    return TradingClient(KEY, SECRET, url_override=fake.url)


def market(symbol="AAPL", qty=10, side=OrderSide.BUY, cid=None, **kw):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY,
                              client_order_id=cid, **kw)


# -- account, clock, calendar ------------------------------------------------------------------
def test_account_clock_and_calendar(fake, client):
    account = client.get_account()
    assert isinstance(account.id, uuid.UUID) and account.status == "ACTIVE"
    assert account.cash == account.equity == account.buying_power == "100000"
    clock = client.get_clock()
    assert clock.is_open and clock.timestamp == DAY + pd.Timedelta(seconds=30)
    assert clock.next_close == pd.Timestamp("2026-11-23 16:00", tz="America/New_York")
    assert clock.next_open == pd.Timestamp("2026-11-24 09:30", tz="America/New_York")
    fake.set_clock("2026-11-26 15:00")  # Thanksgiving
    assert not client.get_clock().is_open
    days = client.get_calendar(GetCalendarRequest(start="2026-11-23", end="2026-11-27"))
    assert [str(d.date) for d in days] == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]
    assert days[-1].close.strftime("%H:%M") == "13:00" and days[0].open.strftime("%H:%M") == "09:30"


def test_wrong_credentials_are_401(fake):
    with pytest.raises(APIError) as info:
        TradingClient(KEY, "wrong", url_override=fake.url).get_account()
    assert info.value.status_code == 401 and info.value.code == 40110000
    assert fake.requests[-1].headers["apca-api-secret-key"] != "wrong"


# -- orders ----------------------------------------------------------------------------------------
def test_market_order_fills_at_the_open_of_the_next_bar(fake, client, hub):
    fake.publish(minute(0), [bar("AAPL", 100, 101, 99, 100.5)])  # the minute the client saw
    order = client.submit_order(market(cid="m-1"))
    assert isinstance(order.id, uuid.UUID) and order.status == OrderStatus.NEW
    assert order.client_order_id == "m-1" and order.order_class == OrderClass.SIMPLE
    fake.publish(minute(0), [bar("AAPL", 1, 1, 1, 1)])  # not after the order's minute: no fill
    assert client.get_order_by_id(order.id).status == OrderStatus.NEW
    fake.publish(minute(1), [bar("AAPL", 102, 103, 101, 102.5)])
    done = client.get_order_by_id(order.id)
    assert done.status == OrderStatus.FILLED and done.filled_avg_price == "102"
    assert done.filled_qty == "10" and done.filled_at is not None
    position = client.get_open_position("AAPL")
    assert (position.qty, position.avg_entry_price, position.side) == ("10", "102", "long")
    assert position.current_price == "102.5" and position.market_value == "1025"
    assert client.get_account().cash == str(Decimal(100000) - 1020)
    fill = hub.updates[-1]
    assert hub.events(str(order.id)) == ["new", "fill"]
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("102", "10", "10")
    uuid.UUID(fill["execution_id"])
    assert fake.positions["AAPL"].quantity == 10


def test_limit_stop_and_stop_limit_orders_follow_the_sim_rules(fake, client, hub):
    limit = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=5, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.GTC, limit_price=99))
    gap = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=5, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.DAY, limit_price=50))
    stop = client.submit_order(StopOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.DAY, stop_price=201))
    sl = client.submit_order(StopLimitOrderRequest(
        symbol="QQQ", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
        stop_price=301, limit_price=301.5))
    fake.publish(minute(1), [bar("AAPL", 100, 101, 99.5, 100), bar("MSFT", 49, 49.5, 48, 49),
                             bar("SPY", 200, 202, 199, 201), bar("QQQ", 300, 300.5, 299, 300)])
    got = {name: client.get_order_by_id(o.id) for name, o in
           (("limit", limit), ("gap", gap), ("stop", stop), ("sl", sl))}
    assert got["limit"].status == OrderStatus.NEW  # 99.5 low: not reached
    assert got["gap"].filled_avg_price == "49"  # opened through the limit: the open
    assert got["stop"].filled_avg_price == "201"  # the range reached the stop: the stop
    assert got["sl"].status == OrderStatus.NEW  # the stop not reached
    fake.publish(minute(2), [bar("AAPL", 100, 100, 98, 99), bar("QQQ", 302, 303, 301.8, 302)])
    assert client.get_order_by_id(limit.id).filled_avg_price == "99"
    # the stop gapped to 302 > the 301.5 limit: it rests as a limit from the next bar
    assert client.get_order_by_id(sl.id).status == OrderStatus.NEW
    fake.publish(minute(3), [bar("QQQ", 302, 302, 301, 301.2)])
    assert client.get_order_by_id(sl.id).filled_avg_price == "301.5"


def test_bracket_legs_wait_for_the_entry_then_one_cancels_the_other(fake, client, hub):
    entry = client.submit_order(market(
        qty=4, cid="b-1", order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=110), stop_loss=StopLossRequest(stop_price=95)))
    assert entry.order_class == OrderClass.BRACKET and len(entry.legs) == 2
    legs = {leg.client_order_id: leg for leg in entry.legs}
    assert set(legs) == {"b-1.sl", "b-1.tp"} and {leg.status for leg in entry.legs} == {"held"}
    fake.publish(minute(1), [bar("AAPL", 100, 111, 94, 105)])  # entry fills; legs not yet armed
    nested = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    assert nested.status == OrderStatus.FILLED and nested.filled_avg_price == "100"
    assert {leg.status for leg in nested.legs} == {OrderStatus.NEW}
    fake.publish(minute(2), [bar("AAPL", 105, 112, 104, 111)])  # take profit reached
    tp = client.get_order_by_client_id("b-1.tp")
    sl = client.get_order_by_client_id("b-1.sl")
    assert (tp.status, tp.filled_avg_price, sl.status) == (OrderStatus.FILLED, "110", "canceled")
    assert "AAPL" not in fake.positions
    assert hub.events(str(sl.id)) == ["new", "canceled"]  # armed with the entry's fill
    assert hub.events(str(tp.id)) == ["new", "fill"] and hub.events(str(entry.id)) == ["new", "fill"]
    with pytest.raises(APIError) as info:  # take profit below the stop loss for a long
        client.submit_order(market(order_class=OrderClass.BRACKET,
                                   take_profit=TakeProfitRequest(limit_price=90),
                                   stop_loss=StopLossRequest(stop_price=95)))
    assert info.value.status_code == 422


def test_bracket_stop_loss_wins_a_bar_reaching_both(fake, client):
    entry = client.submit_order(market(
        qty=4, order_class=OrderClass.BRACKET, take_profit=TakeProfitRequest(limit_price=110),
        stop_loss=StopLossRequest(stop_price=95)))
    fake.publish(minute(1), [bar("AAPL", 100, 101, 99, 100)])
    fake.publish(minute(2), [bar("AAPL", 100, 111, 94, 100)])
    legs = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True)).legs
    status = {leg.client_order_id[-2:]: (leg.status, leg.filled_avg_price) for leg in legs}
    assert status == {"sl": (OrderStatus.FILLED, "95"), "tp": (OrderStatus.CANCELED, None)}


def test_lookup_list_cancel_and_replace(fake, client, hub):
    a = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.DAY, limit_price=50,
                                              client_order_id="keep"))
    b = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.DAY, limit_price=50))
    assert client.get_order_by_client_id("keep").id == a.id
    with pytest.raises(APIError) as info:
        client.get_order_by_client_id("nope")
    assert info.value.status_code == 404
    listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in listed] == [b.id, a.id]  # newest first
    assert [o.id for o in client.get_orders(GetOrdersRequest(symbols=["AAPL"], direction="asc"))] \
        == [a.id]
    assert len(client.get_orders(GetOrdersRequest(limit=1))) == 1
    new = client.replace_order_by_id(a.id, ReplaceOrderRequest(qty=3, limit_price=51))
    assert (new.qty, new.limit_price, new.replaces) == ("3", "51", a.id)
    old = client.get_order_by_id(a.id)
    assert old.status == OrderStatus.REPLACED and old.replaced_by == new.id
    assert hub.events(str(a.id))[-1] == "replaced" and hub.events(str(new.id)) == ["new"]
    client.cancel_order_by_id(b.id)
    assert client.get_order_by_id(b.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as info:
        client.cancel_order_by_id(b.id)
    assert info.value.status_code == 422
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, after=DAY))
    canceled = client.cancel_orders()
    assert [c.id for c in canceled] == [new.id] and canceled[0].status == 200
    assert client.get_orders() == []


def test_duplicate_client_order_id_is_422_and_places_nothing(fake, client):
    client.submit_order(market(cid="dup"))
    with pytest.raises(APIError) as info:
        client.submit_order(market(cid="dup", qty=3))
    assert info.value.status_code == 422 and info.value.code == 40010001
    assert info.value.message == "client_order_id must be unique"
    assert len(fake.orders) == 1


def test_invalid_orders_are_refused_loudly(fake):
    import json
    import urllib.error
    import urllib.request

    def post(body):
        request = urllib.request.Request(f"{fake.url}/v2/orders", json.dumps(body).encode(),
                                         {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        return info.value.code, json.loads(info.value.read())

    base = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day"}
    for change, words in [({"type": "trailing_stop"}, "trailing_stop"), ({"qty": -1}, "qty"),
                          ({"type": "limit"}, "limit_price"), ({"time_in_force": "opg"}, "opg"),
                          ({"order_class": "oto"}, "oto"), ({"side": "short"}, "side")]:
        status, body = post({**base, **change})
        assert status == 422 and words in body["message"] and len(str(body["code"])) == 8
    assert fake.orders == []


# -- positions and the broker behind the client's back -------------------------------------------
def test_positions_close_by_qty_percentage_and_all(fake, client, hub):
    client.submit_order(market("AAPL", qty=10))
    client.submit_order(market("MSFT", qty=4, side=OrderSide.SELL))
    fake.publish(minute(1), [bar("AAPL", 100, 101, 99, 100), bar("MSFT", 50, 51, 49, 50)])
    assert [(p.symbol, p.qty, p.side) for p in client.get_all_positions()] == \
        [("AAPL", "10", "long"), ("MSFT", "-4", "short")]
    part = client.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert (part.side, part.qty) == (OrderSide.SELL, "4")
    half = client.close_position("MSFT", ClosePositionRequest(percentage="50"))
    assert (half.side, half.qty) == (OrderSide.BUY, "2")
    fake.publish(minute(2), [bar("AAPL", 101, 101, 101, 101), bar("MSFT", 49, 49, 49, 49)])
    assert {s: p.quantity for s, p in fake.positions.items()} == {"AAPL": 6, "MSFT": -2}
    closing = client.close_all_positions(cancel_orders=True)
    assert sorted(c.symbol for c in closing) == ["AAPL", "MSFT"]
    fake.publish(minute(3), [bar("AAPL", 102, 102, 102, 102), bar("MSFT", 48, 48, 48, 48)])
    assert client.get_all_positions() == [] and fake.positions == {}
    # 10 bought at 100, 4 sold at 101, 6 at 102; 4 shorted at 50, 2 covered at 49, 2 at 48
    assert client.get_account().cash == str(100000 - 1000 + 404 + 612 + 200 - 98 - 96)
    with pytest.raises(APIError) as info:
        client.get_open_position("AAPL")
    assert info.value.status_code == 404


def test_operator_changes_behind_the_clients_back(fake, client, hub):
    fake.set_position("TSLA", 7, "250.5")
    assert [(p.symbol, p.qty, p.avg_entry_price) for p in client.get_all_positions()] == \
        [("TSLA", "7", "250.5")]
    manual = fake.manual_order("AAPL", 3, side="buy", type="limit", limit_price=90)
    assert [str(o.id) for o in client.get_orders()] == [manual["id"]]
    assert hub.events(manual["id"]) == ["new"]  # the stream shows it as any order
    with pytest.raises(ConfigError, match="manual order refused"):
        fake.manual_order("AAPL", 3, type="stop")
    assert [o["id"] for o in fake.orders] == [manual["id"]]


def test_day_orders_expire_at_the_close(fake, client, hub):
    day = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.DAY, limit_price=1))
    gtc = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.GTC, limit_price=1))
    assert [o.id for o in fake.book.expire_day()] == [str(day.id)]
    assert client.get_order_by_id(day.id).status == OrderStatus.EXPIRED
    assert client.get_order_by_id(gtc.id).status == OrderStatus.NEW
    assert hub.events(str(day.id)) == ["new", "expired"]


def test_partial_fills_and_notional(fake, client, hub):
    fake.book.faults.partial_fills(3)
    order = client.submit_order(market(qty=7))
    fake.publish(minute(1), [bar("AAPL", 100, 100, 100, 100)])
    assert client.get_order_by_id(order.id).status == OrderStatus.PARTIALLY_FILLED
    fake.publish(minute(2), [bar("AAPL", 101, 101, 101, 101)])
    fake.publish(minute(3), [bar("AAPL", 102, 102, 102, 102)])
    done = client.get_order_by_id(order.id)
    assert done.status == OrderStatus.FILLED and done.filled_qty == "7"
    assert hub.events(str(order.id)) == ["new", "partial_fill", "partial_fill", "fill"]
    ids = [u["execution_id"] for u in hub.updates if "execution_id" in u]
    assert len(set(ids)) == 3
    fake.book.faults.partial_fills(None)
    spend = client.submit_order(MarketOrderRequest(symbol="MSFT", notional=1000, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.DAY))
    fake.publish(minute(4), [bar("MSFT", 400, 400, 400, 400)])
    assert client.get_order_by_id(spend.id).filled_qty == "2.5"


def test_an_accepted_order_rejected_afterwards(fake, client, hub):
    fake.reject_next(reason="insufficient buying power")
    order = client.submit_order(market(cid="rej"))
    assert order.status == OrderStatus.NEW  # the answer: accepted
    deadline = time.monotonic() + 5
    while client.get_order_by_id(order.id).status != OrderStatus.REJECTED:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert hub.events(str(order.id)) == ["new", "rejected"]
    fake.publish(minute(1), [bar("AAPL", 100, 101, 99, 100)])
    assert fake.positions == {} and client.submit_order(market(cid="ok")).status == "new"


def test_oco_exit_one_cancels_the_other(fake, client, hub):
    client.submit_order(market(qty=10))
    fake.publish(minute(1), [bar("AAPL", 100, 101, 99, 100)])

    def oco(cid, tp, sl):
        return client.submit_order(LimitOrderRequest(
            symbol="AAPL", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO, client_order_id=cid,
            take_profit=TakeProfitRequest(limit_price=tp), stop_loss=StopLossRequest(stop_price=sl)))

    both = oco("oco-1", 110, 95)
    assert (both.order_class, both.limit_price, len(both.legs)) == (OrderClass.OCO, "110", 1)
    assert both.legs[0].status == OrderStatus.NEW and both.legs[0].stop_price == "95"
    fake.publish(minute(2), [bar("AAPL", 100, 111, 94, 100)])  # reaches both: the stop first
    stop_leg = client.get_order_by_client_id("oco-1.sl")
    assert (stop_leg.status, stop_leg.filled_avg_price) == (OrderStatus.FILLED, "95")
    assert client.get_order_by_id(both.id).status == OrderStatus.CANCELED
    take = oco("oco-2", 105, 90)
    fake.publish(minute(3), [bar("AAPL", 101, 106, 100, 104)])
    assert client.get_order_by_id(take.id).filled_avg_price == "105"
    assert client.get_order_by_client_id("oco-2.sl").status == OrderStatus.CANCELED
    assert hub.events(str(take.id)) == ["new", "fill"] and fake.positions == {}
    with pytest.raises(APIError) as info:  # the stop loss above the take profit of a long
        oco("oco-3", 90, 95)
    assert info.value.status_code == 422
