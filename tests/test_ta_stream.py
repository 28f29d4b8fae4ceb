"""wb.ta in the live engine (issue 10): carried state, crossings, convergence rows.

The engine's carried state (SMA, RSI, crossings) must give the whole history's values bit
for bit, on random cent prices with NaN holes, flat stretches
(where RSI's gains and losses decay to nothing, and ties between averages are decided by
the last bit) and symbols that start late or never trade. Functions computed on a
bounded window instead (EMA, ATR, MACD) are held to their measured bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

import workbench as wb
from workbench.crossings import CrossStream
from workbench.ta import Stream, convergence
from workbench.ta._sma import sma


def _prices(seed: int, rows: int = 600, symbols: int = 24, holes: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = np.round(50 + np.cumsum(rng.normal(0, 0.2, (rows, symbols)), axis=0), 2)
    flat = slice(rows // 4, rows // 4 + 80)
    c[flat, :4] = c[rows // 4 - 1, :4]  # flat: averages tie, RSI decays
    c[rng.uniform(size=c.shape) < holes] = np.nan
    c[: rows // 2, 4] = np.nan  # starts late
    c[:, 5] = np.nan  # never trades
    c[-3:, 6] = np.nan  # stops before the end
    index = pd.date_range("2026-11-02 14:30", periods=rows, freq="min", tz="UTC")
    return pd.DataFrame(c, index=index, columns=[f"S{i}" for i in range(symbols)])


def _talib_each(fn, frame: pd.DataFrame, **params) -> np.ndarray:
    """TA-Lib one symbol at a time on its present rows, NaN elsewhere."""
    out = np.full(frame.shape, np.nan)
    for j, sym in enumerate(frame.columns):
        col = frame[sym].to_numpy()
        rows = np.flatnonzero(~np.isnan(col))
        if rows.size:
            out[rows, j] = fn(col[rows], **params)
    return out


def _replay(frame: pd.DataFrame, rows: int, fn, first: int = 60):
    """``fn(window)`` bar by bar on the last ``rows`` rows, the first time on all rows so far."""
    stream, crosses = Stream(), CrossStream()
    for t in range(first, len(frame)):
        lo = 0 if t == first else max(0, t + 1 - rows)
        with stream.active(), crosses.active():
            yield t, lo, fn(frame.iloc[lo : t + 1])
    assert stream.restarts == 0 and crosses.restarts == 0


def test_carried_state_is_the_whole_historys_on_a_short_window():
    close = _prices(4)

    def indicators(w):
        fast, slow, rsi = wb.ta.SMA(w, 10), wb.ta.SMA(w, 30), wb.ta.RSI(w, 14)
        return fast, slow, rsi, wb.crossed_above(fast, slow), wb.crossed_below(rsi, 45.0)

    full = indicators(close)
    checked = 0
    for t, lo, got in _replay(close, 12, indicators):
        for g, f in zip(got, full):
            assert np.array_equal(g.to_numpy(), f.iloc[lo : t + 1].to_numpy(), equal_nan=True), t
        checked += 1
    assert checked == len(close) - 60
    # the short window alone, recomputed, is not the whole history: the state is what counts
    assert not np.array_equal(wb.ta.RSI(close.iloc[-40:], 14).to_numpy(),
                              full[2].iloc[-40:].to_numpy(), equal_nan=True)


def test_a_cross_after_a_gap_longer_than_the_window_is_seen():
    close = _prices(5, rows=200, symbols=8, holes=0.0)
    close.iloc[100:160, 7] = np.nan  # 60 rows without a bar, then a cross
    close.iloc[160:, 7] = close.iloc[99, 7] + 5.0
    level = float(close.iloc[99, 7]) + 1.0
    full = wb.crossed_above(close, level)
    assert full.iloc[160, 7]
    seen = [t for t, lo, got in _replay(close, 10, lambda w: wb.crossed_above(w, level))
            if got.iloc[-1, 7]]
    assert 160 in seen
    assert not wb.crossed_above(close.iloc[151:161], level).iloc[-1, 7]  # recomputed: missed


def test_an_input_that_does_not_continue_restarts_and_is_counted():
    close = _prices(6, rows=120)
    stream = Stream()
    with stream.active():
        wb.ta.SMA(close.iloc[:100], 10)
    changed = close.iloc[:101].copy()
    changed.iloc[50, 0] += 0.01  # history rewritten: the state no longer applies
    with stream.active():
        got = wb.ta.SMA(changed, 10)
    assert stream.restarts == 1 and stream.starts == 2
    assert np.array_equal(got.to_numpy(), _talib_each(sma, changed, timeperiod=10),
                          equal_nan=True)


def test_convergence_rules():
    assert convergence("SMA", {"timeperiod": 30}) == 29  # lookback only
    assert convergence("EMA", {"timeperiod": 30}) == 29 + 551
    assert convergence("ATR", {"timeperiod": 14}) == 14 + 496
    assert convergence("MACD", {}) == 33 + 478 + 165  # the slow EMA(26), then the signal EMA(9)
    assert convergence("ADX", {"timeperiod": 14}) == 27 + 2 * 496
    assert convergence("KAMA", {}) is None and convergence("HT_TRENDLINE", {}) is None
    assert convergence("SMA", {"timeperiod": 3}) == 2
    assert convergence("BBANDS", {"matype": 1}) is None  # an EMA inside: no rule


@pytest.mark.parametrize(("name", "params", "inputs"), [
    ("EMA", {"timeperiod": 30}, ("close",)),
    ("ATR", {"timeperiod": 14}, ("high", "low", "close")),
    ("MACD", {}, ("close",)),
])
def test_functions_on_their_convergence_rows_are_within_a_few_ulps_of_the_whole_history(
        name, params, inputs):
    """Not exact: the start-up difference is below 2**-53 of the value, rounding stays."""
    rng = np.random.default_rng(8)
    n = 3000
    close = np.round(50 + np.cumsum(rng.normal(0, 0.2, n)), 2)
    data = {"close": close, "high": close + np.round(rng.uniform(0, 0.3, n), 2),
            "low": close - np.round(rng.uniform(0, 0.3, n), 2)}
    rows = convergence(name, params)
    fn = getattr(talib, name)
    full = fn(*(data[k] for k in inputs), **params)
    full = full[0] if isinstance(full, tuple) else full
    worst = 0.0
    for end in range(rows + 50, n, 97):
        short = fn(*(data[k][end - rows : end] for k in inputs), **params)
        short = short[0] if isinstance(short, tuple) else short
        a, b = short[-1], full[end - 1]
        worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    scale = 1.0 if name != "MACD" else 1e3  # MACD is a difference of two EMAs: relative to price
    assert worst * (1 / scale) < 1e-13, worst


def test_a_strategy_writing_into_its_indicators_cannot_change_the_carried_values():
    close = _prices(7, rows=150)
    stream, crosses = Stream(), CrossStream()
    full = wb.ta.SMA(close, 5)
    for t in range(100, 110):
        with stream.active(), crosses.active():
            sma = wb.ta.SMA(close.iloc[: t + 1] if t == 100 else close.iloc[t - 9 : t + 1], 5)
            want = full.iloc[: t + 1] if t == 100 else full.iloc[t - 9 : t + 1]
            assert np.array_equal(sma.to_numpy(), want.to_numpy(), equal_nan=True)
            sma.iloc[:, :] = -1.0  # written in place: the next bar must not see it
            crossed = wb.crossed_above(close.iloc[t - 9 : t + 1], 50.0)
            crossed.iloc[:, :] = True
    assert stream.restarts == 0


@pytest.mark.parametrize("n", [2, 7, 30])
def test_sma_started_on_all_rows_at_once_is_stepping_row_by_row(n):
    """The stream's first SMA call computes every row at once: the same values, bit for bit,
    and the same state (ring, counts) as stepping the rows one by one."""
    from workbench.ta._stream import _Sma

    close = _prices(8, rows=120, symbols=10, holes=0.3)
    close.iloc[:115, 7] = np.nan  # fewer than n values
    close.iloc[:120 - n, 8] = np.nan  # exactly n values at most
    mat = np.ascontiguousarray(close.to_numpy().T)
    at_once, stepped = _Sma(n, mat.shape[0]), _Sma(n, mat.shape[0])
    got = at_once.run([mat])
    want = np.stack([stepped.step([mat[:, t]]) for t in range(mat.shape[1])], axis=2)
    assert got.tobytes() == want.tobytes()
    assert np.array_equal(at_once.count, stepped.count)
    assert at_once.ring.tobytes() == stepped.ring.tobytes()
    row = np.round(50 + np.arange(mat.shape[0]) * 0.01, 2)
    assert at_once.step([row]).tobytes() == stepped.step([row]).tobytes()
    with pytest.raises(RuntimeError, match="fresh"):
        at_once.run([mat])
