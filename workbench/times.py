"""Time conventions in one place: UTC inside, New York for trading days and display.

    to_utc("2026-11-20 14:31")           # Timestamp('2026-11-20 14:31:00+0000', tz='UTC')
    to_utc(pd.Timestamp(..., tz=NEW_YORK))  # converted, never re-labelled
    ny_midnight("2026-11-20")            # the trading day's New York midnight, in UTC

Everything inside the workbench is UTC; a naive time is taken to be UTC. A trading day is
a New York calendar date; daily bars are stamped at its midnight (New York), in UTC.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["NEW_YORK", "UTC", "ny_midnight", "to_new_york", "to_utc"]

NEW_YORK = "America/New_York"
UTC = "UTC"


def to_utc(value: Any) -> pd.Timestamp:
    """``value`` as a UTC ``Timestamp``: a naive time is UTC, an aware one is converted."""
    ts = pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tz is None else ts.tz_convert(UTC)


def to_new_york(value: Any) -> pd.Timestamp:
    """``value`` in New York time (a naive time is taken to be UTC)."""
    return to_utc(value).tz_convert(NEW_YORK)


def ny_midnight(day: Any) -> pd.Timestamp:
    """Midnight New York of the calendar date of ``day`` (its date as written), in UTC."""
    return pd.Timestamp(pd.Timestamp(day).date()).tz_localize(NEW_YORK).tz_convert(UTC)
