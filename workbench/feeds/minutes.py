"""Live minute bars assembled into the engine's rows: the feed's logic, with no network.

Two parts, both driven by an injected clock:

:class:`MinuteBook` decides minutes. Bars arrive from the stream or from a REST poll
(:class:`MinuteBar`, any order, any thread's batch); the book validates them, files them
under their minute and hands out one :class:`~workbench.engine.feed.BarRow` per minute of
the session, in order, each exactly once. A minute is decided when

1. every subscribed symbol's bar is in, or
2. a poll made after the minute closed covered it (what REST did not return is NaN), or
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

Bars are validated before they are filed: the store's rules
(:func:`workbench.data.validate.validate`: NaN, prices <= 0, negative volume, high < low,
open/close outside the range, and the spike rule against the symbol's last accepted close,
with its last spike-rejected closes in the window so that a genuine level shift passes on
its third bar) plus a timezone-aware time on the session's minute grid. (The validator takes a level
shift once three closes sit at the new level, so the first two bars of a genuine jump are
rejected.) A bad bar is
dropped with ``bar_rejected`` and its reason; nothing with NaN reaches the engine.

Stale: on the stream, when no bar came for ``stale_s`` after bars were due, the book
switches to polling (``feed_source`` ``polling``), backfills every undecided minute and
then polls each minute ``poll_delay_s`` after its close, while asking for stream restarts
with exponential backoff and equal jitter. The first stream bar after that switches back
(``feed_source`` ``stream``); minutes up to it are confirmed by a poll, so the switch
neither skips nor repeats a minute.

:class:`LiveFeed` is the engine's :class:`~workbench.engine.feed.Feed` around a book: it
starts a stream source (anything with ``start(deliver)``, ``restart()``, ``stop()``;
``deliver`` may be called from any thread), runs polls through a poller (``bars(symbols,
start, end)``), sleeps on its inbox until the book's next deadline and stops after the
session's last minute (half days included).
"""

from __future__ import annotations

import math
import queue
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from workbench.clock import Clock
from workbench.data import calendar
from workbench.data.bars import FIELDS
from workbench.data.store import check_symbol
from workbench.data.timeframe import Timeframe
from workbench.data.validate import validate
from workbench.engine.feed import BarRow
from workbench.errors import ConfigError, DataError

__all__ = [
    "FeedOptions", "LiveFeed", "MinuteBar", "MinuteBook", "Poller", "Step", "StreamSource",
    "backoff_delay",
]

MINUTE = pd.Timedelta(minutes=1)
_CONTEXT = 4  # accepted closes kept per symbol for the spike rule's window
STREAM, POLLING, REST = "stream", "polling", "rest"
EventSink = Callable[[str, dict], None]


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """One symbol's bar for the minute starting at ``time`` (UTC, tz-aware)."""

    symbol: str
    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def values(self) -> tuple[float, float, float, float, float]:
        return (self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True)
class FeedOptions:
    """The feed's timing; seconds. ``stale_s`` must exceed ``cutoff_s``."""

    cutoff_s: float = 5.0        # after a minute's close: decide it without its missing symbols
    stale_s: float = 60.0        # no stream bar this long after bars were due: poll instead
    poll_delay_s: float = 2.0    # after a minute's close: poll for it (REST has it by then)
    poll_retry_s: float = 5.0    # after a failed poll
    reconnect_min_s: float = 1.0     # stream restart backoff: first delay, doubling ...
    reconnect_max_s: float = 60.0    # ... up to this; each delay jittered to [d/2, d]
    spike_band: float | None = 0.5   # the store's spike rule (None: off)

    def __post_init__(self) -> None:
        for name in ("cutoff_s", "stale_s", "poll_delay_s", "poll_retry_s", "reconnect_min_s",
                     "reconnect_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"feed option {name} must be a positive number of seconds, "
                                  f"not {value!r}")
        if self.stale_s <= self.cutoff_s:
            raise ConfigError(f"feed option stale_s ({self.stale_s:g}) must exceed cutoff_s "
                              f"({self.cutoff_s:g})")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError("feed option reconnect_max_s is below reconnect_min_s")


def backoff_delay(attempt: int, options: FeedOptions, rng: random.Random) -> float:
    """Seconds before stream restart number ``attempt`` (1, 2, ...): ``min_s * 2**(attempt-1)``
    capped at ``max_s``, then a uniform draw in ``[d/2, d]`` (equal jitter)."""
    d = min(options.reconnect_max_s, options.reconnect_min_s * 2 ** min(attempt - 1, 30))
    return d / 2 + rng.random() * d / 2


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
        self.symbols = _symbols(symbols)
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
                            f"{_iso(self.closes[-1])}: no minute left to feed at {_iso(now)}")
        self.next = self.first
        self._pending: dict[int, dict[str, np.ndarray]] = {}
        self._decided: dict[int, dict[str, np.ndarray]] = {}
        self._context: dict[str, list[tuple[int, np.ndarray]]] = {}  # last accepted bars
        self._spikes: dict[str, list[tuple[int, np.ndarray]]] = {}   # spike rejections since
        self.mode = STREAM
        self._confirmed = False      # a stream bar came since the last start/switch
        self._last_stream = now      # when the last stream bar came
        self._stream_minute = self.first - 1  # the latest minute the stream delivered
        self._poll_through = -1      # minutes up to here need a poll's word
        self._polled_through = -1    # a poll after their close covered minutes up to here
        self._poll_not_before = now
        self._attempt = 0
        self._restart_at: pd.Timestamp | None = None
        self.counts = {"duplicates": 0, "before_start": 0, "rejected": 0, "late": 0,
                       "corrected": 0, "empty": 0, "polls": 0, "poll_failures": 0}

    # -- input ------------------------------------------------------------------------------
    def add(self, bars: Iterable[MinuteBar], source: str, now) -> None:
        """File a batch of bars from ``source`` (``"stream"`` or ``"rest"``)."""
        now = _utc(now)
        fresh, known, seen = [], [], set()
        for bar in bars:
            i = self._place(bar, source)
            if i is None:
                continue
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
        """A poll for minutes ``first .. last`` (as :attr:`Step.poll` asked) answered ``bars``."""
        self.counts["polls"] += 1
        self.add(bars, REST, now)
        self._polled_through = max(self._polled_through, self._index[int(_utc(last).value)])

    def poll_failed(self, first: pd.Timestamp, last: pd.Timestamp, error: BaseException, now) -> None:
        now = _utc(now)
        self.counts["poll_failures"] += 1
        self._poll_not_before = now + pd.Timedelta(seconds=self.options.poll_retry_s)
        self._emit("poll_failed", {"first": _iso(first), "last": _iso(last),
                                   "error": f"{type(error).__name__}: {error}",
                                   "retry_at": _iso(self._poll_not_before)})

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
            self._emit("minute_empty", {"time": _iso(self.grid[i])})
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
            "source": POLLING, "at": _iso(now),
            "reason": f"no stream bar for {self.options.stale_s:g} s after bars were due "
                      f"(last at {_iso(self._last_stream)})",
            "from_minute": _iso(self.grid[self.next])})

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
            self._emit("feed_source", {"source": STREAM, "at": _iso(now),
                                       "reason": "stream bars flow again",
                                       "from_minute": _iso(self.grid[min(i + 1, len(self.grid) - 1)])})

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
        self._emit("bar_rejected", {"symbol": bar.symbol, "time": _iso(bar.time),
                                    "source": source, "reason": reason, **_values(bar.values)})

    def _file_fresh(self, items: list[tuple[int, MinuteBar]], source: str) -> None:
        """Bars for minutes not decided and not yet held: the full rules, spikes included.

        Each symbol's bars are judged after its context: its last four accepted closes
        before them and the spike-rejected run since (so the store's five-close window
        sees the history a stored series would give it)."""
        items = sorted(items, key=lambda x: (x[1].symbol, x[0]))
        first = {}
        for i, b in items:
            first.setdefault(b.symbol, i)
        extra = []
        for symbol, m0 in first.items():
            ctx = [c for c in self._context.get(symbol, []) if c[0] < m0][-_CONTEXT:]
            after = ctx[-1][0] if ctx else -1
            run = [c for c in self._spikes.get(symbol, []) if after < c[0] < m0]
            extra += [(self.grid[j], symbol, v) for j, v in sorted(ctx + run, key=lambda c: c[0])]
        frame = _long([(self.grid[i], b.symbol, b.values) for i, b in items], extra)
        checked = validate(frame, spike_band=self.options.spike_band)
        bad = checked.bad
        bad = bad[bad.index >= len(extra)]
        reasons = dict(zip((bad.index - len(extra)).tolist(), bad["reason"].tolist()))
        for k, (i, bar) in enumerate(items):
            reason = reasons.get(k)
            values = np.asarray(bar.values, float)
            if reason is None:
                self._pending.setdefault(i, {})[bar.symbol] = values
                self._accepted(bar.symbol, i, values)
            else:
                if reason == "spike":
                    kept = [c for c in self._spikes.get(bar.symbol, []) if c[0] != i]
                    self._spikes[bar.symbol] = sorted(kept + [(i, values)], key=lambda c: c[0])[-2:]
                self._reject(bar, source, reason)

    def _accepted(self, symbol: str, i: int, values: np.ndarray) -> None:
        """Context after an accepted bar: the rejected spikes before it that sit at its
        level (the start of a level shift) join the accepted closes; the others go."""
        band = self.options.spike_band
        close = values[FIELDS.index("close")]
        run = [c for c in self._spikes.pop(symbol, []) if c[0] < i]
        agree = [c for c in run if band is not None
                 and abs(c[1][FIELDS.index("close")] / close - 1) <= band]
        later = [c for c in self._spikes.get(symbol, []) if c[0] > i]
        if later:
            self._spikes[symbol] = later
        ctx = self._context.setdefault(symbol, [])
        ctx.extend(agree + [(i, values)])
        ctx.sort(key=lambda c: c[0])
        del ctx[:-_CONTEXT]

    def _file_known(self, items: list[tuple[int, MinuteBar]], source: str) -> None:
        """Bars for a decided minute, or a second bar for a held one: row rules only."""
        # each bar as its own series: the row rules only (no duplicate or order verdicts)
        frame = _long([(self.grid[i], str(k), b.values) for k, (i, b) in enumerate(items)], [])
        checked = validate(frame, spike_band=None)
        reasons = dict(zip(checked.bad.index.tolist(), checked.bad["reason"].tolist()))
        for k, (i, bar) in enumerate(items):
            if k in reasons:
                self._reject(bar, source, reasons[k])
                continue
            new = np.asarray(bar.values, float)
            decided = i < self.next
            held = (self._decided if decided else self._pending)[i].get(bar.symbol)
            data = {"symbol": bar.symbol, "time": _iso(self.grid[i]), "source": source,
                    **_values(bar.values)}
            if held is not None and np.array_equal(held, new):
                self.counts["duplicates"] += 1
            elif held is None:  # decided without it
                self.counts["late"] += 1
                self._emit("bar_late", data)
            else:
                self.counts["corrected"] += 1
                data.update({"applied": not decided, **_values(held, "was_")})
                if not decided:
                    self._pending[i][bar.symbol] = new
                self._emit("bar_corrected", data)


# -- the engine's feed ------------------------------------------------------------------------
class StreamSource(Protocol):
    def start(self, deliver: Callable[[list[MinuteBar]], None]) -> None: ...
    def restart(self) -> None: ...
    def stop(self) -> None: ...


class Poller(Protocol):
    def bars(self, symbols: Sequence[str], first: pd.Timestamp, last: pd.Timestamp) -> list[MinuteBar]: ...


class Inbox:
    """Batches from the stream's thread to the feed's: ``put`` anywhere, ``get`` waits."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def put(self, bars: list[MinuteBar]) -> None:
        self._queue.put(list(bars))

    def get(self, timeout: float) -> list[MinuteBar] | None:
        try:
            return self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def drain(self) -> list[MinuteBar]:
        out: list[MinuteBar] = []
        while True:
            try:
                out.extend(self._queue.get_nowait())
            except queue.Empty:
                return out


class LiveFeed:
    """Minute bars of one session from a stream source and a REST poller, as a ``Feed``.

    ``received`` on each row is ``perf_counter()`` when the feed decided the minute.
    ``history()`` is None: the session loads its warmup from the store. ``speed``: how
    much faster than real time ``clock`` runs (a replaying fake's scaled clock); the
    options' seconds are the clock's, waits are divided by it.
    """

    def __init__(self, symbols: Sequence[str], session, *, stream: StreamSource, poller: Poller,
                 clock: Clock, options: FeedOptions | None = None,
                 on_event: EventSink | None = None, rng: random.Random | None = None,
                 inbox: Any = None, perf: Callable[[], float] = time.perf_counter,
                 speed: float = 1.0) -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"the feed's clock speed must be a positive number, not {speed!r}")
        self.speed = float(speed)
        self.book = MinuteBook(symbols, session, clock.now(), options=options,
                               on_event=on_event, rng=rng)
        self.symbols = self.book.symbols
        self.timeframe = Timeframe.parse("1Min")
        self._stream, self._poller, self._clock = stream, poller, clock
        self._inbox = inbox if inbox is not None else Inbox()
        self._perf = perf

    def history(self) -> None:
        return None

    def __iter__(self) -> Iterator[BarRow]:
        book = self.book
        self._stream.start(self._inbox.put)
        try:
            while True:
                got = self._inbox.drain()
                if got:
                    book.add(got, STREAM, self._clock.now())
                step = book.tick(self._clock.now())
                for row in step.rows:
                    yield BarRow(row.time, row.symbols, row.values, self._perf())
                if step.done:
                    return
                if step.restart_stream:
                    self._stream.restart()
                if step.poll is not None:
                    self._poll(*step.poll)
                    continue
                wait = (step.wake - self._clock.now()).total_seconds() / self.speed
                got = self._inbox.get(wait)
                if got:
                    book.add(got, STREAM, self._clock.now())
        finally:
            self._stream.stop()
            close = getattr(self._poller, "close", None)
            if close is not None:
                close()

    def _poll(self, first: pd.Timestamp, last: pd.Timestamp) -> None:
        try:
            bars = self._poller.bars(self.symbols, first, last)
        except Exception as e:  # any failure: reported, retried; the minutes wait
            self.book.poll_failed(first, last, e, self._clock.now())
            return
        self.book.polled(first, last, bars, self._clock.now())


# -- helpers ----------------------------------------------------------------------------------
def _symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(symbols, str):
        symbols = symbols.split(",")
    names = tuple(dict.fromkeys(str(s).strip() for s in symbols if str(s).strip()))
    if not names:
        raise ConfigError("a live feed needs at least one symbol")
    for name in names:
        try:
            check_symbol(name)
        except DataError as e:
            raise ConfigError(str(e)) from None
    return names


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tz is None:
        raise ConfigError(f"the feed's clock gave a naive time {ts}: clocks are UTC-aware")
    return ts.tz_convert("UTC")


def _iso(ts) -> str:
    return pd.Timestamp(ts).isoformat()


def _values(values, prefix: str = "") -> dict:
    return {prefix + f: (None if not np.isfinite(v) else float(v))
            for f, v in zip(FIELDS, np.asarray(values, dtype=float))}


def _long(rows: list[tuple], extra: list[tuple]) -> pd.DataFrame:
    """Long bars for :func:`validate`: ``extra`` (ts, symbol, values) rows first, then ``rows``."""
    everything = list(extra) + list(rows)
    values = np.array([np.asarray(v, dtype=float) for _, _, v in everything]).reshape(-1, len(FIELDS))
    frame = pd.DataFrame(values, columns=list(FIELDS))
    frame.insert(0, "ts", pd.DatetimeIndex([t for t, _, _ in everything]).tz_convert("UTC").as_unit("ns"))
    frame.insert(0, "symbol", pd.Series([s for _, s, _ in everything], dtype="str"))
    return frame
