"""Incremental ``wb.ta`` for the live engine: indicator state carried from bar to bar.

    stream = Stream()
    with stream.active():                      # bar t: the strategy on the window's rows
        strategy(window_bars, **params)         # wb.ta.SMA(...) here is served by the stream

Indicators with memory (an RSI's Wilder averages) give, on the last ``k`` bars, values that
differ from the same indicator over the whole history. The engine wants the whole
history's values at the cost of a short window; a :class:`Stream` gives both. Each
``wb.ta`` call of one evaluation is identified by its position among the evaluation's
calls, its function and parameters. The first time, the stream runs the function's step
over every row it is given (the engine gives the whole history it holds; the SMA computes
every row at once, with the same bits, ``_Sma.run``) and keeps the indicator's state after
the last row; at the next bar, when the call's input is the
previous input with the oldest rows dropped and one row appended (checked bit for bit),
it steps the state once over the new row and returns the previous outputs plus the new
one. The RSI's state holds each symbol's running sums exactly as TA-Lib's loop holds them,
and the SMA's its last ``n`` values, summed by :mod:`workbench.ta._sma`'s tree, so every
value is bit-for-bit ``wb.ta``'s over the whole history (tests/test_ta_stream.py), whatever
the window's length. (An SMA has no memory beyond its ``n`` values: it is streamed so that
its first ``n - 1`` rows in a short window are not NaN, which would break the crossings'
check that one evaluation continues the previous.) A call whose input does not continue
the previous one (another window, changed history) is recomputed from its rows and
counted in ``restarts``.

Stepped functions: SMA and RSI (:data:`STEPPED`); each symbol steps on its present bars
only (a NaN in any input leaves its state untouched and gives NaN), as ``wb.ta`` does.
Other functions, and Series inputs, are not served: ``call`` returns None and ``wb.ta``
computes them on the rows given (see :func:`workbench.ta.convergence` for how many rows
they need).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import talib

from workbench.ta._convergence import convergence
from workbench.ta._sma import MAX_PERIOD, MIN_PERIOD, sma_present, tail_sum

__all__ = ["STEPPED", "Stream", "active_stream"]

STEPPED = ("SMA", "RSI")

_active: contextvars.ContextVar[Stream | None] = contextvars.ContextVar(
    "workbench_ta_stream", default=None
)


def active_stream() -> Stream | None:
    return _active.get()


class _Sma:
    """The last ``n`` values per symbol, summed by :func:`~workbench.ta._sma.tail_sum`, the
    tree :func:`~workbench.ta._sma.sma` sums a window with (the same bits), divided by ``n``."""

    def __init__(self, n: int, s: int) -> None:
        self.n = n
        self.ring = np.zeros((s, n))  # value number i of a symbol at slot i % n
        self.count = np.zeros(s, dtype=np.int64)
        self.ages = np.arange(n)

    def run(self, xs: list[np.ndarray]) -> np.ndarray:
        """``(1, symbols, rows)``: :meth:`step` over every row (``(symbols, rows)``) of a
        fresh state at once (the same bits: :func:`~workbench.ta._sma.sma_present` sums
        every window with the same tree), leaving the state :meth:`step` would leave."""
        x, n = xs[0], self.n
        if self.count.any():
            raise RuntimeError("_Sma.run starts from a fresh state")
        present = ~np.isnan(x)
        count = present.sum(axis=1)
        values = x[present]  # each symbol's present values, symbol after symbol
        number = count[:, None] - n + self.ages  # of each symbol's last n values
        sym, age = np.nonzero(number >= 0)
        number = number[sym, age]
        self.ring[sym, number % n] = values[(np.cumsum(count) - count)[sym] + number]
        self.count += count
        return sma_present(x, n)[None]

    def step(self, xs: list[np.ndarray]) -> np.ndarray:
        x, n = xs[0], self.n
        out = np.full((1, x.size), np.nan)
        p = np.flatnonzero(~np.isnan(x))
        k = self.count[p]
        self.ring[p, k % n] = x[p]
        self.count[p] = k + 1
        r = p[k >= n - 1]
        if r.size:
            slots = (self.count[r, None] - n + self.ages) % n  # oldest to newest
            out[0, r] = tail_sum(self.ring[r[:, None], slots]) / n
        return out


class _Rsi:
    """TA-Lib's RSI per symbol: sums of the first n changes, then Wilder's averages."""

    def __init__(self, n: int, s: int) -> None:
        self.n, self.inv, self.keep = n, 1.0 / n, float(n - 1)
        self.prev = np.full(s, np.nan)
        self.gain = np.zeros(s)
        self.loss = np.zeros(s)
        self.count = np.zeros(s, dtype=np.int64)  # present values seen

    def step(self, xs: list[np.ndarray]) -> np.ndarray:
        x, n = xs[0], self.n
        out = np.full((1, x.size), np.nan)
        p = np.flatnonzero(~np.isnan(x))
        k = self.count[p]
        q = p[k >= 1]
        d = x[q] - self.prev[q]
        rise, fall = np.where(d < 0, 0.0, d), np.where(d < 0, -d, 0.0)
        kq = self.count[q]
        early, late = kq <= n, kq > n
        g, lo = self.gain[q], self.loss[q]
        g = np.where(late, g * self.keep, g) + rise  # a rise adds to the gains (0 adds nothing)
        lo = np.where(late, lo * self.keep, lo) + fall  # a fall's size adds to the losses
        scale = early & (kq == n) | late
        g = np.where(scale, g * self.inv, g)
        lo = np.where(scale, lo * self.inv, lo)
        self.gain[q], self.loss[q] = g, lo
        ready = kq >= n
        total = g[ready] + lo[ready]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[0, q[ready]] = np.where(total > 0.0, 100.0 * (g[ready] / total), 0.0)
        self.prev[p] = x[p]
        self.count[p] = k + 1
        return out


def _stepper(name: str, params: dict, s: int):
    if talib.get_compatibility() != 0:
        return None
    n = params.get("timeperiod", 30 if name == "SMA" else 14)
    if not isinstance(n, int) or not MIN_PERIOD <= n <= MAX_PERIOD:
        return None
    if name == "SMA":
        return _Sma(n, s)
    if name == "RSI" and talib.get_unstable_period("RSI") == 0:
        return _Rsi(n, s)
    return None


@dataclass
class _Entry:
    times: np.ndarray  # (rows,) int64: the rows of the last evaluation
    inputs: list[np.ndarray]  # (symbols, rows) each, copies
    out: np.ndarray  # (outputs, symbols, rows)
    state: object
    columns: pd.Index


class Stream:
    """Indicator state of one engine's ``wb.ta`` calls (see the module doc)."""

    def __init__(self) -> None:
        self._memo: dict[tuple, _Entry] = {}
        self._ordinal = 0
        self.steps = 0  # calls answered with one step
        self.starts = 0  # calls computed over all their rows (first time)
        self.restarts = 0  # of which the input did not continue the previous one
        # calls computed on the rows given: (name, params) -> rows they need (None: no rule)
        self.unstepped: dict[tuple, int | None] = {}

    @contextmanager
    def active(self) -> Iterator[Stream]:
        """Serve the ``wb.ta`` calls of one evaluation of the strategy."""
        self._ordinal = 0
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def next_ordinal(self) -> int:
        self._ordinal += 1
        return self._ordinal

    def call(self, ordinal: int, name: str, inputs: list, mats: list[np.ndarray],
             params: dict) -> np.ndarray | None:
        """``(outputs, symbols, rows)`` for the call, or None when the stream does not serve it."""
        like = inputs[0]
        key = (ordinal, name, tuple(sorted(params.items())))
        if name not in STEPPED or not isinstance(like, pd.DataFrame):
            self._unstepped(name, params)
            return None
        times = like.index.asi8
        entry = self._memo.get(key)
        if entry is not None and entry.columns.equals(like.columns):
            shift = _continues(entry, times, mats)
            if shift is not None:
                new = entry.state.step([m[:, -1] for m in mats])
                out = np.concatenate([entry.out[:, :, shift:], new[:, :, None]], axis=2)
                self._memo[key] = _Entry(times.copy(), [m.copy() for m in mats], out,
                                         entry.state, entry.columns)
                self.steps += 1
                return out.copy()  # the strategy may write into its frames; the state stays
            self.restarts += 1
        state = _stepper(name, params, mats[0].shape[0])
        if state is None:
            self._unstepped(name, params)
            return None
        if hasattr(state, "run"):  # every row at once
            out = state.run(mats)
        else:
            steps = [state.step([m[:, t] for m in mats]) for t in range(times.size)]
            out = np.stack(steps, axis=2) if steps else np.empty((1, mats[0].shape[0], 0))
        self._memo[key] = _Entry(times.copy(), [m.copy() for m in mats], out, state, like.columns)
        self.starts += 1
        return out.copy()

    def _unstepped(self, name: str, params: dict) -> None:
        key = (name, tuple(sorted(params.items())))
        if key not in self.unstepped:
            self.unstepped[key] = convergence(name, params)


def _continues(entry: _Entry, times: np.ndarray, mats: list[np.ndarray]) -> int | None:
    """Rows dropped from the front when ``times``/``mats`` are ``entry``'s plus one row, else None."""
    old = entry.times
    if times.size < 1 or old.size < times.size - 1 or times[-1] <= (old[-1] if old.size else 0):
        return None
    shift = old.size - (times.size - 1)
    if not np.array_equal(old[shift:], times[:-1]):
        return None
    for m, prev in zip(mats, entry.inputs):
        a, b = m[:, :-1], prev[:, shift:]
        if a.shape != b.shape or not np.array_equal(a.view(np.int64), b.view(np.int64)):
            return None
    return shift
