"""The live feed's logic (workbench.feeds.minutes): an injected clock, in-memory sources."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pytest

from workbench.clock import SimClock
from workbench.data import calendar
from workbench.errors import ConfigError, DataError
from workbench.feeds import FeedOptions, LiveFeed, MinuteBar, MinuteBook, backoff_delay

DAY = "2025-12-29"
OPEN = calendar.session_open(DAY)  # 14:30 UTC
M = pd.Timedelta(minutes=1)
S = pd.Timedelta(seconds=1)
OPTS = FeedOptions(cutoff_s=5, stale_s=30, poll_delay_s=2, poll_retry_s=4, empty_after_s=20,
                   reconnect_min_s=1, reconnect_max_s=8)


def bar(symbol, minute, close=10.0, **kw):
    """A valid bar of ``symbol`` for the ``minute``-th minute of the session."""
    values = {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 100.0}
    values.update(kw)
    return MinuteBar(symbol, OPEN + minute * M, **values)


class Book:
    """A MinuteBook with its events recorded."""

    def __init__(self, symbols=("AAA", "BBB"), start=OPEN - 10 * M, day=DAY, options=OPTS):
        self.events = []
        self.book = MinuteBook(symbols, day, start, options=options,
                               on_event=lambda k, d: self.events.append((k, d)),
                               rng=random.Random(1))

    def kinds(self, kind):
        return [d for k, d in self.events if k == kind]


def closes(rows):
    return [(r.time, *np.round(r.close, 4).tolist()) for r in rows]


# -- completion ----------------------------------------------------------------------------
def test_a_minute_is_decided_when_every_symbol_is_in_and_not_before():
    b = Book()
    b.book.add([bar("AAA", 0), bar("BBB", 0, 20), bar("AAA", 1, 11)], "stream", OPEN + M + S)
    step = b.book.tick(OPEN + M + S)
    assert closes(step.rows) == [(OPEN, 10.0, 20.0)]
    assert step.rows[0].present.all() and step.poll is None
    # minute 1 has AAA only: waits for BBB or the cutoff
    assert b.book.tick(OPEN + 2 * M + 4 * S).rows == []
    step = b.book.tick(OPEN + 2 * M + 5 * S)
    assert len(step.rows) == 1 and step.rows[0].time == OPEN + M
    assert step.rows[0].close[0] == 11.0 and np.isnan(step.rows[0].close[1])
    assert np.isnan(step.rows[0].values[:, 1]).all()  # the whole bar is NaN, not a zero volume


def test_the_first_stream_minute_is_confirmed_by_a_poll_then_decided():
    b = Book()
    b.book.add([bar("AAA", 0)], "stream", OPEN + M + S)  # first burst: maybe partial
    step = b.book.tick(OPEN + M + 5 * S)
    assert step.rows == [] and step.poll == (OPEN, OPEN)
    b.book.polled(OPEN, OPEN, [bar("AAA", 0), bar("BBB", 0, 20)], OPEN + M + 5 * S)
    assert closes(b.book.tick(OPEN + M + 5 * S).rows) == [(OPEN, 10.0, 20.0)]
    assert b.book.counts["duplicates"] == 1  # the polled AAA equals the streamed one


def _streamed_minutes_0_to_2():
    b = Book()
    for m in range(3):
        b.book.add([bar("AAA", m), bar("BBB", m)], "stream", OPEN + (m + 1) * M)
        b.book.tick(OPEN + (m + 1) * M)
    return b


def test_a_minute_with_no_bar_is_polled_not_decided_by_the_cutoff():
    b = _streamed_minutes_0_to_2()
    # minute 3: nothing at all (a mute stream and a quiet market look alike)
    step = b.book.tick(OPEN + 4 * M + 5 * S)
    assert step.rows == [] and step.poll == (OPEN + 3 * M, OPEN + 3 * M)
    b.book.polled(OPEN + 3 * M, OPEN + 3 * M, [], OPEN + 4 * M + 6 * S)
    # REST's silence 6 s after the close proves nothing yet: asked again poll_retry_s later
    assert b.book.tick(OPEN + 4 * M + 9 * S).poll is None and b.book.next == 3
    # the stream shows minute 4: the market data is past minute 3, whose silence now holds
    b.book.add([bar("AAA", 4), bar("BBB", 4)], "stream", OPEN + 5 * M)
    step = b.book.tick(OPEN + 5 * M)
    assert step.rows == [] and step.poll == (OPEN + 3 * M, OPEN + 3 * M)
    b.book.polled(*step.poll, [], OPEN + 5 * M)
    assert [r.time for r in b.book.tick(OPEN + 5 * M).rows] == [OPEN + 4 * M]  # 3 skipped
    assert b.kinds("minute_empty") == [{"time": (OPEN + 3 * M).isoformat()}]
    assert b.book.next == 5 and b.book.counts["polls_too_early"] == 1


def test_a_minute_rest_does_not_have_yet_is_decided_on_its_bars_when_they_come():
    """The market data is late (a loaded data source, REST behind the clock): the poll
    after the cutoff finds nothing for the minute. It is asked again, not skipped; when
    REST has the minute it is decided on its bars, as a backtest on the stored day sees."""
    b = _streamed_minutes_0_to_2()
    step = b.book.tick(OPEN + 4 * M + 5 * S)
    b.book.polled(*step.poll, [], OPEN + 4 * M + 6 * S)
    assert b.book.tick(OPEN + 4 * M + 6 * S).rows == [] and not b.kinds("minute_empty")
    step = b.book.tick(OPEN + 4 * M + 10 * S)  # poll_retry_s after the early poll
    assert step.poll == (OPEN + 3 * M, OPEN + 3 * M)
    b.book.polled(*step.poll, [bar("AAA", 3, 11), bar("BBB", 3, 12)], OPEN + 4 * M + 10 * S)
    assert closes(b.book.tick(OPEN + 4 * M + 10 * S).rows) == [(OPEN + 3 * M, 11.0, 12.0)]
    assert not b.kinds("minute_empty") and not b.kinds("bar_late")


def test_a_minute_nothing_shows_is_empty_once_rest_had_empty_after_s_to_show_it():
    b = _streamed_minutes_0_to_2()
    now = OPEN + 4 * M + 5 * S
    polls = []
    while b.book.next == 3 and now < OPEN + 5 * M:
        step = b.book.tick(now)
        if step.poll:
            polls.append(now)
            b.book.polled(*step.poll, [], now)
            b.book.tick(now)
        now += S
    # every poll_retry_s (4 s) from the cutoff, until one empty_after_s (20 s) after the close
    assert polls == [OPEN + 4 * M + s * S for s in (5, 9, 13, 17, 21)]
    assert b.kinds("minute_empty") == [{"time": (OPEN + 3 * M).isoformat()}]


def test_rows_come_in_order_even_when_a_later_minute_completes_first():
    b = Book()
    b.book.add([bar("AAA", 0), bar("BBB", 0)], "stream", OPEN + M)
    b.book.add([bar("AAA", 1), bar("AAA", 2), bar("BBB", 2)], "stream", OPEN + 2 * M + S)
    assert [r.time for r in b.book.tick(OPEN + 2 * M + S).rows] == [OPEN]  # 1 waits, so 2 waits
    step = b.book.tick(OPEN + 2 * M + 5 * S)
    assert [r.time for r in step.rows] == [OPEN + M, OPEN + 2 * M]


def test_the_feed_ends_with_the_sessions_last_minute_on_a_half_day():
    day = "2025-12-24"  # early close 13:00 New York
    close = calendar.session_close(day)
    b = Book(symbols=("AAA",), start=close - M - 30 * S, day=day)
    assert b.book.grid[-1] == close - M and b.book.first == len(b.book.grid) - 2
    last_two = [MinuteBar("AAA", close - 2 * M, 10, 10.1, 9.9, 10, 1),
                MinuteBar("AAA", close - M, 10, 10.1, 9.9, 10, 1)]
    b.book.add(last_two, "stream", close)
    b.book.polled(close - 2 * M, close - 2 * M, last_two[:1], close + 2 * S)
    step = b.book.tick(close + 2 * S)
    assert [r.time for r in step.rows] == [close - 2 * M, close - M] and step.done
    b.book.add([MinuteBar("AAA", close, 10, 10.1, 9.9, 10, 1)], "stream", close + M)
    assert b.kinds("bar_rejected")[-1]["reason"] == "off_session"


def test_a_feed_started_after_the_close_refuses():
    with pytest.raises(DataError, match="closed at .*no minute left"):
        Book(start=calendar.session_close(DAY) + S)
    with pytest.raises(DataError, match="not an NYSE session"):
        Book(day="2025-12-25")


def test_options_are_checked():
    with pytest.raises(ConfigError, match="stale_s .* must exceed cutoff_s"):
        FeedOptions(cutoff_s=10, stale_s=5)
    with pytest.raises(ConfigError, match="poll_delay_s must be a positive"):
        FeedOptions(poll_delay_s=0)
    with pytest.raises(ConfigError, match="naive"):
        MinuteBook(["AAA"], DAY, pd.Timestamp("2025-12-29 14:00"))


# -- late and corrected ----------------------------------------------------------------------
def _decided_minute_0(b):
    b.book.add([bar("AAA", 0), bar("BBB", 0)], "stream", OPEN + M)
    assert len(b.book.tick(OPEN + M).rows) == 1


def test_a_late_bar_is_reported_never_applied():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 1)], "stream", OPEN + 2 * M)
    row = b.book.tick(OPEN + 2 * M + 5 * S).rows[0]
    assert np.isnan(row.close[1])
    b.book.add([bar("BBB", 1, 21)], "stream", OPEN + 2 * M + 9 * S)
    assert b.kinds("bar_late") == [{"symbol": "BBB", "time": (OPEN + M).isoformat(),
                                    "source": "stream", "open": 21.0, "high": 21.1,
                                    "low": 20.9, "close": 21.0, "volume": 100.0}]
    assert np.isnan(row.close[1])  # the handed-out row is untouched
    assert b.book.tick(OPEN + 2 * M + 9 * S).rows == []  # nothing decided again


def test_a_corrected_bar_for_a_decided_minute_is_reported_with_both_values():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 0, 10.05)], "rest", OPEN + 2 * M)
    (event,) = b.kinds("bar_corrected")
    assert event["applied"] is False and event["close"] == 10.05 and event["was_close"] == 10.0
    b.book.add([bar("AAA", 0)], "rest", OPEN + 2 * M)  # identical: a duplicate, silently equal
    assert len(b.kinds("bar_corrected")) == 1 and b.book.counts["duplicates"] == 1


def test_a_second_bar_for_an_undecided_minute_replaces_the_first_and_says_so():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 1), bar("AAA", 1, 10.2)], "stream", OPEN + 2 * M)
    b.book.add([bar("BBB", 1)], "stream", OPEN + 2 * M)
    assert closes(b.book.tick(OPEN + 2 * M).rows) == [(OPEN + M, 10.2, 10.0)]
    (event,) = b.kinds("bar_corrected")
    assert event["applied"] is True and event["was_close"] == 10.0


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, reason", [
    ({"close": float("nan")}, "nan"),
    ({"low": 0.0, "open": 0.0, "close": 0.0}, "non_positive_price"),
    ({"high": 9.0}, "high_below_low"),
    ({"volume": -1.0}, "negative_volume"),
])
def test_bad_bars_are_rejected_with_a_reason_and_never_reach_the_engine(kw, reason):
    b = Book()
    _decided_minute_0(b)
    bad = bar("AAA", 1, **kw)
    b.book.add([bad, bar("BBB", 1)], "stream", OPEN + 2 * M)
    (event,) = b.kinds("bar_rejected")
    assert event["reason"] == reason and event["symbol"] == "AAA" and event["source"] == "stream"
    row = b.book.tick(OPEN + 2 * M + 5 * S).rows[0]
    assert np.isnan(row.values[:, 0]).all() and np.isfinite(row.values[:, 1]).all()


def test_a_good_second_bar_after_a_rejected_first_in_one_batch_is_filed():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 1, float("nan")), bar("AAA", 1, 10.1), bar("BBB", 1)], "rest", OPEN + 2 * M)
    assert [e["reason"] for e in b.kinds("bar_rejected")] == ["nan"]
    assert closes(b.book.tick(OPEN + 2 * M).rows) == [(OPEN + M, 10.1, 10.0)]
    assert b.kinds("bar_late") == b.kinds("bar_corrected") == []


def test_timestamps_off_the_grid_naive_or_unknown_symbols_are_rejected():
    b = Book()
    good = bar("AAA", 0)
    cases = {
        "naive_timestamp": MinuteBar("AAA", good.time.tz_localize(None), *good.values),
        "off_grid": MinuteBar("AAA", good.time + 30 * S, *good.values),
        "off_session": MinuteBar("AAA", OPEN - M, *good.values),
        "unknown_symbol": MinuteBar("ZZZ", good.time, *good.values),
    }
    b.book.add(list(cases.values()), "stream", OPEN + M)
    assert [e["reason"] for e in b.kinds("bar_rejected")] == list(cases)
    assert b.book._pending == {}


def test_a_spike_is_rejected_and_a_level_shift_passes_on_its_third_bar():
    b = Book(symbols=("AAA",))
    feed = [10.0, 10.1, 1000.0, 10.2, 30.0, 30.1, 30.2, 30.1]
    served = {OPEN + m * M: bar("AAA", m, c) for m, c in enumerate(feed)}
    accepted = []
    for m in range(len(feed)):
        now = OPEN + (m + 1) * M + 5 * S
        b.book.add([served[OPEN + m * M]], "stream", now)
        step = b.book.tick(now)
        if step.poll:  # the first minute and the rejected ones are polled: REST says the same
            first, last = step.poll
            b.book.polled(first, last, [v for t, v in served.items() if first <= t <= last], now)
            step = b.book.tick(now)
        accepted += [float(r.close[0]) for r in step.rows]
    rejected = [(e["close"], e["reason"], e["source"]) for e in b.kinds("bar_rejected")]
    spikes = [(c, "spike", src) for c in (1000.0, 30.0, 30.1) for src in ("stream", "rest")]
    assert rejected == spikes
    assert accepted == [10.0, 10.1, 10.2, 30.2, 30.1]
    assert b.kinds("minute_empty") == [{"time": (OPEN + m * M).isoformat()} for m in (2, 4, 5)]


def test_a_bad_late_bar_is_rejected_not_reported_as_late():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 0, close=float("nan"))], "rest", OPEN + 2 * M)
    assert [e["reason"] for e in b.kinds("bar_rejected")] == ["nan"]
    assert b.kinds("bar_late") == b.kinds("bar_corrected") == []


# -- stale, polling, backfill, back to streaming ----------------------------------------------------
def test_a_mute_stream_goes_stale_within_the_window_then_polls_backfill_and_returns():
    b = Book()
    _decided_minute_0(b)
    b.book.add([bar("AAA", 1), bar("BBB", 1)], "stream", OPEN + 2 * M)
    b.book.tick(OPEN + 2 * M)
    # minute 2's bars were due at OPEN+3M; stale window 30 s
    assert b.book.mode == "stream"
    step = b.book.tick(OPEN + 3 * M + 5 * S)  # cutoff: no bar at all -> poll minute 2
    assert step.poll == (OPEN + 2 * M, OPEN + 2 * M)
    b.book.poll_failed(*step.poll, TimeoutError("no answer"), OPEN + 3 * M + 6 * S)
    assert b.book.tick(OPEN + 3 * M + 8 * S).poll is None  # retry waits poll_retry_s
    step = b.book.tick(OPEN + 3 * M + 31 * S)
    (switch,) = b.kinds("feed_source")
    assert switch["source"] == "polling" and "30 s" in switch["reason"]
    assert b.book.mode == "polling" and step.poll == (OPEN + 2 * M, OPEN + 2 * M)
    b.book.polled(*step.poll, [bar("AAA", 2), bar("BBB", 2, 11)], OPEN + 3 * M + 31 * S)
    assert closes(b.book.tick(OPEN + 3 * M + 31 * S).rows) == [(OPEN + 2 * M, 10.0, 11.0)]
    # polling each minute, poll_delay_s after its close
    assert b.book.tick(OPEN + 4 * M + S).poll is None
    step = b.book.tick(OPEN + 4 * M + 2 * S)
    assert step.poll == (OPEN + 3 * M, OPEN + 3 * M)
    b.book.polled(*step.poll, [bar("AAA", 3), bar("BBB", 3)], OPEN + 4 * M + 2 * S)
    assert [r.time for r in b.book.tick(OPEN + 4 * M + 2 * S).rows] == [OPEN + 3 * M]
    # the stream comes back mid-minute-4's burst: AAA only
    b.book.add([bar("AAA", 4)], "stream", OPEN + 5 * M + S)
    assert b.kinds("feed_source")[-1]["source"] == "stream" and b.book.mode == "stream"
    step = b.book.tick(OPEN + 5 * M + 5 * S)
    assert step.rows == [] and step.poll == (OPEN + 4 * M, OPEN + 4 * M)  # confirmed by a poll
    b.book.polled(*step.poll, [bar("AAA", 4), bar("BBB", 4)], OPEN + 5 * M + 5 * S)
    assert [r.time for r in b.book.tick(OPEN + 5 * M + 5 * S).rows] == [OPEN + 4 * M]
    b.book.add([bar("AAA", 5), bar("BBB", 5)], "stream", OPEN + 6 * M)
    assert [r.time for r in b.book.tick(OPEN + 6 * M).rows] == [OPEN + 5 * M]
    assert b.book.counts["duplicates"] == 1 and b.kinds("bar_late") == []


def test_stream_restarts_back_off_exponentially_with_jitter():
    b = Book()
    _decided_minute_0(b)
    t = OPEN + 2 * M + 31 * S
    b.book.tick(t)
    assert b.book.mode == "polling"
    restarts, now = [], t
    while len(restarts) < 4 and now < t + 10 * M:
        now += S / 4
        step = b.book.tick(now)
        if step.poll:
            b.book.polled(*step.poll, [], now)
        if step.restart_stream:
            restarts.append(now)
    gaps = [(b2 - a).total_seconds() for a, b2 in itertools.pairwise(restarts)]
    # after each restart: the stale window (30 s) plus backoff 2, 4, 8 s jittered to [d/2, d]
    for gap, d in zip(gaps, (2, 4, 8)):
        assert 30 + d / 2 - 0.25 <= gap <= 30 + d + 0.25
    assert [e["attempt"] for e in b.kinds("stream_restart")] == [1, 2, 3, 4]


def test_backoff_is_capped_and_jittered_to_half_to_full():
    rng = random.Random(3)
    draws = [backoff_delay(a, OPTS, rng) for a in range(1, 40)]
    assert all(0.5 <= d <= 1 for d in draws[:1]) and all(4 <= d <= 8 for d in draws[3:])
    assert len({round(d, 6) for d in draws[3:]}) > 10  # jittered, not a constant


# -- the driver ----------------------------------------------------------------------------------
class ScriptedInbox:
    """Delivers scripted stream batches when the SimClock reaches their time; waiting
    advances the clock (so the driver runs deterministically, without threads)."""

    def __init__(self, clock, script):
        self.clock, self.script = clock, sorted(script, key=lambda x: x[0])

    def put(self, bars):
        self.script.insert(0, (self.clock.now(), list(bars)))

    def drain(self):
        out = []
        while self.script and self.script[0][0] <= self.clock.now():
            out += self.script.pop(0)[1]
        return out

    def get(self, timeout):
        wake = self.clock.now() + pd.Timedelta(seconds=timeout)
        if self.script and self.script[0][0] <= wake:
            self.clock.set(max(self.script[0][0], self.clock.now()))
            return self.drain()
        self.clock.set(wake)
        return None


class MemoryStream:
    def __init__(self):
        self.calls = []

    def start(self, deliver):
        self.calls.append("start")

    def restart(self):
        self.calls.append("restart")

    def stop(self):
        self.calls.append("stop")


class MemoryPoller:
    """REST over a dict of served bars; ``down`` makes every call fail."""

    def __init__(self, served, clock):
        self.served, self.clock, self.calls, self.down = served, clock, [], False

    def bars(self, symbols, first, last):
        self.calls.append((self.clock.now(), first, last))
        if self.down:
            raise ConnectionError("REST down")
        return [b for b in self.served if first <= b.time <= last]


def _served_day(minutes, symbols=("AAA", "BBB"), seed=4):
    rng = np.random.default_rng(seed)
    out = []
    for m in range(minutes):
        for s in symbols:
            if rng.random() < 0.9:
                out.append(bar(s, m, round(10 + rng.normal(0, 0.05), 4)))
    return out


def test_the_driver_yields_every_minute_once_through_a_mute_spell():
    served = _served_day(20)
    clock = SimClock(OPEN - 30 * S)
    # the stream delivers each minute 1 s after its close, except minutes 6..12 (mute)
    script = [(OPEN + (m + 1) * M + S, [b for b in served if b.time == OPEN + m * M])
              for m in range(20) if not 6 <= m <= 12]
    events = []
    stream, poller = MemoryStream(), MemoryPoller(served, clock)
    feed = LiveFeed(["AAA", "BBB"], DAY, stream=stream, poller=poller, clock=clock, options=OPTS,
                    on_event=lambda k, d: events.append((k, d)), rng=random.Random(2),
                    inbox=ScriptedInbox(clock, script), perf=lambda: 1.5)
    rows = []
    for row in feed:
        rows.append(row)
        if row.time == OPEN + 19 * M:
            break
    times = [r.time for r in rows]
    assert times == sorted(set(times)) and times == [OPEN + m * M for m in range(20)]
    for r in rows:
        want = {b.symbol: b.close for b in served if b.time == r.time}
        got = {s: c for s, c in zip(r.symbols, r.close) if not np.isnan(c)}
        assert got == want
        assert r.received == 1.5
    sources = [d["source"] for k, d in events if k == "feed_source"]
    assert sources == ["polling", "stream"]
    assert "restart" in stream.calls and stream.calls[-1] == "stop"
    assert not [k for k, _ in events if k in ("bar_late", "bar_corrected", "bar_rejected")]


def test_a_session_that_falls_behind_still_gets_every_minute_once_in_order():
    """The session's thread busy for minutes (a slow decision, a loaded machine): the
    minutes that closed meanwhile come in order when it asks again, none skipped."""
    served = _served_day(20)
    clock = SimClock(OPEN - 30 * S)
    script = [(OPEN + (m + 1) * M + S, [b for b in served if b.time == OPEN + m * M])
              for m in range(20)]
    events = []
    feed = LiveFeed(["AAA", "BBB"], DAY, stream=MemoryStream(), poller=MemoryPoller(served, clock),
                    clock=clock, options=OPTS, on_event=lambda k, d: events.append((k, d)),
                    rng=random.Random(3), inbox=ScriptedInbox(clock, script))
    rows = []
    for row in feed:
        rows.append(row)
        if row.time in (OPEN + 2 * M, OPEN + 9 * M):
            clock.advance(4 * M + 30 * S)  # this minute's decision took 4.5 minutes
        if row.time == OPEN + 19 * M:
            break
    assert [r.time for r in rows] == [OPEN + m * M for m in range(20)]
    for r in rows:
        want = {b.symbol: b.close for b in served if b.time == r.time}
        assert {s: c for s, c in zip(r.symbols, r.close) if not np.isnan(c)} == want
    assert not [k for k, _ in events if k in ("bar_late", "minute_empty", "feed_source")]


def test_the_driver_keeps_retrying_a_failed_poll_and_reports_it():
    served = _served_day(4)
    clock = SimClock(OPEN - 30 * S)
    script = [(OPEN + (m + 1) * M + S, [b for b in served if b.time == OPEN + m * M])
              for m in range(4)]
    events = []
    poller = MemoryPoller(served, clock)
    poller.down = True
    feed = LiveFeed(["AAA", "BBB"], DAY, stream=MemoryStream(), poller=poller, clock=clock,
                    options=OPTS, on_event=lambda k, d: events.append((k, d)),
                    inbox=ScriptedInbox(clock, script))
    it = iter(feed)
    # minute 0 needs the confirming poll, which fails: nothing comes until REST is back
    while len(poller.calls) < 3:
        clock.advance(S)
        feed.book.tick(clock.now())
        step = feed.book.tick(clock.now())
        if step.poll:
            feed._poll(*step.poll)
    fails = [d for k, d in events if k == "poll_failed"]
    assert len(fails) == 3 and "REST down" in fails[0]["error"]
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(poller.calls)]
    assert all(g >= OPTS.poll_retry_s for g in gaps)
    poller.down = False
    first = next(it)
    assert first.time == OPEN


def test_the_engine_decides_the_same_on_the_live_feed_as_on_the_stored_bars():
    """Fault test 13's shape: the served bars, streamed with a mute spell and polled, give
    the engine the same rows, hence the same signals, as the same bars replayed."""
    import workbench as wb
    from workbench.data.bars import Bars
    from workbench.engine import Engine, ReplayFeed

    @wb.strategy(warmup=3)
    def above_mean(bars, n: int = 3):
        mean = wb.ta.SMA(bars.close, n)
        return wb.Signals(entries=wb.crossed_above(bars.close, mean),
                          exits=wb.crossed_below(bars.close, mean))

    served = _served_day(30, seed=9)
    long = pd.DataFrame([(b.symbol, b.time, *b.values) for b in served],
                        columns=["symbol", "ts", "open", "high", "low", "close", "volume"])
    stored = Bars.from_long(long, timeframe="1Min")
    replayed, live = [], []
    Engine(above_mean, ["AAA", "BBB"], on_decision=replayed.append).run(ReplayFeed(stored))
    clock = SimClock(OPEN - 30 * S)
    script = [(OPEN + (m + 1) * M + S, [b for b in served if b.time == OPEN + m * M])
              for m in range(30) if not 10 <= m <= 16]
    feed = LiveFeed(["AAA", "BBB"], DAY, stream=MemoryStream(), poller=MemoryPoller(served, clock),
                    clock=clock, options=OPTS, inbox=ScriptedInbox(clock, script))
    engine = Engine(above_mean, ["AAA", "BBB"], on_decision=live.append)
    assert engine.run(feed) == 30  # to the session's close: the minutes after 30 are empty
    assert len(live) == len(replayed) == 30
    assert [(d.bar_time, d.signals) for d in live] == [(d.bar_time, d.signals) for d in replayed]
    assert any(d.signals for d in live)
    assert clock.now() >= calendar.session_close(DAY)
