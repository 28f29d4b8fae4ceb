"""A session's record as drift reads it, and its day replayed through the backtest: the
one source of both for the recorded report (:mod:`workbench.monitor.drift`) and the drift
page's live comparison (:mod:`workbench.dashboards.drift_page`).

    record = SessionRecord.read(run_dir)          # the whole journal, or, as it grows:
    record = SessionRecord(); record.add(events)  #   what a journal tail returned
    bars = session_bars(record.start, history_days(run_dir, record.start))
    replay = replay_session(run_dir, strategy, record)   # .result: the BacktestResult

Everything comes from the session's own record, never from defaults: the journal's
``session_start`` (day, symbols, strategy and parameters, timeframe, where the bars came
from, accounts, cash per account, size, shares, costs, stops, direction, start equity) and
``results/settings.json`` (``history_days``) or, without one, the manifest's first bar.

The bars are what the session traded (:func:`session_bars`): ``bars_from`` in
``session_start`` says which. A timeframe above the minute replayed from stored minutes
("stored 1Min aggregated to 5Min") is the stored minutes of the day and its history
aggregated by :func:`~workbench.data.aggregate.aggregate_bars` (the session's own rule),
never the store's bars of that timeframe (another source may have made them); otherwise
the stored bars of the timeframe (a live session trades 1Min only).

The replay is :func:`workbench.backtesting.run.backtest` with the session's settings, its
signals cleared before the day (a session trades from the day's first bar, flat). A daily
(1Day) session decides on the day before's bar and fills on the day's
(:mod:`workbench.session.daily`): its replay trades from its ``account_from`` (the
account's first daily decision, so it holds what earlier runs on the account left) and is
compared on the day before's decision and the day's fills (``Replay.decide_from``,
``day_start``). A session
that has ended is replayed on the bars it processed (the replay stops at its last
journaled bar, said in ``notes``); a running one on the stored day, and the comparison
(:func:`workbench.monitor.drift_compare.compare`) looks only at the bars it has reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import DataError, WorkbenchError
from workbench.fsutil import read_json

__all__ = ["Replay", "SessionRecord", "history_days", "replay_session", "session_bars"]

AGGREGATED = "stored 1Min aggregated to "  # session_start's bars_from for aggregated minutes


class SessionRecord:
    """What drift reads of a session's journal, kept as events are added: ``start`` (the
    first ``session_start``), ``end`` (the ``session_end`` after the last start, None while
    it runs), the ``signals`` and ``fills`` payloads, ``equity`` as (time, equity, the bar it
    valued), ``last_bar`` (the last bar it processed), ``filled_only`` (a daily session's
    "fill" rows: bars it filled on and never decided on) and ``refused`` (the risk
    gateway's refusals by symbol and time)."""

    def __init__(self) -> None:
        self.start: dict | None = None
        self.end: dict | None = None
        self.signals: list[dict] = []
        self.fills: list[dict] = []
        self.equity: list[tuple[pd.Timestamp, float, pd.Timestamp | None]] = []
        self.last_bar: pd.Timestamp | None = None
        self.filled_only: set[pd.Timestamp] = set()
        self.refused: dict[tuple[str, pd.Timestamp], str] = {}
        self.events = 0

    @classmethod
    def read(cls, run_dir: str | Path) -> SessionRecord:
        """The record of every whole event of the run's journal."""
        from workbench.journal.reader import replay

        record = cls()
        record.add(replay(run_dir).events)
        return record

    def add(self, events) -> int:
        """Take ``events`` (in journal order, after those already added); how many."""
        from workbench.model import events as ev

        n = 0
        for e in events:
            n += 1
            kind, p = ev.canonical_type(e.type), e.payload
            if kind == ev.BAR:
                t = pd.Timestamp(p["bar_time"])
                self.last_bar = t if self.last_bar is None else max(self.last_bar, t)
                if p.get("role") == "fill":
                    self.filled_only.add(t)
            elif kind == ev.SIGNAL:
                self.signals.append(p)
            elif kind == ev.FILL:
                self.fills.append(p)
            elif kind == ev.EQUITY:
                self.equity.append((pd.Timestamp(e.ts), float(p["equity"]), self.last_bar))
            elif kind == ev.RISK_DECISION:
                if p.get("approved") is False and p.get("symbol") and p.get("at"):
                    self.refused[(p["symbol"], pd.Timestamp(p["at"]))] = (
                        f"refused by risk ({p.get('check')}): {p.get('reason')}")
            elif kind == ev.SESSION_START:
                self.start = self.start or dict(p)
                self.end = None  # a restart goes on trading
            elif kind == ev.SESSION_END:
                self.end = dict(p)
        self.events += n
        return n


def history_days(run_dir: str | Path, start: dict) -> int:
    """The sessions of history before its day the session loaded, from its record."""
    run_dir = Path(run_dir)
    settings = read_json(run_dir / "results" / "settings.json") or {}
    days = (settings.get("settings") or {}).get("history_days")
    if isinstance(days, int) and days >= 1:
        return days
    manifest = read_json(run_dir / "manifest.json") or {}
    first = (manifest.get("data_range") or {}).get("first")
    if first is None:
        raise DataError(f"drift: {run_dir.name} records neither history_days nor its bars' "
                        "first time: the replay cannot load the bars the session saw")
    from workbench.data import calendar
    from workbench.times import ny_date

    sessions = calendar.sessions(ny_date(pd.Timestamp(first)), pd.Timestamp(start["replay_date"]))
    return max(1, len(sessions) - 1)


def session_bars(start: dict, history_days: int, store=None, *, earlier: int = 0):
    """The bars the session of ``start`` (its ``session_start`` payload) traded: its day
    and ``history_days`` sessions before it (and ``earlier`` more: a daily replay from the
    account's first decision), as the module doc says."""
    from workbench.data.aggregate import aggregate_bars
    from workbench.data.timeframe import Timeframe
    from workbench.engine import load_sessions

    tf = Timeframe.parse(start["timeframe"])
    day, symbols = start["replay_date"], list(start["symbols"])
    source = str(start.get("bars_from", ""))
    if source.startswith(AGGREGATED):
        if source != f"{AGGREGATED}{tf}":
            raise DataError(f"drift: the session traded {start['timeframe']} bars but says they "
                            f"came from {source!r}: its record disagrees with itself")
        minutes = load_sessions(1 + history_days + earlier, symbols, "1Min", end=day,
                                store=store)
        return aggregate_bars(minutes, tf)
    return load_sessions(1 + history_days + earlier, symbols, tf, end=day, store=store)


@dataclass(frozen=True)
class Replay:
    """A session's day backtested (:func:`replay_session`)."""

    start: dict  # the session_start payload
    day_start: pd.Timestamp  # the day's New York midnight, UTC: its fills from there
    result: Any  # the BacktestResult
    notes: list[str] = field(default_factory=list)
    decide_from: pd.Timestamp | None = None  # its first decided bar (daily: the day before)
    trade_from: pd.Timestamp | None = None  # the backtest's signals from (daily: the account's)

    def __post_init__(self) -> None:
        for name in ("decide_from", "trade_from"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.day_start)

    @property
    def cash(self) -> float:
        """The backtest's cash per symbol (the session's cash per account)."""
        return float(self.start["cash"])


def replay_session(run_dir: str | Path, strategy, record: SessionRecord, *,
                   store=None) -> Replay:
    """The backtest of the day of ``record`` (see the module doc); ``strategy`` must be the
    one it traded (by name)."""
    from workbench.strategy import as_strategy
    from workbench.times import ny_midnight

    run_dir = Path(run_dir)
    start = record.start
    if start is None:
        raise DataError(f"drift: {run_dir.name} has no session_start in its journal: not a "
                        "session run, or not started yet")
    strat = as_strategy(strategy, "drift")
    if strat.name != start["strategy"]:
        raise WorkbenchError(f"drift: {run_dir.name} traded {start['strategy']!r}, not "
                             f"{strat.name!r}: give its strategy")
    day_start = ny_midnight(start["replay_date"])
    decide_from, trade_from, earlier, notes = _daily_window(start, day_start)
    bars = session_bars(start, history_days(run_dir, start), store, earlier=earlier)
    last = record.last_bar
    if record.end is not None and (last is None or last < bars.index[-1]):
        shown = "no bar of the day" if last is None else f"bars up to {last.isoformat()}"
        notes.append(f"the session processed {shown}; the replay stops there too")
        bars = bars.iloc(slice(0, int(bars.index.searchsorted(
            last if last is not None else decide_from, side="right" if last else "left"))))
    return Replay(start, day_start, _backtest(strat, bars, start, trade_from), notes,
                  decide_from, trade_from)


def _daily_window(start: dict, day_start: pd.Timestamp):
    """(first decided bar, the backtest's first traded bar, sessions loaded before the
    usual history, notes). Intraday: the day, flat. A daily session decides on the day
    before and fills on the day; its account may hold what earlier daily sessions on it
    left, so the backtest trades from the account's first decision (``account_from``):
    with the same bars it makes those sessions' trades (as ``wb.backtest`` does for a run
    of daily sessions), and this day is compared on its own decision, fills and P&L."""
    from workbench.data import calendar
    from workbench.data.timeframe import Timeframe
    from workbench.times import ny_midnight

    if Timeframe.parse(start["timeframe"]).is_intraday:
        return day_start, day_start, 0, []
    day = pd.Timestamp(start["replay_date"])
    decided = calendar.last_sessions(2, day)[0]
    first = pd.Timestamp(start.get("account_from") or decided)
    if first > decided:
        raise DataError(f"drift: the session's account_from {first.date()} is after its "
                        f"decision day {decided.date()}: its record disagrees with itself")
    earlier = len(calendar.sessions(first, decided)) - 1
    notes = [] if earlier == 0 else [(
        f"daily: replayed from {first.date()}, the account's first decision (earlier "
        f"daily sessions on it); compared on {decided.date()}'s decision and "
        f"{day.date()}'s fills and P&L")]
    return ny_midnight(decided), ny_midnight(first), earlier, notes


def _backtest(strategy, bars, start: dict, trade_from: pd.Timestamp):
    from workbench.backtesting.run import backtest
    from workbench.strategy import TradingFrom

    wrapped = TradingFrom(strategy, trade_from)  # the session trades from there, flat
    stops = start.get("stops") or {}
    return backtest(wrapped, bars, fill="next_open", **start["costs"], shares=start["shares"],
                    cash=float(start["cash"]), size=float(start["size"]),
                    direction=start.get("direction", "long"), sl_stop=stops.get("sl_stop"),
                    tp_stop=stops.get("tp_stop"), sl_trail=bool(start.get("sl_trail", False)),
                    **start["params"])
