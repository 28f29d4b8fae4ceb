"""The live engine: rolling windows, feeds, warmup, stamping, clocks, latency."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.clock import Clock, SimClock
from workbench.data.bars import FIELDS, Bars
from workbench.data.synth import synthesize
from workbench.engine import (
    BarRow,
    Decision,
    Engine,
    Feed,
    ReplayFeed,
    RollingWindow,
    bar_close,
    check_parity,
)
from workbench.errors import ConfigError, DataError
from workbench.model import Signal

T0 = pd.Timestamp("2026-11-16 14:30", tz="UTC")  # a Monday's open


def gappy_bars(n: int = 40, symbols=("AAA", "BBB", "CCC"), seed: int = 1) -> Bars:
    """Minute bars with holes: BBB misses every third bar, CCC a run of ten."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(T0, periods=n, freq="1min", name="ts")
    close = pd.DataFrame(100 + rng.standard_normal((n, len(symbols))).cumsum(axis=0),
                         index=index, columns=list(symbols))
    close.iloc[::3, 1] = np.nan
    close.iloc[5:15, 2] = np.nan
    volume = close.notna() * 1000.0
    return Bars.from_wide(close, volume=volume.where(close.notna()), timeframe="1Min")


def rows_of(bars: Bars) -> list[BarRow]:
    return list(ReplayFeed(bars))


@wb.strategy(warmup=5)
def above_mean(bars, n: int = 5):
    """Long when the close is above its n-bar mean; out when below."""
    mean = wb.ta.SMA(bars.close, n)
    return wb.Signals(entries=wb.crossed_above(bars.close, mean),
                      exits=wb.crossed_below(bars.close, mean))


@wb.strategy(warmup=3)
def always(bars):
    """An entry for every symbol with a bar, at every bar."""
    return wb.Signals(entries=bars.close.notna())


@wb.strategy(warmup=4)
def tilt(bars):
    """Target weights: a bar's return, clipped; NaN where a symbol has no bar."""
    return wb.Signals(weights=bars.close.pct_change(fill_method=None).clip(-0.5, 0.5))


# -- the window ---------------------------------------------------------------------------
def test_window_holds_the_bars_with_nan_for_missing_ones_after_gaps_and_sliding():
    bars = gappy_bars(40)
    window = RollingWindow(bars.symbols, capacity=7, timeframe="1Min")
    for t, row in enumerate(rows_of(bars)):
        window.append(row.time.value, row.values)
        got = window.bars()
        want = bars.iloc(slice(max(0, t + 1 - 7), t + 1))
        for name in FIELDS:  # across appends, drops and buffer compactions (every 7 rows)
            pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), check_freq=False)
    assert window.dropped == 33 and not window.anchored and len(window) == 7
    assert np.isnan(window.field("close")[1]).sum() == int(bars.close["BBB"].tail(7).isna().sum())
    assert window.present().tolist() == bars.close.tail(7).notna().sum().tolist()


def test_window_is_anchored_until_full_and_extend_equals_appends():
    bars = gappy_bars(30)
    values = np.stack([getattr(bars, f).to_numpy().T for f in FIELDS])
    a = RollingWindow(bars.symbols, capacity=50)
    a.extend(bars.index.asi8[:20], values[:, :, :20])
    assert a.anchored and len(a) == 20
    for row in rows_of(bars.iloc(slice(20, None))):
        a.append(row.time.value, row.values)
    b = RollingWindow(bars.symbols, capacity=12)
    b.extend(bars.index.asi8[:20], values[:, :, :20])  # more than it keeps
    assert b.dropped == 8 and len(b) == 12
    b.extend(bars.index.asi8[20:], values[:, :, 20:])
    pd.testing.assert_frame_equal(a.bars().close.tail(12), b.bars().close, check_freq=False)
    assert b.dropped == 18


def test_window_refuses_time_going_back_and_is_read_only():
    bars = gappy_bars(5)
    window = RollingWindow(bars.symbols, capacity=10)
    rows = rows_of(bars)
    window.append(rows[1].time.value, rows[1].values)
    with pytest.raises(DataError, match="not after the last one"):
        window.append(rows[0].time.value, rows[0].values)
    with pytest.raises(DataError, match="not after"):
        window.append(rows[1].time.value, rows[1].values)
    view = window.bars()
    with pytest.raises(ValueError, match="read-only"):  # a strategy cannot corrupt the window
        view.close.iloc[0, 0] = -1.0
    with pytest.raises(ValueError):
        window.field("close")[0, 0] = 1.0
    assert window.field("close")[0, 0] == rows[1].close[0]
    assert (view.close + 1).iloc[0, 0] == rows[1].close[0] + 1  # reading is free
    with pytest.raises(ConfigError):
        RollingWindow(bars.symbols, capacity=0)


# -- the engine ---------------------------------------------------------------------------
def test_no_signals_while_warming_up_and_one_clear_message(capsys):
    bars = gappy_bars(12)
    decisions: list[Decision] = []
    engine = Engine(always, bars.symbols, on_decision=decisions.append)
    engine.run(ReplayFeed(bars))
    assert [d.ready for d in decisions] == [False] * 3 + [True] * 9
    assert all(not d.signals for d in decisions[:3]) and all(d.signals for d in decisions[3:])
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    warm = [e for e in logged if e["event"] == "engine_warming_up"]
    assert len(warm) == 1 and "needs more than 3 bars" in warm[0]["message"]
    assert len(engine.notices) == 1 and "no signals until" in engine.notices[0]
    assert len(engine.latency) == 9  # latency counts the timestamps the strategy ran on


def test_signals_are_stamped_with_their_bar_and_decided_at_its_close():
    bars = gappy_bars(10)
    with pytest.raises(ConfigError, match="timeframe"):
        Engine(always, bars.symbols).on_bars(rows_of(bars)[0])
    engine = Engine(always, bars.symbols, timeframe="1Min")
    decisions = [engine.on_bars(row) for row in rows_of(bars)]
    last = decisions[-1]
    assert last.bar_time == bars.index[-1]
    assert last.decided_at == bars.index[-1] + pd.Timedelta(minutes=1)  # the SimClock: its close
    assert engine.clock.now() == last.decided_at
    present = [s for s in bars.symbols if pd.notna(bars.close[s].iloc[-1])]
    assert [s.symbol for s in last.signals] == present
    assert all(isinstance(s, Signal) and s.entry and not s.exit and s.strategy == "always"
               and s.bar_time == bars.index[-1] for s in last.signals)
    assert 0 < last.latency < 5


def test_engine_reads_time_only_from_its_clock():
    class Frozen(Clock):
        def now(self) -> pd.Timestamp:
            return pd.Timestamp("2030-01-02 15:00", tz="UTC")

    bars = gappy_bars(6)
    engine = Engine(always, bars.symbols, clock=Frozen())
    decision = [engine.on_bars(row) for row in rows_of(bars)][-1]
    assert decision.decided_at == pd.Timestamp("2030-01-02 15:00", tz="UTC")


def test_signals_match_the_vectorized_strategy_on_gappy_bars():
    bars = gappy_bars(60)
    report = check_parity(above_mean, bars, {"n": 5})
    assert report.ok and report.anchored and report.compared == 60 * 3 * 4
    weights = check_parity(tilt, bars)
    assert weights.ok and weights.fields == ("weights",)


def test_engine_emits_weights():
    bars = gappy_bars(8)
    engine = Engine(tilt, bars.symbols, timeframe="1Min")
    decision = [engine.on_bars(row) for row in rows_of(bars)][-1]
    expected = tilt(bars).weights.iloc[-1].dropna()
    assert {s.symbol: s.weight for s in decision.signals} == pytest.approx(expected.to_dict())


def test_preloaded_history_makes_the_engine_ready_at_the_first_row():
    bars = gappy_bars(30)
    feed = ReplayFeed(bars, start=bars.index[20])
    assert isinstance(feed, Feed) and len(feed) == 10 and len(feed.history()) == 20
    decisions: list[Decision] = []
    engine = Engine(above_mean, bars.symbols, on_decision=decisions.append)
    assert engine.run(feed) == 10
    assert all(d.ready for d in decisions) and not engine.notices
    full = above_mean(bars).entries.iloc[20:]
    got = pd.DataFrame(False, index=full.index, columns=full.columns)
    for d in decisions:
        for s in d.signals:
            got.loc[d.bar_time, s.symbol] = s.entry
    pd.testing.assert_frame_equal(got, full, check_freq=False, check_names=False)


def test_rows_are_aligned_to_the_engine_symbols():
    bars = gappy_bars(8)
    engine = Engine(always, ["CCC", "AAA", "BBB", "ZZZ"], timeframe="1Min")
    for row in rows_of(bars):
        engine.on_bars(row)
    window = engine.window.bars()
    pd.testing.assert_series_equal(window.close["CCC"], bars.close["CCC"], check_freq=False,
                                   check_names=False)
    assert window.close["ZZZ"].isna().all()
    stranger = BarRow.from_mapping(bars.index[-1] + pd.Timedelta(minutes=1), ["QQQ"],
                                   {"QQQ": (1, 1, 1, 1, 10)})
    with pytest.raises(DataError, match="does not trade"):
        engine.on_bars(stranger)


def test_bar_row_from_a_mapping():
    row = BarRow.from_mapping("2026-11-16 14:31", ["A", "B"], {"B": (1.0, 2.0, 0.5, 1.5, 100)})
    assert row.time == pd.Timestamp("2026-11-16 14:31", tz="UTC")
    assert np.isnan(row.close[0]) and row.close[1] == 1.5 and row.present.tolist() == [False, True]
    with pytest.raises(DataError):
        BarRow.from_mapping(T0, ["A"], {"C": (1, 1, 1, 1, 1)})


def test_window_must_exceed_the_warmup():
    with pytest.raises(ConfigError, match="above the strategy's warmup"):
        Engine(above_mean, ["A"], window=5)
    assert Engine(above_mean, ["A"]).window.capacity == 5 + 2048
    assert Engine(above_mean, ["A"], margin=10).window.capacity == 15


def test_bar_close_is_cut_at_the_session_close():
    tf = wb.data.Timeframe
    assert bar_close(T0, tf.parse("1Min")) == T0 + pd.Timedelta(minutes=1)
    last_hour = pd.Timestamp("2026-11-16 20:30", tz="UTC")  # 15:30 New York
    assert bar_close(last_hour, tf.parse("1Hour")) == pd.Timestamp("2026-11-16 21:00", tz="UTC")
    day = pd.Timestamp("2026-11-16 05:00", tz="UTC")  # midnight New York
    assert bar_close(day, tf.parse("1Day")) == pd.Timestamp("2026-11-16 21:00", tz="UTC")


# -- window length: why the window is anchored --------------------------------------------
@pytest.fixture(scope="module")
def minute_bars() -> Bars:
    return Bars.from_long(synthesize(8, 2, "1Min", 11, "2026-11-20"), "1Min")


def test_recomputing_an_sma_on_a_sliding_window_gives_the_whole_historys_signals(minute_bars):
    """wb.ta.SMA is a function of its window: recomputed on the last 80 rows, a cent price
    against its SMA ties as over the whole history (TA-Lib's running total flipped it)."""
    anchored = check_parity(above_mean, minute_bars, {"n": 20}, margin=100, incremental=False)
    sliding = check_parity(above_mean, minute_bars, {"n": 20}, window=80, incremental=False)
    assert anchored.ok and anchored.anchored and anchored.window == len(minute_bars)
    assert not sliding.anchored and sliding.ok and sliding.mismatches == 0
    carried = check_parity(above_mean, minute_bars, {"n": 20}, window=80)
    assert not carried.anchored and carried.ok and carried.mismatches == 0
    sma = wb.ta.SMA(minute_bars.close, 20)
    ties = (minute_bars.close == sma).to_numpy().sum()
    assert ties > 0  # the prices hold exact ties, which a last-bit difference would flip


def test_a_short_sliding_window_breaks_indicators_with_memory(minute_bars):
    @wb.strategy(warmup=15)
    def rsi_level(bars, period: int = 14):
        return wb.Signals(entries=wb.ta.RSI(bars.close, period) > 50)

    anchored = check_parity(rsi_level, minute_bars, incremental=False)
    short = check_parity(rsi_level, minute_bars, window=20, incremental=False)
    assert anchored.ok and anchored.anchored
    assert not short.ok and not short.anchored  # Wilder's RSI remembers where it started
    assert short.first.field == "entries" and short.first.time > minute_bars.index[20]
    carried = check_parity(rsi_level, minute_bars, window=20)  # the RSI's state carried
    assert carried.ok and not carried.anchored


def test_a_sim_clock_replay_moves_forward_only(minute_bars):
    clock = SimClock(minute_bars.index[-1] + pd.Timedelta(hours=1))
    engine = Engine(always, minute_bars.symbols, clock=clock)
    with pytest.raises(ValueError, match="cannot go back"):
        engine.run(ReplayFeed(minute_bars))


# -- rows evaluated per bar (issue 10) ------------------------------------------------------
def _ran(strategy, bars: Bars, **kw) -> Engine:
    engine = Engine(strategy, bars.symbols, timeframe="1Min", log_notices=False, **kw)
    engine.run(ReplayFeed(bars))
    return engine


def test_the_strategy_runs_on_warmup_plus_one_rows_when_every_indicator_is_carried(minute_bars):
    seen: list[int] = []

    @wb.strategy(warmup=20)
    def sized(bars, n: int = 20):
        seen.append(len(bars))
        return above_mean.fn(bars, n)

    engine = _ran(sized, minute_bars)
    assert seen[0] == 21 and set(seen[1:]) == {21}  # the first on the whole window (21 rows)
    assert engine.eval_rows == 21 and engine.stream.steps > 0 and engine.stream.restarts == 0
    assert _ran(sized, minute_bars, incremental=False).eval_rows is None


def test_other_functions_add_their_convergence_rows_and_unknown_ones_unbound_loudly(minute_bars):
    @wb.strategy(warmup=10)
    def ema_level(bars):
        return wb.Signals(entries=bars.close > wb.ta.EMA(bars.close, 10))

    @wb.strategy(warmup=10)
    def kama_level(bars):
        return wb.Signals(entries=bars.close > wb.ta.KAMA(bars.close, 10))

    need = 11 + wb.ta.convergence("EMA", {"timeperiod": 10})  # counted in each symbol's bars
    rows = _ran(ema_level, minute_bars).eval_rows
    bars_in = minute_bars.close.notna().to_numpy()
    assert rows >= need and bars_in[-rows:].sum(axis=0).min() >= need
    assert rows == need or bars_in[-(rows - 1):].sum(axis=0).min() < need  # the fewest rows
    engine = _ran(kama_level, minute_bars)
    assert engine.eval_rows is None
    assert any(n.startswith("engine_window_unbounded") and "KAMA" in n for n in engine.notices)


def test_a_branch_that_changes_the_calls_restarts_on_the_whole_window_and_says_so(minute_bars):
    @wb.strategy(warmup=20)
    def switching(bars, n: int = 20):
        if len(bars) > 0 and bars.index[-1].minute % 7 == 0:  # an extra call now and then
            wb.ta.SMA(bars.close, 3)
        return above_mean.fn(bars, n)

    report = check_parity(switching, minute_bars)
    assert report.ok and report.mismatches == 0
    engine = _ran(switching, minute_bars)
    assert engine.stream.restarts > 0
    assert any(n.startswith("engine_state_restart") for n in engine.notices)



def test_a_primed_engine_decides_its_first_bar_on_the_bounded_rows_with_the_same_signals(
        minute_bars):
    """``prime`` evaluates the preloaded history once at the start, so the first bar is
    evaluated on the bounded rows like any other (not on the whole window, the slowest bar
    of a session); the signals are those of the unprimed engine, bar for bar."""
    start = minute_bars.index[len(minute_bars) // 2]

    def run(primed: bool) -> tuple[list[int], list[tuple], int | None, int]:
        seen: list[int] = []

        @wb.strategy(warmup=20)
        def sma_cross(bars, n: int = 20):
            seen.append(len(bars))
            return above_mean.fn(bars, n)

        decisions: list[Decision] = []
        engine = Engine(sma_cross, minute_bars.symbols, timeframe="1Min", log_notices=False,
                        on_decision=decisions.append)
        feed = ReplayFeed(minute_bars, start=start)
        engine.preload(feed.history())
        if primed:
            assert engine.prime() and not engine.prime()  # once
        bounded, at_start = engine.eval_rows, len(seen)
        for row in feed:
            engine.on_bars(row)
        return seen[at_start:], [(d.bar_time, d.signals) for d in decisions], bounded, \
            len(feed.history()) + 1

    primed_rows, primed, bounded, window = run(True)
    cold_rows, cold, unbounded, _ = run(False)
    assert unbounded is None and cold_rows[0] == window  # the whole window at the first bar
    assert primed_rows[0] == bounded < window  # primed: the bounded rows
    assert primed == cold and sum(len(s) for _, s in primed) > 0
