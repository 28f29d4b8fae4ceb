"""The monitor page (``notebooks/dashboards/monitor.ipynb``): widgets over a
:class:`~workbench.dashboards.monitor_state.MonitorState`, refreshed in place.

    page = MonitorPage()      # reads runs/ and deployments/ of the project
    page.start()              # a first refresh, then an asyncio task on the kernel's loop
    page.widget               # the cell's output

The refresh is an asyncio task on the kernel's own event loop (never a thread): every
``every`` seconds it reads what changed (:meth:`MonitorState.refresh`) and updates the
widgets that show it; a failed refresh is said in the page in one line (no traceback) and
the next one tries again. Halt/resume per session and the global halt ask for a
confirmation, then write to the control channel (:mod:`workbench.dashboards.commands`).
Elements carry ``wb-*`` classes the browser tests find them by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from html import escape

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from workbench.dashboards import html as h
from workbench.dashboards.commands import send_command
from workbench.dashboards.figures import FigureSlot
from workbench.dashboards.monitor_state import MonitorState, SessionView
from workbench.errors import WorkbenchError

__all__ = ["MonitorPage"]

log = logging.getLogger(__name__)
_BAD = {"stale": h.RED, "died": h.RED, "failed": h.RED, "halted": "#ef6c00"}


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class _Row:
    """One session's line: its figures and its two buttons."""

    def __init__(self, page: MonitorPage, view: SessionView) -> None:
        key = view.run_id.rsplit("-", 1)[-1]
        self.html = w.HTML().add_class("wb-session-line")
        self.halt = w.Button(description="Halt", button_style="danger",
                             layout=w.Layout(width="80px")).add_class("wb-halt")
        self.resume = w.Button(description="Resume", button_style="success",
                               layout=w.Layout(width="80px")).add_class("wb-resume")
        self.halt.on_click(lambda _: page.ask("halt", view))
        self.resume.on_click(lambda _: page.ask("resume", view))
        self.box = w.HBox([self.html, self.halt, self.resume]).add_class("wb-session") \
            .add_class(f"wb-session-{key}")

    def update(self, view: SessionView, status: str, age: float | None, stale: bool) -> None:
        color = _BAD.get(status)
        beat = "no heartbeat yet" if age is None else f"heartbeat {age:,.0f} s ago"
        self.html.value = " &nbsp; ".join([
            f"<b>{escape(view.run_id)}</b>", escape(view.strategy),
            h.tag(status, "wb-status", color, bold=True),
            h.tag(beat, "wb-age wb-age-stale" if stale else "wb-age",
                  h.RED if stale else None, bold=stale),
            f"{view.bars} bars", f"equity {h.money(view.equity)}",
            h.tag(f"P&L {h.money(view.pnl, signed=True)}", "wb-session-pnl"),
            h.tag(f"risk {view.risk_state}", "wb-risk-state"),
        ] + ([h.tag(view.problem, "wb-problem", h.RED)] if view.problem else []))
        self.halt.disabled = not view.running or view.risk_state == "halted"
        self.resume.disabled = not view.running or view.risk_state != "halted"


class MonitorPage:
    """The monitor's widgets, their refresh task and the operator's buttons."""

    def __init__(self, state: MonitorState | None = None, every: float = 2.0,
                 stale_after: float = 90.0, died_after: float = 600.0,
                 now: Callable[[], pd.Timestamp] = _now) -> None:
        self.state = state or MonitorState()
        self.every, self.stale_after, self.died_after, self._now = (every, stale_after,
                                                                     died_after, now)
        self.refreshes = 0
        self._task: asyncio.Task | None = None
        self._rows: dict[str, _Row] = {}
        self._pending: Callable[[], str] | None = None
        self._shown: tuple[str | None, int] = (None, -1)  # (run id, curve points) drawn
        self._build()

    # -- layout
    def _build(self) -> None:
        self.refreshed = w.HTML().add_class("wb-refreshed")
        self.halt_all = w.Button(description="Halt all sessions", button_style="danger",
                                 icon="stop").add_class("wb-global-halt")
        self.halt_all.on_click(lambda _: self.ask_all())
        self.question = w.HTML().add_class("wb-question")
        self.confirm = w.Button(description="Confirm", button_style="warning") \
            .add_class("wb-confirm")
        self.cancel = w.Button(description="Cancel").add_class("wb-cancel")
        self.confirm.on_click(lambda _: self._confirmed())
        self.cancel.on_click(lambda _: self._hide_question())
        self.asking = w.HBox([self.question, self.confirm, self.cancel],
                             layout=w.Layout(display="none")).add_class("wb-asking")
        self.message = w.HTML().add_class("wb-message")
        self.deployments = w.HTML().add_class("wb-deployments")
        self.sessions = w.VBox().add_class("wb-sessions")
        self.select = w.Dropdown(description="Session", options=[],
                                 layout=w.Layout(width="640px")).add_class("wb-select")
        self.select.observe(lambda _: self._show_selected(force=True), names="value")
        self.headline = w.HTML().add_class("wb-headline")
        self.figure = FigureSlot()  # a static figure replaced in place (not a FigureWidget)
        self.chart = self.figure.box.add_class("wb-chart")
        self.positions = w.HTML().add_class("wb-positions")
        self.orders = w.HTML().add_class("wb-orders")
        self.fills = w.HTML().add_class("wb-fills")
        self.risk = w.HTML().add_class("wb-risk")
        self.alerts = w.HTML().add_class("wb-alerts")

        def section(title: str, *children) -> w.VBox:
            return w.VBox([w.HTML(f"<h4 style='margin:8px 0 2px'>{escape(title)}</h4>"),
                           *children])

        self.widget = w.VBox([
            w.HBox([self.halt_all, self.refreshed]), self.asking, self.message,
            section("Deployments", self.deployments), section("Sessions", self.sessions),
            section("Session detail", self.select, self.headline), self.chart,
            w.HBox([section("Open positions", self.positions),
                    section("Risk state and kill-switch events", self.risk)]),
            section("Recent orders", self.orders), section("Recent fills", self.fills),
            section("Alerts and operator commands", self.alerts),
        ]).add_class("wb-monitor")

    # -- refreshing
    def start(self) -> MonitorPage:
        """A first refresh now, then one every ``every`` seconds on the kernel's loop."""
        self.refresh()
        self.widget.add_class("wb-monitor-ready")
        if self._task is None or self._task.done():
            self._task = asyncio.get_event_loop().create_task(self._loop())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.renew()

    def renew(self) -> None:
        """A refresh whose failure is said in the page in one line (the loop's, and a
        preheated kernel's at its page's request: :mod:`workbench.dashboards.preheat`)."""
        try:
            self.refresh()
        except Exception as e:  # noqa: BLE001 - said in the page, tried again next time
            log.warning("monitor refresh failed: %s", e)
            self.message.value = h.tag(f"refresh failed: {type(e).__name__}: {e}",
                                       "wb-error", h.RED)

    def refresh(self) -> set[str]:
        """Read what changed and show it; the run ids that changed."""
        changed = self.state.refresh()
        now = self._now()
        self.refreshes += 1
        views = self.state.sessions()
        if changed or {v.run_id for v in views} != set(self._rows):
            self._rebuild_rows(views)
        for view in views:  # ages move on every refresh
            status = view.status(now, self.stale_after, self.died_after)
            age = view.heartbeat_age(now)
            stale = view.running and (age is None or age > self.stale_after)
            self._rows[view.run_id].update(view, status, age, stale)
        self.deployments.value = self._deployments_html()
        self.refreshed.value = h.tag(f"refreshed {h.ny_time(now)} New York, every "
                                     f"{self.every:g} s (#{self.refreshes})", "wb-refresh-time")
        self._show_selected(force=self.select.value in changed)
        return changed

    def _rebuild_rows(self, views: list[SessionView]) -> None:
        self._rows = {v.run_id: self._rows.get(v.run_id) or _Row(self, v) for v in views}
        self.sessions.children = [self._rows[v.run_id].box for v in views] or \
            [w.HTML("<i>(no session run yet)</i>")]
        options = [(f"{v.run_id} ({v.manifest_status})", v.run_id) for v in views]
        if [o[1] for o in self.select.options] != [o[1] for o in options] or \
                [o[0] for o in self.select.options] != [o[0] for o in options]:
            keep = self.select.value
            running = [v.run_id for v in views if v.running]
            self.select.options = options
            self.select.value = keep if keep in dict(map(reversed, options)) else (
                running[0] if running else (views[0].run_id if views else None))

    def _deployments_html(self) -> str:
        rows = [[h.cell(d.get("id")), h.cell(d.get("mode")), h.cell(d.get("broker")),
                 h.tag(str(d.get("status")), "wb-dep-status",
                       None if d.get("status") == "active" else "#757575"),
                 h.cell(str(d.get("notebook", "")).rsplit("/", 1)[-1]),
                 h.cell(d.get("parameters"))] for d in self.state.deployments()]
        return h.table(rows, ["deployment", "mode", "broker", "status", "notebook",
                              "parameters"], "wb-deployments-table", "(no deployment)")

    def _show_selected(self, force: bool = False) -> None:
        view = self.state.get(self.select.value) if self.select.value else None
        if view is None:
            self.headline.value = "<i>(no session selected)</i>"
            return
        self.headline.value = " &nbsp; ".join([
            h.tag(f"P&L {h.money(view.pnl, signed=True)}", "wb-pnl", bold=True,
                  color=h.RED if (view.pnl or 0) < 0 else h.GREEN),
            h.tag(f"equity {h.money(view.equity)}", "wb-equity"),
            h.tag(f"cash {h.money(view.cash)}", "wb-cash"),
            h.tag(f"{view.fill_count} fills", "wb-fill-count"),
            h.tag(f"{len(view.orders)} orders", "wb-order-count"),
            h.tag(f"last event #{view.last_seq}", "wb-last-seq")])
        if force or self._shown != (view.run_id, len(view.curve)):
            self._draw(view)
        self.positions.value = h.table(
            [[h.cell(s), h.cell(q), h.cell(p)] for s, (q, p) in sorted(view.positions.items())],
            ["symbol", "quantity", "average price"], "wb-positions-table", "(flat)")
        self.orders.value = h.table(
            [[h.cell(o["time"]), h.cell(o["symbol"]), h.cell(o["side"]), h.cell(o["qty"]),
              h.cell(o["type"]), h.cell(o["status"]), h.cell(o["client_order_id"])]
             for o in view.recent_orders()],
            ["time", "symbol", "side", "quantity", "type", "status", "client order id"],
            "wb-orders-table", "(no order)")
        self.fills.value = h.table(
            [[h.cell(f["time"]), h.cell(f["symbol"]), h.cell(f["side"]), h.cell(f["qty"]),
              h.cell(f["price"])] for f in reversed(view.fills)],
            ["time", "symbol", "side", "quantity", "price"], "wb-fills-table", "(no fill)")
        state = h.tag(view.risk_state, "wb-risk-now",
                      h.RED if view.risk_state != "active" else h.GREEN, bold=True)
        self.risk.value = f"now: {state} {escape(view.risk_reason)}" + h.table(
            [[h.cell(s["time"]), h.cell(s["previous"]), h.cell(s["state"]),
              h.cell(s["reason"])] for s in reversed(view.switches)],
            ["time", "from", "to", "reason"], "wb-switches-table", "(no kill-switch event)")
        self.alerts.value = h.table(
            [[h.cell(a["time"]), h.cell(a["source"]), h.cell(a["level"]), h.cell(a["message"])]
             for a in reversed(view.alerts)]
            + [[h.cell(c["time"]), h.cell(c["operator"]), h.cell(c["command"]),
                h.cell(c["reason"])] for c in reversed(view.commands)],
            ["time", "source", "level / command", "message"], "wb-alerts-table", "(no alert)")

    def _draw(self, view: SessionView) -> None:
        """The P&L curve of ``view``, drawn again whole: a static plotly figure in the Output
        widget's state (:class:`workbench.dashboards.figures.FigureSlot`), so a page that
        connects late (or a slow plotly bundle) still gets the last curve, and no widget
        module of its own can fail to load in the page."""
        xs = [t.tz_convert("UTC").tz_localize(None) for t, _ in view.curve]
        ys = [p for _, p in view.curve]
        self.figure.draw(go.Figure(
            data=[go.Scatter(x=xs, y=ys, mode="lines", name="P&L")],
            layout=go.Layout(title={"text": f"P&L today: {view.run_id}"}, height=320,
                             margin={"l": 60, "r": 20, "t": 40, "b": 40},
                             xaxis={"title": "time (UTC)"}, yaxis={"title": "P&L ($)"})))
        self._shown = (view.run_id, len(view.curve))

    # -- the operator's commands
    def ask(self, command: str, view: SessionView) -> None:
        self._ask(f"{command.capitalize()} session <b>{escape(view.run_id)}</b>? It "
                  f"{'stops sending new orders' if command == 'halt' else 'trades again'} "
                  "at its next bar.",
                  lambda: f"{command} sent to {view.run_id} "
                          f"({send_command(view.path, command).name})")

    def ask_all(self) -> None:
        running = [v for v in self.state.sessions() if v.running]
        if not running:
            self.message.value = h.tag("no running session to halt", "wb-info")
            return

        def halt_all() -> str:
            sent = [v.run_id for v in running if send_command(v.path, "halt")]
            return f"halt sent to {len(sent)} session(s): {', '.join(sent)}"

        self._ask(f"Halt <b>all {len(running)} running session(s)</b>? They stop sending new "
                  "orders at their next bar.", halt_all)

    def _ask(self, question: str, action: Callable[[], str]) -> None:
        self._pending = action
        self.question.value = question
        self.asking.layout.display = "flex"

    def _hide_question(self) -> None:
        self._pending = None
        self.asking.layout.display = "none"

    def _confirmed(self) -> None:
        action, self._pending = self._pending, None
        self.asking.layout.display = "none"
        if action is None:
            return
        try:
            self.message.value = h.tag(action(), "wb-sent", h.GREEN)
        except (WorkbenchError, OSError) as e:
            self.message.value = h.tag(f"not sent: {e}", "wb-error", h.RED)
