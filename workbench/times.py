"""Time conventions in one place: UTC inside, New York for trading days and display.

    to_utc("2026-11-20 14:31")           # Timestamp('2026-11-20 14:31:00+0000', tz='UTC')
    to_utc(pd.Timestamp(..., tz=NEW_YORK))  # converted, never re-labelled
    to_new_york(index)                   # a DatetimeIndex too: naive is UTC, shown in New York
    ny_date(ts)                          # Timestamp('2026-11-20'): its New York calendar date
    ny_midnight("2026-11-20")            # the trading day's New York midnight, in UTC
    bound("2026-11-20", end=True)        # THE date rule: the last ns of that New York day

Bare dates follow one rule everywhere (``wb.data.load``, ``Bars.between``, the CLI's
``--start/--end``, sessions): a bare date is a New York trading day and an end date is
inclusive (its whole New York day). :func:`bound` decides it; every entry point calls it.

Everything inside the workbench is UTC; a naive time is taken to be UTC. A trading day is
a New York calendar date; daily bars are stamped at its midnight (New York), in UTC.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, overload

import pandas as pd

__all__ = [
    "NEW_YORK",
    "UTC",
    "bound",
    "bounds",
    "is_bare_date",
    "ny_date",
    "ny_midnight",
    "to_new_york",
    "to_utc",
]

NEW_YORK = "America/New_York"
UTC = "UTC"


@overload
def to_utc(value: pd.DatetimeIndex) -> pd.DatetimeIndex: ...
@overload
def to_utc(value: Any) -> pd.Timestamp: ...


def to_utc(value):
    """``value`` as a UTC ``Timestamp`` (a ``DatetimeIndex`` stays one): a naive time is
    UTC, an aware one is converted."""
    ts = value if isinstance(value, pd.DatetimeIndex) else pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tz is None else ts.tz_convert(UTC)


@overload
def to_new_york(value: pd.DatetimeIndex) -> pd.DatetimeIndex: ...
@overload
def to_new_york(value: Any) -> pd.Timestamp: ...


def to_new_york(value):
    """``value`` in New York time (a naive time is taken to be UTC; an index stays one)."""
    return to_utc(value).tz_convert(NEW_YORK)


def ny_date(value: Any) -> pd.Timestamp:
    """The New York calendar date of the time ``value`` (naive is UTC), as a naive date."""
    return pd.Timestamp(to_new_york(value).date())


def ny_midnight(day: Any) -> pd.Timestamp:
    """Midnight New York of the calendar date of ``day`` (its date as written), in UTC."""
    return pd.Timestamp(pd.Timestamp(day).date()).tz_localize(NEW_YORK).tz_convert(UTC)


_BARE_DATE = re.compile(r"^\s*(\d{4}([-/])\d{1,2}\2\d{1,2}|\d{8})\s*$")


def is_bare_date(value: Any) -> bool:
    """Whether ``value`` names a day, not a time: ``"2026-11-23"``, ``"2026/11/23"``, ``"20261123"`` or a
    ``datetime.date`` (not a ``datetime``). A ``Timestamp`` or a string with a time is a time."""
    if isinstance(value, str):
        return bool(_BARE_DATE.match(value))
    return isinstance(value, _dt.date) and not isinstance(value, _dt.datetime)


def bound(value: Any, what: str = "start", *, end: bool = False,
          error: type[Exception] = ValueError) -> pd.Timestamp | None:
    """The one date rule: ``value`` as a UTC bound (None stays None).

    A bare date (:func:`is_bare_date`) is a New York trading day: a start is its New York
    midnight, an end (``end=True``) its last nanosecond, so the end day is included whole
    (its daily bar, stamped at that midnight, and every minute bar of the day). A time is a
    time: naive is UTC, aware is converted. An unreadable value raises ``error`` naming
    ``what``."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError) as e:
        raise error(f"{what}: cannot read {value!r} as a date or time") from e
    if ts is pd.NaT:
        raise error(f"{what}: cannot read {value!r} as a date or time")
    try:
        if is_bare_date(value):
            out = (ny_midnight(ts + pd.Timedelta(days=1)) - pd.Timedelta(1, "ns") if end
                   else ny_midnight(ts))
        else:
            out = to_utc(ts)
        out.as_unit("ns")  # representable in nanoseconds, as every stored time is
        return out
    except (OverflowError, ValueError) as e:  # pandas' OutOfBoundsDatetime is a ValueError
        raise error(f"{what}: {value!r} is outside the dates the workbench handles "
                    f"({pd.Timestamp.min.year + 1} .. {pd.Timestamp.max.year - 1})") from e


def bounds(start: Any, end: Any, *, error: type[Exception] = ValueError
           ) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(bound(start), bound(end, end=True))``; ``error`` if start is after end."""
    lo = bound(start, "start", error=error)
    hi = bound(end, "end", end=True, error=error)
    if lo is not None and hi is not None and lo > hi:
        raise error(f"start {start} is after end {end}")
    return lo, hi
