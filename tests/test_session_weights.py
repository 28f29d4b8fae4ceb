"""Issue 10: target weights in a session. ``Signals(weights=...)`` are traded as the backtest
trades them: each bar's weight becomes one market order of
:func:`workbench.model.weights.rebalance_quantity` shares (the one function the backtest's
core compiles), from the symbol's account cash and position and the last close, filled at
the next open. Both sides fix the shares at the decision, so the replayed day on the
simulated broker makes ``wb.backtest``'s fills: same bars, sides, shares, prices and fees,
long and short, fractional and whole shares. Built on tests/test_session_parity.py.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from tests.test_session_longshort import home  # noqa: F401 (fixture)
from tests.test_session_parity import CASH, END, FEES, LOOSE, SIZE, TradingFrom, _day_start
from workbench.brokers.sim import SimBroker
from workbench.engine import check_parity, load_sessions
from workbench.errors import ConfigError
from workbench.model.costs import CostModel
from workbench.session.runner import run_session


@wb.strategy(warmup=lambda p: p["period"] + 1)
def rsi_weights(bars, period: int = 30):
    """A weight per RSI band (long when oversold, short when overbought), said on change."""
    rsi = wb.ta.RSI(bars.close, period)
    r = rsi.to_numpy()
    level = np.where(np.isnan(r), np.nan,
                     np.select([r < 35, r < 50, r < 65], [1.0, 0.4, -0.3], -0.8))
    before = np.vstack([np.full((1, r.shape[1]), np.nan), level[:-1]])
    said = (level != before) & ~np.isnan(level) & ~np.isnan(bars.close.to_numpy())
    return wb.Signals(weights=pd.DataFrame(np.where(said, level, np.nan), index=rsi.index,
                                           columns=rsi.columns))


def _session_fills(broker_path) -> list[tuple]:
    broker = SimBroker(broker_path)
    fills = broker.fills()
    broker.close()
    return sorted((f.symbol, f.time, f.side.sign, float(f.quantity), float(f.price),
                   float(f.fee)) for f in fills)


def _backtest_fills(symbols, **options) -> list[tuple]:
    bars = load_sessions(2, symbols, "1Min", end=END)
    result = wb.backtest(TradingFrom(rsi_weights, _day_start()), bars, cash=CASH, size=SIZE,
                         **FEES, **options)
    f = result.simulation.fills
    return sorted((symbols[c], bars.index[i], int(s), q, p, fee)
                  for c, i, s, q, p, fee in zip(f["col"], f["idx"], f["side"], f["size"],
                                                f["price"], f["fees"], strict=True))


def _assert_same(session, backtest) -> None:
    assert len(session) == len(backtest)
    for ours, theirs in zip(session, backtest, strict=True):
        assert ours[:3] == theirs[:3], (ours, theirs)
        assert ours[3:] == pytest.approx(theirs[3:], rel=1e-9, abs=1e-9), (ours, theirs)


@pytest.mark.parametrize("shares", ["fractional", "whole"])
def test_a_weights_session_makes_the_backtests_fills(home, shares):  # noqa: F811
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)[:2]
    result = run_session(rsi_weights, {}, replay_date=END, symbols=symbols, cash=CASH,
                         size=SIZE, costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol",
                         direction="longshort", shares=shares)
    assert result.outcome == "succeeded" and result.state == "active", result.message
    session = _session_fills(result.broker_path)
    backtest = _backtest_fills(symbols, direction="longshort", shares=shares)
    # a real test: buys and sells of every symbol, partial rebalances and shorts
    assert len(backtest) >= 20 and {s for s, *_ in backtest} == set(symbols)
    assert {1, -1} == {side for _, _, side, *_ in backtest}
    if shares == "whole":
        assert all(q == int(q) for *_, q, _, _ in backtest)
    _assert_same(session, backtest)
    held: dict[str, float] = {}
    shorted = False
    for symbol, _, side, qty, *_ in backtest:  # time order within a symbol
        held[symbol] = held.get(symbol, 0.0) + side * qty
        shorted |= held[symbol] < -1e-9
    assert shorted
    positions = {s: float(Decimal(q)) for s, q in result.positions.items()}
    assert positions == pytest.approx({s: q for s, q in held.items() if abs(q) > 1e-9},
                                      rel=1e-9, abs=1e-9)


def test_weights_parity_and_refusals(home):  # noqa: F811
    bars = load_sessions(2, None, "1Min", end=END)
    report = check_parity(rsi_weights, bars.select(bars.symbols[:2]), {})
    assert report.ok and report.compared > 0, report
    symbols = list(bars.symbols)[:2]
    with pytest.raises(ConfigError, match="longshort"):  # short weights, long only
        run_session(rsi_weights, {}, replay_date=END, symbols=symbols, cash=CASH, risk=LOOSE,
                    accounts="per_symbol")
    with pytest.raises(ConfigError, match="sl_stop"):
        run_session(rsi_weights, {}, replay_date=END, symbols=symbols, cash=CASH, risk=LOOSE,
                    accounts="per_symbol", direction="longshort", sl_stop=0.01)


def test_a_weight_is_one_order_of_the_rule_in_either_account(tmp_path):
    """The trader's weight order: ``rebalance_quantity`` of the symbol's own account (per
    symbol) or of the one account's whole value (shared), at the last close; none while an
    order of the symbol is open or when no share changes."""
    from workbench.clock import SimClock
    from workbench.model import Side, Signal
    from workbench.model.weights import rebalance_quantity
    from workbench.orders.manager import OrderManager
    from workbench.session.trader import Sizing, Trader
    from workbench.testing.sinks import ListSink

    t0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
    clock = SimClock(t0)
    broker = SimBroker(tmp_path / "b.sqlite", cash=200_000, clock=clock)
    manager = OrderManager(broker, ListSink(), clock)
    manager.start()
    prices = {"X": Decimal(100), "Y": Decimal(50)}
    own = Trader("run", "s", manager, Sizing(accounts="per_symbol", cash=Decimal(100_000),
                                             direction="longshort"))
    [buy] = own.from_signals((Signal("s", "X", t0, weight=0.5),), prices)
    assert (buy.side, buy.quantity, buy.reason) == (Side.BUY, Decimal(500), "weight")
    manager.place(buy)
    assert own.from_signals((Signal("s", "X", t0, weight=0.2),), prices) == []  # one open
    broker.on_bars(t0 + pd.Timedelta(minutes=1),
                   {"X": {"open": 101.0, "high": 102, "low": 100, "close": 101}})
    manager.process_updates()
    held = float(manager.positions()["X"].quantity)
    [sell] = own.from_signals((Signal("s", "X", t0, weight=-0.25),), {"X": Decimal(101)})
    expected = rebalance_quantity(-0.25, float(own.account_cash("X")), held, 101.0, False)
    assert sell.side is Side.SELL and float(sell.quantity) == pytest.approx(-expected)
    shared = Trader("run2", "s", manager, Sizing(direction="longshort"))
    [y] = shared.from_signals((Signal("s", "Y", t0, weight=0.1),), {**prices, "X": Decimal(101)})
    equity = float(manager.account().equity({"X": Decimal(101)}))
    assert float(y.quantity) == pytest.approx(0.1 * equity / 50.0, rel=1e-12)
    assert shared.from_signals((Signal("s", "X", t0, weight=held * 101.0 / equity),),
                               {"X": Decimal(101)}) == []  # already at the weight
    broker.close()
