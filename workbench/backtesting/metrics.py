"""Performance metrics from numpy arrays, vectorized over columns (accounts).

Inputs are what :func:`workbench.backtesting.simulation.simulate` returns, so a sweep can
score thousands of columns at once::

    m = summary(sim.equity, sim.position, sim.fills, sim.trades, init_cash=1e5,
                periods_per_year=periods_per_year("1Min"))
    m["sharpe"]        # (N,) one value per column

Definitions (T bars, equity ``E`` T x N, initial cash ``C``; ``ppy`` bars per year):

* returns: ``r_t = E_t / E_{t-1} - 1`` with ``E_{-1} = C`` (per bar, close to close);
* ``total_return = E_last / C - 1``; ``cagr = (E_last / C) ** (ppy / T) - 1`` (years are
  counted in bars, -1 once equity is gone);
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(ppy)`` (risk-free rate 0);
  ``sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(ppy)``; NaN when undefined;
* ``max_drawdown``: the worst ``E_t / max(C, E_0..E_t) - 1``, a fraction <= 0;
* ``trades``: trades opened (closed ones and those still open at the end);
  ``win_rate``: the fraction of *closed* trades with ``pnl > 0`` (NaN without any);
* ``exposure``: the fraction of the T bars that end with a position;
* ``turnover``: traded notional (shares x fill price of every fill, entries and exits)
  divided by the average equity, per year: ``notional / mean(E) / (T / ppy)``; one round
  trip of the whole account per year is about 2;
* ``fees``: fees paid.

``ppy``: 252 sessions a year; intraday bars count bars per session from the timeframe:
``ceil(390 / minutes per bar)`` (390 for 1Min, 78 for 5Min, 7 for 1Hour: sessions are
cut into bars from the open, the last one partial).
"""

from __future__ import annotations

import math

import numpy as np

from workbench.data.timeframe import Timeframe

__all__ = [
    "DAYS_PER_YEAR",
    "METRICS",
    "book",
    "cagr",
    "drawdown",
    "exposure",
    "max_drawdown",
    "periods_per_year",
    "returns",
    "sharpe",
    "sortino",
    "summary",
    "total_return",
    "trade_count",
    "turnover",
    "win_rate",
]

DAYS_PER_YEAR = 252
MINUTES_PER_SESSION = 390
METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
           "exposure", "turnover", "fees")


def periods_per_year(timeframe: Timeframe | str | None = None, index=None) -> float:
    """Bars per year for ``timeframe``; without one, guessed from the index's usual spacing."""
    if timeframe is None and index is not None and len(index) > 1:
        step = np.diff(np.asarray(index, dtype="datetime64[ns]").astype(np.int64))
        step = step[step > 0]
        if step.size:
            seconds = float(np.median(step)) / 1e9
            if seconds >= 20 * 3600:
                return float(DAYS_PER_YEAR)
            minutes = max(1.0, seconds / 60)
            return float(DAYS_PER_YEAR * math.ceil(MINUTES_PER_SESSION / minutes))
    if timeframe is None:
        return float(DAYS_PER_YEAR)
    tf = Timeframe.parse(timeframe)
    if not tf.is_intraday:
        return float(DAYS_PER_YEAR)
    return float(DAYS_PER_YEAR * math.ceil(MINUTES_PER_SESSION / (tf.seconds / 60)))


def _2d(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _init(init_cash, n_cols: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(init_cash, dtype=float), (n_cols,))


def returns(equity, init_cash) -> np.ndarray:
    """Per-bar returns T x N (the first bar against the initial cash)."""
    e = _2d(equity)
    prev = np.vstack([_init(init_cash, e.shape[1])[None, :], e[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prev != 0, e / prev - 1.0, np.nan)


def _last(e: np.ndarray, init: np.ndarray) -> np.ndarray:
    return e[-1] if len(e) else init.copy()


def total_return(equity, init_cash) -> np.ndarray:
    e = _2d(equity)
    init = _init(init_cash, e.shape[1])
    return _last(e, init) / init - 1.0


def cagr(equity, init_cash, periods_per_year: float) -> np.ndarray:
    e = _2d(equity)
    init = _init(init_cash, e.shape[1])
    if len(e) == 0:
        return np.full(e.shape[1], np.nan)
    growth = _last(e, init) / init
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.power(np.maximum(growth, 0.0), periods_per_year / len(e)) - 1.0
    return np.where(growth > 0, out, -1.0)


def sharpe(rets, periods_per_year: float) -> np.ndarray:
    r = _2d(rets)
    if len(r) < 2:
        return np.full(r.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.nanstd(r, axis=0, ddof=1)
        out = np.nanmean(r, axis=0) / std * math.sqrt(periods_per_year)
    return np.where(std > 0, out, np.nan)


def sortino(rets, periods_per_year: float) -> np.ndarray:
    r = _2d(rets)
    if len(r) == 0:
        return np.full(r.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        down = np.sqrt(np.nanmean(np.minimum(r, 0.0) ** 2, axis=0))
        out = np.nanmean(r, axis=0) / down * math.sqrt(periods_per_year)
    return np.where(down > 0, out, np.nan)


def drawdown(equity, init_cash) -> np.ndarray:
    """``E_t / running peak - 1`` (T x N), the peak starting at the initial cash."""
    e = _2d(equity)
    peak = np.maximum.accumulate(np.vstack([_init(init_cash, e.shape[1])[None, :], e]), axis=0)[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, e / peak - 1.0, np.nan)


def max_drawdown(equity, init_cash) -> np.ndarray:
    dd = drawdown(equity, init_cash)
    if len(dd) == 0:
        return np.zeros(dd.shape[1])
    return np.fmin.reduce(dd, axis=0)


def exposure(position) -> np.ndarray:
    p = _2d(position)
    return (p != 0).mean(axis=0) if len(p) else np.zeros(p.shape[1])


def trade_count(trade_col, n_cols: int) -> np.ndarray:
    return np.bincount(np.asarray(trade_col, dtype=np.int64), minlength=n_cols)[:n_cols]


def win_rate(trade_col, pnl, closed, n_cols: int) -> np.ndarray:
    col = np.asarray(trade_col, dtype=np.int64)
    closed = np.asarray(closed, dtype=bool)
    wins = np.bincount(col[closed], weights=np.asarray(pnl)[closed] > 0, minlength=n_cols)[:n_cols]
    count = np.bincount(col[closed], minlength=n_cols)[:n_cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, wins / count, np.nan)


def turnover(fill_col, notional, equity, periods_per_year: float) -> np.ndarray:
    e = _2d(equity)
    n_cols = e.shape[1]
    col = np.asarray(fill_col, dtype=np.int64)
    traded = np.bincount(col, weights=notional, minlength=n_cols)[:n_cols]
    if len(e) == 0:
        return np.zeros(n_cols)
    avg = e.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(avg > 0, traded / avg / (len(e) / periods_per_year), np.nan)


def summary(equity, position, fills, trades, init_cash,
            periods_per_year: float) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` per column, plus ``final_equity``.

    ``fills`` needs fields ``col, size, price, fees``; ``trades`` fields ``col, pnl, reason``
    (reason 3 = still open), as in :data:`workbench.backtesting.simulation.FILL_DTYPE`/``TRADE_DTYPE``.
    """
    e = _2d(equity)
    n = e.shape[1]
    r = returns(e, init_cash)
    init = _init(init_cash, n)
    return {
        "final_equity": _last(e, init).copy(),
        "total_return": total_return(e, init),
        "cagr": cagr(e, init, periods_per_year),
        "sharpe": sharpe(r, periods_per_year),
        "sortino": sortino(r, periods_per_year),
        "max_drawdown": max_drawdown(e, init),
        "trades": trade_count(trades["col"], n),
        "win_rate": win_rate(trades["col"], trades["pnl"], trades["reason"] != 3, n),
        "exposure": exposure(position),
        "turnover": turnover(fills["col"], fills["size"] * fills["price"], e, periods_per_year),
        "fees": np.bincount(fills["col"], weights=fills["fees"], minlength=n)[:n],
    }


def book(equity, position, fills, trades, init_cash):
    """All columns as one account (the book): summed equity, 'any position', one column id.

    Returns ``(equity, position, fills, trades, init_cash)`` ready for :func:`summary`."""
    e = _2d(equity)
    fills, trades = fills.copy(), trades.copy()
    fills["col"] = 0
    trades["col"] = 0
    init = float(_init(init_cash, e.shape[1]).sum())
    position = np.abs(_2d(position)).sum(axis=1, keepdims=True)
    return e.sum(axis=1, keepdims=True), position, fills, trades, init
