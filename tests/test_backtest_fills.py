"""Fills on hand-built bars: timing, prices, fees, sizes and stops, checked to the cent."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from tests.reference_backtest import random_market
from workbench.backtesting import CostModel, SimOptions, simulate
from workbench.errors import ConfigError

NAN = (math.nan,) * 4


def make_bars(*columns, symbols=None) -> wb.Bars:
    """One list of (open, high, low, close) rows per symbol; ``NAN`` marks a missing bar."""
    symbols = symbols or [f"S{j}" for j in range(len(columns))]
    index = pd.date_range("2025-03-03", periods=len(columns[0]), freq="D", tz="UTC")
    arr = np.array(columns, dtype=float)  # symbol x time x field
    frames = {f: pd.DataFrame(arr[:, :, k].T, index=index, columns=symbols)
              for k, f in enumerate(("open", "high", "low", "close"))}
    return wb.Bars.from_wide(frames["close"], open=frames["open"], high=frames["high"],
                             low=frames["low"], timeframe="1Day")


def run(bars, entries=(), exits=(), short_entries=None, short_exits=None, **opts):
    """Backtest signals given as {symbol: [bar numbers]} (or a list for the first symbol)."""
    def frame(spec):
        out = pd.DataFrame(False, index=bars.index, columns=bars.close.columns)
        spec = spec if isinstance(spec, dict) else {bars.symbols[0]: spec}
        for symbol, rows in spec.items():
            out.iloc[list(rows), out.columns.get_loc(symbol)] = True
        return out

    shorts = {}
    if short_entries is not None or short_exits is not None:
        shorts = {"short_entries": frame(short_entries or ()), "short_exits": frame(short_exits or ())}

    @wb.strategy
    def given(bars):
        return wb.Signals(entries=frame(entries), exits=frame(exits), **shorts)

    return wb.backtest(given, bars, **opts)


FLAT = [(10.0, 11.0, 9.0, 10.5)]
STEPS = [(10.0, 10.6, 9.8, 10.5), (20.0, 21.0, 19.5, 20.5), (40.0, 41.0, 39.0, 40.5),
         (80.0, 81.0, 79.0, 80.5), (160.0, 161.0, 159.0, 160.5)]


# -- (a) next-open fills with exact costs -----------------------------------------------


def test_entry_fills_at_next_open_with_fees_and_slippage_exactly():
    bars = make_bars(STEPS)
    r = run(bars, entries=[1], exits=[3], cash=10_000.0, fees_bps=10.0, fee_per_share=0.01,
            slippage_bps=2.0)
    (t,) = r.trades().itertuples(index=False)
    # signal on bar 1 -> buy at bar 2's open 40 plus 2 bps; exit on bar 3 -> bar 4's open 160
    assert t.entry_time == bars.index[2] and t.exit_time == bars.index[4]
    assert t.entry_price == pytest.approx(40.008, rel=1e-15)
    assert t.exit_price == pytest.approx(159.968, rel=1e-15)
    qty = 10_000.0 / (40.008 * 1.001 + 0.01)  # cash spent with fees included
    assert t.size == pytest.approx(qty, rel=1e-14) and t.size == pytest.approx(249.637975, rel=1e-9)
    entry_fee = qty * 40.008 * 0.001 + qty * 0.01
    exit_fee = qty * 159.968 * 0.001 + qty * 0.01
    assert entry_fee + qty * 40.008 == pytest.approx(10_000.0, rel=1e-14)  # all the cash
    assert t.fees == pytest.approx(entry_fee + exit_fee, rel=1e-13)
    assert t.fees == pytest.approx(54.914363, rel=1e-8)  # 12.48 in, 42.43 out
    assert t.pnl == pytest.approx(qty * (159.968 - 40.008) - entry_fee - exit_fee, rel=1e-12)
    assert t.pnl == pytest.approx(29_891.657119, rel=1e-9)
    assert t.exit_reason == "signal" and t.direction == "long"
    equity = r.equity()["S0"]
    assert equity.iloc[2] == pytest.approx(qty * 40.5, rel=1e-12)  # marked at bar 2's close
    assert equity.iloc[4] == pytest.approx(10_000.0 + t.pnl, rel=1e-12)
    # the kernel and the CostModel give the very same numbers
    costs = r.costs
    assert t.entry_price == costs.fill_price("buy", 40.0)
    assert t.exit_price == costs.fill_price("sell", 160.0)
    assert t.size == costs.max_quantity(10_000.0, t.entry_price)
    fills = r.simulation.fills
    assert fills["fees"][0] == costs.fee(t.size, t.entry_price)
    assert fills["fees"][1] == costs.fee(t.size, t.exit_price)


def test_a_missing_bar_delays_the_fill_to_the_symbols_next_bar():
    a = STEPS
    b = [STEPS[0], STEPS[1], NAN, NAN, STEPS[4]]  # S1 has no bars 2 and 3
    r = run(make_bars(a, b), entries={"S0": [1], "S1": [1]}, slippage_bps=0.0)
    t = r.trades().set_index("symbol")
    assert t.loc["S0", "entry_time"] == r.index[2] and t.loc["S0", "entry_price"] == 40.0
    assert t.loc["S1", "entry_time"] == r.index[4] and t.loc["S1", "entry_price"] == 160.0


def test_signals_on_missing_bars_wait_for_the_next_bar_too():
    b = [STEPS[0], NAN, NAN, STEPS[3], STEPS[4]]
    r = run(make_bars(b), entries=[2], slippage_bps=0.0)  # a signal on a bar the symbol lacks
    assert r.trades()["entry_time"].tolist() == [r.index[3]]


def test_an_entry_on_the_last_bar_does_not_fill():
    r = run(make_bars(STEPS), entries=[4])
    assert r.trades().empty and (r.equity()["S0"] == 100_000.0).all()


def test_fill_at_close_uses_the_signal_bars_close():
    r = run(make_bars(STEPS), entries=[1], exits=[3], fill="close", slippage_bps=5.0)
    (t,) = r.trades().itertuples(index=False)
    assert t.entry_time == r.index[1] and t.entry_price == pytest.approx(20.5 * 1.0005, rel=1e-15)
    assert t.exit_time == r.index[3] and t.exit_price == pytest.approx(80.5 * 0.9995, rel=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), gap=st.sampled_from([0.0, 0.3]),
       direction=st.sampled_from(["long", "longshort"]), stops=st.booleans())
def test_next_open_never_fills_at_a_price_known_at_or_before_the_signal(seed, gap, direction, stops):
    bars, sig = random_market(seed, 30, 2, gap, 0.2)
    o, h, lo = (getattr(bars, f).to_numpy() for f in ("open", "high", "low"))
    signal = sig["long_entry"] | sig["long_exit"]
    if direction == "longshort":
        signal = signal | sig["short_entry"] | sig["short_exit"]
    signal = signal.to_numpy()
    opts = {"sl_stop": 0.02, "tp_stop": 0.03} if stops else {}
    sim = simulate(o, h, lo, bars.close.to_numpy(), sig["long_entry"].to_numpy(), sig["long_exit"].to_numpy(),
                   sig["short_entry"].to_numpy(), sig["short_exit"].to_numpy(),
                   costs=CostModel(slippage_bps=3.0), options=SimOptions(direction=direction, **opts))
    slip = 3.0 / 1e4
    for f in sim.fills:
        c, i = f["col"], f["idx"]
        ref = f["price"] / (1 + slip) if f["side"] > 0 else f["price"] / (1 - slip)
        if f["reason"] == 0:  # a signal's order: the open of the first bar after the signal
            assert ref == pytest.approx(o[i, c], rel=1e-12)
            before = np.flatnonzero(~np.isnan(o[:i, c]))
            since = before[-1] if len(before) else 0
            assert signal[since:i, c].any(), (c, i)
        else:  # a stop: within a later bar's range (or its open)
            assert lo[i, c] * (1 - 1e-12) <= ref <= h[i, c] * (1 + 1e-12)
    for t in sim.trades:
        assert t["exit_idx"] == -1 or t["exit_idx"] >= t["entry_idx"]


# -- sizes --------------------------------------------------------------------------------


def test_whole_shares_are_floored_and_size_is_a_fraction_of_cash():
    bars = make_bars(STEPS)
    whole = run(bars, entries=[1], cash=1_000.0, shares="whole", slippage_bps=0.0, fee_per_share=1.0)
    assert whole.trades()["size"].tolist() == [24.0]  # 1000 / 41 = 24.39
    half = run(bars, entries=[1], cash=1_000.0, size=0.5, slippage_bps=0.0)
    assert half.trades()["size"].iloc[0] == pytest.approx(12.5, rel=1e-15)
    assert half.equity()["S0"].iloc[2] == pytest.approx(500.0 + 12.5 * 40.5, rel=1e-15)


def test_too_little_cash_for_one_whole_share_means_no_trade():
    r = run(make_bars(STEPS), entries=[1], cash=30.0, shares="whole")
    assert r.trades().empty


# -- signals to orders ------------------------------------------------------------------


def test_entry_and_exit_on_one_bar_cancel_out():
    r = run(make_bars(STEPS), entries=[1], exits=[1])
    assert r.trades().empty


def test_entries_while_in_a_position_are_ignored_and_exits_while_flat_too():
    r = run(make_bars(STEPS), entries=[0, 1, 2], exits=[3], slippage_bps=0.0)
    assert r.trades()[["entry_time", "exit_time"]].values.tolist() == [[r.index[1], r.index[4]]]
    r = run(make_bars(STEPS), exits=[0, 1])
    assert r.trades().empty


def test_longshort_reverses_on_an_opposite_entry_and_sizes_from_the_cash_after_closing():
    bars = make_bars(STEPS)
    r = run(bars, entries=[0], short_entries=[2], direction="longshort", cash=1_000.0,
            slippage_bps=0.0)
    t = r.trades()
    assert t["direction"].tolist() == ["long", "short"]
    assert t["exit_time"].iloc[0] == t["entry_time"].iloc[1] == r.index[3]
    # long 50 at 20 (bar 1's open), sold at 80 (bar 3's open): cash 4000, all of it shorted
    assert t["size"].iloc[0] == pytest.approx(50.0) and t["pnl"].iloc[0] == pytest.approx(3_000.0)
    assert t["size"].iloc[1] == pytest.approx(4_000.0 / 80.0)
    assert t["exit_reason"].iloc[1] == "open at end"
    assert t["exit_price"].iloc[1] == 160.5 and t["pnl"].iloc[1] == pytest.approx(-50 * 80.5)


def test_short_signals_are_ignored_long_only_with_a_warning():
    with pytest.warns(UserWarning, match="direction='longshort'"):
        r = run(make_bars(STEPS), short_entries=[1])
    assert r.trades().empty


# -- stops --------------------------------------------------------------------------------


def stop_case(bar3, **opts):
    """Long from bar 2's open at 100 (entry signal on bar 1), then ``bar3``."""
    rows = [(100.0, 101.0, 99.0, 100.0)] * 2 + [(100.0, 101.0, 99.0, 100.0), bar3, (50.0, 51.0, 49.0, 50.0)]
    return run(make_bars(rows), entries=[1], **{"slippage_bps": 0.0, **opts}).trades().iloc[0]


def test_stop_loss_fills_at_its_level_when_the_bar_reaches_it():
    t = stop_case((98.0, 99.0, 94.0, 96.0), sl_stop=0.05)
    assert (t.exit_reason, t.exit_time.day, t.exit_price) == ("stop_loss", 6, pytest.approx(95.0))


def test_a_gap_through_the_stop_fills_at_the_open():
    t = stop_case((90.0, 92.0, 88.0, 91.0), sl_stop=0.05)
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 90.0)
    t = stop_case((115.0, 116.0, 114.0, 115.0), tp_stop=0.1)
    assert (t.exit_reason, t.exit_price) == ("take_profit", 115.0)


def test_take_profit_and_the_stop_loss_first_when_a_bar_reaches_both():
    t = stop_case((100.0, 112.0, 99.0, 105.0), sl_stop=0.05, tp_stop=0.1)
    assert (t.exit_reason, t.exit_price) == ("take_profit", pytest.approx(110.0))
    t = stop_case((100.0, 112.0, 94.0, 105.0), sl_stop=0.05, tp_stop=0.1)
    assert (t.exit_reason, t.exit_price) == ("stop_loss", pytest.approx(95.0))


def test_stops_are_relative_to_the_entry_fill_price_and_exits_pay_slippage_and_fees():
    t = stop_case((98.0, 99.0, 90.0, 96.0), sl_stop=0.05, slippage_bps=10.0, fees_bps=5.0)
    entry = 100.0 * 1.001
    assert t.entry_price == pytest.approx(entry, rel=1e-15)
    assert t.exit_price == pytest.approx(entry * 0.95 * 0.999, rel=1e-14)
    assert t.fees == pytest.approx(t["size"] * (entry + entry * 0.95 * 0.999) * 5e-4, rel=1e-12)


def test_stops_are_not_checked_on_the_entry_bar():
    rows = [(100.0, 101.0, 99.0, 100.0)] * 2 + [(100.0, 101.0, 50.0, 100.0), (100.0, 101.0, 99.0, 100.0)]
    r = run(make_bars(rows), entries=[1], sl_stop=0.05, slippage_bps=0.0)
    assert r.trades()["exit_reason"].tolist() == ["open at end"]


def test_short_stops_sit_above_and_below_the_entry():
    rows = [(100.0, 101.0, 99.0, 100.0)] * 3 + [(102.0, 106.0, 101.0, 104.0), (50.0, 51.0, 49.0, 50.0)]
    t = run(make_bars(rows), short_entries=[1], direction="longshort", sl_stop=0.05,
            slippage_bps=0.0).trades().iloc[0]
    assert (t.direction, t.exit_reason, t.exit_price) == ("short", "stop_loss", pytest.approx(105.0))
    rows[3] = (96.0, 97.0, 89.0, 90.0)
    t = run(make_bars(rows), short_entries=[1], direction="longshort", tp_stop=0.1,
            slippage_bps=0.0).trades().iloc[0]
    assert (t.exit_reason, t.exit_price, t.pnl > 0) == ("take_profit", pytest.approx(90.0), True)


def test_next_open_a_signal_exit_at_the_open_comes_before_a_stop_in_that_bar():
    rows = [(100.0, 101.0, 99.0, 100.0)] * 3 + [(97.0, 98.0, 90.0, 92.0), (50.0, 51.0, 49.0, 50.0)]
    t = run(make_bars(rows), entries=[1], exits=[2], sl_stop=0.05, slippage_bps=0.0).trades().iloc[0]
    assert (t.exit_reason, t.exit_price) == ("signal", 97.0)


def r_index(i: int) -> pd.Timestamp:
    return pd.Timestamp("2025-03-03", tz="UTC") + pd.Timedelta(days=i)


def test_fill_at_close_stops_come_first_and_the_close_may_reenter():
    rows = [(100.0, 101.0, 99.0, 100.0)] * 2 + [(98.0, 99.0, 90.0, 93.0), (93.0, 94.0, 92.0, 93.0)]
    t = run(make_bars(rows), entries=[1, 2], fill="close", sl_stop=0.05, slippage_bps=0.0).trades()
    assert t["exit_reason"].tolist() == ["stop_loss", "open at end"]
    assert t["entry_time"].tolist() == [r_index(1), r_index(2)] and t["exit_time"].iloc[0] == r_index(2)
    assert t["entry_price"].tolist() == [100.0, 93.0] and t["exit_price"].iloc[0] == pytest.approx(95.0)


# -- the array-level core -----------------------------------------------------------------


def test_simulate_takes_plain_arrays_and_per_column_stops():
    from workbench.backtesting import vbt_core

    o = np.array([[100.0, 100.0], [100.0, 100.0], [100.0, 100.0], [97.0, 97.0]])
    h, lo = o + 1, np.array([[99.0, 99.0], [99.0, 99.0], [99.0, 99.0], [89.0, 89.0]])
    e = np.zeros((4, 2), bool)
    e[0] = True
    simulate(o, h, lo, o, e, np.zeros_like(e), sl_stop=0.05)
    compiled = len(vbt_core._run.signatures)
    sim = simulate(o, h, lo, o, e, np.zeros_like(e), costs=CostModel(slippage_bps=0.0),
                   sl_stop=np.array([0.05, np.nan]))
    assert sim.trades["reason"].tolist() == [1, 3] and sim.trades["exit_price"][0] == pytest.approx(95.0)
    one = simulate(o[:, 0], h[:, 0], lo[:, 0], o[:, 0], e[:, 0], np.zeros(4, bool))
    assert one.equity.shape == (4, 1) and len(one.trades) == 1
    frozen = o.copy()
    frozen.flags.writeable = False  # as a pandas 3 frame's values are
    simulate(frozen, frozen + 1, frozen - 1, frozen, e, np.zeros_like(e))
    # one compiled variant: a per-column stop (broadcast) or read-only prices used to be
    # another numba type, compiling the whole loop again (40 s on a fresh checkout)
    assert len(vbt_core._run.signatures) == compiled


@pytest.mark.parametrize("bad, match", [
    ({"entries": np.zeros((4, 2))}, "boolean"),
    ({"entries": np.zeros((3, 2), bool)}, "shape"),
    ({"close": np.zeros((4, 3))}, "shape"),
    ({"sl_stop": [-0.1, 0.1]}, "sl_stop"),
])
def test_simulate_refuses_bad_arrays(bad, match):
    args = {"open": np.ones((4, 2)), "high": np.ones((4, 2)), "low": np.ones((4, 2)), "close": np.ones((4, 2)),
                "entries": np.zeros((4, 2), bool), "exits": np.zeros((4, 2), bool)}
    args.update(bad)
    with pytest.raises(ConfigError, match=match):
        simulate(**args)
