"""The simulated broker: the backtest's fills, brackets, faults, and state that survives a kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal as D

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.backtesting import SimOptions, simulate
from workbench.brokers import (
    Broker,
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    SimBroker,
    SimFaults,
)
from workbench.model import OrderIntent, OrderStatus, OrderType, Side, TimeInForce
from workbench.model.costs import CostModel

S = OrderStatus
T0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
COSTS = CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def t(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(i, "min")


def bar(o, h=None, lo=None, c=None) -> dict:
    return {"open": o, "high": h if h is not None else o, "low": lo if lo is not None else o,
            "close": c if c is not None else o}


def buy(cid="c1", qty=10, i=0, **kw) -> OrderIntent:
    return OrderIntent(cid, "AAPL", kw.pop("side", Side.BUY), D(qty), bar_time=t(i), **kw)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "broker.sqlite"


@pytest.fixture
def broker(path):
    b = SimBroker(path, costs=COSTS, cash=100_000)
    yield b
    b.close()


def test_it_speaks_the_broker_protocol(broker):
    assert isinstance(broker, Broker)


# -- fills: the backtest's rules ----------------------------------------------------------


def test_a_market_order_fills_at_the_next_bars_open_exactly_as_the_cost_model(broker):
    broker.submit(buy(qty=37, i=0))
    assert broker.on_bars(t(0), {"AAPL": bar(99.0)}) == []  # its own bar: never
    (fill,) = broker.on_bars(t(1), {"AAPL": bar(101.37, 102, 100, 101)})
    price = COSTS.fill_price("buy", 101.37)
    assert float(fill.price) == price and fill.price == D(repr(price))
    assert float(fill.fee) == COSTS.fee(37, price)
    assert fill.time == t(1) and fill.quantity == D(37)
    account = broker.account()
    assert account.cash == D(100_000) - D(37) * fill.price - fill.fee
    assert account.positions["AAPL"].quantity == D(37)
    assert broker.get_order("c1").status is S.FILLED


def test_a_bar_without_an_open_delays_the_fill(broker):
    broker.submit(buy(i=0))
    assert broker.on_bars(t(1), {"AAPL": bar(math.nan)}) == []
    assert broker.on_bars(t(2), {"MSFT": bar(50.0)}) == []
    (fill,) = broker.on_bars(t(3), {"AAPL": bar(100.0)})
    assert fill.time == t(3)


def test_an_order_accepted_after_a_bar_waits_for_the_next_one(broker):
    broker.on_bars(t(5), {"AAPL": bar(100.0)})
    broker.submit(OrderIntent("late", "AAPL", Side.BUY, D(1)))  # no bar time: after t(5)
    assert broker.on_bars(t(5), {"AAPL": bar(100.0)}) == []
    assert len(broker.on_bars(t(6), {"AAPL": bar(100.0)})) == 1


@pytest.mark.parametrize("side, kind, level, ohlc, expected", [
    (Side.SELL, OrderType.STOP, 95, (97, 98, 94, 96), 95),     # range reaches: the level
    (Side.SELL, OrderType.STOP, 95, (93, 96, 92, 95), 93),     # gap through: the open
    (Side.SELL, OrderType.STOP, 95, (97, 98, 96, 97), None),   # not reached
    (Side.BUY, OrderType.STOP, 105, (101, 106, 100, 104), 105),
    (Side.BUY, OrderType.STOP, 105, (107, 108, 106, 107), 107),
    (Side.BUY, OrderType.LIMIT, 95, (97, 98, 94, 96), 95),
    (Side.BUY, OrderType.LIMIT, 95, (93, 96, 92, 95), 93),
    (Side.SELL, OrderType.LIMIT, 105, (101, 106, 100, 104), 105),
    (Side.SELL, OrderType.LIMIT, 105, (107, 108, 106, 107), 107),
    (Side.SELL, OrderType.LIMIT, 105, (101, 104, 100, 102), None),
])
def test_stops_and_limits_trigger_on_the_range_and_gap_fill_at_the_open(
        broker, side, kind, level, ohlc, expected):
    price = {"stop_price" if kind is OrderType.STOP else "limit_price": D(level)}
    broker.submit(buy(side=side, order_type=kind, **price))
    fills = broker.on_bars(t(1), {"AAPL": bar(*map(float, ohlc))})
    if expected is None:
        assert fills == [] and broker.get_order("c1").status is S.ACCEPTED
    else:
        assert float(fills[0].price) == COSTS.fill_price(side.value, float(expected))


def test_market_orders_fill_before_stops_on_a_bar(broker):
    broker.submit(buy("stop", side=Side.SELL, order_type=OrderType.STOP, stop_price=D(95)))
    broker.submit(buy("mkt", i=0))
    fills = broker.on_bars(t(1), {"AAPL": bar(96.0, 97, 94, 95)})
    assert [f.client_order_id for f in fills] == ["mkt", "stop"]


# -- brackets -----------------------------------------------------------------------------


def bracket(cid="b1", sl=95, tp=105, side=Side.BUY, **kw) -> OrderIntent:
    return buy(cid, side=side, order_type=OrderType.BRACKET, stop_loss=D(sl), take_profit=D(tp),
               **kw)


def test_bracket_legs_arm_after_the_entry_bar_and_cancel_each_other(broker):
    entry = broker.submit(bracket())
    assert [leg.client_order_id for leg in entry.legs] == ["b1.sl", "b1.tp"]
    assert len({entry.broker_order_id, *(leg.broker_order_id for leg in entry.legs)}) == 3
    assert [leg.order_type for leg in entry.legs] == [OrderType.STOP, OrderType.LIMIT]
    assert all(leg.side is Side.SELL and leg.parent_id == "b1" for leg in entry.legs)
    # the entry fills at the open; the legs are not checked on the entry's bar
    assert [f.client_order_id for f in broker.on_bars(t(1), {"AAPL": bar(100.0, 110, 90)})] == ["b1"]
    (fill,) = broker.on_bars(t(2), {"AAPL": bar(100.0, 106, 99)})
    assert fill.client_order_id == "b1.tp"
    assert float(fill.price) == COSTS.fill_price("sell", 105.0)
    assert broker.get_order("b1.sl").status is S.CANCELED
    assert broker.open_orders() == [] and broker.positions() == {}


def test_a_bar_reaching_both_legs_fills_the_stop_loss(broker):
    broker.submit(bracket())
    broker.on_bars(t(1), {"AAPL": bar(100.0)})
    (fill,) = broker.on_bars(t(2), {"AAPL": bar(100.0, 106, 94)})
    assert fill.client_order_id == "b1.sl"
    assert broker.get_order("b1.tp").status is S.CANCELED


def test_canceling_an_unfilled_bracket_cancels_its_legs(broker):
    broker.submit(bracket())
    broker.cancel("b1")
    assert {o.client_order_id: o.status for o in [broker.get_order("b1"), *broker.get_order("b1").legs]} \
        == {"b1": S.CANCELED, "b1.sl": S.CANCELED, "b1.tp": S.CANCELED}
    assert broker.on_bars(t(1), {"AAPL": bar(100.0)}) == []


def test_a_bracket_with_levels_on_the_wrong_side_is_rejected(broker):
    with pytest.raises(OrderRejected):
        broker.submit(bracket(sl=105, tp=95))
    assert broker.get_order("b1") is None
    broker.submit(bracket("short", sl=105, tp=95, side=Side.SELL))  # right for a short


def _hold(broker, qty=10) -> None:
    broker.submit(buy("e1", qty))
    broker.on_bars(t(1), {"AAPL": bar(100.0)})


def oco(cid="p1", qty=10, i=1, sl=95, tp=105, **kw) -> OrderIntent:
    return OrderIntent(cid, "AAPL", Side.SELL, D(qty), OrderType.OCO, bar_time=t(i),
                       stop_loss=None if sl is None else D(sl),
                       take_profit=None if tp is None else D(tp), **kw)


def test_an_oco_protection_waits_a_bar_and_one_side_cancels_the_other(broker):
    _hold(broker)
    placed = broker.submit(oco())
    assert [leg.client_order_id for leg in placed.legs] == ["p1.tp"]
    assert placed.legs[0].order_type is OrderType.LIMIT and placed.legs[0].parent_id == "p1"
    # placed on bar 1 (its entry's fill bar): not checked on it, as the backtest
    assert broker.on_bars(t(1), {"AAPL": bar(100.0, 110, 90)}) == []
    (fill,) = broker.on_bars(t(2), {"AAPL": bar(100.0, 106, 99)})
    assert fill.client_order_id == "p1.tp" and float(fill.price) == COSTS.fill_price("sell", 105.0)
    assert broker.get_order("p1").status is S.CANCELED
    assert broker.open_orders() == [] and broker.positions() == {}


def test_an_oco_stop_fills_first_at_the_level_or_at_a_gap_open(path):
    for o, h, lo, ref in ((100.0, 106, 94, 95.0), (93.0, 107, 92, 93.0)):
        broker = SimBroker(path.with_name(f"{o}.sqlite"), costs=COSTS)
        _hold(broker)
        broker.submit(oco())
        (fill,) = broker.on_bars(t(2), {"AAPL": bar(o, h, lo)})
        assert fill.client_order_id == "p1" and float(fill.price) == COSTS.fill_price("sell", ref)
        assert broker.get_order("p1.tp").status is S.CANCELED
        broker.close()


def test_an_oco_with_one_level_is_a_plain_stop_or_limit_and_cancels_with_its_leg(broker):
    _hold(broker, 20)
    assert broker.submit(oco("s", 10, tp=None)).legs == ()
    assert broker.submit(oco("l", 10, sl=None)).legs == ()
    fills = broker.on_bars(t(2), {"AAPL": bar(100.0, 105, 95)})
    assert [(f.client_order_id, float(f.price)) for f in fills] == [
        ("s", COSTS.fill_price("sell", 95.0)), ("l", COSTS.fill_price("sell", 105.0))]
    broker.submit(oco("p2", i=2))
    broker.cancel("p2")
    assert broker.get_order("p2.tp").status is S.CANCELED
    assert broker.get_order("p2").order_type is OrderType.OCO
    with pytest.raises(OrderRejected):
        broker.submit(oco("bad", sl=105, tp=95))  # a long's stop loss lies below its profit
    with pytest.raises(ValueError, match="oco"):
        oco("none", sl=None, tp=None)


# -- requests, faults, the stream ---------------------------------------------------------


def test_a_duplicate_client_order_id_is_refused_and_nothing_is_added(broker):
    broker.submit(buy())
    with pytest.raises(DuplicateClientOrderId):
        broker.submit(buy(qty=99))
    assert len(broker.open_orders()) == 1 and broker.get_order("c1").quantity == D(10)


def test_cancel_unknown_or_ended_orders(broker):
    with pytest.raises(OrderNotFound):
        broker.cancel("nope")
    broker.submit(buy())
    broker.on_bars(t(1), {"AAPL": bar(100.0)})
    with pytest.raises(OrderRejected):
        broker.cancel("c1")


def test_faults_lose_the_reply_drop_the_request_reject_and_rate_limit(broker):
    broker.faults.lose_reply().drop_request().reject("no buying power").rate_limit()
    with pytest.raises(OutcomeUnknown):
        broker.submit(buy("lost-reply"))
    assert broker.get_order("lost-reply").status is S.ACCEPTED  # it arrived
    with pytest.raises(OutcomeUnknown):
        broker.submit(buy("lost-request"))
    assert broker.get_order("lost-request") is None  # it did not
    with pytest.raises(OrderRejected, match="no buying power"):
        broker.submit(buy("refused"))
    with pytest.raises(RateLimited):
        broker.submit(buy("throttled"))
    assert broker.get_order("refused") is None and broker.get_order("throttled") is None
    broker.submit(buy("fine"))  # faults are used up


def test_a_delay_past_the_timeout_is_an_unknown_outcome_after_the_timeout(path):
    slept = []
    broker = SimBroker(path, timeout=10.0, sleep=slept.append,
                       faults=SimFaults().delay(0.5).delay(60))
    broker.submit(buy("slow"))
    with pytest.raises(OutcomeUnknown, match="no answer in 10.0 s"):
        broker.submit(buy("silent"))
    assert slept == [0.5, 10.0]
    assert broker.get_order("silent") is not None


def test_partial_fills_and_the_update_stream_with_unique_execution_ids(path):
    broker = SimBroker(path, costs=COSTS, faults=SimFaults.parse("partial=4"))
    broker.submit(buy(qty=10))
    for i in (1, 2, 3):
        broker.on_bars(t(i), {"AAPL": bar(100.0 + i)})
    updates = list(broker.updates())
    assert [u.event for u in updates] == ["accepted", "partial_fill", "partial_fill", "fill"]
    assert [u.fill.quantity for u in updates[1:]] == [D(4), D(4), D(2)]
    assert len({u.fill.execution_id for u in updates[1:]}) == 3
    assert updates[-1].order.status is S.FILLED and updates[-1].order.filled_quantity == D(10)
    assert list(broker.updates()) == []  # each update is delivered once per connection


def test_day_orders_expire(broker):
    broker.submit(buy("day"))
    broker.submit(buy("gtc", time_in_force=TimeInForce.GTC))
    assert broker.expire() == ["day"]
    assert broker.get_order("day").status is S.EXPIRED
    assert [o.client_order_id for o in broker.open_orders()] == ["gtc"]


# -- persistence --------------------------------------------------------------------------


def test_a_new_broker_object_on_the_file_knows_everything(path):
    first = SimBroker(path, costs=COSTS, cash=100_000)
    first.submit(buy("a"))
    first.submit(bracket("b"))
    first.on_bars(t(1), {"AAPL": bar(100.0)})
    first.close()
    second = SimBroker(path, costs=COSTS, cash=1)  # the file's cash wins
    assert second.get_order("a").status is S.FILLED
    assert {o.client_order_id for o in second.open_orders()} == {"b.sl", "b.tp"}
    assert second.positions()["AAPL"].quantity == D(20)
    assert second.account().cash == D(100_000) - sum(f.quantity * f.price + f.fee
                                                      for f in second.fills())
    assert list(second.updates()) == []  # a new connection: new updates only
    with pytest.raises(DuplicateClientOrderId):
        second.submit(buy("a"))


def test_two_broker_objects_on_one_file_are_one_broker(path, broker):
    other = SimBroker(path)
    other.submit(buy("manual", qty=3))
    assert [u.order.client_order_id for u in broker.updates()] == ["manual"]
    broker.on_bars(t(1), {"AAPL": bar(100.0)})
    assert other.positions()["AAPL"].quantity == D(3)
    other.close()


def test_the_broker_state_survives_sigkill_of_the_process(path):
    script = textwrap.dedent(f"""
        import os, signal
        from decimal import Decimal as D
        import pandas as pd
        from workbench.brokers import SimBroker
        from workbench.model import OrderIntent, Side
        b = SimBroker({str(path)!r})
        t = pd.Timestamp("2025-03-03 14:30", tz="UTC")
        b.submit(OrderIntent("filled", "AAPL", Side.BUY, D(5), bar_time=t))
        b.on_bars(t + pd.Timedelta("1min"), {{"AAPL": {{"open": 10, "high": 10, "low": 10}}}})
        b.submit(OrderIntent("open", "AAPL", Side.SELL, D(2), bar_time=t))
        print("accepted", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True,
                          text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == -signal.SIGKILL and "accepted" in proc.stdout, proc.stderr
    broker = SimBroker(path)
    assert broker.get_order("filled").status is S.FILLED
    assert broker.get_order("open").status is S.ACCEPTED
    assert broker.positions()["AAPL"].quantity == D(5)
    broker.close()


# -- the same trades as the backtest ------------------------------------------------------


def replay(tmp_path, o, h, lo, c, entries, exits, sizes, sl=None, tp=None, oco=False):
    """Drive the sim broker bar by bar as a live engine would: fills first, then the
    strategy's orders; a stop loss (and take profit, as a bracket) protects each entry, or
    with ``oco`` an oco order placed at the entry's fill (what a session does)."""
    broker = SimBroker(tmp_path / f"replay{np.random.default_rng().integers(1 << 60)}.sqlite",
                       costs=COSTS)
    out, position, pending = [], D(0), False
    next_open = {i: next((j for j in range(i + 1, len(o)) if o[j] > 0), None) for i in range(len(o))}
    for i, ts in enumerate(pd.date_range(T0, periods=len(o), freq="D")):
        if not c[i] > 0:
            continue  # the symbol did not trade: no bar, no signal
        for f in broker.on_bars(ts, {"X": bar(o[i], h[i], lo[i], c[i])}):
            out.append((i, f.side.sign, float(f.quantity), float(f.price), float(f.fee)))
            position += f.side.sign * f.quantity
            pending = False
            if f.client_order_id.startswith("entry") and sl is not None and oco:
                px = float(f.price)  # the backtest's levels, from the fill price
                broker.submit(OrderIntent(f"stop{i}", "X", Side.SELL, f.quantity, OrderType.OCO,
                                          stop_loss=D(repr(px * (1 - sl))),
                                          take_profit=D(repr(px * (1 + tp))), bar_time=ts))
            elif f.client_order_id.startswith("entry") and sl is not None and tp is None:
                level = D(repr(float(f.price) * (1 - sl)))  # the backtest's stop level
                broker.submit(OrderIntent(f"stop{i}", "X", Side.SELL, f.quantity,
                                          OrderType.STOP, stop_price=level, bar_time=ts))
        if pending:
            continue
        if position == 0 and entries[i] and next_open[i] is not None:
            qty = D(repr(float(sizes[next_open[i]])))
            px = COSTS.fill_price("buy", o[next_open[i]])  # a bracket needs levels up front
            kind = {} if tp is None or oco else {
                "order_type": OrderType.BRACKET, "stop_loss": D(repr(float(px * (1 - sl)))),
                "take_profit": D(repr(float(px * (1 + tp))))}
            broker.submit(OrderIntent(f"entry{i}", "X", Side.BUY, qty, bar_time=ts, **kind))
            pending = True
        elif position > 0 and exits[i]:
            for order in broker.open_orders():
                if broker.get_order(order.client_order_id).is_open:  # legs go with an oco
                    broker.cancel(order.client_order_id)
            broker.submit(OrderIntent(f"exit{i}", "X", Side.SELL, position, bar_time=ts))
            pending = True
    broker.close()
    return out


def backtest_fills(o, h, lo, c, entries, exits, sl=None, tp=None):
    sim = simulate(o, h, lo, c, entries, exits, costs=COSTS,
                   options=SimOptions(sl_stop=sl, tp_stop=tp))
    return [(int(f["idx"]), int(f["side"]), float(f["size"]), float(f["price"]), float(f["fees"]))
            for f in sim.fills]


def market(seed: int, n: int):
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    o = np.r_[close[:1], close[:-1]] * np.exp(rng.normal(0, 0.015, n))
    h = np.maximum(o, close) * np.exp(np.abs(rng.normal(0, 0.015, n)))
    lo = np.minimum(o, close) * np.exp(-np.abs(rng.normal(0, 0.015, n)))
    missing = rng.random(n) < 0.05
    o, h, lo, close = (np.where(missing, np.nan, a) for a in (o, h, lo, close))
    entries = (rng.random(n) < 0.15) & ~missing  # a strategy signals on bars it has
    exits = (rng.random(n) < 0.15) & ~missing & ~entries
    return o, h, lo, close, entries, exits


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.sampled_from([(None, None, False), (0.03, None, False),
                                                   (0.03, 0.04, False), (0.03, 0.04, True)]))
def test_replaying_through_the_sim_broker_gives_the_backtests_fills(tmp_path, seed, stops):
    sl, tp, oco = stops
    o, h, lo, c, entries, exits = market(seed, 60)
    expected = backtest_fills(o, h, lo, c, entries, exits, sl, tp)
    sizes = {i: size for i, side, size, _, _ in expected if side > 0}
    got = replay(tmp_path, o, h, lo, c, entries, exits, sizes, sl, tp, oco)
    assert got == expected  # same bars, sides, sizes, prices and fees, to the last bit
