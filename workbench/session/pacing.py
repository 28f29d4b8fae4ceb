"""Replay pacing: a stored day played back at N x real time, or as fast as possible."""

from __future__ import annotations

import time

import pandas as pd

__all__ = ["MAX_SPEED", "MIN_SPEED", "pace", "parse_speed"]

# a replay's pace in x real time: below MIN_SPEED one minute bar takes over 16 hours (1e-300
# slept forever), above MAX_SPEED the pace is "max" in all but name
MIN_SPEED, MAX_SPEED = 0.001, 1_000_000


def parse_speed(text) -> str | float | int:
    """A replay speed from an option's text: ``"max"`` or a number > 0 (x real time)."""
    if str(text).strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not MIN_SPEED <= value <= MAX_SPEED:
        from workbench.errors import ConfigError

        raise ConfigError(f"--speed must be 'max' or a number > 0 (times real time, from "
                          f"{MIN_SPEED:g} to {MAX_SPEED:,}), got {text!r}")
    return int(value) if value.is_integer() else value


def pace(speed, started: float, interval: pd.Timedelta) -> None:
    """Sleep out the rest of one bar at ``speed`` x real time ("max": never sleep)."""
    if speed == "max":
        return
    wait = interval.total_seconds() / float(speed) - (time.perf_counter() - started)
    if wait > 0:
        time.sleep(wait)
