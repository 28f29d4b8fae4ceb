"""``wb.walk_forward``: optimize on each training window, trade the next window out of sample.

    wf = wb.walk_forward(sma_cross, bars, {"fast": range(5, 30, 5), "slow": range(20, 80, 10)},
                         train=504, test=126, constraint=lambda p: p["fast"] < p["slow"])
    wf.folds        # per fold: windows, the parameters chosen in sample, in/out-of-sample metrics
    wf.equity()     # the out-of-sample book equity, stitched fold after fold
    wf.stats(); wf.plot()

Fold k trains on ``train`` bars and tests on the ``test`` bars that follow; the next fold
starts ``test`` bars later (``anchored=True`` keeps every training window starting at the
first bar). In each training window :func:`workbench.backtesting.sweeps.runner.sweep` scores the grid
and ``best(metric)`` picks the parameters by the book's metric. Out of sample, the chosen
parameters are backtested on the test window, preceded by the strategy's warmup bars (the
history a live strategy would have had); warmup rows never trade, so every fill of a fold
lies inside its test window. Each fold starts flat with the full cash; the stitched
equity chains the folds' book returns. Nothing of a test window is seen before it is traded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtesting import metrics as M
from workbench.backtesting.run import backtest
from workbench.data.bars import Bars
from workbench.errors import ConfigError
from workbench.strategy import Strategy, as_strategy

__all__ = ["WalkForwardResult", "fold_windows", "walk_forward"]


def _bars_count(value, index: pd.DatetimeIndex, what: str) -> int:
    """``value`` bars: an int, or a duration such as "365D" measured on the index."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        n = int(value)
    else:
        try:
            span = pd.Timedelta(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{what}={value!r}: give a number of bars or a duration like '365D'") from e
        n = int(np.searchsorted(index.asi8, index.asi8[0] + span.value, side="left"))
    if n < 1:
        raise ConfigError(f"{what} must cover at least one bar, got {value!r}")
    return n


def fold_windows(n_bars: int, train: int, test: int, anchored: bool = False) -> list[tuple[int, int, int]]:
    """``(train_start, test_start, test_end)`` row positions of each fold (end exclusive).

    The last fold's test window may be shorter than ``test``."""
    folds, test_start = [], train
    while test_start < n_bars:
        folds.append((0 if anchored else test_start - train, test_start, min(test_start + test, n_bars)))
        test_start += test
    return folds


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    strategy: str
    metric: str
    folds: pd.DataFrame  # one row per fold
    returns: pd.Series  # out-of-sample book returns, stitched
    trades: pd.DataFrame  # out-of-sample trades, with their fold
    cash: float
    periods_per_year: float

    def equity(self) -> pd.Series:
        """The out-of-sample book value, starting from the cash of one fold's book."""
        return (self.cash * (1 + self.returns).cumprod()).rename("equity")

    def stats(self) -> pd.Series:
        eq = self.equity().to_numpy()
        rets = self.returns.to_numpy()[:, None]
        ppy = self.periods_per_year
        out = {
            "start": self.returns.index[0], "end": self.returns.index[-1],
            "bars": len(rets), "folds": len(self.folds),
            "total_return": float(M.total_return(eq, self.cash)[0]),
            "cagr": float(M.cagr(eq, self.cash, ppy)[0]),
            "sharpe": float(M.sharpe(rets, ppy)[0]),
            "sortino": float(M.sortino(rets, ppy)[0]),
            "max_drawdown": float(M.max_drawdown(eq, self.cash)[0]),
            "oos_trades": int(self.folds["oos_trades"].sum()),
        }
        return pd.Series(out, name=f"{self.strategy} walk-forward")

    def plot(self):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        from workbench.backtesting.plots import TIME_AXIS, ny_axis, offline_notebook_html

        offline_notebook_html()
        eq = self.equity()
        eq.index = ny_axis(eq.index)
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                            subplot_titles=("out-of-sample equity (stitched)", "drawdown"))
        fig.add_trace(go.Scatter(x=eq.index, y=eq, name="equity"), row=1, col=1)
        dd = eq / eq.cummax() - 1
        fig.add_trace(go.Scatter(x=dd.index, y=dd, name="drawdown", fill="tozeroy"), row=2, col=1)
        starts = ny_axis(pd.DatetimeIndex(self.folds["test_start"].iloc[1:]))
        for start in starts:
            fig.add_vline(x=start, line_dash="dot", line_color="gray")
        fig.update_xaxes(title_text=TIME_AXIS, row=2, col=1)
        fig.update_layout(title=f"{self.strategy}: walk-forward ({len(self.folds)} folds)", height=520)
        return fig

    def _repr_html_(self) -> str:
        stats = self.stats().to_frame().to_html()
        return f"<h4>{self.strategy} walk-forward by {self.metric}</h4>{stats}{self.folds.to_html(index=False)}"

    def save(self, directory) -> None:
        from pathlib import Path

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.folds.assign(params=self.folds["params"].map(repr)).to_parquet(path / "folds.parquet")
        self.equity().to_frame().to_parquet(path / "oos_equity.parquet")
        self.trades.to_parquet(path / "oos_trades.parquet")


def walk_forward(strategy: Strategy, bars: Bars, grid: Mapping[str, Iterable | Any], *,
                 train, test, metric: str = "sharpe", constraint=None, anchored: bool = False,
                 progress: bool = True, **options: Any) -> WalkForwardResult:
    """Optimize ``grid`` on each training window by ``metric``; trade the next window.

    ``train``/``test``: bars (int) or durations ("504D"). ``options``: backtest options
    (fees_bps, slippage_bps, fill, ...) used both in and out of sample."""
    from workbench.backtesting.sweeps.runner import sweep

    strategy = as_strategy(strategy, "walk_forward")
    n_train = _bars_count(train, bars.index, "train")
    n_test = _bars_count(test, bars.index, "test")
    windows = fold_windows(len(bars), n_train, n_test, anchored)
    if not windows:
        raise ConfigError(f"train={n_train} bars leaves nothing to test in {len(bars)} bars")
    rows, pieces, fold_trades = [], [], []
    ppy = M.periods_per_year(bars.timeframe, bars.index)
    for k, (a, b, c) in enumerate(_progress(windows, progress)):
        found = sweep(strategy, bars.iloc(slice(a, b)), constraint=constraint, metric=metric,
                      progress=False, **options, **dict(grid))
        best = found.best(metric)
        oos, ret, trades = _out_of_sample(strategy, bars, best.params, b, c, options)
        pieces.append(ret)
        fold_trades.append(trades.assign(fold=k))
        rows.append({
            "fold": k, "train_start": bars.index[a], "train_end": bars.index[b - 1],
            "test_start": bars.index[b], "test_end": bars.index[c - 1], "params": best.params,
            **{name: best.params[name] for name in grid},
            f"is_{metric}": best.metrics.get(metric), "is_dsr": best.dsr,
            "oos_total_return": float(oos["total_return"]), "oos_sharpe": float(oos["sharpe"]),
            "oos_trades": int(oos["trades"]),
        })
    cash = float(options.get("cash", 100_000.0)) * len(bars.symbols)
    return WalkForwardResult(strategy.name, metric, pd.DataFrame(rows), pd.concat(pieces),
                             pd.concat(fold_trades, ignore_index=True), cash, ppy)


def _out_of_sample(strategy: Strategy, bars: Bars, params: dict, start: int, end: int,
                   options: dict) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """Backtest ``params`` on rows [start, end) with warmup history before them."""
    first = max(0, start - strategy.warmup(params))
    result = backtest(strategy, bars.iloc(slice(first, end)), **options, **params)
    total = result.equity()["total"]
    rets = total.pct_change().iloc[start - first:]
    if start == first:  # no row before the window: the first return is from the cash
        rets.iloc[0] = total.iloc[0] / (result.options.cash * len(bars.symbols)) - 1
    return result.stats(), rets.rename("return"), result.trades()


def _progress(items, enabled: bool):
    if not enabled:
        return items
    from workbench.progress import progress_bar

    return progress_bar(items, desc="walk-forward", unit="fold")
