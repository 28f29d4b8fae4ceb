"""Time conventions in one place: UTC inside, New York for trading days and display.

    to_utc("2026-11-20 14:31")           # Timestamp('2026-11-20 14:31:00+0000', tz='UTC')
    to_utc(pd.Timestamp(..., tz=NEW_YORK))  # converted, never re-labelled
    to_new_york(index)                   # a DatetimeIndex too: naive is UTC, shown in New York
    ny_date(ts)                          # Timestamp('2026-11-20'): its New York calendar date
    ny_midnight("2026-11-20")            # the trading day's New York midnight, in UTC

Everything inside the workbench is UTC; a naive time is taken to be UTC. A trading day is
a New York calendar date; daily bars are stamped at its midnight (New York), in UTC.
"""

from __future__ import annotations

from typing import Any, overload

import pandas as pd

__all__ = ["NEW_YORK", "UTC", "ny_date", "ny_midnight", "to_new_york", "to_utc"]

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
