"""Crossing helpers: ``crossed_above(a, b)`` and ``crossed_below(a, b)``.

    entries = wb.crossed_above(fast_ma, slow_ma)    # bool frame, fast_ma's index and columns

``crossed_above`` is True at row t of a symbol when ``a[t] > b[t]`` and ``a <= b`` at that
symbol's previous row where both were defined. Rows where ``a`` or ``b`` is NaN are skipped,
the way :mod:`workbench.ta` skips a symbol's missing bars, so a cross that happens across
a gap is reported at the first bar after it; a NaN row is never True. ``b`` is a frame of
the same index and columns as ``a``, or a scalar (a level: ``crossed_above(rsi, 70)``).
A Series ``a`` (one symbol) gives a Series.

In the live engine (a :class:`CrossStream` active), a frame's crossings are carried from
bar to bar: each call keeps, per symbol, whether ``a`` was beyond ``b`` at the symbol's
last row with both defined, so the new row is decided from that and not from the rows the
window still holds; a cross after a gap longer than the window is still seen, exactly as a
computation over the whole history sees it. A call whose inputs do not continue the
previous ones (checked bit for bit) is recomputed from its rows (``restarts``).

Outside a stream, when numba is loaded already (a backtest, a sweep: ``wb.backtest`` loads
it), a call runs a compiled pass, one loop per symbol (:mod:`workbench.crossings.compiled`);
otherwise numpy computes it. These helpers never load numba themselves, so the live engine
(the order path) never does, and a notebook's first call costs no compilation. Both give
the same values: the tests hold them equal.
"""

from __future__ import annotations

import contextvars
import numbers
import operator
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from workbench.errors import StrategyError

__all__ = ["CrossStream", "crossed_above", "crossed_below"]


def crossed_above(a: pd.DataFrame | pd.Series, b) -> pd.DataFrame | pd.Series:
    """True where ``a`` moves from at or below ``b`` to strictly above it."""
    return _crossed(a, b, operator.gt, "crossed_above")


def crossed_below(a: pd.DataFrame | pd.Series, b) -> pd.DataFrame | pd.Series:
    """True where ``a`` moves from at or above ``b`` to strictly below it."""
    return _crossed(a, b, operator.lt, "crossed_below")


def _crossed(a, b, beyond: Callable, name: str):
    av, b = _operands(a, b, name)
    stream = _active.get()
    if stream is not None:
        bv = np.full_like(av, b) if isinstance(b, float) else b
        out = stream.call(a, av, bv, beyond) if isinstance(a, pd.DataFrame) else \
            _crossings(av, bv, beyond)[0]
    else:
        out = _compute(av, b, beyond)[0]
    # ``out`` is this call's own array: the result wraps it without a copy
    if isinstance(a, pd.Series):
        return pd.Series(out[:, 0], index=a.index, name=a.name, copy=False)
    return pd.DataFrame(out, index=a.index, columns=a.columns, copy=False)


def _compute(av: np.ndarray, b: np.ndarray | float, beyond: Callable) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_crossings` of ``av`` and ``b`` (an array like ``av`` or a level), by the
    compiled pass when numba is loaded already (module doc), else by numpy."""
    if "numba" in sys.modules:
        from workbench.crossings.compiled import crossings

        bt = np.full((1, len(av)), b) if isinstance(b, float) else np.ascontiguousarray(b.T)
        out, state = crossings(np.ascontiguousarray(av.T), bt, beyond is operator.gt)
        return out.T, state
    return _crossings(av, np.full_like(av, b) if isinstance(b, float) else b, beyond)


def _crossings(av: np.ndarray, bv: np.ndarray, beyond: Callable) -> tuple[np.ndarray, np.ndarray]:
    """The crossings, and per column whether ``a`` was beyond at its last present row."""
    present = ~np.isnan(av) & ~np.isnan(bv)
    now = beyond(av, bv) & present
    # position of each row's previous present row in its column (-1: none yet)
    rows = np.arange(av.shape[0]).reshape(-1, 1)
    last = np.maximum.accumulate(np.where(present, rows, -1), axis=0)
    prev = np.empty_like(last)
    prev[:1] = -1  # (no row at all: an empty result, not an IndexError)
    prev[1:] = last[:-1]
    cols = np.arange(av.shape[1])
    was = np.where(prev >= 0, now[np.maximum(prev, 0), cols], True)
    final = last[-1] if len(last) else np.full(av.shape[1], -1)
    state = np.where(final >= 0, now[np.maximum(final, 0), cols], True) if len(last) else \
        np.ones(av.shape[1], dtype=bool)
    return now & ~was, state


class CrossStream:
    """Crossing state of one engine's ``crossed_above``/``crossed_below`` calls (module doc)."""

    def __init__(self) -> None:
        self._memo: dict[tuple, tuple] = {}
        self._ordinal = 0
        self.steps = 0
        self.starts = 0
        self.restarts = 0

    @contextmanager
    def active(self) -> Iterator[CrossStream]:
        self._ordinal = 0
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def call(self, a: pd.DataFrame, av: np.ndarray, bv: np.ndarray, beyond: Callable) -> np.ndarray:
        self._ordinal += 1
        key = (self._ordinal, beyond)
        times = a.index.asi8
        entry = self._memo.get(key)
        if entry is not None:
            old_times, old_a, old_b, old_out, was, columns = entry
            shift = old_times.size - (times.size - 1)
            if (columns.equals(a.columns) and times.size >= 1 and shift >= 0
                    and (not old_times.size or times[-1] > old_times[-1])
                    and np.array_equal(old_times[shift:], times[:-1])
                    and _same_bits(old_a[shift:], av[:-1]) and _same_bits(old_b[shift:], bv[:-1])):
                x, y = av[-1], bv[-1]
                present = ~np.isnan(x) & ~np.isnan(y)
                now = beyond(x, y) & present
                row = now & ~was
                was = np.where(present, now, was)
                out = np.concatenate([old_out[shift:], row[None]])
                self._memo[key] = (times.copy(), av.copy(), bv.copy(), out, was, columns)
                self.steps += 1
                return out.copy()  # the strategy may write into its frames; the state stays
            self.restarts += 1
        out, was = _crossings(av, bv, beyond)
        self._memo[key] = (times.copy(), av.copy(), bv.copy(), out, was, a.columns)
        self.starts += 1
        return out.copy()


_active: contextvars.ContextVar[CrossStream | None] = contextvars.ContextVar(
    "workbench_cross_stream", default=None
)


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    return x.shape == y.shape and np.array_equal(x.view(np.int64), y.view(np.int64))


def _operands(a, b, name: str) -> tuple[np.ndarray, np.ndarray | float]:
    """``a`` as a 2-D float array, ``b`` as one of the same shape or a float (a level)."""
    if not isinstance(a, (pd.DataFrame, pd.Series)):
        raise StrategyError(f"wb.{name}: a must be a DataFrame or Series, got {type(a).__name__}")
    av = _floats(a, name)
    if isinstance(b, numbers.Real) and not isinstance(b, bool):
        return av, float(b)
    if type(b) is not type(a):
        raise StrategyError(
            f"wb.{name}: b must be a {type(a).__name__} like a or a number, got {type(b).__name__}"
        )
    if not b.index.equals(a.index) or (isinstance(a, pd.DataFrame) and not b.columns.equals(a.columns)):
        raise StrategyError(f"wb.{name}: a and b are not aligned (same index and columns needed)")
    return av, _floats(b, name)


def _floats(x, name: str) -> np.ndarray:
    """``x``'s values as a 2-D float array (a Series as one column)."""
    try:
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise StrategyError(f"wb.{name}: values must be numeric: {e}") from e
    return values.reshape(-1, 1) if values.ndim == 1 else values
