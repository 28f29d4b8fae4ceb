"""Minute bars into coarser bars: the one aggregation rule of the store, the backtest and
the session.

    fields = aggregate_minutes(minute_arrays, bar_id, bar_ts)     # one symbol, numpy
    bars_5 = aggregate_bars(minute_bars, "5Min")                  # wb.Bars -> wb.Bars

A coarser bar (``5Min``, ``15Min``, ``1Hour``: the NYSE bar grid of
:func:`workbench.data.calendar.bar_grid`, from each session's open in steps of the
timeframe, the last one cut at the close; ``1Day``: the session) holds the minutes that
traded in it: ``open`` the first one's open, ``high`` the highest high, ``low`` the lowest
low, ``close`` the last one's close, ``volume`` the sum; stamped at the bar's open time. A
bar in which no minute traded is absent (NaN in ``wb.Bars``).

The synthetic store data (:mod:`workbench.data.synth`) makes its intraday timeframes with
:func:`aggregate_minutes`, so stored ``5Min`` bars are the aggregated stored minutes; a
session on a timeframe above the minute (:mod:`workbench.session.runner`) replays the
stored minutes aggregated by :func:`aggregate_bars`, as a live session builds its bars
from the minute stream (:mod:`workbench.feeds.timeframes`, with :func:`aggregate_minutes`),
and decides at each aggregated bar's close. (Synthetic ``1Day``
bars are simulated per session, not aggregated: a daily session replays stored daily bars.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.data import calendar
from workbench.data.bars import FIELDS, Bars
from workbench.data.timeframe import Timeframe
from workbench.errors import DataError
from workbench.times import ny_date

__all__ = ["aggregate_bars", "aggregate_minutes"]


def aggregate_minutes(bars: dict[str, np.ndarray], bar_id: np.ndarray,
                      bar_ts: np.ndarray) -> dict[str, np.ndarray]:
    """One symbol's traded minutes (arrays ``open, high, low, close, volume``, time order)
    into coarser bars; ``bar_id`` maps each minute to its bar (non-decreasing), ``bar_ts``
    gives each bar's open time. Returns ``ts`` and the five fields, one row per bar that
    traded."""
    if bar_id.size == 0:
        return {"ts": bar_ts[:0], **{k: bars[k][:0] for k in FIELDS}}
    starts = np.flatnonzero(np.r_[True, bar_id[1:] != bar_id[:-1]])
    ends = np.r_[starts[1:], bar_id.size] - 1
    return {
        "ts": bar_ts[bar_id[starts]],
        "open": bars["open"][starts],
        "high": np.maximum.reduceat(bars["high"], starts),
        "low": np.minimum.reduceat(bars["low"], starts),
        "close": bars["close"][ends],
        "volume": np.add.reduceat(bars["volume"], starts),
    }


def aggregate_bars(minutes: Bars, timeframe: str | Timeframe) -> Bars:
    """``minutes`` (``1Min`` ``wb.Bars``) as ``timeframe`` bars by :func:`aggregate_minutes`."""
    tf = Timeframe.parse(timeframe)
    if minutes.timeframe is not None and minutes.timeframe.seconds != 60:
        raise DataError(f"aggregate_bars needs 1Min bars, got {minutes.timeframe}")
    if tf.seconds == 60:
        return minutes
    index = minutes.index
    if not len(index):
        raise DataError("aggregate_bars: no minute bars")
    days = calendar.sessions(ny_date(index[0]), ny_date(index[-1]))
    grid = calendar.bar_grid(days, tf)[0]
    grid_ns = grid.asi8
    which = np.searchsorted(grid_ns, index.asi8, side="right") - 1
    if (which < 0).any():
        raise DataError("aggregate_bars: minutes before the first session's open")
    values = {f: getattr(minutes, f).to_numpy(dtype=float) for f in FIELDS}
    parts = []
    for j, symbol in enumerate(minutes.symbols):
        traded = ~np.isnan(values["close"][:, j])
        out = aggregate_minutes({f: values[f][traded, j] for f in FIELDS}, which[traded],
                                grid_ns)
        part = pd.DataFrame({f: out[f] for f in FIELDS})
        part.insert(0, "ts", pd.DatetimeIndex(out["ts"].view("datetime64[ns]")).tz_localize("UTC"))
        part.insert(0, "symbol", symbol)
        parts.append(part)
    return Bars.from_long(pd.concat(parts, ignore_index=True), tf)
