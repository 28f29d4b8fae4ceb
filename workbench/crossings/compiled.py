"""The compiled crossing pass behind ``wb.crossed_above/below`` (numba; used once it is loaded).

One loop per symbol, reading ``a`` and ``b`` once and writing the crossings: the same rule
as :func:`workbench.crossings._crossings` (rows where either is NaN are skipped and never
True; a row crosses when ``a`` is beyond ``b`` there and was not at the symbol's previous
row with both defined; nothing is a cross before the first such row). Imported only by
:func:`workbench.crossings._compute`, outside a :class:`~workbench.crossings.CrossStream`
and only when numba is loaded already: the helpers never load numba, so the live engine
(the order path) never does.

Arrays are symbol-major, C-ordered ``(symbols, rows)``: the transpose of a DataFrame's
``(rows, symbols)`` values, which pandas holds column by column, so no copy is made.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["crossings"]


@njit(cache=True, nogil=True)
def _pass(a, b, above, out, state):  # pragma: no cover - compiled
    n_sym, n_rows = a.shape
    for j in range(n_sym):
        x, y, o = a[j], b[j] if b.shape[0] == n_sym else b[0], out[j]
        was = True  # no previous row with both defined: nothing to cross from
        # branch-free (x == x: not NaN, faster here than isnan): a row's outcome does not stall the next row's
        if above:
            for t in range(n_rows):
                xt, yt = x[t], y[t]
                present = (xt == xt) & (yt == yt)  # noqa: PLR0124 (not NaN)
                now = xt > yt
                o[t] = present & now & (not was)
                was = now if present else was
        else:
            for t in range(n_rows):
                xt, yt = x[t], y[t]
                present = (xt == xt) & (yt == yt)  # noqa: PLR0124 (not NaN)
                now = xt < yt
                o[t] = present & now & (not was)
                was = now if present else was
        state[j] = was


def crossings(at: np.ndarray, bt: np.ndarray, above: bool) -> tuple[np.ndarray, np.ndarray]:
    """The crossings of ``at`` over ``bt`` (``above``) or under it, both ``(symbols, rows)``
    C-ordered floats (``bt`` of one row: the same values for every symbol, e.g. a level),
    and per symbol whether ``a`` was beyond at its last row with both defined (True if
    none)."""
    out = np.empty(at.shape, dtype=np.bool_)
    state = np.empty(at.shape[0], dtype=np.bool_)
    _pass(at, bt, above, out, state)
    return out, state
