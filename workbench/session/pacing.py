"""Replay pacing: a stored day played back at N x real time, or as fast as possible."""

from __future__ import annotations

import time

import pandas as pd

__all__ = ["pace", "parse_speed"]


def parse_speed(text) -> str | float | int:
    """A replay speed from an option's text: ``"max"`` or a number > 0 (x real time)."""
    if str(text).strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        from workbench.errors import ConfigError

        raise ConfigError(f"--speed must be 'max' or a number > 0 (times real time), got {text!r}")
    return int(value) if value.is_integer() else value


def pace(speed, started: float, interval: pd.Timedelta) -> None:
    """Sleep out the rest of one bar at ``speed`` x real time ("max": never sleep)."""
    if speed == "max":
        return
    wait = interval.total_seconds() / float(speed) - (time.perf_counter() - started)
    if wait > 0:
        time.sleep(wait)
