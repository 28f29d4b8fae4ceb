"""The drift page (``notebooks/dashboards/drift.ipynb``): a paper or live session against the
backtest replay of its day, in ipywidgets and plotly. It only presents: the session's
record, the replay (the bars the session traded, its settings) and their comparison are
:mod:`workbench.monitor.drift_replay` and :mod:`workbench.monitor.drift_compare`, the
very computation of the recorded drift report (``workbench drift``, the gates, the halt).

    page = DriftPage()         # the sessions of runs/ (WORKBENCH_HOME), newest first
    page.widget                # what the notebook displays
    page.show(run_id)          # what picking a session does
    page.refresh()             # the session's new journal lines, compared again

Shown: the headline figures (signal agreement, fills matched, missed and extra, slippage
beyond the cost model, P&L of each side and their difference), the session's recorded
drift report (``results/drift.json``: its level, what the gates act on), the P&L of both
over the day with the difference under it, the excess slippage of each matched fill, and
the fills and signals that differ (a fill or signal on one side only is drift and is
listed, never dropped). The replay is backtested once per session; a refresh (the button,
or every few seconds while "follow" is ticked, an asyncio task on the kernel's loop) reads
only what the session appended since, and compares the bars it has reached.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.dashboards.figures import FigureSlot
from workbench.dashboards.picker import RunPicker
from workbench.dashboards.queries import SESSION_KINDS
from workbench.dashboards.research import ny_times
from workbench.dashboards.research_page import table_html
from workbench.monitor.drift import Comparison, Replay, SessionRecord, compare, read_drift
from workbench.times import to_new_york

__all__ = ["DriftPage", "pnl_figure", "slippage_figure", "summary_html"]

FOLLOW_SECONDS = 5.0


def pnl_figure(drift: Comparison | None, title: str = "P&L: session vs replay"):
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35],
                        vertical_spacing=0.06)
    pnl = None if drift is None else drift.pnl
    x = [] if pnl is None else ny_times(pnl["ts"])
    for name, shown, color in (("session", "session", "#1f77b4"),
                               ("backtest", "replay", "#ff7f0e")):
        fig.add_scatter(x=x, y=[] if pnl is None else pnl[name], name=f"{shown} P&L",
                        mode="lines", line={"color": color}, row=1, col=1)
    fig.add_scatter(x=x, y=[] if pnl is None else pnl["difference"], name="difference",
                    mode="lines", fill="tozeroy", line={"color": "#d62728"}, row=2, col=1)
    fig.update_layout(title=title, height=420, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    fig.update_yaxes(title_text="P&L ($)", row=1, col=1)
    fig.update_yaxes(title_text="session - replay", row=2, col=1)
    fig.update_xaxes(title_text="New York time", row=2, col=1)
    return fig


def slippage_figure(drift: Comparison | None):
    fig = go.Figure()
    fills = [] if drift is None else [f for f in drift.fills if f.excess_bps is not None]
    fig.add_scatter(x=ny_times([f.time for f in fills]), y=[f.excess_bps for f in fills],
                    mode="markers", text=[f"{f.side} {f.symbol}" for f in fills],
                    name="excess slippage", marker={"size": 7, "color": "#9467bd"})
    fig.update_layout(title="Slippage per fill beyond the cost model's (bps; > 0 costs the "
                      "session)", height=300, margin={"l": 60, "r": 20, "t": 50, "b": 40},
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


def summary_html(drift: Comparison, replay: Replay, report: dict | None = None) -> str:
    """The headline figures of ``drift`` and the recorded ``report`` (drift.json)."""
    s, start = drift.summary, replay.start
    params = ", ".join(f"{k}={v}" for k, v in start["params"].items())
    day = f"{to_new_york(replay.day_start):%Y-%m-%d}"
    notes = "".join(f"<br>note: {html.escape(n)}" for n in replay.notes)
    rows = [
        ("replay", (f"backtest of {html.escape(params)} from {day} on "
                    f"{html.escape(str(start.get('bars_from') or start['timeframe']))} bars, "
                    f"{replay.cash:,.2f} per symbol's account{notes}")),
        ("signal agreement", (f"{s['signal_agreement']:.1%} ({s['signals_differing']} of "
                              f"{s['signals_compared']} differ; {s['signals_both']} of "
                              f"{s['signals_either']} signalled by both)")),
        ("fills matched", (f"{s['matched']} (session {s['session_fills']}, replay "
                           f"{s['backtest_fills']}; {s['missed']} missed, {s['extra']} "
                           "extra)")),
        ("slippage", (f"beyond the cost model: mean {s['excess_bps_mean']:.2f} bps, "
                      f"worst {s['excess_bps_worst']:.2f} bps, {s['excess_cost']:,.2f} $")),
        ("P&L", (f"session {s['session_pnl']:,.2f}, replay {s['backtest_pnl']:,.2f}, "
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
        self.run_dir: Path | None = None
        self.record: SessionRecord | None = None
        self._tail = None
        self.replay: Replay | None = None
        self.drift: Comparison | None = None
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
        from workbench.dashboards.recompute import record_strategy
        from workbench.journal.tail import JournalTail
        from workbench.monitor.drift import replay_session

        if run_id is None:
            return
        path = self.runs.root / run_id
        self.run_dir, self.replay, self.drift = path, None, None
        self.record, self._tail = SessionRecord(), JournalTail(path)
        self.record.add(self._tail.read())
        self._say(f"{run_id}: backtesting its day ...")
        self.replay = replay_session(path, record_strategy(path), self.record)
        self._draw()

    def refresh(self) -> None:
        """The session's new journal lines, compared again with the replay."""
        if self.record is None or self.replay is None:
            return
        if self.record.add(self._tail.read()) or self.drift is None:
            self._draw()

    def _draw(self) -> None:
        record, replay = self.record, self.replay
        drift = self.drift = compare(record, replay)
        state = "ended" if record.end is not None else "running or stopped early"
        self._say(f"{self.run_dir.name}: {record.events} events read ({state})")
        self.summary.value = summary_html(drift, replay, read_drift(self.run_dir))
        self.pnl.draw(pnl_figure(drift))
        self.slippage.draw(slippage_figure(drift))
        fills = drift.fills_frame()
        differing = fills[(fills["status"] != "matched")
                          | ((fills["excess_bps"].abs() > 1e-6) & fills["excess_bps"].notna())]
        self.fills.value = table_html(differing if len(differing) else fills, 40)
        self.signals.value = table_html(drift.differing, 40, "none: every signal on both sides")

    def _follow(self, change) -> None:
        if change["new"] and (self._task is None or self._task.done()):
            self._task = asyncio.get_event_loop().create_task(self._following())

    async def _following(self) -> None:
        while self.follow.value:
            await asyncio.sleep(FOLLOW_SECONDS)
            self._guard(self.refresh)
