"""The bars a session replays, and the refusal of a day its history cannot warm up.

    bars, source = load_replay("2026-11-20", ["AAA", "BBB"], Timeframe.parse("5Min"), 1, store)
    check_warmup(engine, bars, "2026-11-20", 1)     # DataError naming the shortfall

The replayed day plus ``history_days`` stored sessions before it. Above the minute and
intraday, the stored minutes aggregated by :func:`workbench.data.aggregate.aggregate_bars`
(the store's rule; what a live session builds from a minute stream) when the store holds
minutes on the day, else the stored bars of the timeframe; ``source`` says which. A daily
session's bars: :func:`workbench.session.daily.daily_bars` (the day before decided, the day
filled on).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.engine import Engine, load_sessions
from workbench.errors import DataError
from workbench.session import daily
from workbench.strategy.core import ShortWarmupWarning, named_counts
from workbench.strategy.signals import symbol_bars
from workbench.times import ny_midnight, to_new_york

__all__ = ["check_warmup", "load_replay"]


def load_replay(replay_date, symbols, tf, history_days, store) -> tuple[Bars, str]:
    """The bars to replay and where they come from: for an intraday timeframe above the
    minute, the stored minutes aggregated (``aggregate_bars``, the store's rule: what a live
    session builds from a minute stream) when the store holds minutes on the replayed day,
    else the stored ``tf`` bars (a daily timeframe: always the stored daily bars)."""
    day = pd.Timestamp(replay_date).date()
    if daily.is_daily(tf):  # the day before decided, the day filled on (session.daily)
        daily.check_history_days(history_days)
        return daily.daily_bars(symbols, replay_date, 1 + history_days, store)
    bars, source = None, f"stored {tf}"
    if tf.is_intraday and tf.seconds > 60:
        try:
            minutes = load_sessions(1 + history_days, symbols, "1Min", end=replay_date,
                                    store=store)
        except DataError:
            minutes = None
        if minutes is not None and len(minutes) and to_new_york(minutes.index[-1]).date() == day:
            bars, source = aggregate_bars(minutes, tf), f"stored 1Min aggregated to {tf}"
    if bars is None:
        bars = load_sessions(1 + history_days, symbols, tf, end=replay_date, store=store)
    if not len(bars) or to_new_york(bars.index[-1]).date() != day:
        raise DataError(f"no stored {tf} bars on {day} for these symbols: nothing to replay")
    return bars, source


def check_warmup(engine: Engine, bars, replay_date, history_days: int) -> None:
    """Refuse a day whose first decided bar the strategy could not judge: the stored
    history before it is shorter than the warmup (never a day replayed without a decision
    and called "succeeded"). A daily session's first decided bar is the day before's
    (:mod:`workbench.session.daily`)."""
    day = pd.Timestamp(replay_date)
    first_decided = day.date()
    if daily.is_daily(engine.window.timeframe):
        first_decided = daily.decision_day(day).date()
        what = f"the bar of {first_decided} (the decision of the daily session of {day.date()})"
    else:
        what = f"the first bar of {first_decided}"
    rows = bars.index < ny_midnight(first_decided)
    before = int(rows.sum())
    if before >= engine.warmup:
        _warn_short_symbols(engine, bars, rows, what)
        return
    first = f" from {to_new_york(bars.index[0]):%Y-%m-%d}" if before else ""
    raise DataError(
        f"{engine.strategy.name} needs {engine.warmup} {engine.window.timeframe} bars before "
        f"{what}; the {history_days} stored "
        f"sessions before it hold {before}{first}: store earlier history (workbench data "
        "fetch/import/synth) or give history_days that reach it")


def _warn_short_symbols(engine: Engine, bars: Bars, rows: np.ndarray, what: str) -> None:
    """A :class:`ShortWarmupWarning` naming the symbols whose own stored bars (rows with a
    close) before ``what`` are fewer than the warmup: the session does not decide them
    until their bars reach it, as the backtest masks their signals; said, not silent."""
    counts = np.count_nonzero(symbol_bars(bars)[rows], axis=0)
    short = [(s, int(n)) for s, n in zip(bars.symbols, counts, strict=True)
             if n < engine.warmup]
    if short:
        warnings.warn(f"{engine.strategy.name}: {len(short)} of {len(counts)} symbols have "
                      f"fewer than the warmup's {engine.warmup} stored bars before {what}: "
                      f"{named_counts(short)}; no decision for them until their own bars "
                      "reach it (as the backtest masks their signals)", ShortWarmupWarning,
                      stacklevel=3)
