"""Issue 11 item 5: stops per bar and symbol (an ATR stop) and trailing stops in the backtest,
by vectorbt's rules (checked against ``vectorbt.Portfolio.from_signals`` itself)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from tests.reference_backtest import random_market
from tests.test_backtest_fills import make_bars, run
from workbench.errors import ConfigError, StrategyError

UP = [(100.0, 101.0, 99.5, 100.0)] * 2


def _bars_with(rows):
    return make_bars(rows)


# -- per-bar stops: the entry's bar fixes the fraction ---------------------------------


def test_a_per_bar_stop_is_fixed_by_the_entry_signal_bar():
    # signal on bar 1 (its sl 5%), fill at bar 2's open 100; later bars' fractions (1%)
    # never move the level: bar 3's low 98 does not stop it, bar 4's low 94 does at 95
    rows = [(100.0, 100.5, 99.5, 100.0)] * 3 + [(99.0, 99.5, 98.0, 99.0), (97.0, 97.5, 94.0, 96.0)]
    bars = make_bars(rows)
    sl = pd.DataFrame([0.01, 0.05, 0.01, 0.01, 0.01], index=bars.index, columns=bars.symbols)
    t = run(bars, entries=[1], sl_stop=sl, slippage_bps=0.0).trades().iloc[0]
    assert (t["entry_price"], t["exit_price"], t["exit_reason"]) == (100.0, 95.0, "stop_loss")
    assert t["exit_time"] == bars.index[4]
    # the same as the number 0.05
    n = run(bars, entries=[1], sl_stop=0.05, slippage_bps=0.0).trades().iloc[0]
    assert (n["exit_price"], n["exit_time"]) == (t["exit_price"], t["exit_time"])


def test_nan_means_no_stop_for_an_entry_of_that_bar():
    rows = [(100.0, 100.5, 99.5, 100.0)] * 3 + [(90.0, 91.0, 80.0, 85.0)] * 2
    bars = make_bars(rows)
    sl = pd.DataFrame([0.05, np.nan, 0.05, 0.05, 0.05], index=bars.index, columns=bars.symbols)
    t = run(bars, entries=[1], sl_stop=sl, slippage_bps=0.0).trades().iloc[0]
    assert t["exit_reason"] == "open at end"
    t = run(bars, entries=[0], sl_stop=sl, slippage_bps=0.0).trades().iloc[0]
    assert (t["exit_reason"], t["exit_price"]) == ("stop_loss", 90.0)  # gapped through: the open


def test_the_strategy_can_return_an_atr_stop_and_it_equals_the_argument():
    bars, _ = random_market(11, 160, 3, gap=0.0, p_signal=0.0)

    def atr_frac(b):
        tr = pd.concat([b.high - b.low, (b.high - b.close.shift()).abs(),
                        (b.low - b.close.shift()).abs()]).groupby(level=0).max()
        return 2 * tr.rolling(14).mean() / b.close

    @wb.strategy(warmup=20)
    def cross(b, fast: int = 5, slow: int = 20):
        f, s = b.close.rolling(fast).mean(), b.close.rolling(slow).mean()
        return wb.Signals(entries=(f > s) & (f.shift() <= s.shift()),
                          exits=(f < s) & (f.shift() >= s.shift()), sl_stop=atr_frac(b))

    @wb.strategy(warmup=20)
    def plain(b, fast: int = 5, slow: int = 20):
        s = cross.fn(b, fast, slow)
        return wb.Signals(entries=s.entries, exits=s.exits)

    mine = wb.backtest(cross, bars, fees_bps=1.0)
    given = wb.backtest(plain, bars, fees_bps=1.0, sl_stop=atr_frac(bars))
    fixed = wb.backtest(plain, bars, fees_bps=1.0, sl_stop=0.01)
    a, b = mine.trades(), given.trades()
    assert (a["exit_reason"] == "stop_loss").sum() > 0
    pd.testing.assert_frame_equal(a, b)
    assert not fixed.trades()["exit_price"].equals(a["exit_price"])  # the frame was read
    assert mine.options.stops_per_bar == "sl_stop (Signals)"
    assert given.options.stops_per_bar == "sl_stop (argument)"
    assert fixed.options.stops_per_bar is None and fixed.options.sl_stop == 0.01
    with pytest.raises(StrategyError, match="give it in one place"):
        wb.backtest(cross, bars, sl_stop=0.02)


def test_a_wrong_stop_frame_is_named_in_one_line():
    bars = make_bars(UP * 3, UP * 3, symbols=["AAA", "BBB"])
    good = pd.DataFrame(0.02, index=bars.index, columns=bars.symbols)
    negative = good.copy()
    negative.iloc[2, 1] = -0.1
    cases = [
        (good.iloc[:-1], "shape (5, 2), the bars (6, 2)"),
        (good.rename(columns={"BBB": "CCC"}), "missing BBB; not in the bars CCC"),
        (good[["BBB", "AAA"]], "another order"),
        (good.set_axis(good.index + pd.Timedelta(hours=1)), "index differs at row 0"),
        (negative, "> 0 or NaN (no stop), got -0.1 at 2025-03-05 00:00:00+00:00 BBB"),
        (good > 0, "float"),
        (np.full((6, 3), 0.02), "shape (6, 3)"),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError) as e:
            run(bars, entries={"AAA": [0]}, sl_stop=bad)
        message = str(e.value)
        assert match in message and "\n" not in message and len(message) < 250, message


# -- trailing ---------------------------------------------------------------------------


def test_a_trailing_stop_follows_the_highest_high_after_the_bar_is_checked():
    rows = [(100.0, 100.0, 100.0, 100.0),  # signal
            (100.0, 101.0, 99.0, 100.0),   # entry at 100; its own high does not trail
            (104.0, 110.0, 103.0, 108.0),  # checked against 95, then the extreme is 110
            (108.0, 109.0, 104.6, 105.0),  # level 104.5: not hit
            (105.0, 106.0, 104.0, 104.5)]  # hit at 104.5
    bars = make_bars(rows)
    t = run(bars, entries=[0], sl_stop=0.05, sl_trail=True, slippage_bps=0.0).trades().iloc[0]
    assert (t["exit_price"], t["exit_reason"], t["exit_time"]) == (110 * 0.95, "stop_loss",
                                                                    bars.index[4])
    fixed = run(bars, entries=[0], sl_stop=0.05, slippage_bps=0.0).trades().iloc[0]
    assert fixed["exit_reason"] == "open at end"
    # a short trails the lowest low
    rows = [(100.0, 100.0, 100.0, 100.0), (100.0, 101.0, 99.0, 100.0),
            (96.0, 97.0, 90.0, 92.0), (93.0, 94.5, 91.0, 94.0)]
    t = run(make_bars(rows), short_entries=[0], direction="longshort", sl_stop=0.05,
            sl_trail=True, slippage_bps=0.0).trades().iloc[0]
    assert (t["exit_price"], t["exit_reason"]) == (90 * 1.05, "stop_loss")


def test_sl_trail_without_a_stop_is_refused():
    with pytest.raises(ConfigError, match="sl_trail"):
        run(make_bars(UP * 3), entries=[0], sl_trail=True)


# -- vectorbt itself ----------------------------------------------------------------------


def _ohlc(rng, n_t, n_c):
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_t, n_c)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, (n_t, n_c)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, (n_t, n_c))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, (n_t, n_c))))
    return open_, high, low, close


@pytest.mark.parametrize("trail", [False, True])
def test_per_bar_and_trailing_stops_equal_vectorbt_from_signals(trail):
    """Fill at the close, no costs: vectorbt's ``from_signals`` with an ``sl_stop`` array
    (and ``sl_trail``) makes the same trades. Entries on a bar where a stop fires are
    dropped first: there vectorbt's stop replaces the signal, ours re-enters at the close."""
    import vectorbt as vbt

    from workbench.backtesting import CostModel, SimOptions, simulate

    rng = np.random.default_rng(5 + trail)
    n_t, n_c = 300, 6
    o, h, lo, c = _ohlc(rng, n_t, n_c)
    sl = np.where(rng.random((n_t, n_c)) < 0.1, np.nan, rng.uniform(0.01, 0.06, (n_t, n_c)))
    tp = rng.uniform(0.03, 0.12, (n_t, n_c))
    entries = rng.random((n_t, n_c)) < 0.08
    opts = SimOptions(fill="close", sl_trail=trail)
    costs = CostModel(slippage_bps=0.0)
    for _ in range(10):
        sim = simulate(o, h, lo, c, entries, None, costs=costs, options=opts, sl_stop=sl,
                       tp_stop=tp)
        stopped = sim.trades[sim.trades["reason"] != 3]
        clash = entries[stopped["exit_idx"], stopped["col"]]
        if not clash.any():
            break
        entries[stopped["exit_idx"][clash], stopped["col"][clash]] = False
    pf = vbt.Portfolio.from_signals(pd.DataFrame(c), pd.DataFrame(entries), False,
                                    open=pd.DataFrame(o), high=pd.DataFrame(h),
                                    low=pd.DataFrame(lo), sl_stop=pd.DataFrame(sl),
                                    tp_stop=pd.DataFrame(tp), sl_trail=trail, init_cash=100_000.0)
    theirs = pf.trades.records_readable
    assert len(theirs) == len(sim.trades) > 50
    assert (sim.trades["reason"] == 1).sum() > 10 and (sim.trades["reason"] == 2).sum() > 3
    ours = pd.DataFrame({"col": sim.trades["col"], "entry": sim.trades["entry_idx"],
                         "exit": sim.trades["exit_idx"]})
    exit_idx = theirs["Exit Timestamp"].where(theirs["Status"] == "Closed", -1)
    assert ours["col"].tolist() == theirs["Column"].tolist()
    assert ours["entry"].tolist() == theirs["Entry Timestamp"].tolist()
    assert ours["exit"].tolist() == exit_idx.tolist()
    closed = (theirs["Status"] == "Closed").to_numpy()
    np.testing.assert_allclose(sim.trades["exit_price"][closed],
                               theirs["Avg Exit Price"][closed], rtol=1e-12)
    np.testing.assert_allclose(sim.trades["pnl"][closed], theirs["PnL"][closed], rtol=1e-9)


def test_a_sweep_takes_the_strategy_stops():
    bars, _ = random_market(3, 150, 3, gap=0.05, p_signal=0.0)

    @wb.strategy(warmup=10)
    def cross(b, fast: int = 3, slow: int = 10, k: float = 2.0):
        f, s = b.close.rolling(fast).mean(), b.close.rolling(slow).mean()
        span = (b.high - b.low).rolling(5, min_periods=1).mean()
        return wb.Signals(entries=(f > s).fillna(False), exits=(f < s).fillna(False),
                          sl_stop=k * span / b.close)

    result = wb.sweep(cross, bars, k=[0.5, 3.0], fast=[3, 4], progress=False,
                      direction="long", fees_bps=1.0)
    assert result.info["kernel"] == "general"
    assert result.info["options"]["stops_per_bar"] == "from Signals"
    assert result.table["trades"].sum() > 20
    for i, params in enumerate(result.params):
        bt = wb.backtest(cross, bars, **params, fees_bps=1.0)
        rows = result.table[result.table["combo"] == i].set_index("symbol")
        ours = bt.stats(per_symbol=True)
        for name in ("total_return", "trades", "sharpe"):
            np.testing.assert_allclose(ours[name].to_numpy(float),
                                       rows.loc[bars.symbols, name].to_numpy(float),
                                       rtol=1e-9, equal_nan=True, err_msg=name)
    # a per-bar stop as a sweep option is refused in one line (the strategy gives it)
    with pytest.raises(ConfigError, match="return it from the strategy"):
        wb.sweep(cross, bars, k=[1.0], progress=False,
                 sl_stop=pd.DataFrame(0.02, index=bars.index, columns=bars.symbols))


# -- parity: the engine hands the backtest's stops with each entry ---------------------------


def _atr_stop_strategy(look_ahead: bool = False):
    @wb.strategy(warmup=20)
    def atr_stop(b, fast: int = 5, slow: int = 20):
        f, s = b.close.rolling(fast).mean(), b.close.rolling(slow).mean()
        prev = b.close.shift(-1 if look_ahead else 1)  # the look-ahead one peeks at t+1
        tr = pd.concat([b.high - b.low, (b.high - prev).abs(),
                        (b.low - prev).abs()]).groupby(level=0).max()
        atr = tr.rolling(14).mean()
        return wb.Signals(entries=(f > s) & (f.shift() <= s.shift()),
                          exits=(f < s) & (f.shift() >= s.shift()),
                          sl_stop=2 * atr / b.close, tp_stop=0.05)

    return atr_stop


def test_parity_compares_the_stops_given_with_each_entry():
    from workbench.engine import check_parity

    raw, _ = random_market(21, 200, 3, gap=0.0, p_signal=0.0)
    # daily bars stamped at the session's open (the engine's clock runs to each close)
    index = pd.bdate_range("2024-02-01", periods=len(raw), tz="UTC") + pd.Timedelta("14:30:00")
    bars = wb.Bars.from_wide(*(getattr(raw, f).set_axis(index) for f in ("close",)),
                             **{f: getattr(raw, f).set_axis(index) for f in ("open", "high", "low")},
                             timeframe="1Day")
    report = check_parity(_atr_stop_strategy(), bars)
    assert report.ok, report.lines()
    assert report.fields[-2:] == ("sl_stop", "tp_stop")
    # a stop that looks ahead is caught on the entries' bars (and only as a stop)
    bad = check_parity(_atr_stop_strategy(look_ahead=True), bars)
    assert not bad.ok and bad.by_field["sl_stop"] > 0
    assert bad.by_field["entries"] == 0 and bad.by_field["tp_stop"] == 0
    assert bad.first.field == "sl_stop"


def test_lookahead_check_catches_a_stop_that_peeks_ahead():
    from workbench.strategy.lookahead import LookaheadError

    bars, _ = random_market(21, 120, 2, gap=0.0, p_signal=0.0)
    assert wb.lookahead_check(_atr_stop_strategy(), bars, checkpoints=6).ok
    with pytest.raises(LookaheadError) as e:
        wb.lookahead_check(_atr_stop_strategy(look_ahead=True), bars, checkpoints=6)
    assert "sl_stop" in str(e.value)
