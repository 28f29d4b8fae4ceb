"""The research explorer's data and figures: one run record read into what the page draws.

    view = RunView(run_dir)        # kind, manifest, settings; results read on first use
    view.equity()                  # the book's equity (Series), None for a sweep
    view.stats()                   # a two-column table of the run's headline figures
    view.trades()                  # trades (backtest, walk-forward) or fills (session)
    view.close(symbol)             # a symbol's close over the run's bars, from the store
    heatmap_table(view.combos(), "fast", "slow", "sharpe", fixed)   # metric by two axes

Figures (plotly, New York time on the axes): :func:`equity_figure` (equity over its
drawdown), :func:`price_figure` (a close with the trades' entries and exits),
:func:`heatmap_figure` and :func:`folds_figure`. Every reader takes the record as it is on
disk and says what is missing rather than drawing an empty chart.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.dashboards.queries import RunJournal, read_json, read_parquet
from workbench.times import to_new_york

__all__ = ["RunView", "drawdown", "equity_figure", "folds_figure", "heatmap_figure",
           "heatmap_table", "ny_times", "price_figure", "trade_marks"]

_STATS_KEYS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades",
               "win_rate", "exposure", "turnover", "fees", "final_equity")


class RunView:
    """One run record as the explorer shows it (see the module doc)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir)
        self.manifest = read_json(self.path, "manifest") or {}
        self.kind = self.manifest.get("kind")
        self.settings = read_json(self.path, "settings") or {}
        self.run_id = self.manifest.get("run_id", self.path.name)

    @cached_property
    def journal(self) -> RunJournal:
        journal = RunJournal(self.path)
        journal.refresh()
        return journal

    def symbols(self) -> list[str]:
        return list((self.settings.get("data") or {}).get("symbols") or [])

    def equity(self) -> pd.Series | None:
        if self.kind == "backtest":
            frame = read_parquet(self.path, "equity")
            if frame is None:
                return None
            frame = frame.set_index("ts") if "ts" in frame.columns else frame
            return frame["total"] if "total" in frame else frame.sum(axis=1)
        if self.kind == "walk_forward":
            frame = read_parquet(self.path, "oos_equity")
            return None if frame is None else frame.iloc[:, 0]
        if self.kind == "session":
            eq = self.journal.equity()
            if eq.empty:
                return None
            return pd.Series(eq["equity"].to_numpy(float), index=pd.to_datetime(eq["ts"], utc=True),
                             name="equity")
        return None

    def stats(self) -> pd.DataFrame:
        """(figure, value) rows: the book's stats, the sweep's best, the walk-forward's
        out-of-sample stats or the session's figures."""
        rows: dict[str, Any] = {}
        if self.kind == "backtest":
            stats = read_parquet(self.path, "stats")
            if stats is not None:
                book = stats[stats["scope"] == "book"].iloc[0]
                rows = {k: book[k] for k in ("start", "end", "bars", "initial_equity", *_STATS_KEYS)
                        if k in book}
        elif self.kind == "sweep":
            best = read_json(self.path, "best") or {}
            rows = {"best by": best.get("metric"), "best params": best.get("params"),
                    "combinations": best.get("n_combos"), "DSR": best.get("dsr"),
                    "PBO": best.get("pbo"), **(best.get("metrics") or {})}
        elif self.kind == "walk_forward":
            rows = read_json(self.path, "oos_stats") or {}
        elif self.kind == "session":
            rows = {k: v for k, v in (read_json(self.path, "session") or {}).items()
                    if not isinstance(v, dict)}
            rows.setdefault("events read", self.journal.events)
        rows = {"run": self.run_id, "kind": self.kind, "strategy": self.manifest.get("strategy"),
                "outcome": self.manifest.get("outcome"), **rows}
        return pd.DataFrame({"figure": list(rows), "value": [_shown(v) for v in rows.values()]})

    def trades(self) -> pd.DataFrame | None:
        if self.kind == "backtest":
            return read_parquet(self.path, "trades")
        if self.kind == "walk_forward":
            return read_parquet(self.path, "oos_trades")
        if self.kind == "session":
            return self.journal.fills()
        return None

    def close(self, symbol: str) -> pd.Series:
        """``symbol``'s close over the run's bars (the store's, as the run loaded them)."""
        from workbench.data.store import Store

        data = self.settings.get("data") or {}
        bars = Store().load([symbol], data["timeframe"], start=data["start"], end=data["end"])
        return bars.close[symbol].dropna()

    def combos(self) -> pd.DataFrame | None:
        """A sweep's book metrics per combination (``combos.parquet``)."""
        frame = read_parquet(self.path, "combos")
        if frame is not None and "combo" in frame.columns:
            frame = frame.set_index("combo")
        return frame

    def best(self) -> dict:
        return read_json(self.path, "best") or {}

    def folds(self) -> pd.DataFrame | None:
        return read_parquet(self.path, "folds")


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, pd.Timestamp):
        return str(to_new_york(value))
    return str(value)


def drawdown(equity: pd.Series) -> pd.Series:
    """Equity below its running peak, as a fraction (0 at a peak, -0.1 is 10% below)."""
    return equity / equity.cummax() - 1.0


def ny_times(index) -> list:
    """Times as New York timestamps (the axes' time zone)."""
    return list(to_new_york(pd.DatetimeIndex(index)))


def equity_figure(equity: pd.Series | None, title: str):
    """Equity over its drawdown (two rows sharing the time axis)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.05)
    x = [] if equity is None else ny_times(equity.index)
    fig.add_scatter(x=x, y=[] if equity is None else equity.to_numpy(), name="equity",
                    mode="lines", row=1, col=1)
    fig.add_scatter(x=x, y=[] if equity is None else drawdown(equity).to_numpy(),
                    name="drawdown", mode="lines", fill="tozeroy", line={"color": "#d62728"},
                    row=2, col=1)
    fig.update_layout(title=title, height=420, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      showlegend=False)
    fig.update_yaxes(title_text="equity ($)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".1%", row=2, col=1)
    fig.update_xaxes(title_text="New York time", row=2, col=1)
    return fig


def trade_marks(trades: pd.DataFrame | None, symbol: str) -> dict[str, tuple[list, list, list]]:
    """Entry and exit points of ``symbol``: name -> (times, prices, hover texts). Trades have
    entry/exit times and prices; a session's fills are buys and sells."""
    out: dict[str, tuple[list, list, list]] = {"entries": ([], [], []), "exits": ([], [], [])}
    if trades is None or trades.empty:
        return out
    mine = trades[trades["symbol"] == symbol]
    if "entry_time" in mine:
        for t in mine.itertuples(index=False):
            out["entries"][0].append(t.entry_time)
            out["entries"][1].append(t.entry_price)
            out["entries"][2].append(f"{t.direction} entry {t.size:,.2f} @ {t.entry_price:,.4f}")
            if pd.notna(t.exit_time):
                out["exits"][0].append(t.exit_time)
                out["exits"][1].append(t.exit_price)
                out["exits"][2].append(f"exit ({t.exit_reason}) @ {t.exit_price:,.4f}, "
                                       f"P&L {t.pnl:,.2f}")
    else:
        for f in mine.itertuples(index=False):
            name = "entries" if f.side == "buy" else "exits"
            out[name][0].append(f.time)
            out[name][1].append(f.price)
            out[name][2].append(f"{f.side} {f.quantity:,.4f} @ {f.price:,.4f}")
    return {k: (ny_times(t) if t else [], p, h) for k, (t, p, h) in out.items()}


def price_figure(close: pd.Series | None, marks: dict, title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=[] if close is None else ny_times(close.index),
                    y=[] if close is None else close.to_numpy(), mode="lines", name="close",
                    line={"color": "#1f77b4"})
    for name, symbol, color in (("entries", "triangle-up", "#2ca02c"),
                                ("exits", "x", "#d62728")):
        times, prices, texts = marks.get(name, ([], [], []))
        fig.add_scatter(x=times, y=prices, mode="markers", name=name, text=texts,
                        hoverinfo="text+x", marker={"symbol": symbol, "size": 9, "color": color})
    fig.update_layout(title=title, height=360, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      xaxis_title="New York time", yaxis_title="price ($)")
    if close is not None and len(close) > 1 and (close.index[1:] - close.index[:-1]).min() < \
            pd.Timedelta(days=1):  # intraday: no empty nights and weekends on the axis
        fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]},
                                      {"bounds": [16, 9.5], "pattern": "hour"}])
    return fig


def heatmap_table(combos: pd.DataFrame, x: str, y: str, metric: str,
                  fixed: dict[str, Any]) -> pd.DataFrame:
    """``metric`` with ``y`` down and ``x`` across; the other parameters at ``fixed``
    (combinations the constraint left out are NaN)."""
    params = [c for c in combos.columns if c in fixed or c in (x, y)]
    rows = combos
    for name in params:
        if name not in (x, y):
            rows = rows[rows[name] == fixed[name]]
    return rows.pivot_table(index=y, columns=x, values=metric, aggfunc="first").sort_index()


def heatmap_figure(table: pd.DataFrame | None, x: str, y: str, metric: str):
    import plotly.graph_objects as go

    empty = table is None or table.empty
    fig = go.Figure(go.Heatmap(
        x=[] if empty else [str(v) for v in table.columns],
        y=[] if empty else [str(v) for v in table.index],
        z=[] if empty else table.to_numpy(), colorscale="RdYlGn", colorbar={"title": metric},
        hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.4f}}<extra></extra>"))
    fig.update_layout(title=f"{metric} by {x} and {y} (click a cell for its equity)", height=380,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, xaxis_title=x, yaxis_title=y,
                      xaxis={"type": "category"}, yaxis={"type": "category"})
    return fig


def folds_figure(folds: pd.DataFrame | None):
    import plotly.graph_objects as go

    fig = go.Figure()
    if folds is not None and not folds.empty:
        labels = [f"fold {f}" for f in folds["fold"]]
        for column, color in (("is_sharpe", "#7f7f7f"), ("oos_sharpe", "#1f77b4")):
            if column in folds:
                fig.add_bar(x=labels, y=folds[column], name=column.replace("_", " "),
                            marker_color=color)
    fig.update_layout(title="Walk-forward folds: in-sample vs out-of-sample Sharpe", height=320,
                      barmode="group", margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig
