"""A daily (1Day) paper session's drift: the session of day D decides on bar D-1 and fills
at D's open (:mod:`workbench.session.daily`), so its replay must too. Daily sessions in a
row on one simulated account, each measured: zero drift to the cent, every fill matched,
every decision agreeing (before: D's signals were compared with D-1's decisions, each
fill was "extra" and a carried account blocked promotion). The start equity marks carried
positions at the day before's close, so a day's P&L is that day's alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.test_session_daily import DAYS, END, HISTORY, _sessions, daily_cross
from workbench.data import calendar
from workbench.data.synth import synthesize
from workbench.journal import replay
from workbench.model import events as ev
from workbench.monitor.drift import measure_drift
from workbench.monitor.drift_compare import compare
from workbench.monitor.drift_replay import SessionRecord, replay_session

LIMITS = {"warn": 0.0001, "block": 0.0005, "halt": 0.05}


@pytest.fixture
def daily_runs(store, tmp_path):
    store.write(synthesize(4, DAYS + HISTORY, "1Day", 5, END), "1Day", source="synth")
    days = calendar.last_sessions(DAYS, pd.Timestamp(END))
    return store, days, _sessions(store, days, tmp_path / "account.sqlite")


def test_daily_sessions_in_a_row_drift_zero_to_the_cent(daily_runs):
    store, days, results = daily_runs
    reports = [measure_drift(r.path, daily_cross, store=store, limits=LIMITS) for r in results]
    for r, day, rep in zip(results, days, reports, strict=True):
        assert rep.pnl_difference == "0.00" and rep.level == "ok", rep.lines()
        assert rep.missed == rep.extra == 0 and rep.signals_differing == 0, rep.lines()
        assert rep.signals_compared == 4 * 2  # one decided bar (the day before), 4 symbols
        assert not rep.carried, rep.notes
        assert all(f.status == "matched" and pd.Timestamp(f.time) == pd.Timestamp(
            day).tz_localize(calendar.NY) for f in rep.fills), rep.fills
        assert rep.session_pnl == f"{Decimal(r.pnl):.2f}"
    # a real test: fills on several days, entries and exits, P&L made by carried positions
    assert sum(len(rep.fills) for rep in reports) >= 8
    assert {f.side for rep in reports for f in rep.fills} == {"buy", "sell"}
    held = [rep for rep in reports[1:] if not rep.fills and rep.session_pnl != "0.00"]
    assert held, "no day's P&L came from positions alone: the carried account untested"
    assert any("replayed from" in n for rep in reports for n in rep.notes)


def test_a_daily_sessions_start_equity_is_the_day_befores_end(daily_runs):
    """Carried positions marked at the day before's close (not their average price, which
    counted every earlier day's gain again): one run's start is the previous run's end."""
    _, _, results = daily_runs
    starts, finals = [], []
    for r in results:
        events = replay(r.path).events
        starts.append(Decimal(next(e.payload["start_equity"] for e in events
                                   if e.type == ev.SESSION_START)))
        finals.append(Decimal([e.payload["equity"] for e in events if e.type == ev.EQUITY][-1]))
    for before, after in zip(finals[:-1], starts[1:], strict=True):
        assert after == before
    assert len(set(starts)) > 2  # the account moved


def test_the_drift_pages_computation_sees_a_running_daily_session_decided(daily_runs):
    """The page's comparison (a record read as the journal grows) on a daily session cut
    after its decision row: the decision compared, no fill yet, no drift."""
    store, _, results = daily_runs
    events = replay(results[-1].path).events
    cut = next(i for i, e in enumerate(events) if e.type == ev.BAR
               and e.payload.get("role") == "fill")
    record = SessionRecord()
    record.add(events[:cut])
    c = compare(record, replay_session(results[-1].path, daily_cross, record, store=store))
    s = c.summary
    assert s["signals_compared"] == 8 and s["signals_differing"] == 0, s
    assert s["session_fills"] == s["backtest_fills"] == 0 and float(s["pnl_difference"]) == 0
    record.add(events[cut:])
    s = compare(record, replay_session(results[-1].path, daily_cross, record,
                                       store=store)).summary
    assert s["missed"] == s["extra"] == 0 and s["matched"] == s["session_fills"]
    assert abs(s["pnl_difference"]) < 0.005, s


def test_the_monitor_and_research_readers_read_a_daily_sessions_journal(daily_runs):
    """The monitor's state (bars, fills, P&L, the curve) and the research page's journal
    frames read a daily session's "decision" and "fill" rows as any session's."""
    from workbench.dashboards.monitor_state import MonitorState
    from workbench.dashboards.queries import RunJournal

    _, _, results = daily_runs
    traded = next(r for r in results if any(e.type == ev.FILL for e in replay(r.path).events))
    path = Path(traded.path)
    state = MonitorState(path.parent, limit=len(results))
    assert path.name in state.refresh()
    view = state.get(path.name)
    fills = [e for e in replay(traded.path).events if e.type == ev.FILL]
    assert view.bars == 2 and view.fill_count == len(fills) >= 1
    assert float(view.pnl) == pytest.approx(float(traded.pnl), abs=0.005)
    journal = RunJournal(path)
    journal.refresh()
    assert len(journal.fills()) == len(fills) and len(journal.equity()) == 2
    signals = journal.signals()
    assert set(signals["bar_time"]) <= {pd.Timestamp(e.payload["bar_time"]) for e in replay(
        traded.path).events if e.type == ev.BAR and e.payload.get("role") == "decision"}
