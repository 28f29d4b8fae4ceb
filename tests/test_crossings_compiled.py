"""The compiled crossing pass equals the numpy one, and only runs where numba is loaded."""

from __future__ import annotations

import operator
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.crossings import _crossings
from workbench.crossings.compiled import crossings

NAN = np.nan
VALUES = st.one_of(st.none(), st.integers(0, 4).map(float), st.sampled_from([np.inf, -np.inf]))


def both(av: np.ndarray, bv: np.ndarray, above: bool) -> None:
    """Numpy's and the compiled pass's crossings and states, asserted identical."""
    want, want_state = _crossings(av, bv, operator.gt if above else operator.lt)
    got, state = crossings(np.ascontiguousarray(av.T), np.ascontiguousarray(bv.T), above)
    np.testing.assert_array_equal(got.T, want)
    np.testing.assert_array_equal(state, want_state)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.integers(1, 4).flatmap(lambda k: st.lists(st.lists(VALUES, min_size=2 * k, max_size=2 * k),
                                                 min_size=n, max_size=n)),
    st.booleans(), st.sampled_from([0.0, 2.0, NAN, np.inf]))))
def test_compiled_equals_numpy_on_random_frames(case):
    rows, scalar_b, level = case
    k = len(rows[0]) // 2 if rows else 2
    arr = np.array([[NAN if v is None else v for v in r] for r in rows]).reshape(len(rows), 2 * k)
    av = np.asfortranarray(arr[:, :k])
    for above in (True, False):
        if scalar_b:
            bv = np.full_like(av, level)
            want, want_state = _crossings(av, bv, operator.gt if above else operator.lt)
            got, state = crossings(np.ascontiguousarray(av.T), np.full((1, len(av)), level), above)
            np.testing.assert_array_equal(got.T, want)
            np.testing.assert_array_equal(state, want_state)
        else:
            both(av, np.asfortranarray(arr[:, k:]), above)


def test_compiled_equals_numpy_on_moving_averages_with_holes():
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (3000, 40)), axis=0))
    close[rng.random(close.shape) < 0.02] = NAN  # missing bars
    close[500:900, 3] = NAN  # a long halt
    close[:, 5] = NAN  # a symbol with no bars
    close[:1200, 6] = NAN  # listed late
    fast = pd.DataFrame(close).rolling(5).mean().to_numpy(copy=True)
    slow = pd.DataFrame(close).rolling(20).mean().to_numpy(copy=True)
    fast[::97, 7] = slow[::97, 7]  # ties: touching is not crossing
    for above in (True, False):
        both(fast, slow, above)
        both(fast, np.full_like(fast, 100.0), above)


def test_public_calls_take_the_compiled_pass_once_numba_is_loaded():
    """With numba loaded (as in a backtest), DataFrames in either memory order, a Series and
    a level give the numpy path's values."""
    import numba  # noqa: F401  (the condition for the compiled pass)

    rng = np.random.default_rng(3)
    idx = pd.date_range("2026-01-05 14:30", periods=400, freq="1min", tz="UTC")
    a_values = rng.normal(0, 1, (400, 6)).cumsum(axis=0)
    a_values[rng.random(a_values.shape) < 0.1] = NAN
    b_values = rng.normal(0, 1, (400, 6)).cumsum(axis=0)
    cols = list("ABCDEF")
    a = pd.DataFrame(a_values, index=idx, columns=cols)
    a_c = pd.DataFrame(np.ascontiguousarray(a_values), index=idx, columns=cols, copy=False)
    b = pd.DataFrame(b_values, index=idx, columns=cols)
    for fn, beyond in ((wb.crossed_above, operator.gt), (wb.crossed_below, operator.lt)):
        want = _crossings(a_values, b_values, beyond)[0]
        np.testing.assert_array_equal(fn(a, b).to_numpy(), want)
        np.testing.assert_array_equal(fn(a_c, b).to_numpy(), want)
        level = _crossings(a_values, np.full_like(a_values, 0.5), beyond)[0]
        np.testing.assert_array_equal(fn(a, 0.5).to_numpy(), level)
        series = fn(a["C"], b["C"])
        assert isinstance(series, pd.Series) and series.name == "C"
        np.testing.assert_array_equal(series.to_numpy(), want[:, 2])
        assert fn(a, b).dtypes.eq(bool).all()
        assert fn(a.iloc[:0], 0.5).shape == (0, 6)  # no rows: an empty result
    assert "workbench.crossings.compiled" in sys.modules


def test_the_helpers_never_load_numba_themselves():
    """Without numba loaded (a live session, a fresh notebook) a call, in a CrossStream (the
    engine) or not, computes with numpy and loads neither numba nor the compiled pass."""
    code = textwrap.dedent("""
        import sys
        import numpy as np, pandas as pd
        import workbench as wb
        from workbench.engine.engine import Engine  # noqa: F401  (the live engine's imports)
        from workbench.crossings import CrossStream
        idx = pd.date_range("2026-01-05 14:30", periods=2000, freq="1min", tz="UTC")
        a = pd.DataFrame(np.random.default_rng(1).normal(size=(2000, 300)), index=idx)
        up = wb.crossed_above(a, 0.0)
        stream = CrossStream()
        for end in (1999, 2000):
            with stream.active():
                down = wb.crossed_below(a.iloc[:end], 0.0)
        assert stream.steps == 1 and up.to_numpy().any() and down.to_numpy().any()
        assert wb.crossed_above(a.iloc[:0], 0.0).shape == (0, 300)  # no rows: empty
        loaded = [m for m in ("numba", "workbench.crossings.compiled") if m in sys.modules]
        assert not loaded, loaded
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
