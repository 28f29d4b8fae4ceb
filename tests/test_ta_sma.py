"""wb.ta.SMA's tree sum (workbench/ta/_sma.py): a value is a fixed function of its window's
values (the same values give the same bits at any offset, after any history, in any
column), as accurate as a sum can be to a few units in the last place, and the live
engine's ring sum gives the same bits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

import workbench as wb
from workbench.ta import _sma
from workbench.ta._sma import sma, sma_present, tail_sum

PERIODS = (2, 3, 4, 5, 7, 8, 10, 13, 16, 20, 30, 31, 33, 50, 64, 100, 127, 200, 250)


def _cents(rng, size, level=50.0) -> np.ndarray:
    return np.round(level + np.cumsum(rng.normal(0, 0.2, size)), 2)


@pytest.mark.parametrize("n", PERIODS)
def test_the_same_window_gives_the_same_bits_at_any_offset_after_any_history(n):
    rng = np.random.default_rng(n)
    window = _cents(rng, n)
    want = None
    for before in (0, 1, n - 1, n, 3 * n + 5, 1000):
        history = _cents(rng, before, level=rng.choice([0.5, 50.0, 1e6]))  # any magnitude
        got = sma(np.concatenate([history, window]), n)[-1]
        want = got if want is None else want
        assert got.tobytes() == want.tobytes(), (n, before)
    # the window in every position of a longer array: the bits of each window are its own
    x = _cents(rng, 3 * n + 7)
    ours = sma(x, n)
    for end in range(n - 1, x.size, max(1, n // 3)):
        alone = sma(x[end - n + 1 : end + 1], n)[-1]
        assert ours[end].tobytes() == alone.tobytes(), (n, end)
    # the engine's ring sum of the same values
    assert (tail_sum(window[None, :])[0] / n).tobytes() == want.tobytes()


@pytest.mark.parametrize("n", PERIODS)
def test_ring_sum_equals_the_windowed_sum(n):
    rng = np.random.default_rng(100 + n)
    x = _cents(rng, 4 * n + 3)
    windows = np.lib.stride_tricks.sliding_window_view(x, n)
    np.testing.assert_array_equal(tail_sum(windows) / n, sma(x, n)[n - 1 :])


def test_a_symbol_does_not_depend_on_the_other_symbols_or_its_holes():
    """The frame path packs each symbol's present values into one matrix pass: a column's
    values are the column's alone (as a Series, or compacted by hand)."""
    rng = np.random.default_rng(3)
    c = np.round(50 + np.cumsum(rng.normal(0, 0.2, (700, 9)), axis=0), 2)
    c[rng.uniform(size=c.shape) < 0.2] = np.nan
    c[:650, 1] = np.nan  # too few bars for SMA(30) until late
    c[:, 2] = np.nan  # never trades
    c[:, 3] *= 1e4  # another magnitude
    frame = pd.DataFrame(c, columns=[f"S{i}" for i in range(9)])
    for n in (10, 30, 250):
        out = wb.ta.SMA(frame, n).to_numpy()
        for j in range(c.shape[1]):
            alone = wb.ta.SMA(frame.iloc[:, j], n).to_numpy()
            assert alone.tobytes() == out[:, j].tobytes(), (n, j)
            rows = np.flatnonzero(~np.isnan(c[:, j]))
            want = np.full(c.shape[0], np.nan)
            want[rows] = sma(c[rows, j], n)
            assert want.tobytes() == out[:, j].tobytes(), (n, j)
        dense = frame.ffill().fillna(1.0)  # no holes: the rows are not packed
        got = wb.ta.SMA(dense, n).to_numpy()
        for j in range(c.shape[1]):
            assert got[:, j].tobytes() == sma(dense.iloc[:, j].to_numpy(), n).tobytes()


@pytest.mark.parametrize("tile", [1, 7, 64, 1000])
def test_tiles_and_chunks_do_not_change_a_bit(monkeypatch, tile):
    """Small tiles (window ends per tile, rows per chunk) against the default: every tile
    and chunk boundary falls inside windows, and inside a symbol's head."""
    rng = np.random.default_rng(21)
    c = np.round(50 + np.cumsum(rng.normal(0, 0.2, (12, 300)), axis=1), 2)
    holed = c.copy()
    holed[rng.uniform(size=c.shape) < 0.3] = np.nan
    holed[3, :290] = np.nan
    want = {(n, k): (sma(c[0], n), sma_present(m, n))
            for n in (2, 5, 30) for k, m in (("dense", c), ("holed", holed))}
    monkeypatch.setattr(_sma, "_TILE", tile)
    for (n, k), (one, rows) in want.items():
        m = c if k == "dense" else holed
        assert sma(c[0], n).tobytes() == one.tobytes(), (n, tile)
        assert sma_present(m, n).tobytes() == rows.tobytes(), (n, k, tile)


def test_a_nan_inside_a_window_makes_it_nan_and_the_head_is_talibs():
    x = np.arange(40.0)
    x[17] = np.nan
    out = sma(x, 8)
    assert np.isnan(out[:7]).all() and not np.isnan(out[7:17]).any()
    assert np.isnan(out[17:25]).all() and not np.isnan(out[25:]).any()
    assert np.isnan(sma(np.arange(7.0), 8)).all() and sma(np.arange(0.0), 8).shape == (0,)
    np.testing.assert_array_equal(np.isnan(sma(np.arange(40.0), 8)),
                                  np.isnan(talib.SMA(np.arange(40.0), 8)))


@pytest.mark.parametrize("kind", ["cents", "uniform", "magnitudes"])
def test_within_a_few_ulps_of_the_exact_mean_and_no_worse_than_talib(kind):
    """Pairwise summation: a few units in the last place of the exactly rounded mean
    (math.fsum); TA-Lib's running total drifts by more."""
    rng = np.random.default_rng(9)
    x = {"cents": _cents(rng, 6000),
         "uniform": rng.uniform(1, 100, 6000),
         "magnitudes": rng.uniform(1, 100, 6000) * 10.0 ** rng.integers(-2, 4, 6000)}[kind]
    for n in (2, 10, 30, 200):
        exact = np.array([math.fsum(x[i - n + 1 : i + 1]) / n for i in range(n - 1, x.size)])
        ulp = np.spacing(exact)
        ours = np.abs(sma(x, n)[n - 1 :] - exact) / ulp
        theirs = np.abs(talib.SMA(x, n)[n - 1 :] - exact) / ulp
        assert ours.max() <= 4, (n, ours.max())  # 3 at most seen here
        assert ours.max() <= theirs.max(), (n, ours.max(), theirs.max())


def test_bad_periods_are_refused():
    with pytest.raises(ValueError, match=r"timeperiod must be an integer 2\.\.100000, got 1"):
        sma(np.arange(5.0), 1)
    with pytest.raises(ValueError, match="got 2.5"):
        sma_present(np.zeros((2, 5)), 2.5)
    with pytest.raises(ValueError, match="2-D"):
        sma_present(np.zeros(5), 2)
    frame = pd.DataFrame({"A": [np.nan, 1.0, 2.0], "B": np.nan})
    with pytest.raises(wb.StrategyError, match=r"wb\.ta\.SMA\(timeperiod=0\) failed"):
        wb.ta.SMA(frame, 0)  # a hole in the frame: the packed path says it too
