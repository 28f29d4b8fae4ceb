"""Clocks. Nothing in the workbench reads wall time except through a clock.

``LiveClock`` reads the system clock; ``SimClock`` is set and advanced by a replay.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from workbench.times import to_utc

__all__ = ["Clock", "LiveClock", "SimClock"]


class Clock:
    def now(self) -> pd.Timestamp:  # pragma: no cover - interface
        raise NotImplementedError


class LiveClock(Clock):
    """Wall time, UTC."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp(datetime.now(UTC))


class SimClock(Clock):
    """A clock that only moves when told to (replays, tests)."""

    def __init__(self, start) -> None:
        self._now = to_utc(start)

    def now(self) -> pd.Timestamp:
        return self._now

    def set(self, when) -> None:
        when = to_utc(when)
        if when < self._now:
            raise ValueError(f"SimClock cannot go back from {self._now} to {when}")
        self._now = when

    def advance(self, delta) -> None:
        self.set(self._now + pd.Timedelta(delta))
