"""wb.ta: TA-Lib column-wise over symbols, on each symbol's present bars."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.data.synth import synthesize
from workbench.ta import UnknownIndicatorError


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    """Two days of minute bars for six symbols; thin symbols leave NaN holes."""
    return wb.Bars.from_long(synthesize(6, 2, "1Min", seed=7))


@pytest.fixture(scope="module")
def dense(bars) -> wb.Bars:
    """The same bars with no holes."""
    return wb.Bars(*(getattr(bars, f).ffill().bfill() for f in ("open", "high", "low", "close", "volume")))


def _pairwise(values: list[float]) -> float:
    """A block of 2**j values: its older half's sum plus its newer half's."""
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return _pairwise(values[:half]) + _pairwise(values[half:])


def tree_sum(window: list[float]) -> float:
    """The window cut into the blocks of len(window)'s binary decomposition, the smallest
    holding the newest values; block sums added from the newest block to the oldest."""
    n, total, end, width = len(window), None, len(window), 1
    while end:
        if n & width:
            s = _pairwise(window[end - width : end])
            total = s if total is None else total + s
            end -= width
        width *= 2
    return total


def window_mean(real: np.ndarray, timeperiod: int = 30) -> np.ndarray:
    """The reference SMA, written from workbench/ta/_sma.py's definition: each window's
    tree sum (in Python floats, one window at a time) over n."""
    out = np.full(len(real), np.nan)
    for t in range(timeperiod - 1, len(real)):
        out[t] = tree_sum(real[t - timeperiod + 1 : t + 1].tolist()) / timeperiod
    return out


REFERENCE = {"SMA": window_mean}  # wb.ta's own functions; every other one is TA-Lib's


def expected(fn, *frames: pd.DataFrame, **params) -> list[pd.DataFrame]:
    """TA-Lib per column on the rows where every input is present; NaN elsewhere."""
    outs = None
    for sym in frames[0].columns:
        cols = [f[sym].to_numpy(dtype=float) for f in frames]
        rows = np.flatnonzero(np.logical_and.reduce([~np.isnan(c) for c in cols]))
        res = fn(*(c[rows] for c in cols), **params)
        res = res if isinstance(res, tuple) else (res,)
        if outs is None:
            outs = [pd.DataFrame(np.nan, index=frames[0].index, columns=frames[0].columns) for _ in res]
        for o, r in zip(outs, res):
            o.iloc[rows, o.columns.get_loc(sym)] = r
    return outs


def assert_same(got, want: list[pd.DataFrame]) -> None:
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.index.equals(w.index) and g.columns.equals(w.columns)
        np.testing.assert_array_equal(g.to_numpy(), w.to_numpy())


def test_holes_are_present(bars):
    assert bars.close.isna().any().any()  # the fixture exercises the gap path


CASES = [
    ("SMA", ("close",), {"timeperiod": 10}),
    ("EMA", ("close",), {"timeperiod": 12}),
    ("RSI", ("close",), {"timeperiod": 14}),
    ("MACD", ("close",), {"fastperiod": 5, "slowperiod": 13, "signalperiod": 4}),
    ("BBANDS", ("close",), {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 1.5}),
    ("ATR", ("high", "low", "close"), {"timeperiod": 14}),
    ("ADX", ("high", "low", "close"), {"timeperiod": 14}),
    ("STOCH", ("high", "low", "close"), {"fastk_period": 7}),
    ("KAMA", ("close",), {"timeperiod": 10}),          # generic: not in the explicit list
    ("WILLR", ("high", "low", "close"), {"timeperiod": 9}),
    ("OBV", ("close", "volume"), {}),
    ("MAMA", ("close",), {}),
    ("CDLDOJI", ("open", "high", "low", "close"), {}),  # integer output
]


@pytest.mark.parametrize("which", ["dense", "bars"])
@pytest.mark.parametrize(("name", "fields", "params"), CASES, ids=[c[0] for c in CASES])
def test_equals_talib_per_column(request, which, name, fields, params):
    b = request.getfixturevalue(which)
    frames = [getattr(b, f) for f in fields]
    want = expected(REFERENCE.get(name, getattr(talib, name)), *frames, **params)
    assert_same(getattr(wb.ta, name)(*frames, **params), want)
    assert_same(wb.ta.call(name, *frames, **params), want)
    assert_same(getattr(wb.ta, name)(b, **params), want)  # the Bars as single input


def test_positional_parameters_and_defaults(bars):
    c = bars.close
    assert_same(wb.ta.SMA(c, 10), expected(window_mean, c, timeperiod=10))
    assert_same(wb.ta.SMA(c), expected(window_mean, c))
    assert_same(wb.ta.ATR(bars, 5), expected(talib.ATR, bars.high, bars.low, bars.close, timeperiod=5))
    assert_same(wb.ta.ATR(high=bars.high, low=bars.low, close=bars.close, timeperiod=5),
                expected(talib.ATR, bars.high, bars.low, bars.close, timeperiod=5))
    assert_same(wb.ta.SMA(c, np.int64(10)), [wb.ta.SMA(c, 10.0)])  # numpy / integral float


def test_named_outputs(bars):
    macd = wb.ta.MACD(bars.close)
    assert macd._fields == ("macd", "signal", "hist")
    assert isinstance(macd.signal, pd.DataFrame)
    assert wb.ta.BBANDS(bars.close)._fields == ("upper", "middle", "lower")
    assert wb.ta.STOCH(bars)._fields == ("slowk", "slowd")
    assert wb.ta.MAMA(bars.close)._fields == ("mama", "fama")


def test_gap_semantics_sma_is_mean_of_last_present_bars():
    idx = pd.date_range("2026-01-05 14:30", periods=8, freq="1min", tz="UTC")
    x = pd.DataFrame({"A": [1, 2, np.nan, 3, np.nan, np.nan, 4, 5.0], "B": np.arange(8.0)}, index=idx)
    out = wb.ta.SMA(x, 3)
    np.testing.assert_array_equal(out["A"], [np.nan, np.nan, np.nan, 2, np.nan, np.nan, 3, 4])
    np.testing.assert_array_equal(out["B"], talib.SMA(np.arange(8.0), 3))
    compact = x["A"].dropna().to_numpy()
    np.testing.assert_array_equal(out["A"].dropna(), talib.SMA(compact, 3)[2:])


def test_nan_row_in_the_middle_equals_talib_on_compacted(dense):
    c = dense.close.copy()
    c.iloc[100, 2] = np.nan
    c.iloc[200:205, 4] = np.nan
    out = wb.ta.EMA(c, 20)
    for j in (2, 4):
        col = c.iloc[:, j]
        want = talib.EMA(col.dropna().to_numpy(), 20)
        assert out.iloc[:, j].isna()[col.isna()].all()
        np.testing.assert_array_equal(out.iloc[:, j][col.notna()].to_numpy(), want)
    assert out.iloc[-1].notna().all()  # no NaN carried forward after the hole


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(1, 100)), min_size=1, max_size=40),
       st.integers(2, 6))
def test_sma_on_random_holes(values, period):
    col = np.array([np.nan if v is None else v for v in values])
    out = wb.ta.SMA(pd.Series(col), period).to_numpy()
    present = ~np.isnan(col)
    assert np.isnan(out[~present]).all()
    if present.any():
        np.testing.assert_array_equal(out[present], window_mean(col[present], period))


def test_series_in_series_out_and_ints_converted(dense):
    s = dense.close.iloc[:, 0]
    out = wb.ta.RSI(s, 14)
    assert isinstance(out, pd.Series) and out.name == s.name and out.index.equals(s.index)
    np.testing.assert_array_equal(out, talib.RSI(s.to_numpy(), 14))
    ints = (dense.volume.iloc[:50] // 1).astype("int64")
    np.testing.assert_array_equal(wb.ta.SMA(ints, 5), wb.ta.SMA(ints.astype(float), 5))


def test_all_nan_column_and_empty_frame():
    idx = pd.date_range("2026-01-05 14:30", periods=5, freq="1min", tz="UTC")
    x = pd.DataFrame({"A": np.nan, "B": np.arange(5.0)}, index=idx)
    assert wb.ta.SMA(x, 2)["A"].isna().all()
    assert wb.ta.SMA(x.iloc[:0], 2).shape == (0, 2)


def test_unknown_function_suggests_closest():
    with pytest.raises(wb.StrategyError, match="did you mean SMA"):
        wb.ta.call("SMAA", None)
    with pytest.raises(UnknownIndicatorError, match="did you mean KAMA"):
        wb.ta.kama  # noqa: B018
    assert not hasattr(wb.ta, "NOT_A_FUNCTION")
    assert "KAMA" in dir(wb.ta) and "SMA" in wb.ta.__all__


def test_argument_errors(bars):
    with pytest.raises(wb.StrategyError, match="did you mean timeperiod"):
        wb.ta.SMA(bars.close, timeperod=10)
    with pytest.raises(wb.StrategyError, match="low is missing"):
        wb.ta.ATR(bars.close, 14)
    with pytest.raises(wb.StrategyError, match="not aligned"):
        wb.ta.ATR(bars.high, bars.low.iloc[1:], bars.close)
    with pytest.raises(wb.StrategyError, match="must be an integer"):
        wb.ta.SMA(bars.close, 2.5)
    with pytest.raises(wb.StrategyError, match="too many arguments"):
        wb.ta.SMA(bars.close, 10, 20)
    with pytest.raises(wb.StrategyError, match="given twice"):
        wb.ta.SMA(bars.close, 10, timeperiod=20)
    with pytest.raises(wb.StrategyError, match=r"timeperiod must be an integer 2\.\.100000, got 0"):
        wb.ta.SMA(bars.close, 0)
    with pytest.raises(wb.StrategyError, match="TA_BAD_PARAM"):  # TA-Lib's own, for the rest
        wb.ta.EMA(bars.close, 0)
    with pytest.raises(wb.StrategyError, match="DataFrame or Series"):
        wb.ta.SMA(real=[1.0, 2.0])


def test_signature_for_notebooks():
    assert list(inspect.signature(wb.ta.ATR).parameters) == ["high", "low", "close", "timeperiod"]
    assert inspect.signature(wb.ta.KAMA).parameters["timeperiod"].default == 30
    assert "Kaufman" in wb.ta.KAMA.__doc__


def test_wide_frame_with_holes_stays_symbol_major():
    rng = np.random.default_rng(0)
    n_s, n_t = 1000, 2500
    symbol_major = rng.standard_normal((n_s, n_t)).cumsum(axis=1) + 100  # as Bars stores it
    close = pd.DataFrame(symbol_major.T, columns=[f"S{i}" for i in range(n_s)], copy=False)
    close.iloc[::97, ::3] = np.nan  # holes in a third of the columns
    out = wb.ta.SMA(close, 10)
    assert out.to_numpy().T.flags.c_contiguous  # outputs stay symbol-major for the next call
    np.testing.assert_allclose(out.iloc[-1, 1], close.iloc[-10:, 1].mean())


def test_every_talib_function_matches_on_a_symbol_with_holes(bars):
    """Generic access: all of talib.get_functions() from a Bars, one column checked."""
    col = int(bars.close.isna().sum().to_numpy().argmax())  # the holiest symbol
    for name in wb.ta.functions():
        sp = wb.ta._engine.spec(name)
        if None in sp.fields:  # MAVP's periods: not a Bars field
            continue
        got = getattr(wb.ta, name)(bars)
        got = got if isinstance(got, tuple) else (got,)
        frames = [getattr(bars, f).iloc[:, [col]] for f in sp.fields]
        for g, w in zip(got, expected(sp.fn, *frames), strict=True):
            np.testing.assert_array_equal(g.iloc[:, [col]].to_numpy(), w.to_numpy(), err_msg=name)


def test_input_that_is_not_a_bars_field(bars):
    periods = bars.close * 0 + 5
    want = expected(talib.MAVP, bars.close, periods, minperiod=2, maxperiod=10)
    assert_same(wb.ta.MAVP(bars.close, periods, maxperiod=10), want)
    with pytest.raises(wb.StrategyError, match="periods is not a Bars field"):
        wb.ta.MAVP(bars)


def test_indicator_cache_computes_each_distinct_call_once(bars):
    from workbench.ta import indicator_cache

    with indicator_cache() as cache:
        first = wb.ta.SMA(bars.close, 10)
        first.iloc[:, 0] = -1.0  # a strategy scribbling on its result must not poison the cache
        again = wb.ta.SMA(bars.close, 10)
        other = wb.ta.SMA(bars.close, 20)
        macd = wb.ta.MACD(bars.close)
        macd_again = wb.ta.MACD(bars.close)
    assert (cache.hits, cache.misses, len(cache)) == (2, 3, 3)
    pd.testing.assert_frame_equal(again, wb.ta.SMA(bars.close, 10))
    assert not again.equals(other)
    pd.testing.assert_frame_equal(macd.hist, macd_again.hist)
    outside = wb.ta.SMA(bars.close, 10)  # no cache outside the block
    assert outside is not again


def test_sma_is_within_a_few_ulps_of_talib():
    """wb.ta.SMA sums each window by itself; TA-Lib carries a running total. Same values but
    for the last bits of the running total's rounding."""
    rng = np.random.default_rng(11)
    x = np.round(50 + np.cumsum(rng.normal(0, 0.2, 20_000)), 2)
    for n in (2, 10, 30, 200):
        ours, theirs = wb.ta.SMA(pd.Series(x), n).to_numpy(), talib.SMA(x, n)
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))
        assert np.nanmax(np.abs(ours - theirs) / theirs) < 1e-13


def test_sma_at_a_bar_does_not_depend_on_the_history_before_its_window():
    """The same bar after histories of different lengths gives the same bits (cent prices,
    holes, a flat stretch where fast and slow averages tie exactly); TA-Lib's running
    total does not, which flipped crossings on ties."""
    rng = np.random.default_rng(12)
    c = np.round(50 + np.cumsum(rng.normal(0, 0.05, (3000, 6)), axis=0), 2)
    c[1000:1100, :2] = c[999, :2]
    c[rng.uniform(size=c.shape) < 0.15] = np.nan
    close = pd.DataFrame(c, index=pd.date_range("2026-11-02 14:30", periods=3000, freq="min",
                                                tz="UTC"), columns=list("ABCDEF"))
    for n in (10, 30):
        full = wb.ta.SMA(close, n)
        talib_full = expected(talib.SMA, close, timeperiod=n)[0]
        talib_differs = 0
        for cut in (1, 389, 1000, 2500):
            tail = close.iloc[cut:]
            got = wb.ta.SMA(tail, n)
            # rows where the tail holds a full window of each symbol's present bars
            ready = (tail.notna().cumsum() >= n) & tail.notna()
            np.testing.assert_array_equal(got.where(ready).to_numpy(),
                                          full.iloc[cut:].where(ready).to_numpy())
            theirs = expected(talib.SMA, tail, timeperiod=n)[0]
            talib_differs += int((theirs.where(ready) != talib_full.iloc[cut:].where(ready))
                                 .where(ready, False).to_numpy().sum())
        assert talib_differs > 0  # what this guards against is real on these prices
