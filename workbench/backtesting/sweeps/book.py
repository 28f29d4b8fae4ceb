"""Collecting a sweep's chunks: per-column metrics and each combination's book.

The book of a combination is what ``wb.backtest`` reports as its stats: all symbols'
accounts together (equity summed, "invested" when any symbol holds a position, trades,
fees and traded notional summed). Chunks of one combination that cover different symbol
blocks are added in symbol order whatever order they finish in, so a sweep's numbers do
not depend on how many workers ran it.
"""

from __future__ import annotations

import numpy as np

from workbench.backtesting import metrics as M
from workbench.backtesting.sweeps.worker import BOOK_COUNTS, COLUMN_METRICS, ChunkResult

__all__ = ["BookAccumulator", "book_metrics", "book_returns"]

_C = {name: i for i, name in enumerate(BOOK_COUNTS)}


class BookAccumulator:
    """Receives :class:`ChunkResult` objects in any order; holds the sweep's arrays."""

    def __init__(self, n_symbols: int, n_combos: int, n_bars: int) -> None:
        self.metrics = np.full((len(COLUMN_METRICS), n_combos, n_symbols), np.nan)
        self.equity = np.zeros((n_combos, n_bars))  # row-major: each combination contiguous
        self.invested = np.zeros((n_combos, n_bars), dtype=np.bool_)
        self.counts = np.zeros((len(BOOK_COUNTS), n_combos))
        self.cache_misses = 0
        self.seconds = np.zeros(2)  # summed over chunks: strategy calls, simulation + metrics
        self.done = 0
        self._next: dict[int, int] = {}  # combo block start -> next symbol block start
        self._pending: dict[tuple[int, int], ChunkResult] = {}

    @staticmethod
    def nbytes(n_symbols: int, n_combos: int, n_bars: int) -> int:
        """What the accumulator (and the result tables built from it) hold."""
        return n_combos * (n_bars * 17 + n_symbols * len(COLUMN_METRICS) * 8 * 3)

    def add(self, part: ChunkResult) -> None:
        c, s = part.chunk.combos, part.chunk.symbols
        self.metrics[:, c, s] = part.metrics
        self.cache_misses += part.cache_misses
        self.seconds += part.seconds
        self.done += 1
        self._pending[(c.start, s.start)] = part
        expected = self._next.get(c.start, 0)
        while (ready := self._pending.pop((c.start, expected), None)) is not None:
            self.equity[c] += ready.equity
            self.invested[c] |= ready.invested
            self.counts[:, c] += ready.counts
            expected = ready.chunk.symbols.stop
        self._next[c.start] = expected


def book_metrics(acc: BookAccumulator, init_cash: float, n_symbols: int,
                 periods_per_year: float) -> dict[str, np.ndarray]:
    """Every metric of :data:`COLUMN_METRICS` for each combination's book, as in
    ``BacktestResult.stats()`` (``metrics.summary`` of ``metrics.book``)."""
    init = float(np.full(n_symbols, init_cash).sum())
    e = acc.equity.T  # (T, M), each column contiguous
    n = e.shape[1]
    r = M.returns(e, init)
    cnt = acc.counts
    with np.errstate(invalid="ignore", divide="ignore"):
        win = np.where(cnt[_C["closed"]] > 0, cnt[_C["wins"]] / cnt[_C["closed"]], np.nan)
    out = {
        "final_equity": e[-1].copy() if len(e) else np.full(n, init),
        "total_return": M.total_return(e, init),
        "cagr": M.cagr(e, init, periods_per_year),
        "sharpe": M.sharpe(r, periods_per_year),
        "sortino": M.sortino(r, periods_per_year),
        "max_drawdown": M.max_drawdown(e, init),
        "trades": cnt[_C["trades"]].astype(np.int64),
        "win_rate": win,
        "exposure": M.exposure(acc.invested.T),
        "turnover": M.turnover(np.arange(n), cnt[_C["notional"]], e, periods_per_year),
        "fees": cnt[_C["fees"]].copy(),
    }
    return {name: out[name] for name in COLUMN_METRICS}


def book_returns(acc: BookAccumulator, init_cash: float, n_symbols: int) -> np.ndarray:
    """Per-bar returns of each combination's book, (T, M); NaN (no equity) as 0."""
    init = float(np.full(n_symbols, init_cash).sum())
    return np.nan_to_num(M.returns(acc.equity.T, init), nan=0.0, posinf=0.0, neginf=0.0)
