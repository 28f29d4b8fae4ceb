"""``wb.ta.SMA``: the mean of the last ``n`` values, a function of those values only.

TA-Lib's SMA keeps a running total (add the new value, subtract the oldest), so its value
at a bar carries the rounding of every addition since the first bar it was given: the same
bar gives values differing in the last bits after histories of different lengths, and a
comparison that ties in exact arithmetic (cent prices make exact ties between two
averages common: ``3 * sum10 == sum30``) goes either way. ``crossed_above(fast, slow)``
then fires a bar earlier or later, or not at all, depending on how much history was
loaded: a replay of a session's day on a longer history than the session's agreed with
the session on 93.6% of its signals (1Min bars).

Here each value is summed afresh from its window, oldest to newest, one addition at a
time, then divided by ``n`` as TA-Lib divides: the same ``n`` values give the same bits
whatever came before them. The live engine's carried state (:mod:`workbench.ta._stream`)
sums its ring of the last ``n`` values in the same order, so it gives the same bits too.
Values agree with TA-Lib's to a few units in the last place (tests/test_ta.py); the cost
is ``n`` additions per value instead of two (docs/performance.md, "SMA").
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_PERIOD", "MIN_PERIOD", "sma", "window_sum"]

MIN_PERIOD, MAX_PERIOD = 2, 100_000  # TA-Lib's range for timeperiod


def window_sum(values: np.ndarray) -> np.ndarray:
    """Row sums of ``values`` (``(k, n)``), added column by column from the first."""
    acc = values[:, 0].copy()
    for i in range(1, values.shape[1]):
        acc += values[:, i]
    return acc


def sma(real, timeperiod: int = 30) -> np.ndarray:
    """The simple moving average of a 1-D array (TA-Lib's signature and NaN head)."""
    x = np.asarray(real, dtype=np.float64)
    n = int(timeperiod)
    if n != timeperiod or not MIN_PERIOD <= n <= MAX_PERIOD:
        raise ValueError(f"timeperiod must be an integer {MIN_PERIOD}..{MAX_PERIOD}, got {timeperiod!r}")
    if x.ndim != 1:
        raise ValueError(f"SMA takes a 1-D array, got {x.ndim} dimensions")
    out = np.full(x.size, np.nan)
    m = x.size - n + 1  # values with a full window
    if m <= 0:
        return out
    acc = x[:m].copy()  # window sums for every end at once: one addition per age
    for k in range(1, n):
        acc += x[k : k + m]
    np.divide(acc, n, out=out[n - 1 :])
    return out
