"""wb.crossed_above / wb.crossed_below: crossings per symbol, skipping NaN rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb

NAN = np.nan


def frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    idx = pd.date_range("2026-01-05 14:30", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in cols.items()}, index=idx)


def naive(a: np.ndarray, b: np.ndarray, above: bool) -> np.ndarray:
    """The definition, one symbol, with a loop."""
    out = np.zeros(len(a), dtype=bool)
    prev = None
    for t in range(len(a)):
        if np.isnan(a[t]) or np.isnan(b[t]):
            continue
        if prev is not None:
            pa, pb = prev
            out[t] = (a[t] > b[t] and pa <= pb) if above else (a[t] < b[t] and pa >= pb)
        prev = (a[t], b[t])
    return out


def test_simple_crossings():
    a = frame(X=[1, 2, 3, 2, 1, 3])
    b = frame(X=[2, 2, 2, 2, 2, 2])
    assert wb.crossed_above(a, b)["X"].tolist() == [False, False, True, False, False, True]
    assert wb.crossed_below(a, b)["X"].tolist() == [False, False, False, False, True, False]


def test_touching_is_not_a_cross_but_leaving_from_equal_is():
    a = frame(X=[1, 2, 2, 3, 2, 2, 1])
    b = frame(X=[2] * 7)
    assert wb.crossed_above(a, b)["X"].tolist() == [False, False, False, True, False, False, False]
    assert wb.crossed_below(a, b)["X"].tolist() == [False, False, False, False, False, False, True]


def test_nan_rows_are_skipped_and_never_true():
    a = frame(X=[1, NAN, NAN, 3, 1, NAN, 0], Y=[3, 1, 3, NAN, 3, 2, 1])
    b = frame(X=[2, 2, 2, 2, NAN, 2, 2], Y=[2, 2, 2, 2, 2, NAN, 2])
    up = wb.crossed_above(a, b)
    down = wb.crossed_below(a, b)
    # X: 1<2 at t0, then gap until t3 where 3>2: a cross over the gap, reported at t3
    assert up["X"].tolist() == [False, False, False, True, False, False, False]
    # X: t4 has b NaN (skipped), t5 a NaN (skipped), t6 0<2 after 3>2 at t3
    assert down["X"].tolist() == [False, False, False, False, False, False, True]
    # Y: 3>2, 1<2 (below), 3>2 (above), NaN, 3>2, NaN, 1<2 (below)
    assert up["Y"].tolist() == [False, False, True, False, False, False, False]
    assert down["Y"].tolist() == [False, True, False, False, False, False, True]
    assert up.dtypes.eq(bool).all() and up.index.equals(a.index) and up.columns.equals(a.columns)


def test_first_row_is_never_a_cross():
    a = frame(X=[NAN, 3, 1])
    assert not wb.crossed_above(a, 2).any().any()
    assert wb.crossed_below(a, 2)["X"].tolist() == [False, False, True]


def test_scalar_level_and_numpy_scalar():
    rsi = frame(A=[50, 65, 72, 68, 75], B=[80, 60, 71, NAN, 69])
    assert wb.crossed_above(rsi, 70).to_numpy().tolist() == [
        [False, False], [False, False], [True, True], [False, False], [True, False],
    ]
    assert wb.crossed_below(rsi, np.float64(70))["B"].tolist() == [False, True, False, False, True]


def test_series_in_series_out():
    a = frame(X=[1, 3, 1])["X"]
    out = wb.crossed_above(a, a * 0 + 2)
    assert isinstance(out, pd.Series) and out.tolist() == [False, True, False] and out.name == "X"


def test_operands_must_align():
    a = frame(X=[1, 2, 3], Y=[1, 2, 3])
    with pytest.raises(wb.StrategyError, match="not aligned"):
        wb.crossed_above(a, a.iloc[1:])
    with pytest.raises(wb.StrategyError, match="not aligned"):
        wb.crossed_above(a, a[["Y", "X"]])
    with pytest.raises(wb.StrategyError, match="or a number"):
        wb.crossed_above(a, a["X"])
    with pytest.raises(wb.StrategyError, match="DataFrame or Series"):
        wb.crossed_above([1, 2], 1)


values = st.one_of(st.none(), st.integers(0, 4).map(float))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(values, values, values, values), min_size=1, max_size=25),
       st.booleans())
def test_matches_a_naive_loop(rows, scalar_b):
    arr = np.array([[NAN if v is None else v for v in r] for r in rows])
    a = frame(P=arr[:, 0], Q=arr[:, 1])
    b = 2.0 if scalar_b else frame(P=arr[:, 2], Q=arr[:, 3])
    for fn, above in ((wb.crossed_above, True), (wb.crossed_below, False)):
        got = fn(a, b)
        for sym in ("P", "Q"):
            bb = np.full(len(a), 2.0) if scalar_b else b[sym].to_numpy()
            np.testing.assert_array_equal(got[sym].to_numpy(), naive(a[sym].to_numpy(), bb, above))


def test_crossings_of_moving_averages_on_synthetic_bars():
    from workbench.data.synth import synthesize

    bars = wb.Bars.from_long(synthesize(4, 2, "1Min", seed=3))
    fast, slow = wb.ta.SMA(bars.close, 5), wb.ta.SMA(bars.close, 20)
    up, down = wb.crossed_above(fast, slow), wb.crossed_below(fast, slow)
    assert up.any().any() and down.any().any()
    assert not (up & down).any().any()
    assert not up[bars.close.isna()].any().any()
