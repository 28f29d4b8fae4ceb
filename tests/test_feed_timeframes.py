"""Issue 10: a live feed's bars above the minute (workbench.feeds.timeframes.BarBuilder and
LiveFeed(timeframe=...)) are the store's: aggregate_bars of the same minutes, bar by bar,
on a regular day and an early close, with missing minutes, whole quiet bars, a bar whose
last minute is empty and a start mid-bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.test_feeds import OPTS, MemoryPoller, MemoryStream, ScriptedInbox
from workbench.clock import SimClock
from workbench.data import calendar
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import FIELDS, Bars
from workbench.data.synth import synthesize
from workbench.engine.feed import BarRow
from workbench.errors import ConfigError, DataError
from workbench.feeds import LiveFeed, MinuteBar
from workbench.feeds.timeframes import BarBuilder

M = pd.Timedelta(minutes=1)
S = pd.Timedelta(seconds=1)
REGULAR, EARLY = "2025-12-29", "2025-11-28"  # the day after Thanksgiving closes at 13:00


def day_minutes(day: str) -> Bars:
    """A synthetic day of 3 symbols with holes: every 7th minute of AAA's gone, BBB quiet
    from 10:00 to 10:30 New York, every symbol silent on the 5Min bar 11:00 and on each
    bar-ending minute :59 (so some bars' last minute is empty)."""
    long = synthesize(3, 1, "1Min", 5, day)
    ny = long["ts"].dt.tz_convert(calendar.NY)
    minute = ny.dt.hour * 60 + ny.dt.minute
    aaa = long["symbol"] == sorted(long["symbol"].unique())[0]
    bbb = long["symbol"] == sorted(long["symbol"].unique())[1]
    gone = (aaa & (minute % 7 == 0)) | (bbb & (minute >= 600) & (minute < 630)) \
        | ((minute >= 660) & (minute < 665)) | (ny.dt.minute == 59)
    return Bars.from_long(long[~gone], "1Min")


def built(minutes: Bars, day: str, tf: str, start: int = 0) -> list[BarRow]:
    """What a feed hands out: the builder given each decided minute in order (``add`` for
    a minute with bars, then ``through`` the next one, as the feed does after each tick);
    minutes before ``start`` (index in the session) given as a seed."""
    grid = calendar.bar_times(day, day, "1Min")
    builder = BarBuilder(minutes.symbols, day, tf)
    arrays = np.stack([getattr(minutes, f).reindex(grid).to_numpy(dtype=float)
                       for f in FIELDS])
    if start:  # the bar in progress gets its earlier minutes, as _catch_up gives them
        builder.seed(minutes.between(builder.bar_start(grid[start]), grid[start - 1]))
    out = []
    for i in range(start, len(grid)):
        values = arrays[:, i, :]
        if not np.isnan(values[3]).all():
            out += builder.add(BarRow(grid[i], tuple(minutes.symbols), values.copy()))
        nxt = grid[i + 1] if i + 1 < len(grid) else calendar.session_close(day)
        out += builder.through(nxt)
    return out


def assert_rows_are(rows: list[BarRow], want: Bars) -> None:
    assert [r.time for r in rows] == list(want.index)
    for k, f in enumerate(FIELDS):
        got = np.array([r.values[k] for r in rows])
        np.testing.assert_array_equal(got, getattr(want, f).to_numpy(dtype=float), err_msg=f)


@pytest.mark.parametrize("day", [REGULAR, EARLY])
@pytest.mark.parametrize("tf", ["5Min", "15Min", "1Hour", "1Day"])
def test_the_built_bars_are_the_stores_aggregate_of_the_same_minutes(day, tf):
    minutes = day_minutes(day)
    want = aggregate_bars(minutes, tf)
    assert_rows_are(built(minutes, day, tf), want)
    if tf == "1Hour":  # the last bar is cut at the close: 15:30, or 12:30 on the early close
        last = "12:30" if day == EARLY else "15:30"
        assert want.index[-1].tz_convert(calendar.NY).strftime("%H:%M") == last
    if tf == "5Min":  # the whole-market silence: no 11:00 bar at all, as in the store
        assert not (want.index.tz_convert(calendar.NY).strftime("%H:%M") == "11:00").any()


@pytest.mark.parametrize("tf", ["5Min", "1Hour", "1Day"])
def test_a_start_mid_bar_seeded_with_the_earlier_minutes_builds_the_same_bars(tf):
    minutes = day_minutes(REGULAR)
    want = aggregate_bars(minutes, tf)
    start = 63  # 10:33 New York: mid-bar for each timeframe
    rows = built(minutes, REGULAR, tf, start)
    first = BarBuilder(minutes.symbols, REGULAR, tf).bar_start(
        calendar.bar_times(REGULAR, REGULAR, "1Min")[start])
    assert_rows_are(rows, want.between(first, None))


def test_a_bar_is_handed_out_on_its_last_minute_or_when_its_interval_is_decided():
    minutes = day_minutes(REGULAR)
    symbols = tuple(minutes.symbols)
    grid = calendar.bar_times(REGULAR, REGULAR, "1Min")
    b = BarBuilder(symbols, REGULAR, "5Min")

    def row(i):
        return BarRow(grid[i], symbols, np.stack([getattr(minutes, f).loc[grid[i]].to_numpy(
            dtype=float) for f in FIELDS]), received=float(i))
    for i in range(4):
        assert b.add(row(i)) == [] and b.through(grid[i + 1]) == []
    (done,) = b.add(row(4))  # its last minute: at once, stamped with that minute's arrival
    assert done.time == grid[0] and done.received == 4.0
    # the bar 10:25 (minutes 55..59): minute 59 never comes (the feed decides it empty)
    for i in range(5, 59):
        b.add(row(i)) if grid[i] in minutes.index else None
        b.through(grid[i + 1])
    assert b.pending == grid[55]
    assert b.through(grid[59]) == []  # minute 59 not decided yet
    (done,) = b.through(grid[60])     # decided empty: the interval is over
    assert done.time == grid[55] and done.received is not None
    with pytest.raises(DataError, match="in time order"):
        b.add(row(58))
    with pytest.raises(DataError, match="seed minutes complete the bar"):
        BarBuilder(symbols, REGULAR, "5Min").seed(minutes.between(None, grid[7]))
    with pytest.raises(ConfigError, match="above the minute"):
        BarBuilder(symbols, REGULAR, "1Min")


def test_a_live_feed_at_5min_hands_out_the_stores_5min_bars_once_each():
    """LiveFeed(timeframe="5Min") over a stream with a mute spell (polled, backfilled):
    every 5Min bar of the served minutes once, equal to aggregate_bars of them, each as
    soon as its last minute is decided."""
    rng = np.random.default_rng(3)
    open_ = calendar.session_open(REGULAR)
    served = [MinuteBar(s, open_ + m * M, c, c + 0.05, c - 0.05, c, 100.0 + m)
              for m in range(30) for s in ("AAA", "BBB")
              if rng.random() < 0.85 for c in [round(10 + rng.normal(0, 0.05), 4)]]
    long = pd.DataFrame([(b.symbol, b.time, *b.values) for b in served],
                        columns=["symbol", "ts", *FIELDS])
    want = aggregate_bars(Bars.from_long(long, "1Min"), "5Min")
    clock = SimClock(open_ - 30 * S)
    script = [(open_ + (m + 1) * M + S, [b for b in served if b.time == open_ + m * M])
              for m in range(30) if not 8 <= m <= 13]
    feed = LiveFeed(["AAA", "BBB"], REGULAR, stream=MemoryStream(),
                    poller=MemoryPoller(served, clock), clock=clock, options=OPTS,
                    inbox=ScriptedInbox(clock, script), timeframe="5Min")
    assert str(feed.timeframe) == "5Min" and len(feed.row_times) == 78
    rows, at = [], []
    for row in feed:
        rows.append(row)
        at.append(clock.now())
        if row.time == want.index[-1]:
            break
    assert_rows_are(rows, want)
    # outside the mute spell a bar comes one second after its last minute's close
    assert at[0] == open_ + 5 * M + S and at[4] == open_ + 25 * M + S
