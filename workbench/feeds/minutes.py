"""Live minute bars assembled into the engine's rows: the feed's logic, with no network.

:class:`MinuteBook` decides minutes, driven by the ``now`` its caller passes. Bars arrive from the stream or from a REST poll
(:class:`MinuteBar`, any order, any thread's batch); the book validates them, files them
under their minute and hands out one :class:`~workbench.engine.feed.BarRow` per minute of
the session, in order, each exactly once. A minute is decided when

1. every subscribed symbol's bar is in, or
2. a poll made after the minute closed covered it (what REST did not return is NaN) and
   its silence can be believed: REST answered a bar of that minute or a later one (now or
   before), some source showed a bar of a later minute, or the poll came ``empty_after_s``
   after the minute's close. A poll too early to say (REST may not have the minute yet
   when the market data is late) settles the minutes before it and is made again
   ``poll_retry_s`` later, so a late minute is decided on its bars, not skipped, or
3. ``cutoff_s`` after its close, on a live stream, when the stream delivered some of its
   bars (a minute's bars come in one burst; the missing symbols had no trades: NaN).

A minute with no bar at all by its cutoff is never decided on the stream's word (a mute
or reconnecting stream looks the same as a quiet market): it is polled. So is the first
minute the stream delivers after a start, a reconnect or a polling spell, which may be
a partial burst. A minute whose every symbol is empty is skipped (event
``minute_empty``), as a stored day has no row for it.

Bars for a decided minute are never applied: a different one is reported as
``bar_corrected`` (or ``bar_late`` when the decided row had no bar for that symbol), an
identical one (a poll overlapping the stream) is dropped and counted. A second, different
bar for an undecided minute replaces the first (``bar_corrected`` with ``applied``).

Bars are validated before they are filed: a timezone-aware time on the session's minute
grid, then the store's rules (:mod:`workbench.feeds.checks`: NaN, prices <= 0, negative
volume, high < low, open/close outside the range, spikes; a genuine level shift passes on
its third bar, the first two are rejected). A bad bar is dropped with ``bar_rejected``
and its reason; nothing with NaN reaches the engine.

Stale: on the stream, when no bar came for ``stale_s`` after bars were due, the book
switches to polling (``feed_source`` ``polling``), backfills every undecided minute and
then polls each minute ``poll_delay_s`` after its close, while asking for stream restarts
with exponential backoff and equal jitter. The first stream bar after that switches back
(``feed_source`` ``stream``); minutes up to it are confirmed by a poll, so the switch
neither skips nor repeats a minute.

:class:`~workbench.feeds.live.LiveFeed` drives a book from a stream source and a poller.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data import calendar
from workbench.data.bars import FIELDS
from workbench.data.store import symbol_list
from workbench.engine.feed import BarRow
from workbench.errors import ConfigError, DataError
from workbench.feeds.checks import BarChecks
from workbench.feeds.options import FeedOptions, MinuteBar, backoff_delay, iso, values_dict

__all__ = ["EventSink", "MinuteBook", "Step"]

MINUTE = pd.Timedelta(minutes=1)
STREAM, POLLING, REST = "stream", "polling", "rest"
EventSink = Callable[[str, dict], None]


@dataclass
class Step:
    """What the book wants done after :meth:`MinuteBook.tick`."""

    rows: list[BarRow] = field(default_factory=list)
    poll: tuple[pd.Timestamp, pd.Timestamp] | None = None  # first and last minute to fetch
    restart_stream: bool = False
    done: bool = False
    wake: pd.Timestamp | None = None  # tick again at this time at the latest


class MinuteBook:
    """Minute assembly, completion, late and corrected bars, gaps and the source switch.

    Pure: every method takes ``now``; nothing reads a clock, sleeps or does I/O. Events go
    to ``on_event(kind, data)`` with JSON-ready data.
    """

    def __init__(self, symbols: Sequence[str], session, now, *, options: FeedOptions | None = None,
                 on_event: EventSink | None = None, rng: random.Random | None = None) -> None:
        self.symbols = tuple(symbol_list(symbols))  # the fetch's rule: NA is a ticker
        self.options = options or FeedOptions()
        self._emit = on_event or (lambda kind, data: None)
        self._rng = rng or random.Random()
        self.session = pd.Timestamp(session).normalize()
        if not calendar.is_session(self.session):
            raise DataError(f"{self.session.date()} is not an NYSE session (weekend or holiday)")
        grid = calendar.bar_times(self.session, self.session, "1Min")
        self.grid = grid
        self.closes = grid + MINUTE
        self._index = {int(t.value): i for i, t in enumerate(grid)}
        self._col = {s: j for j, s in enumerate(self.symbols)}
        now = _utc(now)
        # the minute in progress at ``now`` is the first one (its bar comes after its close)
        self.first = int(self.closes.searchsorted(now, side="right"))
        if self.first >= len(grid):
            raise DataError(f"the session of {self.session.date()} closed at "
                            f"{iso(self.closes[-1])}: no minute left to feed at {iso(now)}")
        self.next = self.first
        self._pending: dict[int, dict[str, np.ndarray]] = {}
        self._decided: dict[int, dict[str, np.ndarray]] = {}
        self._checks = BarChecks(self.options.spike_band, lambda i: self.grid[i])
        self.mode = STREAM
        self._confirmed = False      # a stream bar came since the last start/switch
        self._last_stream = now      # when the last stream bar came
        self._stream_minute = self.first - 1  # the latest minute the stream delivered
        self._poll_through = -1      # minutes up to here need a poll's word
        self._polled_through = -1    # a poll after their close covered minutes up to here
        self._poll_not_before = now
        self._rest_latest = -1       # the latest minute REST answered a bar of
        self._seen_latest = -1       # the latest minute any source showed a bar of
        self._attempt = 0
        self._restart_at: pd.Timestamp | None = None
        self.counts = {"duplicates": 0, "before_start": 0, "rejected": 0, "late": 0,
                       "corrected": 0, "empty": 0, "polls": 0, "poll_failures": 0,
                       "polls_too_early": 0}

    # -- input ------------------------------------------------------------------------------
    def add(self, bars: Iterable[MinuteBar], source: str, now) -> None:
        """File a batch of bars from ``source`` (``"stream"`` or ``"rest"``)."""
        now = _utc(now)
        fresh, known, seen = [], [], set()
        for bar in bars:
            i = self._place(bar, source)
            if i is None:
                continue
            self._seen_latest = max(self._seen_latest, i)
            if source == REST:
                self._rest_latest = max(self._rest_latest, i)
            if source == STREAM:
                self._stream_bar(i, now)
            if i < self.next or bar.symbol in self._pending.get(i, {}) or (i, bar.symbol) in seen:
                known.append((i, bar))
            else:
                fresh.append((i, bar))
                seen.add((i, bar.symbol))
        if fresh:
            self._file_fresh(fresh, source)
        if known:
            self._file_known(known, source)

    def polled(self, first: pd.Timestamp, last: pd.Timestamp, bars: Iterable[MinuteBar], now) -> None:
        """A poll for minutes ``first .. last`` (as :attr:`Step.poll` asked) answered ``bars``.

        It settles the minutes whose silence can be believed (the module doc, rule 2); the
        others are polled again ``poll_retry_s`` later."""
        now = _utc(now)
        self.counts["polls"] += 1
        self.add(bars, REST, now)
        last_i = self._index[int(_utc(last).value)]
        waited = int(self.closes.searchsorted(
            now - pd.Timedelta(seconds=self.options.empty_after_s), side="right")) - 1
        through = min(last_i, max(self._rest_latest, self._seen_latest - 1, waited))
        if through < last_i:  # REST may not have these minutes yet: ask again
            self.counts["polls_too_early"] += 1
            self._poll_not_before = max(self._poll_not_before,
                                        now + pd.Timedelta(seconds=self.options.poll_retry_s))
        self._polled_through = max(self._polled_through, through)

    def poll_failed(self, first: pd.Timestamp, last: pd.Timestamp, error: BaseException, now) -> None:
        now = _utc(now)
        self.counts["poll_failures"] += 1
        self._poll_not_before = now + pd.Timedelta(seconds=self.options.poll_retry_s)
        self._emit("poll_failed", {"first": iso(first), "last": iso(last),
                                   "error": f"{type(error).__name__}: {error}",
                                   "retry_at": iso(self._poll_not_before)})

    # -- decisions --------------------------------------------------------------------------
    def tick(self, now) -> Step:
        """Decide what can be decided at ``now``; say what to poll, restart and when to wake."""
        now = _utc(now)
        step = Step()
        self._check_stale(now)
        while self.next < len(self.grid) and self._decidable(self.next, now):
            row = self._decide(self.next)
            if row is not None:
                step.rows.append(row)
        step.done = self.next >= len(self.grid)
        if step.done:
            return step
        if self.mode == POLLING:
            closed = int(self.closes.searchsorted(
                now - pd.Timedelta(seconds=self.options.poll_delay_s), side="right")) - 1
            self._poll_through = max(self._poll_through, closed)
            if self._restart_at is not None and now >= self._restart_at:
                step.restart_stream = True
                self._attempt += 1
                self._emit("stream_restart", {"attempt": self._attempt})
                self._restart_at = now + pd.Timedelta(
                    seconds=self.options.stale_s + backoff_delay(self._attempt + 1, self.options,
                                                                 self._rng))
        step.poll = self._poll_wanted(now)
        step.wake = self._wake(now, step.poll is not None)
        return step

    def _decidable(self, i: int, now: pd.Timestamp) -> bool:
        have = self._pending.get(i, {})
        if len(have) == len(self.symbols) or i <= self._polled_through:
            return True
        if now < self.closes[i] + pd.Timedelta(seconds=self.options.cutoff_s):
            return False
        if self.mode == POLLING or not have or i <= self._poll_through:
            self._poll_through = max(self._poll_through, i)  # only a poll can settle it
            return False
        return True

    def _decide(self, i: int) -> BarRow | None:
        have = self._pending.pop(i, {})
        self._decided[i] = have
        self.next = i + 1
        if not have:
            self.counts["empty"] += 1
            self._emit("minute_empty", {"time": iso(self.grid[i])})
            return None
        values = np.full((len(FIELDS), len(self.symbols)), np.nan)
        for symbol, bar in have.items():
            values[:, self._col[symbol]] = bar
        return BarRow(self.grid[i], self.symbols, values)

    def _poll_wanted(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        last = self._poll_through
        if last < self.next or last <= self._polled_through or now < self._poll_not_before:
            return None
        if now < self.closes[last] + pd.Timedelta(seconds=self.options.poll_delay_s):
            return None
        first = max(self.next, self._polled_through + 1)
        return self.grid[first], self.grid[last]

    def _wake(self, now: pd.Timestamp, polling_now: bool) -> pd.Timestamp:
        o = self.options
        times = [self.closes[self.next] + pd.Timedelta(seconds=o.cutoff_s)]
        if self.mode == STREAM:
            times.append(self._stale_at())
        else:
            nxt = min(self._poll_through + 1, len(self.grid) - 1)
            times.append(self.closes[nxt] + pd.Timedelta(seconds=o.poll_delay_s))
            if self._restart_at is not None:
                times.append(self._restart_at)
        if self._poll_through >= self.next and not polling_now:
            times.append(max(self._poll_not_before,
                             self.closes[self._poll_through] + pd.Timedelta(seconds=o.poll_delay_s)))
        later = [t for t in times if t > now]
        return min(later) if later else now + pd.Timedelta(seconds=min(o.cutoff_s, 1.0))

    # -- stale and the source switch ----------------------------------------------------------
    def _stale_at(self) -> pd.Timestamp:
        expected = min(self._stream_minute + 1, len(self.grid) - 1)  # its bars are due at its close
        due = max(self._last_stream, self.closes[max(expected, self.first)])
        return due + pd.Timedelta(seconds=self.options.stale_s)

    def _check_stale(self, now: pd.Timestamp) -> None:
        if self.mode != STREAM or self.next >= len(self.grid) or now < self._stale_at():
            return
        self.mode, self._confirmed, self._attempt = POLLING, False, 0
        self._restart_at = now + pd.Timedelta(seconds=backoff_delay(1, self.options, self._rng))
        self._emit("feed_source", {
            "source": POLLING, "at": iso(now),
            "reason": f"no stream bar for {self.options.stale_s:g} s after bars were due "
                      f"(last at {iso(self._last_stream)})",
            "from_minute": iso(self.grid[self.next])})

    def _stream_bar(self, i: int, now: pd.Timestamp) -> None:
        self._last_stream = max(self._last_stream, now)
        self._stream_minute = max(self._stream_minute, i)
        if self._confirmed:
            return
        # the first minute seen after a (re)start may be a partial burst: a poll confirms it
        self._confirmed = True
        self._poll_through = max(self._poll_through, i)
        if self.mode == POLLING:
            self.mode, self._attempt, self._restart_at = STREAM, 0, None
            self._emit("feed_source", {"source": STREAM, "at": iso(now),
                                       "reason": "stream bars flow again",
                                       "from_minute": iso(self.grid[min(i + 1, len(self.grid) - 1)])})

    # -- filing -----------------------------------------------------------------------------
    def _place(self, bar: MinuteBar, source: str) -> int | None:
        """The bar's minute index, or None (rejected, or before the feed's first minute)."""
        t = bar.time
        reason = None
        if bar.symbol not in self._col:
            reason = "unknown_symbol"
        elif not isinstance(t, pd.Timestamp) or t.tz is None:
            reason = "naive_timestamp"
        else:
            i = self._index.get(int(t.tz_convert("UTC").value))
            if i is None:
                on_grid = t.value % MINUTE.value == 0
                reason = "off_session" if on_grid else "off_grid"
            elif i < self.first:
                self.counts["before_start"] += 1
                return None
            else:
                return i
        self._reject(bar, source, reason)
        return None

    def _reject(self, bar: MinuteBar, source: str, reason: str) -> None:
        self.counts["rejected"] += 1
        self._emit("bar_rejected", {"symbol": bar.symbol, "time": iso(bar.time),
                                    "source": source, "reason": reason, **values_dict(bar.values)})

    def _file_fresh(self, items: list[tuple[int, MinuteBar]], source: str) -> None:
        """Bars for minutes not decided and not yet held: every rule, spikes included."""
        values = [(i, b.symbol, np.asarray(b.values, float)) for i, b in items]
        for (i, bar), (_, _, v), reason in zip(items, values, self._checks.fresh(values)):
            if reason is None:
                self._pending.setdefault(i, {})[bar.symbol] = v
            else:
                self._reject(bar, source, reason)

    def _file_known(self, items: list[tuple[int, MinuteBar]], source: str) -> None:
        """Bars for a decided minute, or a second bar for a held one: row rules only."""
        verdicts = self._checks.rows([(i, b.symbol, np.asarray(b.values, float)) for i, b in items])
        for (i, bar), reason in zip(items, verdicts):
            if reason is not None:
                self._reject(bar, source, reason)
                continue
            new = np.asarray(bar.values, float)
            decided = i < self.next
            held = (self._decided if decided else self._pending).get(i, {}).get(bar.symbol)
            if held is None and not decided:  # its batch's first bar was rejected: new after all
                self._file_fresh([(i, bar)], source)
                continue
            data = {"symbol": bar.symbol, "time": iso(self.grid[i]), "source": source,
                    **values_dict(bar.values)}
            if held is not None and np.array_equal(held, new):
                self.counts["duplicates"] += 1
            elif held is None:  # decided without it
                self.counts["late"] += 1
                self._emit("bar_late", data)
            else:
                self.counts["corrected"] += 1
                data.update({"applied": not decided, **values_dict(held, "was_")})
                if not decided:
                    self._pending[i][bar.symbol] = new
                self._emit("bar_corrected", data)


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tz is None:
        raise ConfigError(f"the feed's clock gave a naive time {ts}: clocks are UTC-aware")
    return ts.tz_convert("UTC")
