"""The schedule: which sessions each deployment runs, on the NYSE calendar, and when.

    sessions = plan(list_deployments("active"), "2026-11-23", "2026-11-30")
    sessions[0].start_ny        # Timestamp('2026-11-23 09:25-0500'): the open less the lead
    due(sessions, now, started=keys).start     # what should be started at ``now``

A deployment runs one session per NYSE trading day: it starts ``lead`` (default 5 minutes)
before the regular open and stops ``tail`` (default 5 minutes) after the regular close.
Holidays have no session; an early close (13:00 New York) moves the stop; the open stays
09:30 New York across daylight-saving changes (13:30 UTC in summer, 14:30 UTC in winter).
Times are UTC inside (:mod:`workbench.times`); ``*_ny`` properties are for display.

A session whose window has passed without being started is **missed**: it is never started
late, because a missed day cannot be replayed into the live market. :func:`due` sorts a
plan at one instant; :mod:`workbench.deploy.scheduler` acts on it. Nothing here reads the
clock or writes a file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.data import calendar
from workbench.errors import ConfigError
from workbench.times import to_new_york, to_utc

__all__ = ["DEFAULT_LEAD", "DEFAULT_TAIL", "Due", "ScheduledSession", "closed_days", "due",
           "plan", "window"]

DEFAULT_LEAD = pd.Timedelta(minutes=5)
DEFAULT_TAIL = pd.Timedelta(minutes=5)
_MAX_MARGIN = pd.Timedelta(hours=6)  # keeps one day's window clear of the next day's


@dataclass(frozen=True)
class ScheduledSession:
    """One deployment's session on one trading day (times UTC)."""

    deployment: str
    day: pd.Timestamp  # the trading day, a naive New York date
    open: pd.Timestamp
    close: pd.Timestamp
    start: pd.Timestamp  # open - lead
    stop: pd.Timestamp  # close + tail
    notes: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """``<deployment>/<YYYY-MM-DD>``: the session's name in the schedule's records."""
        return f"{self.deployment}/{self.date}"

    @property
    def date(self) -> str:
        return self.day.strftime("%Y-%m-%d")

    @property
    def start_ny(self) -> pd.Timestamp:
        return to_new_york(self.start)

    @property
    def stop_ny(self) -> pd.Timestamp:
        return to_new_york(self.stop)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: New York times for people and UTC for programs."""
        return {"deployment": self.deployment, "date": self.date,
                "start_ny": self.start_ny.strftime("%H:%M"),
                "stop_ny": self.stop_ny.strftime("%H:%M"),
                "start": self.start.isoformat(), "stop": self.stop.isoformat(),
                "open": self.open.isoformat(), "close": self.close.isoformat(),
                "notes": list(self.notes)}

    def describe(self) -> str:
        """One line for people: deployment, date, New York and UTC windows, notes."""
        text = (f"{self.deployment}  {self.date} {self.day.strftime('%a')}  "
                f"{self.start_ny.strftime('%H:%M')}-{self.stop_ny.strftime('%H:%M')} "
                f"New York ({self.start.strftime('%H:%M')}-{self.stop.strftime('%H:%M')} UTC)")
        return text + (f"  [{'; '.join(self.notes)}]" if self.notes else "")


def window(value: Any, what: str) -> pd.Timedelta:
    """``value`` ("5min", minutes as a number, a Timedelta) as a lead or tail margin."""
    try:
        delta = (pd.Timedelta(minutes=value) if isinstance(value, (int, float))
                 and not isinstance(value, bool) else pd.Timedelta(value))
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: a duration like '5min', got {value!r}") from None
    if delta is pd.NaT or not pd.Timedelta(0) <= delta <= _MAX_MARGIN:
        raise ConfigError(f"{what} must be between 0 and {_MAX_MARGIN}, got {value!r}")
    return delta


def plan(deployments: Iterable[Any], start: Any, end: Any, *, lead: Any = DEFAULT_LEAD,
         tail: Any = DEFAULT_TAIL) -> list[ScheduledSession]:
    """The sessions of every active deployment on each NYSE trading day in [start, end]
    (New York dates), ordered by start time, then deployment id.

    ``deployments`` are :class:`~workbench.deploy.registry.Deployment` values (anything with
    ``id`` and ``status``); retired ones get no session.
    """
    lead, tail = window(lead, "lead"), window(tail, "tail")
    active = sorted({d.id for d in deployments if getattr(d, "status", "active") == "active"})
    table = calendar.sessions(start, end)
    if table.empty or not active:
        return []
    notes = _notes(table)
    out = [ScheduledSession(dep, day, row.open, row.close, row.open - lead, row.close + tail,
                            notes[day])
           for day, row in zip(table.index, table.itertuples()) for dep in active]
    return sorted(out, key=lambda s: (s.start, s.deployment))


def closed_days(start: Any, end: Any) -> list[pd.Timestamp]:
    """Weekdays in [start, end] with no NYSE session (holidays), as naive dates."""
    table = calendar.sessions(start, end)
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    weekdays = pd.bdate_range(first.tz_localize(None) if first.tz else first,
                              last.tz_localize(None) if last.tz else last)
    return [d for d in weekdays if d not in table.index]


def _notes(table: pd.DataFrame) -> dict[pd.Timestamp, tuple[str, ...]]:
    """Per session: "early close 13:00 New York", and the first session after a clock change."""
    first = table.index[0]
    before = calendar.last_sessions(2, first)[0] if first > pd.Timestamp(
        calendar.FIRST_DATE) else first
    previous_offset = _offset(calendar.session_open(before))
    out = {}
    for day, row in zip(table.index, table.itertuples()):
        notes = []
        if row.early_close:
            notes.append(f"early close {to_new_york(row.close).strftime('%H:%M')} New York")
        offset = _offset(row.open)
        if offset != previous_offset:
            change = "DST began" if offset > previous_offset else "DST ended"
            was = (row.open + (offset - previous_offset)).strftime("%H:%M")
            notes.append(f"{change}: 09:30 New York is {row.open.strftime('%H:%M')} UTC "
                         f"(was {was})")
        previous_offset = offset
        out[day] = tuple(notes)
    return out


def _offset(utc_time: pd.Timestamp) -> pd.Timedelta:
    return pd.Timedelta(to_new_york(utc_time).utcoffset())


@dataclass(frozen=True)
class Due:
    """A plan sorted at the instant ``now`` (see :func:`due`)."""

    now: pd.Timestamp
    start: tuple[ScheduledSession, ...]  # window open, not started: start it now
    running: tuple[ScheduledSession, ...]  # window open, already started
    missed: tuple[ScheduledSession, ...]  # window passed, never started: never started late
    done: tuple[ScheduledSession, ...]  # window passed, was started
    upcoming: tuple[ScheduledSession, ...]  # window ahead

    def next_event(self) -> pd.Timestamp | None:
        """The next start or stop after ``now`` (when a scheduler should look again)."""
        times = [s.start for s in self.upcoming] + [s.stop for s in self.start + self.running]
        return min(times) if times else None


def due(sessions: Iterable[ScheduledSession], now: Any,
        started: Collection[str] = ()) -> Due:
    """Sort ``sessions`` at ``now``: a session is in its window when ``start <= now < stop``;
    ``started`` holds the keys of sessions already started."""
    now = to_utc(now)
    groups: dict[str, list[ScheduledSession]] = {
        "start": [], "running": [], "missed": [], "done": [], "upcoming": []}
    for s in sessions:
        begun = s.key in started
        if now < s.start:
            groups["upcoming"].append(s)
        elif now < s.stop:
            groups["running" if begun else "start"].append(s)
        else:
            groups["done" if begun else "missed"].append(s)
    return Due(now=now, **{k: tuple(v) for k, v in groups.items()})

