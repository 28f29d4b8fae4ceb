"""What a write may add to a symbol's stored bars: the calendar, the future, the timeframe's
label, splices and range jumps.

The store (:mod:`workbench.data.store`) asks five questions of every symbol it writes:

* **Timeframe** (:func:`timeframe_contradiction`): bars whose times contradict the
  timeframe they are written under (bars closer together than one step: minute bars
  stored as 7Min; daily bars sharing a session date: minute bars stored as 1Day; in
  both cases at least three such gaps and a tenth of all, so that a stray bar is only
  quarantined off the grid; or, with twenty gaps or more inside sessions, every gap a
  whole multiple of a larger step: 5Min bars stored as 1Min) are another timeframe's
  bars; the symbol's write is refused with a one-line reason.

* **Calendar** (:func:`off_calendar`): bars that pass :func:`~workbench.data.validate.validate`
  (so a bad bar keeps the validator's reason) but are not bars of the timeframe on the NYSE
  calendar (a holiday or weekend, outside the regular session for intraday timeframes,
  off the timeframe's grid) are split off to be quarantined with their reason
  (:func:`workbench.data.calendar.judge_bars`).
* **Future**: bars that open after now plus :data:`FUTURE_MARGIN` (clock skew) are
  quarantined as ``in_the_future`` (a bar dated 2199, a wrong year or time zone).
* **Splice** (:func:`splice_reason`): new bars at times the symbol already holds but with
  other values are another series (another seed, another source or adjustment). Keeping
  the stored ones and appending the rest would join two price paths, so the symbol's
  write is refused, with a one-line reason, unless the caller asked to replace.
* **Range jump** (:func:`range_jump`): new bars that do not touch the stored range, with
  whole sessions missing between them, stretch the symbol's range across a hole; the write
  goes ahead and the report says so, per symbol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.clock import LiveClock
from workbench.data import calendar
from workbench.data.bars import FIELDS
from workbench.data.timeframe import Timeframe
from workbench.errors import DataError
from workbench.times import ny_date, to_new_york, to_utc

__all__ = ["FUTURE", "FUTURE_MARGIN", "off_calendar", "range_jump", "splice_reason",
           "timeframe_contradiction"]

FUTURE = "in_the_future"
FUTURE_MARGIN = pd.Timedelta(minutes=5)  # a bar may open this far past our clock (skew)
_STRAY_HITS, _STRAY_SHARE = 3, 0.1  # fewer gaps than both are stray bars, not a timeframe
_COARSER_EVIDENCE = 20  # gaps inside sessions needed before "all gaps are k steps" is evidence


def off_calendar(rows: pd.DataFrame, tf: Timeframe, now=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` split into (on the calendar and not in the future, the others); the second
    carries ``reason`` (``in_the_future`` first: a bar after ``now`` (default: the wall
    clock) plus :data:`FUTURE_MARGIN`, then the calendar's reasons)."""
    why = calendar.judge_bars(rows["ts"], tf)
    limit = to_utc(now if now is not None else LiveClock().now()) + FUTURE_MARGIN
    why[np.asarray(rows["ts"] > limit)] = FUTURE
    bad = pd.notna(why)
    if not bad.any():
        return rows, rows.iloc[0:0].assign(reason=pd.Series(dtype="str"))
    off = rows[bad].assign(reason=why[bad].astype(str))
    return rows[~bad], off


def splice_reason(symbol: str, good: pd.DataFrame, stored: pd.DataFrame) -> tuple[str | None, int, int]:
    """Compare the new bars with the stored ones at the same times.

    Returns (a one-line refusal reason or None, bars identical to stored, bars differing).
    """
    if not len(stored) or not len(good):
        return None, 0, 0
    merged = good[["ts", *FIELDS]].merge(stored[["ts", *FIELDS]], on="ts", suffixes=("", "_stored"))
    if merged.empty:
        return None, 0, 0
    same = np.ones(len(merged), dtype=bool)
    for f in FIELDS:
        same &= np.isclose(merged[f], merged[f + "_stored"], rtol=0, atol=0, equal_nan=True)
    differ = int((~same).sum())
    if not differ:
        return None, len(merged), 0
    first = merged.loc[~same].iloc[0]
    reason = (
        f"{symbol}: refused, {differ} of {len(merged)} new bars at stored times differ from the "
        f"stored bars (first at {to_new_york(first['ts']):%Y-%m-%d %H:%M %Z}: close {first['close']:g} new vs "
        f"{first['close_stored']:g} stored), so this is another series; writing it would "
        f"splice two price paths. Nothing written for {symbol}; use --replace "
        f"(replace=True) to move the stored series to the trash and write this one, or "
        f"`workbench data rm {symbol}` first"
    )
    return reason, len(merged) - differ, differ


def range_jump(symbol: str, tf: Timeframe, new_first: pd.Timestamp, new_last: pd.Timestamp,
               stored_first: pd.Timestamp | None, stored_last: pd.Timestamp | None) -> str | None:
    """A warning when the new bars leave whole sessions missing between them and the
    stored range (the symbol's range jumps across a hole), else None."""
    if stored_first is None or stored_last is None:
        return None
    if new_last < stored_first:
        before, after, where = new_last, stored_first, "before"
    elif new_first > stored_last:
        before, after, where = stored_last, new_first, "after"
    else:
        return None
    a, b = ny_date(before), ny_date(after)
    try:
        between = calendar.sessions(a, b)
    except DataError:  # outside the calendar's span: count calendar days instead
        missing = max((b - a).days - 1, 0)
        unit = "day(s)"
    else:
        missing = len(between.index[(between.index > a) & (between.index < b)])
        unit = "session(s)"
    if missing == 0:
        return None
    lo, hi = min(new_first, stored_first), max(new_last, stored_last)
    return (
        f"{symbol}: range jump, the new {tf} bars ({ny_date(new_first).date()} .. "
        f"{ny_date(new_last).date()}) lie {where} the stored ones ({ny_date(stored_first).date()} .. "
        f"{ny_date(stored_last).date()}) with {missing:,} {unit} missing between them; the "
        f"symbol now spans {ny_date(lo).date()} .. {ny_date(hi).date()} with that hole "
        f"(`workbench data rm {symbol} --timeframe {tf} --start ... --end ...` removes a range)"
    )


def timeframe_contradiction(symbol: str, ts: pd.Series, tf: Timeframe) -> str | None:
    """A one-line refusal when the bar times ``ts`` (one symbol, validated: unique) cannot be
    bars of ``tf`` (see the module docstring), else None."""
    index = pd.DatetimeIndex(ts).sort_values()
    if len(index) < 2:
        return None
    days = index.tz_convert("America/New_York").tz_localize(None).normalize()
    same_day = np.asarray(days[1:] == days[:-1])
    gaps = np.diff(index.asi8)
    step = tf.delta.value
    tail = (f"nothing written for {symbol}; give the timeframe the bars are "
            f"(--timeframe / timeframe=) or resample them first")
    if not tf.is_intraday:
        if _many(same_day):
            at = index[1:][same_day][0]
            return (f"{symbol}: refused, {int(same_day.sum())} bar(s) share a session date with an "
                    f"earlier bar (first {to_new_york(at):%Y-%m-%d %H:%M %Z}): intraday bars are not "
                    f"{tf} bars; {tail}")
        return None
    finer = gaps < step
    if _many(finer):
        smallest = pd.Timedelta(int(gaps.min()), "ns")
        at = index[1:][finer][0]
        return (f"{symbol}: refused, {int(finer.sum())} pair(s) of bars are closer than one {tf} "
                f"step (smallest gap {_span(smallest)}, first at {to_new_york(at):%Y-%m-%d %H:%M:%S %Z}): "
                f"these are finer bars than {tf}; {tail}")
    inside = gaps[same_day]
    if inside.size >= _COARSER_EVIDENCE and not (inside % step).any():
        k = int(np.gcd.reduce(inside // step))
        if k > 1:
            return (f"{symbol}: refused, all {inside.size} gaps between bars of a session are "
                    f"multiples of {_span(pd.Timedelta(k * step, 'ns'))}: these are coarser bars "
                    f"than {tf}; {tail}")
    return None


def _many(hits: np.ndarray) -> bool:
    """Evidence of another timeframe, not a stray bar (a stray off the grid is quarantined
    by the calendar's grid rule): at least three hits and a tenth of the gaps."""
    n = int(hits.sum())
    return n >= _STRAY_HITS and n >= _STRAY_SHARE * hits.size


def _span(delta: pd.Timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{delta.total_seconds():g} s"
