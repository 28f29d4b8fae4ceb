"""Issue 10: target weights in ``wb.backtest`` (``Signals(weights=...)``): each symbol's account
rebalanced at the next open to ``weight`` x its value at the decision's close, sized by
:func:`workbench.model.weights.rebalance_quantity` (the session's function); a hand-worked
case, an independent loop on random weights with costs, shorts and whole shares, and the
refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

import workbench as wb
from workbench.backtesting.simulation import SimOptions, simulate
from workbench.data.synth import synthesize
from workbench.errors import ConfigError, StrategyError
from workbench.model.costs import CostModel
from workbench.model.weights import rebalance_quantity


def test_the_rule_by_hand():
    assert rebalance_quantity(0.5, 60_000.0, 100.0, 400.0, False) == 25.0
    assert rebalance_quantity(-0.5, 1_000.0, 0.0, 10.0, False) == -50.0
    assert rebalance_quantity(0.3, 1_000.0, 0.0, 7.0, True) == 42.0  # 42.86 truncated
    assert rebalance_quantity(-0.3, 1_000.0, 0.0, 7.0, True) == -42.0
    assert rebalance_quantity(0.0, 500.0, 10.0, 50.0, False) == -10.0
    assert rebalance_quantity(1.0, 1_000.0, 0.0, float("nan"), False) == 0.0


def test_a_hand_worked_rebalance_sequence():
    """No costs: 1,000 cash; w=0.5 at close 10 -> 50 shares at the next open 11; w=1.0 at
    close 12 (equity 450 + 600 = 1,050) -> 37.5 more at 12.5; w=-0.5 at close 10 (equity
    1,050 - 56.25 ... ) crosses zero: one sell, the long closed and a short opened."""
    o = np.array([10.0, 11.0, 12.0, 12.5, 10.0, 10.0])
    c = np.array([10.0, 11.5, 12.0, 12.0, 10.0, 9.0])
    h, lo = np.maximum(o, c) + 0.5, np.minimum(o, c) - 0.5
    w = np.array([0.5, np.nan, 1.0, np.nan, -0.5, np.nan])
    sim = simulate(o, h, lo, c, weights=w, costs=CostModel(slippage_bps=0),
                   options=SimOptions(cash=1_000.0, direction="longshort"))
    f = sim.fills
    assert list(f["idx"]) == [1, 3, 5] and list(f["side"]) == [1, 1, -1]
    assert f["size"][0] == 50.0 and f["price"][0] == 11.0
    cash = 1_000.0 - 50 * 11.0  # 450; equity at close 12: 450 + 600
    assert f["size"][1] == pytest.approx(1_050.0 / 12.0 - 50)
    held = 1_050.0 / 12.0
    cash -= (held - 50) * 12.5
    equity = cash + held * 10.0
    assert f["size"][2] == pytest.approx(held + 0.5 * equity / 10.0)
    t = sim.trades
    # the long (grown once, average entry price) closed whole, the short opened and open
    assert list(t["direction"]) == [1, -1] and list(t["exit_idx"]) == [5, -1]
    assert t["size"][0] == pytest.approx(held)
    assert t["entry_price"][0] == pytest.approx((50 * 11.0 + (held - 50) * 12.5) / held)
    assert sim.position[-1, 0] == pytest.approx(-0.5 * equity / 10.0)


def _reference(o, c, w, cash0, costs: CostModel, whole: bool):
    """An independent loop: each weight fills at the next bar with an open (the last of
    several waiting), sized at the decision's last close; fills as (idx, signed qty, price,
    fee) and the final cash and position."""
    cash, pos, fills = cash0, 0.0, []
    pending, last = None, math.nan
    for i in range(len(c)):
        if pending is not None and o[i] > 0:
            weight, px = pending
            equity = cash + pos * px
            target = weight * equity / px
            target = float(math.trunc(target)) if whole else target
            delta = target - pos
            if delta != 0:
                price = costs.fill_price("buy" if delta > 0 else "sell", o[i])
                fee = costs.fee(abs(delta), price)
                cash -= delta * price + fee
                pos += delta
                fills.append((i, delta, price, fee))
            pending = None
        if c[i] > 0:
            last = c[i]
        if not np.isnan(w[i]):
            pending = (w[i], last)
    return fills, cash, pos


@pytest.mark.parametrize("whole", [False, True])
def test_weights_equal_an_independent_loop(whole):
    rng = np.random.default_rng(7)
    n_t, n_c = 300, 4
    c = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_t, n_c)), axis=0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(rng.normal(0, 0.003, (n_t, n_c)))
    h, lo = np.maximum(o, c) * 1.002, np.minimum(o, c) * 0.998
    gaps = rng.random((n_t, n_c)) < 0.05  # missing bars delay the fills
    for a in (o, c, h, lo):
        a[gaps] = np.nan
    w = np.where(rng.random((n_t, n_c)) < 0.1, rng.choice([-1.0, -0.4, 0.0, 0.3, 0.7, 1.0],
                                                           (n_t, n_c)), np.nan)
    costs = CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)
    sim = simulate(o, h, lo, c, weights=w, costs=costs,
                   options=SimOptions(cash=10_000.0, direction="longshort",
                                      shares="whole" if whole else "fractional"))
    for j in range(n_c):
        fills, cash, pos = _reference(o[:, j], c[:, j], w[:, j], 10_000.0, costs, whole)
        ours = sim.fills[sim.fills["col"] == j]
        assert len(ours) == len(fills) > 10
        for f, (i, delta, price, fee) in zip(ours, fills, strict=True):
            assert f["idx"] == i and f["side"] == np.sign(delta)
            assert f["size"] == pytest.approx(abs(delta), rel=1e-9, abs=1e-9)
            assert f["price"] == price and f["fees"] == pytest.approx(fee, rel=1e-9)
        assert sim.position[-1, j] == pytest.approx(pos, rel=1e-9, abs=1e-9)
        last = c[:, j][~np.isnan(c[:, j])][-1]
        assert sim.equity[-1, j] == pytest.approx(cash + pos * last, rel=1e-9)
        # trades add up: the closed trades' P&L plus the open one's is the account's
        t = sim.trades[sim.trades["col"] == j]
        assert t["pnl"].sum() == pytest.approx(sim.equity[-1, j] - 10_000.0, rel=1e-6)


def test_wb_backtest_trades_weights_and_refuses_what_it_cannot():
    bars = wb.Bars.from_long(synthesize(3, 2, "1Min", 3), "1Min")

    @wb.strategy
    def half(bars):
        return wb.Signals(weights=bars.close * 0 + 0.5)

    @wb.strategy
    def short(bars):
        return wb.Signals(weights=bars.close * 0 - 0.5)

    result = wb.backtest(half, bars)
    assert len(result.trades()) and (result.simulation.position[-1] > 0).all()
    with pytest.raises(StrategyError, match="longshort"):
        wb.backtest(short, bars)
    assert (wb.backtest(short, bars, direction="longshort").simulation.position[-1] < 0).all()
    with pytest.raises(ConfigError, match="sl_stop"):
        wb.backtest(half, bars, sl_stop=0.01)
    with pytest.raises(ConfigError, match="not both"):
        simulate(*(bars.close.to_numpy(),) * 4, entries=np.zeros(bars.shape, bool),
                 weights=np.zeros(bars.shape))


def test_sweeps_still_refuse_weights():
    from workbench.backtesting.sweeps.runner import _probe

    @wb.strategy
    def half(bars):
        return wb.Signals(weights=bars.close * 0 + 0.5)

    with pytest.raises(StrategyError, match="sweeps do not take them"):
        _probe(half, wb.Bars.from_long(synthesize(2, 1, "1Min", 3), "1Min"), {}, "long")
