"""The monitor page in a real browser while a real paced replay session runs: it renders with
no widget or console error, shows new events without a reload, and its halt button (after
the confirmation) halts the session through the control channel. Fault 16: a reader
following the journal while the session writes never sees a half-written event and never
blocks the writer.

One dashboard server and one `workbench session` (sma_cross on the simulated broker, a
synthetic day replayed at 120x: 390 bars in a bit over 3 minutes) for the whole module;
the tests run in order on one page, and the session is stopped (SIGTERM) at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.dashboard_pages import (
    Dashboard,
    DashboardPage,
    artifacts_dir,
    chromium,
    paced_session,
    session_run,
    synthetic_home,
)
from workbench.journal import read_events
from workbench.model import events as ev

pytestmark = pytest.mark.slow  # a session kernel, a page kernel and a browser

SPEED = "120"


def _events(run: Path) -> list:
    return list(read_events(run))


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def live(tmp_path_factory, jupyter_env):
    home = synthetic_home(tmp_path_factory.mktemp("monitor") / "home")
    with Dashboard.start(home, jupyter_env) as server:
        session = paced_session(home, jupyter_env, SPEED, home / "session.json")
        try:
            run = session_run(home, timeout=180)
            yield server, session, run
        finally:
            if session.poll() is None:
                session.send_signal(signal.SIGTERM)  # a stop through the control channel
                try:
                    session.wait(timeout=120)
                except Exception:  # noqa: BLE001 - never leave it behind
                    os.killpg(session.pid, signal.SIGKILL)
                    session.wait()


@pytest.fixture(scope="module")
def page(live, tmp_path_factory):
    server, _, _ = live
    with chromium() as browser:
        page = DashboardPage.open(browser, server.url("monitor.ipynb"),
                                  artifacts_dir(tmp_path_factory), "monitor")
        yield page
        page.close()


def _points(page: DashboardPage) -> int:
    """Points of the P&L curve drawn in the page (plotly's own data of the graph)."""
    return page.page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        " return g && g.data && g.data[0].x ? g.data[0].x.length : 0; }")


def _number(text: str, pattern: str) -> int:
    return int(re.search(pattern, text).group(1).replace(",", ""))


def test_the_monitor_renders_a_running_sessions_catalog_without_errors(live, page):
    _, session, run = live
    page.wait_for(".wb-monitor-ready")
    row = page.wait_for(f".wb-session-{run.name.rsplit('-', 1)[-1]}")
    _wait(lambda: "running" in row.inner_text(), 60, "the session shown running")
    assert run.name in page.text(".wb-select")
    page.wait_for(".js-plotly-plot")  # the P&L figure drawn
    page.shot("rendered")
    assert session.poll() is None
    assert page.problems() == []


def test_the_monitor_shows_new_events_and_fills_without_a_reload(live, page):
    url = page.page.url
    points = _points(page)
    first = page.text(".wb-headline")
    seq, fills = _number(first, r"last event #(\d+)"), _number(first, r"(\d+) fills")
    def grown() -> str | None:
        text = page.text(".wb-headline")
        return text if _number(text, r"(\d+) fills") > fills else None

    later = _wait(grown, 120, "a new fill on the page")
    assert _number(later, r"last event #(\d+)") > seq
    assert page.page.url == url  # the same page: no reload, no navigation
    _wait(lambda: _points(page) > points, 30, "the P&L curve growing in the figure")
    page.wait_for(".wb-fills-table")
    page.shot("updated")
    assert page.problems() == []


def test_readers_following_the_journal_never_see_half_an_event_nor_block_the_writer(live):
    """Fault 16: a MonitorState refreshed every 20 ms while the session writes: the events
    it sees are contiguous (no seq skipped, none torn), and the session keeps writing."""
    from workbench.dashboards.monitor_state import MonitorState

    _, session, run = live
    state = MonitorState(run.parent)
    seqs: list[int] = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        state.refresh()
        view = state.get(run.name)
        if view is not None:
            seqs.append(view.last_seq)
        time.sleep(0.02)
    assert seqs and seqs[-1] > seqs[0], "the session wrote nothing while read"
    events = _events(run)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    view = state.get(run.name)
    assert view.problem == ""
    assert session.poll() is None
    err = Path(run.parent.parent / "session.err").read_text()
    assert "lock" not in err.lower(), err


def test_halt_on_the_monitor_after_confirming_halts_the_session(live, page):
    _, session, run = live
    key = run.name.rsplit("-", 1)[-1]
    halt = page.wait_for(f".wb-session-{key} .wb-halt")
    halt.click()
    page.wait_for(".wb-asking .wb-confirm")
    assert "Halt session" in page.text(".wb-question")
    assert not [e for e in _events(run) if e.type == ev.COMMAND]  # nothing before confirm
    page.page.locator(".wb-asking .wb-confirm").first.click()
    _wait(lambda: "halt sent to" in page.text(".wb-message"), 30, "the page saying it sent")
    command = _wait(lambda: [e for e in _events(run) if e.type == ev.COMMAND], 60,
                    "the session journaling the operator command")[0]
    assert command.payload["command"] == "halt" and "monitor" in command.payload["operator"]
    state = _wait(lambda: [e for e in _events(run) if e.type == ev.STATE
                           and e.payload["state"] == "halted"], 30, "the halted state")[0]
    assert state.seq > command.seq  # obeyed within one bar of reading it
    assert len([e for e in _events(run) if e.type == ev.BAR
                and command.seq < e.seq < state.seq]) <= 1
    # bars go on being replayed, and no order is sent after the halt
    _wait(lambda: len([e for e in _events(run) if e.type == ev.BAR
                       and e.seq > command.seq]) >= 5, 60, "five bars after the halt")
    assert session.poll() is None
    late = [e for e in _events(run) if e.type == ev.INTENT and e.seq > command.seq]
    assert late == []
    row = page.wait_for(f".wb-session-{key}")
    _wait(lambda: "halted" in row.inner_text(), 30, "the page showing the session halted")
    assert "halted" in page.text(".wb-risk")
    page.shot("halted")
    assert page.problems() == []
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "running"
