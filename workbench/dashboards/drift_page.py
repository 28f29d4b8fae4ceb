"""The drift page (``notebooks/dashboards/drift.ipynb``): a paper or live session against the
backtest replay of its day (:mod:`workbench.dashboards.drift`), in ipywidgets and plotly.

    page = DriftPage()         # the sessions of runs/ (WORKBENCH_HOME), newest first
    page.widget                # what the notebook displays
    page.show(run_id)          # what picking a session does
    page.refresh()             # the session's new journal lines, compared again

Shown: the headline figures (signal agreement, fills matched, slippage, P&L of each side
and their difference), the P&L of both over the day with the difference under it, the
slippage of each matched fill, and the fills and signals that differ (a fill or signal on
one side only is drift and is listed, never dropped). The replay is backtested once per
session; a refresh (the button, or every few seconds while "follow" is ticked, an asyncio
task on the kernel's loop) reads only what the session appended since.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.dashboards.drift import Drift, compare
from workbench.dashboards.figures import FigureSlot
from workbench.dashboards.picker import RunPicker
from workbench.dashboards.queries import SESSION_KINDS, RunJournal
from workbench.dashboards.research import ny_times
from workbench.dashboards.research_page import table_html
from workbench.monitor.drift import read_drift
from workbench.times import to_new_york

__all__ = ["DriftPage", "pnl_figure", "slippage_figure", "summary_html"]

FOLLOW_SECONDS = 5.0


def pnl_figure(drift: Drift | None, title: str = "P&L: session vs replay"):
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35],
                        vertical_spacing=0.06)
    pnl = None if drift is None else drift.pnl
    x = [] if pnl is None else ny_times(pnl["ts"])
    for name, color in (("session", "#1f77b4"), ("replay", "#ff7f0e")):
        fig.add_scatter(x=x, y=[] if pnl is None else pnl[name], name=f"{name} P&L",
                        mode="lines", line={"color": color}, row=1, col=1)
    fig.add_scatter(x=x, y=[] if pnl is None else pnl["difference"], name="difference",
                    mode="lines", fill="tozeroy", line={"color": "#d62728"}, row=2, col=1)
    fig.update_layout(title=title, height=420, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    fig.update_yaxes(title_text="P&L ($)", row=1, col=1)
    fig.update_yaxes(title_text="session - replay", row=2, col=1)
    fig.update_xaxes(title_text="New York time", row=2, col=1)
    return fig


def slippage_figure(drift: Drift | None):
    fig = go.Figure()
    fills = None if drift is None else drift.fills.dropna(subset=["slippage_bps"])
    fig.add_scatter(x=[] if fills is None else ny_times(fills["time"]),
                    y=[] if fills is None else fills["slippage_bps"], mode="markers",
                    text=None if fills is None else [f"{r.side} {r.symbol}" for r in
                                                     fills.itertuples()],
                    name="slippage", marker={"size": 7, "color": "#9467bd"})
    fig.update_layout(title="Slippage per fill against the replay (bps; > 0 costs the session)",
                      height=300, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      xaxis_title="New York time", yaxis_title="bps")
    return fig


def _report_row(report: dict | None) -> tuple[str, str]:
    """The session's recorded drift measurement (``results/drift.json``, what the gates and
    the alerts act on: :mod:`workbench.monitor.drift`), or that there is none yet."""
    if not report:
        return ("drift report", "none recorded yet (`workbench drift RUN` measures it)")
    limits = ", ".join(f"{k} {v:g}" for k, v in (report.get("limits") or {}).items())
    text = (f"level <b>{html.escape(str(report.get('level')))}</b> (limits: "
            f"{html.escape(limits)}): P&L difference {html.escape(str(report.get('pnl_difference')))}"
            f" ({float(report.get('pnl_fraction') or 0):.3%} of the start equity), "
            f"{report.get('missed', 0)} missed and {report.get('extra', 0)} extra trades, excess "
            f"slippage {html.escape(str(report.get('excess_slippage_cost')))}")
    return ("drift report", text)


def summary_html(drift: Drift, replay, report: dict | None = None) -> str:
    s = drift.summary
    params = ", ".join(f"{k}={v}" for k, v in replay.params.items())
    day = f"{to_new_york(replay.day_start):%Y-%m-%d}"
    rows = [
        ("replay", (f"backtest of {html.escape(params)} from {day}, "
                    f"{replay.cash:,.2f} per symbol's account")),
        ("signal agreement", (f"{s['signal_agreement']:.1%} ({s['signals_both']} of "
                              f"{s['signals_either']} signalled by both)")),
        ("fills matched", (f"{s['fills_matched']} (session {s['session_fills']}, replay "
                           f"{s['replay_fills']})")),
        ("slippage", (f"mean {s['slippage_bps_mean']:.2f} bps, "
                      f"worst {s['slippage_bps_max']:.2f} bps")),
        ("P&L", (f"session {s['pnl_session']:,.2f}, replay {s['pnl_replay']:,.2f}, "
                 f"difference {s['pnl_difference']:,.2f}")),
        _report_row(report),
    ]
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>"
                   for k, v in rows)
    return f'<table class="wb-drift-summary">{body}</table>'


class DriftPage(RunPicker):
    """See the module doc."""

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(root, "session", "640px")
        self.journal: RunJournal | None = None
        self.replay = None
        self.drift: Drift | None = None
        self._task: asyncio.Task | None = None
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.follow = widgets.Checkbox(description=f"follow (every {FOLLOW_SECONDS:g} s)")
        self.summary = widgets.HTML()
        self.pnl = FigureSlot()
        self.slippage = FigureSlot()
        self.fills = widgets.HTML()
        self.signals = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.picker, self.reload]),
            widgets.HBox([self.refresh_button, self.follow]), self.status, self.summary,
            self.pnl.box, self.slippage.box,
            widgets.HTML("<h3>Fills that differ (or the first ones)</h3>"), self.fills,
            widgets.HTML("<h3>Signals on one side only</h3>"), self.signals])
        self.reload.on_click(lambda _: self._guard(self.refresh_list))
        self.refresh_button.on_click(lambda _: self._guard(self.refresh))
        self.picker.observe(lambda c: self._guard(self.show, c["new"]), names="value")
        self.follow.observe(self._follow, names="value")
        self._guard(self.refresh_list)

    def labels(self) -> list[tuple[str, str]]:
        return [(f"{r.run_id}  ({r.outcome or r.status})", r.run_id)
                for r in self.runs.table(SESSION_KINDS, mode="paper").itertuples()]

    def none_text(self) -> str:
        return f"no paper or live sessions under {self.runs.root}"

    def same_run(self, run_id: str | None) -> None:
        self.refresh()  # the same session: its new events only

    def show(self, run_id: str | None) -> None:
        from workbench.dashboards.recompute import session_replay

        if run_id is None:
            return
        path = self.runs.root / run_id
        self.journal, self.replay, self.drift = RunJournal(path), None, None
        self._say(f"{run_id}: backtesting its day ...")
        self.replay = session_replay(path)
        self.refresh()

    def refresh(self) -> None:
        """The session's new journal lines, compared again with the replay."""
        if self.journal is None or self.replay is None:
            return
        new = self.journal.refresh()
        if new == 0 and self.drift is not None:
            return
        drift = self.drift = compare(self.journal, self.replay)
        state = "ended" if self.journal.end is not None else "running or stopped early"
        self._say(f"{self.journal.run_dir.name}: {self.journal.events} events read ({state})")
        self.summary.value = summary_html(drift, self.replay, read_drift(self.journal.run_dir))
        self.pnl.draw(pnl_figure(drift))
        self.slippage.draw(slippage_figure(drift))
        fills = drift.fills
        differing = fills[fills.isna().any(axis=1) | (fills["slippage_bps"].abs() > 1e-6)]
        self.fills.value = table_html(differing if len(differing) else fills, 40)
        signals = drift.signals
        self.signals.value = table_html(signals[~(signals["session"] & signals["replay"])], 40,
                                        "none: every signal on both sides")

    def _follow(self, change) -> None:
        if change["new"] and (self._task is None or self._task.done()):
            self._task = asyncio.get_event_loop().create_task(self._following())

    async def _following(self) -> None:
        while self.follow.value:
            await asyncio.sleep(FOLLOW_SECONDS)
            self._guard(self.refresh)
