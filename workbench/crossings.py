"""Crossing helpers: ``crossed_above(a, b)`` and ``crossed_below(a, b)``.

    entries = wb.crossed_above(fast_ma, slow_ma)    # bool frame, fast_ma's index and columns

``crossed_above`` is True at row t of a symbol when ``a[t] > b[t]`` and ``a <= b`` at that
symbol's previous row where both were defined. Rows where ``a`` or ``b`` is NaN are skipped,
the way :mod:`workbench.ta` skips a symbol's missing bars, so a cross that happens across
a gap is reported at the first bar after it; a NaN row is never True. ``b`` is a frame of
the same index and columns as ``a``, or a scalar (a level: ``crossed_above(rsi, 70)``).
A Series ``a`` (one symbol) gives a Series.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable

import numpy as np
import pandas as pd

from workbench.errors import StrategyError

__all__ = ["crossed_above", "crossed_below"]


def crossed_above(a: pd.DataFrame | pd.Series, b) -> pd.DataFrame | pd.Series:
    """True where ``a`` moves from at or below ``b`` to strictly above it."""
    return _crossed(a, b, operator.gt, "crossed_above")


def crossed_below(a: pd.DataFrame | pd.Series, b) -> pd.DataFrame | pd.Series:
    """True where ``a`` moves from at or above ``b`` to strictly below it."""
    return _crossed(a, b, operator.lt, "crossed_below")


def _crossed(a, b, beyond: Callable, name: str):
    av, bv = _operands(a, b, name)
    present = ~np.isnan(av) & ~np.isnan(bv)
    now = beyond(av, bv) & present
    # position of each row's previous present row in its column (-1: none yet)
    rows = np.arange(av.shape[0]).reshape(-1, 1)
    last = np.maximum.accumulate(np.where(present, rows, -1), axis=0)
    prev = np.empty_like(last)
    prev[0] = -1
    prev[1:] = last[:-1]
    cols = np.arange(av.shape[1])
    was = np.where(prev >= 0, now[np.maximum(prev, 0), cols], True)
    out = now & ~was
    if isinstance(a, pd.Series):
        return pd.Series(out[:, 0], index=a.index, name=a.name)
    return pd.DataFrame(out, index=a.index, columns=a.columns)


def _operands(a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as 2-D float arrays of one shape (a scalar ``b`` broadcast)."""
    if not isinstance(a, (pd.DataFrame, pd.Series)):
        raise StrategyError(f"wb.{name}: a must be a DataFrame or Series, got {type(a).__name__}")
    av = _floats(a, name).reshape(len(a), -1)
    if isinstance(b, numbers.Real) and not isinstance(b, bool):
        return av, np.full_like(av, float(b))
    if type(b) is not type(a):
        raise StrategyError(
            f"wb.{name}: b must be a {type(a).__name__} like a or a number, got {type(b).__name__}"
        )
    if not b.index.equals(a.index) or (isinstance(a, pd.DataFrame) and not b.columns.equals(a.columns)):
        raise StrategyError(f"wb.{name}: a and b are not aligned (same index and columns needed)")
    return av, _floats(b, name).reshape(len(b), -1)


def _floats(x, name: str) -> np.ndarray:
    try:
        return x.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise StrategyError(f"wb.{name}: values must be numeric: {e}") from e
