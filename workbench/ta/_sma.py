"""``wb.ta.SMA``: the mean of the last ``n`` values, a function of those values only.

TA-Lib's SMA keeps a running total (add the new value, subtract the oldest), so its value
at a bar carries the rounding of every addition since the first bar it was given: the same
bar gives values differing in the last bits after histories of different lengths, and a
comparison that ties in exact arithmetic (cent prices make exact ties between two
averages common: ``3 * sum10 == sum30``) goes either way. ``crossed_above(fast, slow)``
then fires a bar earlier or later, or not at all, depending on how much history was
loaded: a replay of a session's day on a longer history than the session's agreed with
the session on 93.6% of its signals (1Min bars).

Here each window is summed by a fixed tree anchored at the window's end, never at the
array's start, then divided by ``n`` as TA-Lib divides: the same ``n`` values give the same
bits whatever came before them. The tree:

* a block of ``2**j`` values is summed pairwise: its older half's sum plus its newer
  half's, each summed the same way (``B_j[i] = B_{j-1}[i - 2**(j-1)] + B_{j-1}[i]`` for
  the block ending at ``i``), a function of the block's values only;
* the window of ``n`` values is cut into the blocks of ``n``'s binary decomposition,
  the smallest holding the newest values, the largest the oldest; their sums are added
  from the newest block to the oldest (``(s_newest + s_next) + ...``).

Vectorized over every window end at once, that is ``floor(log2 n)`` additions per value to
build the blocks plus one per further bit of ``n``, instead of ``n``; tiled so that the
temporaries stay in the CPU's cache (docs/performance.md, "SMA"). Pairwise summation is at
least as accurate as a running total: a few units in the last place of the exact mean,
and of TA-Lib's values (tests/test_ta_sma.py). A NaN in a window makes its sum NaN, as any
sum does (:func:`sma`, TA-Lib's signature); ``wb.ta.SMA`` takes each symbol's present
values instead (:func:`sma_present`, every symbol of a frame in one pass). The live
engine's carried state (:mod:`workbench.ta._stream`) sums its ring of the last ``n``
values with the same tree (:func:`tail_sum`), so it gives the same bits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_PERIOD", "MIN_PERIOD", "check_period", "sma", "sma_present", "tail_sum",
           "window_sums"]

MIN_PERIOD, MAX_PERIOD = 2, 100_000  # TA-Lib's range for timeperiod


def check_period(timeperiod) -> int:
    """``timeperiod`` as an int, or ValueError outside TA-Lib's range."""
    n = int(timeperiod)
    if n != timeperiod or not MIN_PERIOD <= n <= MAX_PERIOD:
        raise ValueError(f"timeperiod must be an integer {MIN_PERIOD}..{MAX_PERIOD}, got {timeperiod!r}")
    return n


def window_sums(x: np.ndarray, n: int, divisor: int, out: np.ndarray) -> None:
    """``out[k]``: the tree sum of the ``n`` values ``x[k : k + n]``, over ``divisor``, for
    every ``k`` (``x`` 1-D, ``out`` of ``x.size - n + 1`` values).

    Computed tile by tile (a stretch of window ends with the ``n - 1`` values before them),
    each tile's temporaries small enough to stay in the CPU's cache: a value is a function
    of its window only, so the tiling does not change a bit.
    """
    ends = x.size - n + 1
    width = max(_TILE, 4 * n)  # window ends per tile
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are the sums' own
        for e in range(0, ends, width):
            f = min(e + width, ends)
            np.divide(_tile_sums(x[e : f + n - 1], n), divisor, out=out[e:f])


_TILE = 1 << 15  # window ends per tile (256 KiB of float64)


def _tile_sums(x: np.ndarray, n: int) -> np.ndarray:
    """The tree sums of every window of ``n`` values of ``x`` (1-D), every level of the
    tree over the whole of ``x``."""
    # ``block[k]``: the block of ``2**j`` values ending at ``x[k + 2**j - 1]``;
    # ``acc[k]``: the newest ``low`` values (the blocks of n's lower bits) ending at
    # ``x[k + low - 1]``. Both shrink by their width as they grow.
    block, acc, low, width = x, None, 0, 1
    while True:
        if n & width:
            m = x.size - (low + width) + 1
            if acc is None:
                acc = block[:m]
            else:  # the older block added to the newer sum; an addition is commutative
                acc = acc[width : width + m] + block[:m]
            low += width
        if low == n:
            return acc
        block = block[:-width] + block[width:]  # older half + newer half
        width *= 2


def tail_sum(values: np.ndarray) -> np.ndarray:
    """Row sums of ``values`` (``(k, n)``, oldest to newest): the tree sum
    :func:`window_sums` gives the window of these ``n`` values, without the other windows."""
    n = values.shape[1]
    acc, end, width = None, n, 1
    with np.errstate(over="ignore", invalid="ignore"):
        while end:
            if n & width:
                block = values[:, end - width : end]
                while block.shape[1] > 1:  # pairs, then pairs of pairs: older + newer half
                    block = block[:, 0::2] + block[:, 1::2]
                acc = block[:, 0] if acc is None else acc + block[:, 0]
                end -= width
            width *= 2
    return acc


def sma(real, timeperiod: int = 30) -> np.ndarray:
    """The simple moving average of a 1-D array (TA-Lib's signature and NaN head)."""
    x = np.ascontiguousarray(real, dtype=np.float64)
    n = check_period(timeperiod)
    if x.ndim != 1:
        raise ValueError(f"SMA takes a 1-D array, got {x.ndim} dimensions")
    out = np.empty(x.size)
    if x.size >= n:
        window_sums(x, n, n, out[n - 1 :])
    out[: n - 1] = np.nan
    return out


def sma_present(x: np.ndarray, timeperiod: int = 30) -> np.ndarray:
    """``(symbols, times)``: the SMA of each row's present (non-NaN) values, NaN at its holes.

    A chunk of rows at a time (about :data:`_TILE` values, in the CPU's cache): the chunk's
    present values, row after row, as one array (a row's first ``n - 1`` values, whose
    windows would reach into the row before, are its NaN head), or the chunk itself when it
    has no hole (then a row's first ``n - 1`` columns are its head).
    """
    n = check_period(timeperiod)
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"sma_present takes a 2-D array, got {x.ndim} dimensions")
    out = np.empty(x.shape)
    step = max(1, _TILE // max(1, x.shape[1]))
    for r in range(0, x.shape[0], step):
        chunk, dest = x[r : r + step], out[r : r + step]
        present = ~np.isnan(chunk)
        if present.all():
            if chunk.size >= n:
                window_sums(chunk.reshape(-1), n, n, dest.reshape(-1)[n - 1 :])
            dest[:, : n - 1] = np.nan
            continue
        values = chunk[present]
        means = np.empty(values.size)
        if values.size >= n:
            window_sums(values, n, n, means[n - 1 :])
        count = present.sum(axis=1)
        age = np.arange(min(n - 1, values.size))
        head = (np.cumsum(count) - count)[:, None] + age  # each row's first n - 1 values
        means[head[age < count[:, None]]] = np.nan
        dest.fill(np.nan)
        dest[present] = means
    return out
