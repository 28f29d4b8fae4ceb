"""One sweep's work, as a worker sees it: the job, a chunk run, what a chunk sends back.

    job = SweepJob(strategy, bars, combos, costs, options, periods_per_year, cache_entries)
    with WorkerState(job) as worker:          # one per thread or process: its indicator cache
        part = worker.run(chunk)              # -> ChunkResult (metrics and book parts only)

A chunk is a block of symbols x a block of combinations. For each combination the worker
calls the strategy on the block's bars (inside its ``indicator_cache``, so each distinct
``wb.ta`` call is computed once per worker), lays the combinations' signals side by side
as columns (prices tiled to match), runs :func:`simulate` once on the chunk and keeps
only each column's metrics (computed on cache-sized column blocks) and, per combination,
the sum of its symbols' equity, whether any symbol held a position, and the counts the
book metrics need. Equity curves are dropped as soon as they are scored. With
``job.kernel == "fused"`` (no stops) the simulation, books and metrics are one
compiled pass per column instead (:mod:`~workbench.backtesting.sweeps.fused`), with the
same numbers. A chunk also reports the seconds spent in the strategy calls and in the
simulation with metrics.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
import pandas as pd

from workbench.backtesting import metrics as M
from workbench.backtesting.simulation import SimOptions, Simulation, simulate
from workbench.backtesting.sweeps.chunks import Chunk
from workbench.data.bars import Bars
from workbench.errors import StrategyError
from workbench.model.costs import CostModel
from workbench.strategy import Strategy

__all__ = ["BOOK_COUNTS", "COLUMN_METRICS", "ChunkResult", "SweepJob", "WorkerState",
           "column_metrics"]

COLUMN_METRICS = (*M.METRICS, "final_equity")
BOOK_COUNTS = ("notional", "fees", "trades", "closed", "wins")
PRICES = ("open", "high", "low", "close")
METRIC_BLOCK = 256  # columns scored at a time: their temporaries stay in cache


@dataclass(frozen=True, eq=False)
class SweepJob:
    """Everything a worker needs; pickled once per worker (cloudpickle for processes)."""

    strategy: Strategy
    bars: Bars
    combos: tuple[dict[str, Any], ...]
    costs: CostModel
    options: SimOptions
    periods_per_year: float
    cache_entries: int = 64  # indicator results a worker keeps before starting afresh
    kernel: str = "general"  # "fused": simulation and metrics in one pass (runner decides)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def shorts(self) -> bool:
        return self.options.direction == "longshort"

    @property
    def fused(self) -> bool:
        """Whether chunks run the single compiled pass (:mod:`.fused`) or the general path."""
        return self.kernel == "fused"


@dataclass(frozen=True, eq=False)
class ChunkResult:
    """What a chunk sends back: small arrays only (no equity curve per column)."""

    chunk: Chunk
    metrics: np.ndarray  # (len(COLUMN_METRICS), combos, symbols)
    equity: np.ndarray  # (combos, T): the sum of the block's symbols' equity
    invested: np.ndarray  # (combos, T) bool: any of the block's symbols holds a position
    counts: np.ndarray  # (len(BOOK_COUNTS), combos)
    cache_misses: int = 0
    seconds: tuple[float, float] = (0.0, 0.0)  # in the strategy calls, in simulation + metrics


def _slice_records(records: np.ndarray, cols: np.ndarray, start: int, stop: int) -> np.ndarray:
    lo, hi = np.searchsorted(cols, (start, stop))
    out = records[lo:hi].copy()
    out["col"] -= start
    return out


def _by_column(records: np.ndarray) -> np.ndarray:
    cols = records["col"]
    if cols.size > 1 and (np.diff(cols) < 0).any():
        return records[np.argsort(cols, kind="stable")]
    return records


def column_metrics(sim: Simulation, periods_per_year: float,
                   block: int = METRIC_BLOCK) -> np.ndarray:
    """:func:`metrics.summary` of every column, ``block`` columns at a time.

    Columns are independent, so the values are those of one call over all columns; the
    temporaries of a block stay in cache and reuse memory. Returns
    ``(len(COLUMN_METRICS), n_columns)``."""
    fills, trades = _by_column(sim.fills), _by_column(sim.trades)
    n = sim.shape[1]
    out = np.empty((len(COLUMN_METRICS), n))
    for start in range(0, n, block):
        stop = min(start + block, n)
        m = M.summary(sim.equity[:, start:stop], sim.position[:, start:stop],
                      _slice_records(fills, fills["col"], start, stop),
                      _slice_records(trades, trades["col"], start, stop),
                      sim.options.cash, periods_per_year)
        for i, name in enumerate(COLUMN_METRICS):
            out[i, start:stop] = m[name]
    return out


def book_counts(sim: Simulation, n_combos: int, n_symbols: int) -> np.ndarray:
    """Per combination (columns ``c * n_symbols ..``): traded notional, fees, trades,
    closed trades and winning closed trades, in the order the book metrics sum them."""
    f, t = _by_column(sim.fills), _by_column(sim.trades)
    fc, tc = f["col"] // n_symbols, t["col"] // n_symbols
    closed = t["reason"] != 3
    return np.stack([
        np.bincount(fc, weights=f["size"] * f["price"], minlength=n_combos),
        np.bincount(fc, weights=f["fees"], minlength=n_combos),
        np.bincount(tc, minlength=n_combos).astype(float),
        np.bincount(tc[closed], minlength=n_combos).astype(float),
        np.bincount(tc[closed], weights=t["pnl"][closed] > 0, minlength=n_combos),
    ])[:, :n_combos]


class WorkerState:
    """A worker's indicator cache and its views of the current symbol block."""

    def __init__(self, job: SweepJob) -> None:
        self.job = job
        self._stack = ExitStack()
        self._cache = None
        self._block: tuple[int, int] | None = None
        self._bars: Bars | None = None
        self._prices: dict[str, np.ndarray] = {}
        self._tiled: tuple[int, dict[str, np.ndarray]] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._cache = None

    def _fresh_cache(self) -> None:
        from workbench.ta import indicator_cache

        self.close()
        self._cache = self._stack.enter_context(indicator_cache())

    def _select(self, symbols: slice) -> None:
        """Bars and F-ordered (T, s) price arrays of a symbol block; a new block, new cache."""
        key = (symbols.start, symbols.stop)
        if key == self._block:
            return
        bars = self.job.bars
        if key != (0, bars.close.shape[1]):  # (Bars.symbols builds a list of str each time)
            bars = bars.select(bars.symbols[symbols])
        self._block, self._bars, self._tiled = key, bars, None
        self._prices = {p: np.asfortranarray(getattr(bars, p).to_numpy(dtype=float))
                        for p in PRICES}
        self._fresh_cache()

    def _prices_for(self, k: int) -> dict[str, np.ndarray]:
        """The block's prices repeated for ``k`` combinations, (T, k * s) F-ordered."""
        if k == 1:
            return self._prices
        if self._tiled is None or self._tiled[0] != k:
            self._tiled = (k, {p: np.tile(a.T, (k, 1)).T for p, a in self._prices.items()})
        return self._tiled[1]

    def _signals(self, combos: tuple[dict, ...]) -> dict[str, np.ndarray | None]:
        """Each combination's signals stacked into (k * s, T) C-ordered bool rows, one per
        column (combination major); short ones only with ``direction="longshort"``; the
        stops the strategy returns (``sl_stop``/``tp_stop``) as (k * s, T) float rows
        (None if it returns none)."""
        names = ("entries", "exits") + (("short_entries", "short_exits") if self.job.shorts else ())
        n_t, s = self._bars.close.shape
        out: dict[str, np.ndarray | None] = {"short_entries": None, "short_exits": None,
                                             "sl_stop": None, "tp_stop": None}
        # every row is written below (the frame's, or False where it returns none): no
        # zero-fill of a chunk's flags first
        stacked = {n: np.empty((len(combos) * s, n_t), dtype=np.bool_) for n in names}
        for c, params in enumerate(combos):
            signals = self.job.strategy(self._bars, **params)
            if signals.kind == "weights":
                raise StrategyError(f"{self.job.strategy.name} returned target weights for "
                                    f"{params}; a sweep needs entries/exits")
            for n in names:
                frame = getattr(signals, n)
                rows = stacked[n][c * s:(c + 1) * s]
                if frame is not None:
                    rows[:] = frame.to_numpy(dtype=np.bool_).T
                else:
                    rows.fill(False)
            for n, value in signals.stops().items():
                if getattr(self.job.options, n) is not None:
                    raise StrategyError(f"{self.job.strategy.name} returned Signals({n}=...) "
                                        f"and the sweep was given {n} too: give it in one place")
                if out[n] is None:
                    out[n] = np.full((len(combos) * s, n_t), np.nan)
                out[n][c * s:(c + 1) * s] = (value.to_numpy(dtype=float).T
                                             if isinstance(value, pd.DataFrame) else value)
        out.update(stacked)
        return out

    def run(self, chunk: Chunk) -> ChunkResult:
        """Simulate and score one chunk."""
        self._select(chunk.symbols)
        if self._cache is None or len(self._cache) > self.job.cache_entries:
            self._fresh_cache()
        misses = self._cache.misses
        combos = self.job.combos[chunk.combos]
        k, s = len(combos), chunk.n_symbols
        started = time.perf_counter()
        signals = self._signals(combos)
        split = time.perf_counter()
        if self.job.fused and signals["sl_stop"] is None and signals["tp_stop"] is None:
            part = self._fused(chunk, signals, k, s, self._cache.misses - misses)
            return replace(part, seconds=(split - started, time.perf_counter() - split))
        sim = simulate(**self._prices_for(k), **{n: None if a is None else a.T
                                                 for n, a in signals.items()},
                       costs=self.job.costs, options=self.job.options)
        metrics = column_metrics(sim, self.job.periods_per_year).reshape(-1, k, s)
        equity = sim.equity.T.reshape(k, s, -1)
        position = sim.position.T.reshape(k, s, -1)
        return ChunkResult(chunk=chunk, metrics=metrics, equity=equity.sum(axis=1),
                           invested=(position != 0).any(axis=1),
                           counts=book_counts(sim, k, s),
                           cache_misses=self._cache.misses - misses,
                           seconds=(split - started, time.perf_counter() - split))

    def _fused(self, chunk: Chunk, signals: dict, k: int, s: int, misses: int) -> ChunkResult:
        """The chunk through :mod:`~workbench.backtesting.sweeps.fused`'s single pass."""
        from workbench.backtesting.sweeps import fused

        n_t = len(self._bars)
        metrics = np.empty((len(COLUMN_METRICS), k, s))
        equity, invested = np.zeros((k, n_t)), np.zeros((k, n_t), dtype=np.bool_)
        counts = np.zeros((len(BOOK_COUNTS), k))
        fused.score_chunk(self._prices["open"].T, self._prices["close"].T, signals, s,
                          self.job.costs, self.job.options, self.job.periods_per_year,
                          metrics, equity, invested, counts)
        return ChunkResult(chunk=chunk, metrics=metrics, equity=equity, invested=invested,
                           counts=counts, cache_misses=misses)
