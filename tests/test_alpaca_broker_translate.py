"""AlpacaBroker's parts without a server: Alpaca's price grid, JSON translation (statuses,
bracket and oco labels, fills, positions), the rate limiter's window, paper/live rules."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from workbench.brokers.alpaca.prices import PriceError, order_prices
from workbench.brokers.alpaca.safety import check_account, check_setup
from workbench.brokers.alpaca.translate import (
    Labels,
    fill_from_activity,
    order_request,
    position,
    status_of,
)
from workbench.brokers.alpaca.transport import RateLimiter
from workbench.errors import ConfigError
from workbench.model import OrderIntent, OrderStatus, OrderType, Side

S = OrderStatus


def _order(oid, cid, **kw):
    base = {"id": oid, "client_order_id": cid, "symbol": "AAPL", "side": "buy", "qty": "2",
            "filled_qty": "0", "filled_avg_price": None, "type": "market",
            "order_class": "simple", "time_in_force": "day", "status": "new",
            "created_at": "2026-11-23T15:00:00Z", "updated_at": "2026-11-23T15:00:00Z"}
    return {**base, **kw}


# -- prices -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,side,field,asked,sent", [
    (OrderType.LIMIT, Side.BUY, "limit_price", "10.129", "10.12"),   # buy limit: down
    (OrderType.LIMIT, Side.SELL, "limit_price", "10.121", "10.13"),  # sell limit: up
    (OrderType.STOP, Side.SELL, "stop_price", "9.501", "9.51"),      # sell stop: up
    (OrderType.STOP, Side.BUY, "stop_price", "9.509", "9.50"),       # buy stop: down
    (OrderType.LIMIT, Side.BUY, "limit_price", "0.12345", "0.1234"),  # sub-dollar: 4 places
    (OrderType.LIMIT, Side.BUY, "limit_price", "10.12", "10.12"),    # on the grid: unchanged
])
def test_prices_round_to_the_grid_never_past_the_asked_price(kind, side, field, asked, sent):
    intent = OrderIntent("p", "AAPL", side, D(1), kind, **{field: D(asked)})
    assert order_prices(intent)[field] == D(sent)


def test_bracket_and_oco_levels_that_would_cross_are_refused():
    with pytest.raises(PriceError, match="wrong side"):
        order_prices(OrderIntent("p", "AAPL", Side.BUY, D(1), OrderType.BRACKET,
                                 limit_price=D("10.004"), take_profit=D(11),
                                 stop_loss=D("9.999")))  # both land on 10.00
    with pytest.raises(PriceError):  # a sell oco (exit of a long): stop below take profit
        order_prices(OrderIntent("p", "AAPL", Side.SELL, D(1), OrderType.OCO,
                                 take_profit=D("9.0"), stop_loss=D("9.5")))
    ok = order_prices(OrderIntent("p", "AAPL", Side.BUY, D(1), OrderType.OCO,  # covers a short
                                  take_profit=D("9.0"), stop_loss=D("9.5")))
    assert ok["stop_loss"] == D("9.50") and ok["take_profit"] == D("9.00")


def test_requests_carry_the_intent():
    bracket = OrderIntent("b", "AAPL", Side.BUY, D(3), OrderType.BRACKET, limit_price=D(10),
                          take_profit=D(11), stop_loss=D(9))
    body = order_request(bracket, order_prices(bracket)).to_request_fields()
    assert body["order_class"] == "bracket" and body["type"] == "limit"
    assert body["take_profit"] == {"limit_price": 11.0} and body["stop_loss"] == {"stop_price": 9.0}
    assert body["client_order_id"] == "b" and body["qty"] == 3.0
    oco = OrderIntent("o", "AAPL", Side.SELL, D(3), OrderType.OCO, take_profit=D(11),
                      stop_loss=D(9))
    body = order_request(oco, order_prices(oco)).to_request_fields()
    assert body["order_class"] == "oco" and body["type"] == "limit"
    one = OrderIntent("o", "AAPL", Side.SELL, D(3), OrderType.OCO, stop_loss=D(9))
    assert order_request(one, order_prices(one)).to_request_fields()["type"] == "stop"
    notional = OrderIntent("n", "AAPL", Side.BUY, D(3), notional=D(250))
    body = order_request(notional, order_prices(notional)).to_request_fields()
    assert body["notional"] == 250.0 and "qty" not in body


# -- orders ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,filled,ours", [
    ("new", "0", S.ACCEPTED), ("held", "0", S.ACCEPTED), ("pending_new", "0", S.ACCEPTED),
    ("partially_filled", "1", S.PARTIALLY_FILLED), ("done_for_day", "1", S.PARTIALLY_FILLED),
    ("filled", "2", S.FILLED), ("canceled", "0", S.CANCELED), ("expired", "0", S.EXPIRED),
    ("rejected", "0", S.REJECTED), ("replaced", "0", S.CANCELED),
])
def test_statuses(name, filled, ours):
    status, reason = status_of({"status": name, "filled_qty": filled})
    assert status is ours
    assert (reason is None) == (name == ours.value)


def test_an_unknown_status_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown Alpaca order status"):
        status_of({"status": "teleported"})


def test_bracket_legs_are_named_ours_and_learned_by_id():
    labels = Labels()
    raw = _order("p1", "b1", order_class="bracket", type="limit", limit_price="10",
                 legs=[_order("l1", "alpaca-random-1", side="sell", type="stop",
                              stop_price="9", order_class="bracket", status="held"),
                       _order("l2", "alpaca-random-2", side="sell", type="limit",
                              limit_price="11", order_class="bracket", status="held")])
    tree = labels.learn(raw)
    assert tree.order_type is OrderType.BRACKET and tree.limit_price == D(10)
    assert tree.stop_loss == D(9) and tree.take_profit == D(11)
    assert [(o.client_order_id, o.parent_id, o.leg, o.order_type) for o in tree.legs] == [
        ("b1.sl", "b1", "stop_loss", OrderType.STOP), ("b1.tp", "b1", "take_profit", OrderType.LIMIT)]
    # a later update of a leg (flat, Alpaca's own client id) is named by its order id
    fill = labels.order(_order("l2", "alpaca-random-2", side="sell", type="limit",
                               limit_price="11", order_class="bracket", status="filled",
                               filled_qty="2", filled_avg_price="11.02"))
    assert fill.client_order_id == "b1.tp" and fill.status is S.FILLED
    assert fill.average_price == D("11.02")
    assert labels.broker_id("b1.sl") == "l1"


def test_an_alpaca_oco_is_relabeled_as_the_sim_brokers_oco():
    labels = Labels()
    raw = _order("p1", "x", order_class="oco", side="sell", type="limit", limit_price="11",
                 legs=[_order("l1", "alpaca-random", side="sell", type="stop",
                              stop_price="9", order_class="oco")])
    tree = labels.learn(raw)
    assert tree.client_order_id == "x" and tree.order_type is OrderType.OCO
    assert tree.broker_order_id == "l1"  # Alpaca's stop leg is our oco order
    assert tree.stop_loss == D(9) and tree.take_profit == D(11)
    assert [(leg.client_order_id, leg.broker_order_id, leg.leg) for leg in tree.legs] == [
        ("x.tp", "p1", "take_profit")]


def test_types_and_time_in_force_we_never_send_say_so():
    o = Labels().learn(_order("m", "manual", type="stop_limit", stop_price="9",
                              limit_price="8.9", time_in_force="ioc"))
    assert o.order_type is OrderType.STOP and o.limit_price == D("8.9")
    assert "alpaca type stop_limit" in o.reason and "alpaca time_in_force ioc" in o.reason


def test_fills_and_positions():
    f = fill_from_activity({"id": "20261123150100000::abc-123", "activity_type": "FILL",
                            "transaction_time": "2026-11-23T15:01:00Z", "price": "10.5",
                            "qty": "3", "side": "sell_short", "symbol": "AAPL",
                            "order_id": "x"}, "c1")
    assert f.execution_id == "abc-123" and f.side is Side.SELL and f.fee == 0
    assert f.quantity == D(3) and f.price == D("10.5")
    p = position({"symbol": "AAPL", "qty": "5", "side": "short", "avg_entry_price": "10"})
    assert p.quantity == D(-5)
    assert position({"symbol": "AAPL", "qty": "-5", "side": "short",
                     "avg_entry_price": "10"}).quantity == D(-5)


# -- limiter --------------------------------------------------------------------------------
def test_the_limiter_holds_any_minute_under_200_and_never_drops():
    t = [0.0]
    limiter = RateLimiter(clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))
    stamps = []
    for _ in range(1000):
        limiter.acquire()
        stamps.append(t[0])
    j, most = 0, 0
    for i in range(len(stamps)):  # the most requests in any 60 s window
        while stamps[i] - stamps[j] >= 60:
            j += 1
        most = max(most, i - j + 1)
    assert 180 <= most < 200
    assert limiter.sent == 1000 and limiter.throttled > 0


def test_one_limiter_per_account_key():
    from workbench.brokers.alpaca.transport import limiter_for

    assert limiter_for("PKone-account") is limiter_for("PKone-account")
    assert limiter_for("PKone-account") is not limiter_for("PKanother")


def test_the_limiter_refuses_settings_over_alpacas_limit():
    with pytest.raises(ValueError):
        RateLimiter(per_minute=200)
    with pytest.raises(ValueError):
        RateLimiter(per_minute=195, burst=10)


# -- paper / live -----------------------------------------------------------------------------
def test_setup_rules():
    check_setup("paper", True, "PKabc", "https://paper-api.alpaca.markets")
    check_setup("live", False, "AKabc", "https://api.alpaca.markets")
    check_setup("live", False, "other", "http://127.0.0.1:8000")  # the account decides
    with pytest.raises(ConfigError, match="not the paper API"):
        check_setup("paper", True, "PKabc", "https://api.alpaca.markets")
    with pytest.raises(ConfigError, match="not the live API"):
        check_setup("live", False, "AKabc", "https://paper-api.alpaca.markets")
    with pytest.raises(ConfigError, match="'paper' or 'live'"):
        check_setup("Live", False, "AKabc", "https://api.alpaca.markets")
    check_account("paper", "PA1234")
    with pytest.raises(ConfigError, match="live account"):
        check_account("paper", "123456")


# -- errors -----------------------------------------------------------------------------------
def _api_error(status: int, code: int, message: str):
    import json

    import requests
    from alpaca.common.exceptions import APIError

    response = requests.Response()
    response.status_code = status
    return APIError(json.dumps({"code": code, "message": message}),
                    requests.HTTPError(response=response))


def test_only_the_duplicate_message_means_exists():
    from workbench.brokers.alpaca.errors import translate
    from workbench.brokers.base import DuplicateClientOrderId, OrderRejected

    dup = translate(_api_error(422, 40010001, "client_order_id must be unique"), "s", True, 1)
    assert isinstance(dup, DuplicateClientOrderId)
    other = translate(_api_error(422, 40010001, "qty must be > 0"), "s", True, 1)
    assert isinstance(other, OrderRejected) and "qty must be > 0" in other.reason


def test_write_and_read_failures_differ():
    import requests

    from workbench.brokers.alpaca.errors import translate
    from workbench.brokers.alpaca.transport import RefusedStatus
    from workbench.brokers.base import (
        OrderNotFound,
        OutcomeUnknown,
        RateLimited,
        TemporaryBrokerError,
    )

    gateway = RefusedStatus(504, "", None, "POST", "/v2/orders")
    assert isinstance(translate(gateway, "s", True, 1), OutcomeUnknown)
    read = translate(gateway, "s", False, 1)
    assert isinstance(read, TemporaryBrokerError) and not isinstance(read, OutcomeUnknown)
    timeout = requests.ReadTimeout("read timed out")
    assert isinstance(translate(timeout, "s", True, 1), OutcomeUnknown)
    limited = translate(RefusedStatus(429, "{}", 3.0, "GET", "/v2/account"), "s", False, 1)
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    assert isinstance(translate(_api_error(404, 40410000, "no"), "s", False, 1), OrderNotFound)
    assert isinstance(translate(_api_error(403, 40310000, "buying power"), "s", False, 1),
                      TemporaryBrokerError)
    bug = RuntimeError("adapter bug")
    assert translate(bug, "s", True, 1) is bug
