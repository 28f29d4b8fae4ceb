"""``BacktestResult``: what ``wb.backtest`` returns: stats, trades, equity, plots, records.

    result.stats()                  # the book (all symbols' accounts summed), a Series
    result.stats(per_symbol=True)   # one row per symbol
    result.trades()                 # one row per trade, with its exit reason
    result.equity()                 # per symbol + "total"
    result.plot("AAPL")             # plotly: price with trades, equity, drawdown
    result.plot(benchmark=True)     # the book's equity with a buy-and-hold line
    result.save("runs/x/results")   # stats.parquet, trades.parquet, equity.parquet
    result.portfolio                # the same fills as a vectorbt Portfolio
"""

from __future__ import annotations

import html
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtesting import metrics as M
from workbench.backtesting.simulation import EXIT_REASONS, SimOptions, Simulation
from workbench.data.bars import Bars
from workbench.errors import ConfigError
from workbench.model.costs import CostModel
from workbench.strategy import Signals

__all__ = ["TRADE_COLUMNS", "BacktestResult"]

TRADE_COLUMNS = ("symbol", "direction", "entry_time", "entry_price", "exit_time", "exit_price",
                 "size", "fees", "pnl", "return", "exit_reason")
TOTAL = "total"


class BacktestResult:
    """The outcome of one backtest: a strategy, its parameters, costs, options and fills."""

    def __init__(self, strategy: str, params: dict[str, Any], bars: Bars, signals: Signals,
                 simulation: Simulation) -> None:
        self.strategy = strategy
        self.params = dict(params)
        self.bars = bars
        self.signals = signals
        self.simulation = simulation

    # -- what was run -------------------------------------------------------------------
    @property
    def costs(self) -> CostModel:
        return self.simulation.costs

    @property
    def options(self) -> SimOptions:
        return self.simulation.options

    @property
    def symbols(self) -> list[str]:
        return self.bars.symbols

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.bars.index

    @property
    def periods_per_year(self) -> float:
        return self.options.periods_per_year or float(M.DAYS_PER_YEAR)

    # -- tables -------------------------------------------------------------------------
    def equity(self) -> pd.DataFrame:
        """Account value at each bar's close: one column per symbol and their ``total``."""
        sim = self.simulation
        out = pd.DataFrame(sim.equity, index=self.index, columns=self._columns())
        out[TOTAL] = sim.equity.sum(axis=1)
        return out

    def _columns(self) -> pd.Index:
        return pd.Index(self.symbols, name="symbol")

    def drawdown(self) -> pd.DataFrame:
        """Drawdown from the running peak (a fraction <= 0), like :meth:`equity`."""
        sim, cash = self.simulation, self.options.cash
        per = M.drawdown(sim.equity, cash)
        out = pd.DataFrame(per, index=self.index, columns=self._columns())
        out[TOTAL] = M.drawdown(sim.equity.sum(axis=1), cash * len(self.symbols))[:, 0]
        return out

    def trades(self) -> pd.DataFrame:
        """One row per trade (:data:`TRADE_COLUMNS`). ``fees`` are entry plus exit fees,
        ``return`` is ``pnl / (size * entry_price)``; a trade still open at the end has no
        exit time, is marked at the last close and has ``exit_reason == "open at end"``."""
        t = self.simulation.trades
        index = self.index
        exit_idx = t["exit_idx"]
        exit_time = index[:0]
        if len(t):
            exit_time = index.take(np.maximum(exit_idx, 0)).where(exit_idx >= 0)
        frame = pd.DataFrame({
            "symbol": pd.array(np.asarray(self.symbols, dtype=object)[t["col"]], dtype="str"),
            "direction": np.where(t["direction"] > 0, "long", "short"),
            "entry_time": index[t["entry_idx"]],
            "entry_price": t["entry_price"],
            "exit_time": exit_time,
            "exit_price": t["exit_price"],
            "size": t["size"],
            "fees": t["entry_fees"] + t["exit_fees"],
            "pnl": t["pnl"],
            "return": t["return"],
            "exit_reason": np.asarray(EXIT_REASONS, dtype=object)[t["reason"]],
        })
        return frame.reset_index(drop=True)

    def _summary(self, book: bool) -> dict[str, np.ndarray]:
        sim = self.simulation
        arrays = (sim.equity, sim.position, sim.fills, sim.trades, self.options.cash)
        if book:
            arrays = M.book(*arrays)
        return M.summary(*arrays, periods_per_year=self.periods_per_year)

    def stats(self, per_symbol: bool = False) -> pd.Series | pd.DataFrame:
        """Metrics of the book (a Series) or of each symbol's account (a DataFrame).

        See :mod:`workbench.backtesting.metrics` for the definitions; returns and drawdowns
        are fractions (0.05 is 5%), ``turnover`` is per year."""
        n = len(self.symbols)
        head = {
            "start": self.index[0] if len(self.index) else pd.NaT,
            "end": self.index[-1] if len(self.index) else pd.NaT,
            "bars": len(self.index),
        }
        if per_symbol:
            m = self._summary(book=False)
            frame = pd.DataFrame({**{k: [v] * n for k, v in head.items()},
                                  "initial_equity": self.options.cash, **m},
                                 index=pd.Index(self.symbols, name="symbol"))
            return frame
        m = {k: v[0] for k, v in self._summary(book=True).items()}
        values = {**head, "symbols": n, "initial_equity": self.options.cash * n, **m}
        return pd.Series(values, name=self.strategy, dtype=object)

    # -- vectorbt -----------------------------------------------------------------------
    @cached_property
    def portfolio(self):
        """The fills as a ``vectorbt.Portfolio``: vectorbt's own analytics and plots, with
        vectorbt's conventions (e.g. it annualizes over 365 days, not 252 sessions)."""
        tf = self.bars.timeframe
        return self.simulation.portfolio(index=self.index, columns=self._columns(),
                                         freq=tf.delta if tf is not None else None)

    # -- records ------------------------------------------------------------------------
    def stats_table(self) -> pd.DataFrame:
        """Book and per-symbol stats in one typed table (``scope`` is "book" or "symbol")."""
        per = self.stats(per_symbol=True).reset_index()
        per.insert(0, "scope", "symbol")
        book = self.stats()
        row = {c: book.get(c, np.nan) for c in per.columns if c not in ("scope", "symbol")}
        row.update(scope="book", symbol=None)
        out = pd.concat([pd.DataFrame([row]), per], ignore_index=True)[per.columns]
        return out.astype({"trades": "int64", "bars": "int64"})

    def save(self, directory) -> Path:
        """Write ``stats.parquet``, ``trades.parquet`` and ``equity.parquet`` into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.stats_table().to_parquet(path / "stats.parquet", index=False)
        self.trades().to_parquet(path / "trades.parquet", index=False)
        equity = self.equity().rename_axis(columns=None).reset_index()
        equity.to_parquet(path / "equity.parquet", index=False)
        return path

    # -- display ------------------------------------------------------------------------
    def plot(self, symbol: str | None = None, benchmark: bool | str = False):
        """A plotly figure: for the book (``symbol=None``) its equity and drawdown; for a
        symbol also its close with the trades (entries ▲/▼, exits ✕). Times are New York.

        ``benchmark``: also draw buy-and-hold on the equity panel, without costs, from the
        same starting cash. ``True``: the plotted symbol (for the book: every symbol, equal
        cash each, as the book's accounts); a symbol of these bars: that symbol alone."""
        if symbol is not None and symbol not in self.symbols:
            have = ", ".join(self.symbols[:10])
            raise ConfigError(f"plot: unknown symbol {symbol!r}; have {have}")
        return _figure(self, symbol, self._benchmark(symbol, benchmark))

    def benchmark(self, symbol: str | None = None) -> pd.Series:
        """Buy-and-hold equity without costs: ``symbol``'s account's cash held in it from its
        first close; ``None``: every symbol so, summed (the book's starting cash)."""
        close = self.bars.close
        names = self.symbols if symbol is None else [symbol]
        cash = self.options.cash
        total = pd.Series(0.0, index=self.index)
        for name in names:
            c = close[name]
            first = c.first_valid_index()
            if first is None:
                total += cash  # never priced: the account stays cash
                continue
            held = (cash * c / c.loc[first]).ffill()
            total += held.where(c.index >= first, cash)
        return total.rename(f"buy and hold ({symbol or 'all symbols'})")

    def _benchmark(self, symbol: str | None, benchmark: bool | str) -> pd.Series | None:
        if benchmark is False or benchmark is None:
            return None
        if benchmark is True:
            return self.benchmark(symbol)
        if isinstance(benchmark, str):
            if benchmark not in self.symbols:
                have = ", ".join(self.symbols[:10])
                raise ConfigError(f"plot: benchmark {benchmark!r} is not a symbol of these "
                                  f"bars ({have}); load it with the others or pass True")
            line = self.benchmark(benchmark)
            if symbol is None:  # scale to the book's starting cash
                line = line * len(self.symbols)
            return line
        raise ConfigError(f"plot: benchmark must be True, False or a symbol, got {benchmark!r}")

    def __repr__(self) -> str:
        s = self.stats()
        return (f"<BacktestResult {self.strategy} {self.params} on {len(self.symbols)} symbol(s), "
                f"{s['bars']} bars: total_return={s['total_return']:.4f} sharpe={s['sharpe']:.3f} "
                f"trades={s['trades']}>")

    def _repr_html_(self) -> str:
        def table(items: dict) -> str:
            rows = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                           f"<td style='text-align:right'>{html.escape(_fmt(v))}</td></tr>"
                           for k, v in items.items())
            return f"<table>{rows}</table>"

        names = ", ".join(self.symbols[:8]) + (" ..." if len(self.symbols) > 8 else "")
        title = (f"<b>{html.escape(self.strategy)}</b> on {len(self.symbols)} symbol(s): "
                 f"{html.escape(names)}")
        cells = [("stats (book)", table(self.stats().to_dict())),
                 ("parameters", table(self.params or {"(none)": ""})),
                 ("costs", table(self.costs.describe())),
                 ("options", table(self.options.describe()))]
        body = "".join(f"<td style='vertical-align:top;padding-right:2em'><i>{name}</i>{t}</td>"
                       for name, t in cells)
        return f"<div><p>{title}</p><table><tr>{body}</tr></table></div>"


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "NaN" if np.isnan(value) else f"{value:,.6g}"
    return str(value)


def _line(x, y, name: str, **kw):
    import plotly.graph_objects as go

    trace = go.Scattergl if len(x) > 20_000 else go.Scatter
    return trace(x=x, y=y, name=name, mode="lines", **kw)


def _markers(fig, trades: pd.DataFrame, row: int) -> None:
    import plotly.graph_objects as go

    kinds = (("long", "triangle-up", "green"), ("short", "triangle-down", "red"))
    for direction, shape, color in kinds:
        t = trades[trades["direction"] == direction]
        if len(t):
            fig.add_trace(go.Scatter(
                x=t["entry_time"], y=t["entry_price"], mode="markers", name=f"{direction} entry",
                marker={"symbol": shape, "size": 9, "color": color},
                text=t["size"].map(lambda q: f"size {q:,.4g}")), row=row, col=1)
    done = trades[trades["exit_time"].notna()]
    if len(done):
        fig.add_trace(go.Scatter(
            x=done["exit_time"], y=done["exit_price"], mode="markers", name="exit",
            marker={"symbol": "x", "size": 8, "color": "black"},
            text=done["exit_reason"] + done["pnl"].map(lambda p: f", pnl {p:,.2f}")),
            row=row, col=1)


def _figure(result: BacktestResult, symbol: str | None, benchmark: pd.Series | None = None):
    from plotly.subplots import make_subplots

    from workbench.backtesting.plots import TIME_AXIS, ny_axis, offline_notebook_html, title

    offline_notebook_html()
    key = TOTAL if symbol is None else symbol
    equity, dd = result.equity()[key], result.drawdown()[key]
    if symbol is None:
        rows, titles, heights = 2, ["equity (book)", "drawdown"], [0.7, 0.3]
    else:
        titles = [f"{symbol} close and trades", f"equity ({symbol})", "drawdown"]
        rows, heights = 3, [0.55, 0.3, 0.15]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=titles, row_heights=heights)
    if symbol is not None:
        close = result.bars.close[symbol].dropna()
        fig.add_trace(_line(ny_axis(close.index), close.to_numpy(), f"{symbol} close"),
                      row=1, col=1)
        trades = result.trades()
        trades = trades[trades["symbol"] == symbol].copy()
        for col in ("entry_time", "exit_time"):
            trades[col] = ny_axis(pd.DatetimeIndex(trades[col]))
        _markers(fig, trades, row=1)
    x = ny_axis(equity.index)
    fig.add_trace(_line(x, equity.to_numpy(), f"equity ({key})"), row=rows - 1, col=1)
    if benchmark is not None:
        fig.add_trace(_line(x, benchmark.to_numpy(), str(benchmark.name),
                            line={"color": "gray", "dash": "dash"}), row=rows - 1, col=1)
    fig.add_trace(_line(x, dd.to_numpy(), "drawdown", fill="tozeroy",
                        line={"color": "firebrick"}), row=rows, col=1)
    fig.update_yaxes(tickformat=".1%", row=rows, col=1)
    fig.update_yaxes(tickprefix="$", tickformat=",.0f", row=rows - 1, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=rows, col=1)
    fig.update_layout(title=title(result.strategy, result.params), height=250 * rows,
                      hovermode="x unified", margin={"l": 60, "r": 20, "t": 60, "b": 40})
    return fig
