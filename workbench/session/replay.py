"""A replayed session's loop: the stored day's rows, each through the session's bar path,
paced at its speed. A daily session's rows are the day before (its "decision") and the day
(its "fill"): :mod:`workbench.session.daily`."""

from __future__ import annotations

import time

import pandas as pd

from workbench.engine import ReplayFeed
from workbench.session import daily, rebuild
from workbench.session.daily import Role
from workbench.session.options import SessionOptions
from workbench.session.pacing import pace
from workbench.times import ny_midnight

__all__ = ["replay_loop"]


def replay_loop(session, bars, replay_date, resume_at, options: SessionOptions) -> None:
    """The stored day's rows through ``session.on_row``, from ``resume_at`` at a restart."""
    interval = session.engine.window.timeframe.delta
    first = ny_midnight(replay_date)  # the day's first row; a daily session's: the day before
    if daily.is_daily(session.engine.window.timeframe):
        first = ny_midnight(daily.decision_day(replay_date))
    start = resume_at if resume_at is not None else first
    feed = ReplayFeed(bars, start=start)
    history = feed.history()
    if history is not None and len(history):
        session.engine.preload(history)
        if resume_at is not None:  # a restart: the day's closes before the resumed bar
            session.last_prices.update(rebuild.last_prices(history.close, first, resume_at))
    session.engine.prime()  # the history's state now, not at the first bar
    for row in feed:
        started = time.perf_counter()
        session.on_row(row, _role(row.time, ny_midnight(replay_date), interval))
        if session.stop_reason:
            return
        pace(options.speed, started, interval)


def _role(bar_time, day, interval) -> Role:
    """A replayed row's role: a daily session's day before is decided, its day filled on."""
    if interval < pd.Timedelta(days=1):
        return "bar"
    return "decision" if bar_time < day else "fill"
