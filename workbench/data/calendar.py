"""The NYSE trading calendar (``exchange_calendars`` "XNYS"), UTC inside, New York outside.

Session dates are tz-naive normalized dates (``2026-07-02``). Times are UTC
``Timestamp``/``DatetimeIndex`` in nanoseconds; :func:`to_display` converts them to
America/New_York for people. Nothing here reads the wall clock: callers pass the dates.

The calendar covers :data:`FIRST_DATE` .. :data:`LAST_DATE` whatever today is, so results
are reproducible; a date outside that span raises a one-line :class:`DataError`.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError, DataError
from workbench.times import NEW_YORK, to_new_york, to_utc

__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "NY",
    "OFF_CALENDAR_REASONS",
    "bar_grid",
    "bar_times",
    "is_session",
    "judge_bars",
    "last_completed_session",
    "last_sessions",
    "session_close",
    "session_open",
    "sessions",
    "to_display",
]

NY = NEW_YORK  # the old name, kept for notebooks and tests
FIRST_DATE = "2000-01-01"
LAST_DATE = "2035-12-31"
_REGULAR_CLOSE = pd.Timedelta(hours=16)

# why a bar does not belong to the exchange calendar (see judge_bars), in the order tested
OUTSIDE_CALENDAR_SPAN = "outside_calendar_span"
NOT_A_SESSION = "not_a_session"
OUTSIDE_SESSION_HOURS = "outside_session_hours"
OFF_GRID = "off_timeframe_grid"
OFF_CALENDAR_REASONS = (OUTSIDE_CALENDAR_SPAN, NOT_A_SESSION, OUTSIDE_SESSION_HOURS, OFF_GRID)


@lru_cache(maxsize=1)
def _calendar():
    """The XNYS calendar over the fixed span (loading it takes a fraction of a second)."""
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # its pandas-4 deprecation noise is not ours to show
        warnings.simplefilter("ignore")
        return xcals.get_calendar("XNYS", start=FIRST_DATE, end=LAST_DATE)


@lru_cache(maxsize=1)
def _schedule() -> pd.DataFrame:
    """Every session of the span: ``open``, ``close`` (UTC, ns), ``early_close``."""
    raw = _calendar().schedule
    opens = pd.DatetimeIndex(raw["open"]).tz_convert("UTC").as_unit("ns")
    closes = pd.DatetimeIndex(raw["close"]).tz_convert("UTC").as_unit("ns")
    dates = pd.DatetimeIndex(raw.index).tz_localize(None).normalize().as_unit("ns")
    local_close = closes.tz_convert(NY)
    early = (local_close - local_close.normalize()) < _REGULAR_CLOSE
    frame = pd.DataFrame(
        {"open": opens, "close": closes, "early_close": np.asarray(early, dtype=bool)},
        index=pd.DatetimeIndex(dates, name="session"),
    )
    return frame


def _to_date(value, what: str = "date") -> pd.Timestamp:
    """A tz-naive normalized date; aware timestamps are read in New York time."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: cannot read {value!r} as a date") from e
    if ts is pd.NaT:
        raise ConfigError(f"{what}: a date is required, got {value!r}")
    if ts.tz is not None:
        ts = ts.tz_convert(NY).tz_localize(None)
    return ts.normalize().as_unit("ns")


def _in_span(day: pd.Timestamp, what: str) -> pd.Timestamp:
    first, last = _schedule().index[[0, -1]]
    if not first <= day <= last:
        raise DataError(
            f"{what} {day.date()} is outside the NYSE calendar ({first.date()} .. {last.date()})"
        )
    return day


def sessions(start, end) -> pd.DataFrame:
    """Sessions with ``start <= date <= end``: columns ``open``, ``close``, ``early_close``.

    The index holds tz-naive session dates; ``open``/``close`` are the regular session's
    UTC times (a 13:00 New York early close shows as such).
    """
    first = _in_span(_to_date(start, "start"), "start")
    last = _in_span(_to_date(end, "end"), "end")
    if first > last:
        raise ConfigError(f"start {first.date()} is after end {last.date()}")
    return _schedule().loc[first:last].copy()


def bar_grid(table: pd.DataFrame, timeframe) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Bar open times for the sessions in ``table`` (a :func:`sessions` frame).

    Returns the UTC times and, for each bar, the position of its session in ``table``.
    Intraday bars run from the open in steps of the timeframe while they start before the
    close (the last bar may be short, e.g. 15:30 for 1Hour); a daily bar is stamped at
    midnight New York of its session date.
    """
    tf = Timeframe.parse(timeframe)
    if not tf.is_intraday:
        stamps = table.index.tz_localize(NY).tz_convert("UTC").as_unit("ns")
        return pd.DatetimeIndex(stamps, name="ts"), np.arange(len(table))
    step = tf.delta.value
    opens = table["open"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    closes = table["close"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    counts = -((opens - closes) // step)  # ceil((close - open) / step)
    session_pos = np.repeat(np.arange(len(table)), counts)
    first_bar = np.cumsum(counts) - counts
    within = np.arange(counts.sum()) - np.repeat(first_bar, counts)
    ns = opens[session_pos] + within * step
    times = pd.DatetimeIndex(ns.view("datetime64[ns]"), name="ts").tz_localize("UTC")
    return times, session_pos


def bar_times(start, end, timeframe) -> pd.DatetimeIndex:
    """UTC open times of every regular-hours bar of ``timeframe`` in ``start..end``."""
    return bar_grid(sessions(start, end), timeframe)[0]


def last_sessions(n: int, end) -> list[pd.Timestamp]:
    """The ``n`` sessions ending at or before the date ``end``, oldest first."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"the number of sessions must be a positive integer, got {n!r}")
    day = _in_span(_to_date(end, "end"), "end")
    index = _schedule().index
    stop = int(index.searchsorted(day, side="right"))
    if stop < n:
        raise DataError(
            f"only {stop} sessions on or before {day.date()} in the NYSE calendar, asked for {n}"
        )
    return list(index[stop - n : stop])


def last_completed_session(now) -> pd.Timestamp:
    """The last session whose regular close is at or before ``now`` (naive means UTC)."""
    ts = to_utc(now)
    table = _schedule()
    _in_span(_to_date(ts), "now")
    pos = int(table["close"].searchsorted(ts, side="right"))
    if pos == 0:
        raise DataError(f"no NYSE session completed before {ts}")
    return table.index[pos - 1]


def is_session(date) -> bool:
    """Whether the NYSE holds a regular session on ``date``."""
    day = _in_span(_to_date(date), "date")
    return bool(day in _schedule().index)


def _row(date) -> pd.Series:
    day = _in_span(_to_date(date), "date")
    table = _schedule()
    if day not in table.index:
        raise DataError(f"{day.date()} is not an NYSE session (weekend or holiday)")
    return table.loc[day]


def session_open(date) -> pd.Timestamp:
    """UTC time of the regular open of the session on ``date``."""
    return _row(date)["open"]


def session_close(date) -> pd.Timestamp:
    """UTC time of the regular close of the session on ``date`` (13:00 NY if early)."""
    return _row(date)["close"]


def to_display(value):
    """``value`` (Timestamp, DatetimeIndex, Series of times or frame by time) in New York.

    Naive times are taken to be UTC, as everything inside the workbench is.
    """
    if isinstance(value, pd.Series) and pd.api.types.is_datetime64_any_dtype(value.dtype):
        return pd.Series(to_display(pd.DatetimeIndex(value)), index=value.index, name=value.name)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        if not isinstance(value.index, pd.DatetimeIndex):
            raise ConfigError("to_display: the index must hold timestamps")
        return value.set_axis(to_display(value.index), axis=0)
    if isinstance(value, pd.DatetimeIndex):
        return to_new_york(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"to_display: cannot read {value!r} as a time") from e
    return to_new_york(ts)


def judge_bars(ts, timeframe) -> np.ndarray:
    """Why each bar open time in ``ts`` (UTC) is not a bar of ``timeframe`` on the NYSE
    calendar: an object array holding a reason from :data:`OFF_CALENDAR_REASONS`, or
    ``None`` for a bar that belongs.

    ``outside_calendar_span``: its New York date is outside FIRST_DATE .. LAST_DATE.
    ``not_a_session``: its New York date is a weekend or an exchange holiday.
    ``outside_session_hours`` (intraday): it opens before the regular open or at/after the
    regular close (13:00 on an early close). ``off_timeframe_grid``: an intraday bar not at
    the open plus a whole number of timeframe steps (:func:`bar_grid`), or a daily bar not
    stamped at New York midnight of its session date (e.g. minute bars written as 5Min or
    1Day).
    """
    tf = Timeframe.parse(timeframe)
    index = pd.DatetimeIndex(ts)
    index = (index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")).as_unit("ns")
    out = np.full(len(index), None, dtype=object)
    if not len(index):
        return out
    local = index.tz_convert(NY)
    days = local.tz_localize(None).normalize().as_unit("ns")
    table = _schedule()
    first, last = table.index[0], table.index[-1]
    outside = np.asarray((days < first) | (days > last))
    pos = table.index.get_indexer(days)
    missing = (pos < 0) & ~outside
    out[outside] = OUTSIDE_CALENDAR_SPAN
    out[missing] = NOT_A_SESSION
    ok = pos >= 0
    t = index.asi8
    if tf.is_intraday:
        opens = table["open"].to_numpy(dtype="datetime64[ns]").view(np.int64)[pos[ok]]
        closes = table["close"].to_numpy(dtype="datetime64[ns]").view(np.int64)[pos[ok]]
        tt = t[ok]
        hours = (tt < opens) | (tt >= closes)
        grid = ~hours & ((tt - opens) % tf.delta.value != 0)
        where = np.flatnonzero(ok)
        out[where[hours]] = OUTSIDE_SESSION_HOURS
        out[where[grid]] = OFF_GRID
    else:
        midnight = days.tz_localize(NY).tz_convert("UTC").as_unit("ns").asi8
        out[ok & (t != midnight)] = OFF_GRID
    return out
