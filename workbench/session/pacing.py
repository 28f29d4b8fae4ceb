"""Replay pacing: a stored day played back at N x real time, or as fast as possible."""

from __future__ import annotations

import time

import pandas as pd

__all__ = ["pace"]


def pace(speed, started: float, interval: pd.Timedelta) -> None:
    """Sleep out the rest of one bar at ``speed`` x real time ("max": never sleep)."""
    if speed == "max":
        return
    wait = interval.total_seconds() / float(speed) - (time.perf_counter() - started)
    if wait > 0:
        time.sleep(wait)
