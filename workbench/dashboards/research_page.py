"""The research explorer page (``notebooks/dashboards/research.ipynb``): ipywidgets and
plotly figures over :mod:`workbench.dashboards.research`.

    page = ResearchPage()      # the run list from runs/ (WORKBENCH_HOME)
    page.widget                # what the notebook displays
    page.show(run_id)          # what picking a run in the dropdown does
    page.pick_cell(x, y)       # what clicking a heatmap cell does

Pick a run (backtest, sweep, walk-forward or paper session records, newest first): its
equity over its drawdown, a symbol's close with the trades (or the session's fills), the
stats table; for a sweep the heatmap of a metric over two chosen parameters (the others
at the best combination's values), where clicking a cell backtests that combination
again (:func:`workbench.dashboards.recompute.backtest_of`) and draws its equity; for a
walk-forward its folds. Figures are updated in place. An error is shown on the page in
one line, never swallowed.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from workbench.dashboards import research as R
from workbench.dashboards.figures import FigureSlot
from workbench.dashboards.picker import RunPicker
from workbench.dashboards.queries import RESEARCH_KINDS

__all__ = ["HeatmapGrid", "ResearchPage", "table_html"]

_WIDE = widgets.Layout(width="640px")
_METRICS = ("sharpe", "total_return", "cagr", "sortino", "max_drawdown", "win_rate",
            "trades", "exposure", "turnover", "fees", "final_equity")


class HeatmapGrid:
    """A sweep's heatmap as a grid of buttons, one per combination, coloured by the metric
    (red low, green high); a click calls ``on_pick(x_value, y_value)``. Each button's
    tooltip names its combination (``fast=10, slow=40``)."""

    def __init__(self, on_pick) -> None:
        self.on_pick = on_pick
        self.title = widgets.HTML()
        self.grid = widgets.GridBox()
        self.box = widgets.VBox([self.title, self.grid])

    def draw(self, table, x: str, y: str, metric: str) -> None:
        from plotly.colors import sample_colorscale

        self.title.value = (f"<b>{html.escape(metric)} by {html.escape(x)} (across) and "
                            f"{html.escape(y)} (down)</b>: click a cell for that "
                            "combination's equity")
        if table is None or table.empty:
            self.grid.children = ()
            return
        values = table.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        cells = []
        for y_value in table.index[::-1]:  # the largest at the top, as a chart's axis
            cells.append(widgets.HTML(f"<b>{html.escape(y)}={html.escape(str(y_value))}</b>"))
            for x_value in table.columns:
                v = float(table.loc[y_value, x_value])
                button = widgets.Button(layout=widgets.Layout(width="auto", height="36px"))
                button.tooltip = f"{x}={x_value}, {y}={y_value}"
                if np.isfinite(v):
                    share = 0.5 if hi == lo else (v - lo) / (hi - lo)
                    button.description = f"{v:,.3f}"
                    button.style.button_color = sample_colorscale("RdYlGn", [share])[0]
                    button.on_click(lambda _, a=x_value, b=y_value: self.on_pick(a, b))
                else:
                    button.description, button.disabled = "-", True
                button.add_class("wb-cell")
                cells.append(button)
        cells.append(widgets.HTML(""))
        cells += [widgets.HTML(f"<b>{html.escape(x)}={html.escape(str(v))}</b>")
                  for v in table.columns]
        self.grid.layout = widgets.Layout(
            grid_template_columns=f"110px repeat({len(table.columns)}, 90px)", grid_gap="2px")
        self.grid.children = tuple(cells)


def table_html(frame, max_rows: int = 60, empty: str = "nothing recorded") -> str:
    """A small DataFrame as an HTML table (escaped)."""
    if frame is None or len(frame) == 0:
        return f"<i>{html.escape(empty)}</i>"
    return frame.head(max_rows).to_html(index=False, border=0, classes="wb-table", escape=True)


class ResearchPage(RunPicker):
    """See the module doc."""

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(root, "run", _WIDE.width)
        self.view: R.RunView | None = None
        self._drawing = True
        self.equity = FigureSlot()
        self.symbol = widgets.Dropdown(description="symbol")
        self.price = FigureSlot()
        self.stats = widgets.HTML()
        self.x, self.y = widgets.Dropdown(description="x"), widgets.Dropdown(description="y")
        self.metric = widgets.Dropdown(description="metric", options=_METRICS)
        self.heatmap = HeatmapGrid(lambda a, b: self._guard(self.pick_cell, a, b))
        self.combo_label = widgets.HTML()
        self.combo = FigureSlot()
        self.sweep_box = widgets.VBox([widgets.HBox([self.x, self.y, self.metric]),
                                       self.heatmap.box, self.combo_label, self.combo.box])
        self.folds = FigureSlot()
        self.folds_table = widgets.HTML()
        self.folds_box = widgets.VBox([self.folds.box, self.folds_table])
        self.trades_box = widgets.VBox([self.symbol, self.price.box])
        self.widget = widgets.VBox([
            widgets.HBox([self.picker, self.reload]), self.status, self.equity.box,
            self.trades_box, self.sweep_box, self.folds_box,
            widgets.HTML("<h3>Stats</h3>"), self.stats])
        self.reload.on_click(lambda _: self.refresh_list())
        self.picker.observe(lambda c: self._guard(self.show, c["new"]), names="value")
        self.symbol.observe(lambda c: self._drawing and self._guard(self._draw_trades),
                            names="value")
        for w in (self.x, self.y, self.metric):
            w.observe(lambda c: self._guard(self._draw_heatmap), names="value")
        self.refresh_list()

    # -- the run list -----------------------------------------------------------------
    def labels(self) -> list[tuple[str, str]]:
        return [(f"{r.run_id}  ({r.kind}, {r.outcome or r.status})", r.run_id)
                for r in self.runs.table(RESEARCH_KINDS).itertuples()]

    def none_text(self) -> str:
        return f"no backtest, sweep, walk-forward or session records under {self.runs.root}"

    def same_run(self, run_id: str | None) -> None:
        if run_id is not None and (self.view is None
                                   or self.view.manifest.get("status") == "running"):
            self.show(run_id)  # the same run, still being written: what it wrote since

    # -- one run ------------------------------------------------------------------------
    def show(self, run_id: str | None) -> None:
        if run_id is None:
            return
        if self.picker.value != run_id:
            self.picker.value = run_id  # observed: comes back here
            return
        view = R.RunView(self.runs.root / run_id)
        self.view = view
        self._say(f"{view.kind} {view.manifest.get('strategy')} "
                  f"{view.manifest.get('params') or ''}: {view.manifest.get('outcome')}")
        equity = view.equity()  # none for a sweep: its heatmap's cells have theirs
        self.equity.box.layout.display = None if equity is not None else "none"
        if equity is not None:
            self._set_equity(self.equity, equity, f"{view.kind} {run_id}: equity and drawdown")
        self.stats.value = f'<div class="wb-stats">{table_html(view.stats())}</div>'
        has_trades = view.kind in ("backtest", "walk_forward", "session")
        self.trades_box.layout.display = None if has_trades else "none"
        if has_trades:
            symbols = view.symbols()
            self._drawing = False  # one chart for the new options and value
            try:
                keep = self.symbol.value
                self.symbol.options = symbols
                if symbols:
                    self.symbol.value = keep if keep in symbols else symbols[0]
            finally:
                self._drawing = True
            self._draw_trades()
        self._show_sweep(view)
        self._show_folds(view)

    def _set_equity(self, slot: FigureSlot, equity, title: str) -> None:
        slot.draw(R.equity_figure(equity, title))

    def _draw_trades(self) -> None:
        view, symbol = self.view, self.symbol.value
        if view is None or not symbol:
            return
        self.price.draw(R.price_figure(view.close(symbol), R.trade_marks(view.trades(), symbol),
                                       f"{symbol}: close and trades"))

    # -- sweeps -------------------------------------------------------------------------
    def _show_sweep(self, view: R.RunView) -> None:
        is_sweep = view.kind == "sweep"
        self.sweep_box.layout.display = None if is_sweep else "none"
        if not is_sweep:
            return
        best = view.best()
        grid = best.get("grid") or {}
        names = [k for k, v in grid.items() if len(v) > 1] or list(grid)
        self.combo_label.value = "<i>click a cell of the heatmap: that combination's equity</i>"
        self._drawing = False  # one heatmap for the three choices below
        try:
            self.x.options, self.y.options = names, names
            if names:
                self.x.value = names[0]
                self.y.value = names[1] if len(names) > 1 else names[0]
            if best.get("metric") in _METRICS:
                self.metric.value = best["metric"]
        finally:
            self._drawing = True
        self._draw_heatmap()

    def _draw_heatmap(self) -> None:
        view = self.view
        if (view is None or view.kind != "sweep" or not self._drawing or not self.x.value
                or not self.y.value):
            return
        combos = view.combos()
        if combos is None:
            self._say("this sweep recorded no combos.parquet", error=True)
            return
        x, y, metric = self.x.value, self.y.value, self.metric.value
        fixed = dict(view.best().get("params") or {})
        table = None if x == y else R.heatmap_table(combos, x, y, metric, fixed)
        self.heatmap.draw(table, x, y, metric)

    def pick_cell(self, x_value: Any, y_value: Any) -> None:
        """Backtest the combination at (x, y), the other parameters at the best's values,
        and draw its equity."""
        view = self.view
        if view is None or view.kind != "sweep":
            return
        best = view.best()
        params = dict(best.get("params") or {})
        grid = best.get("grid") or {}
        for name, value in ((self.x.value, x_value), (self.y.value, y_value)):
            params[name] = _typed(value, grid.get(name) or [])
        text = ", ".join(f"{k}={v}" for k, v in params.items())
        self.combo_label.value = f"<b>computing {html.escape(text)} ...</b>"
        from workbench.dashboards.recompute import backtest_of

        result = backtest_of(view.path, params)
        sharpe = result.stats().get("sharpe")
        self._set_equity(self.combo, result.equity()["total"] if "total" in result.equity()
                         else result.equity().sum(axis=1), f"Equity of {text}")
        self.combo_label.value = (f'<b class="wb-combo">{html.escape(text)}</b>: backtested again '
                                  f"from the notebook (Sharpe {sharpe:,.3f})")

    # -- walk-forward -----------------------------------------------------------------------
    def _show_folds(self, view: R.RunView) -> None:
        is_wf = view.kind == "walk_forward"
        self.folds_box.layout.display = None if is_wf else "none"
        if not is_wf:
            return
        folds = view.folds()
        self.folds.draw(R.folds_figure(folds))
        self.folds_table.value = table_html(folds)


def _typed(value: Any, values: list) -> Any:
    """A heatmap label back as the grid's value (the axis shows them as text)."""
    for v in values:
        if str(v) == str(value):
            return v
    return value
