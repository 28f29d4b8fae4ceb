"""The monitor's state and widgets without a browser: a real journal written by the real
writer, read incrementally (only the new bytes; a half-written line never seen), statuses
(stale and died by heartbeat age, halted, failed), the newest sessions followed, and the
halt/resume buttons writing to the real control channel only after a confirmation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.clock import SimClock
from workbench.dashboards.commands import send_command
from workbench.dashboards.monitor_state import MonitorState
from workbench.errors import ConfigError
from workbench.journal.writer import Journal
from workbench.model import events as ev
from workbench.runs.records import RunRecord
from workbench.session.control import ControlChannel

T0 = pd.Timestamp("2026-11-20T14:31:00Z")


def _session(root, clock, name="sma_cross"):
    record = RunRecord.create("session", name, {"replay_date": "2026-11-20"}, "paper", None,
                              clock, root=root)
    return record, Journal.open(record.path, clock)


@pytest.fixture
def run(tmp_path):
    clock = SimClock(T0)
    record, journal = _session(tmp_path / "runs", clock)
    journal.append(ev.SESSION_START, start_equity="1000", symbols=["AAA"])
    journal.append(ev.HEARTBEAT, wall=T0.isoformat(), bars=1, state="active")
    journal.append(ev.EQUITY, equity="1000", cash="1000", pnl="0")
    yield tmp_path / "runs", record, journal, clock
    if not journal.closed:
        journal.close()


def test_a_refresh_reads_only_what_was_appended_and_never_half_a_line(run):
    runs, record, journal, _ = run
    state = MonitorState(runs, runs.parent / "deployments")
    assert state.refresh() == {record.path.name}
    view = state.get(record.path.name)
    assert (view.bars, view.pnl, view.last_seq) == (1, 0, 3)
    first = state.bytes_read
    assert state.refresh() == set() and state.bytes_read == first  # nothing new: nothing read
    journal.append(ev.FILL, execution_id="x1", client_order_id="c1", symbol="AAA", side="buy",
                   quantity="5", price="10", fee="0", time=T0.isoformat())
    segment = sorted((record.path / "events").glob("*.jsonl"))[-1]
    size = segment.stat().st_size
    with open(segment, "ab") as f:  # a line being written: no newline yet
        f.write(b'{"type":"equity","seq":5,"ts":"2026-11-20T14:32:00+00:00","payl')
    assert state.refresh() == {record.path.name}
    assert view.fill_count == 1 and view.last_seq == 4  # the whole line only
    assert state.bytes_read - first < 2 * (size - first)  # the new bytes, not the journal again
    with open(segment, "ab") as f:
        f.write(b'oad":{"equity":"1010","cash":"960","pnl":"10"}}\n')
    state.refresh()
    assert (view.last_seq, view.pnl, view.equity) == (5, 10, 1010)
    assert view.fills[-1]["symbol"] == "AAA" and view.curve[-1][1] == 10.0


def test_statuses_by_heartbeat_age_risk_state_and_outcome(run):
    runs, record, journal, _ = run
    state = MonitorState(runs)
    state.refresh()
    view = state.get(record.path.name)
    now = T0 + pd.Timedelta(seconds=10)
    assert view.status(now, stale_after=90, died_after=600) == "running"
    assert view.status(T0 + pd.Timedelta(seconds=120), 90, 600) == "stale"
    assert view.status(T0 + pd.Timedelta(seconds=900), 90, 600) == "died"
    journal.append(ev.STATE, state="halted", previous="active", reason="operator halt")
    state.refresh()
    assert view.status(now, 90, 600) == "halted" and view.switches[-1]["state"] == "halted"
    journal.append(ev.ERROR, error="RuntimeError: boom")
    journal.close()
    record.finish("failed", error="boom")
    state.refresh()
    assert view.status(now, 90, 600) == "failed" and not view.running
    assert view.alerts[-1]["message"] == "RuntimeError: boom"


def test_only_the_newest_sessions_are_followed_and_other_runs_never_opened(tmp_path):
    runs, clock = tmp_path / "runs", SimClock(T0)
    made = []
    for i in range(3):
        clock.advance(pd.Timedelta(seconds=1))
        record, journal = _session(runs, clock, f"s{i}")
        journal.close()
        made.append(record.path.name)
    RunRecord.create("backtest", "bt", {}, "backtest", None, clock, root=runs)
    state = MonitorState(runs, limit=2)
    state.refresh()
    assert [v.run_id for v in state.sessions()] == sorted(made, reverse=True)[:2]
    assert len(state._other) == 1


def test_commands_go_to_a_running_sessions_channel_only(run):
    runs, record, journal, _ = run
    path = send_command(record.path, "halt")
    (command,) = ControlChannel(record.path).poll()  # what the session reads
    assert command.command == "halt" and "monitor" in command.operator
    assert not path.exists()  # carried over to done/
    with pytest.raises(ConfigError, match="unknown command"):
        send_command(record.path, "stop")
    journal.close()
    record.finish("succeeded")
    with pytest.raises(ConfigError, match="a session that is finished, not a running "
                                          "session; nothing sent"):
        send_command(record.path, "resume")
    assert ControlChannel(record.path).poll() == []


def test_halt_buttons_write_only_after_the_confirmation(run):
    from workbench.dashboards.monitor_view import MonitorPage

    runs, record, journal, _ = run
    journal.append(ev.FILL, execution_id="x1", client_order_id="c1", symbol="AAA", side="buy",
                   quantity="5", price="10", fee="0", time=T0.isoformat())
    page = MonitorPage(MonitorState(runs), now=lambda: T0)
    page.refresh()
    assert page.select.value == record.path.name and "1 fills" in page.headline.value
    row = page._rows[record.path.name]
    assert "running" in row.html.value and not row.halt.disabled and row.resume.disabled
    control = record.path / "control"
    row.halt.click()
    assert page.asking.layout.display == "flex" and not control.exists()
    page.cancel.click()
    assert page.asking.layout.display == "none" and not control.exists()
    row.halt.click()
    page.confirm.click()
    assert "halt sent to" in page.message.value
    assert [json.loads(p.read_text())["command"] for p in control.glob("*.json")] == ["halt"]
    page.halt_all.click()
    page.confirm.click()
    assert "halt sent to 1 session(s)" in page.message.value
    assert len(list(control.glob("*.json"))) == 2
    # a stale heartbeat shows red
    late = MonitorPage(MonitorState(runs), now=lambda: T0 + pd.Timedelta(minutes=5))
    late.refresh()
    assert "wb-age-stale" in late._rows[record.path.name].html.value
