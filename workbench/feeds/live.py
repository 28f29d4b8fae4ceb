"""The engine's live :class:`~workbench.engine.feed.Feed`: a minute book driven by a
stream source and a REST poller.

:class:`LiveFeed` starts the stream source (anything with ``start(deliver)``,
``restart()``, ``stop()``; ``deliver`` may be called from any thread), files what it
delivers into a :class:`~workbench.feeds.minutes.MinuteBook`, runs the polls the book asks
for through the poller (``bars(symbols, first, last)``), restarts the stream when the book
says so, sleeps on its inbox until the book's next deadline, and stops after the session's
last minute (half days included). With a ``timeframe`` above the minute it hands out
that timeframe's bars instead, built from its minutes by the store's rule
(:class:`~workbench.feeds.timeframes.BarBuilder`). No network here: the Alpaca sources are in
:mod:`workbench.feeds.alpaca_stream` and :mod:`workbench.feeds.alpaca_poll`.
"""

from __future__ import annotations

import math
import queue
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import pandas as pd

from workbench.clock import Clock
from workbench.data.timeframe import Timeframe
from workbench.engine.feed import BarRow
from workbench.errors import ConfigError
from workbench.feeds.minutes import STREAM, EventSink, MinuteBook
from workbench.feeds.options import FeedOptions, MinuteBar
from workbench.feeds.timeframes import BarBuilder

__all__ = ["Inbox", "LiveFeed", "Poller", "StreamSource"]


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

    ``received`` on each row is ``perf_counter()`` when the feed decided the minute (above
    the minute: the minute, or the moment, that completed the bar). ``timeframe``: the
    rows' timeframe (1Min: the minutes; 5Min ... 1Day: bars of the decided minutes, each
    handed out once complete; :meth:`seed` gives the bar in progress its minutes closed
    before the feed's first one).
    ``history()`` is None: the session loads its warmup from the store. ``speed``: how
    much faster than real time ``clock`` runs (a replaying fake's scaled clock); the
    options' seconds are the clock's, waits are divided by it.
    """

    def __init__(self, symbols: Sequence[str], session, *, stream: StreamSource, poller: Poller,
                 clock: Clock, options: FeedOptions | None = None,
                 on_event: EventSink | None = None, rng: random.Random | None = None,
                 inbox: Any = None, perf: Callable[[], float] = time.perf_counter,
                 speed: float = 1.0, timeframe="1Min") -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"the feed's clock speed must be a positive number, not {speed!r}")
        self.speed = float(speed)
        self.book = MinuteBook(symbols, session, clock.now(), options=options,
                               on_event=on_event, rng=rng)
        self.symbols = self.book.symbols
        self.timeframe = Timeframe.parse(timeframe)
        self._builder = (BarBuilder(self.symbols, session, self.timeframe, perf)
                         if self.timeframe.seconds > 60 else None)
        self._stream, self._poller, self._clock = stream, poller, clock
        self._inbox = inbox if inbox is not None else Inbox()
        self._perf = perf

    def history(self) -> None:
        return None

    @property
    def first_minute(self) -> pd.Timestamp:
        """The first minute the feed decides (the one in progress when it was made)."""
        return self.book.grid[self.book.first]

    @property
    def row_times(self) -> pd.DatetimeIndex:
        """The open time of every row the session can have (minutes, or the bar grid)."""
        return self.book.grid if self._builder is None else self._builder.grid

    def bar_start(self, minute: pd.Timestamp) -> pd.Timestamp:
        """The open time of the feed's row ``minute`` falls in (itself at 1Min)."""
        return minute if self._builder is None else self._builder.bar_start(minute)

    def seed(self, minutes) -> None:
        """The minutes (``wb.Bars``, 1Min) of the bar in progress at the feed's first
        minute that closed before it; at 1Min there is no such bar (refused if given)."""
        if self._builder is None:
            if len(minutes):
                raise ConfigError("a 1Min feed has no bar in progress to seed")
            return
        self._builder.seed(minutes)

    def _rows(self, step) -> Iterator[BarRow]:
        builder = self._builder
        for row in step.rows:
            row = BarRow(row.time, row.symbols, row.values, self._perf())
            if builder is None:
                yield row
            else:
                yield from builder.add(row)
        if builder is not None:
            book = self.book
            decided = book.grid[book.next] if book.next < len(book.grid) else book.closes[-1]
            yield from builder.through(decided)

    def __iter__(self) -> Iterator[BarRow]:
        book = self.book
        self._stream.start(self._inbox.put)
        try:
            while True:
                got = self._inbox.drain()
                if got:
                    book.add(got, STREAM, self._clock.now())
                step = book.tick(self._clock.now())
                yield from self._rows(step)
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
        except Exception as e:  # noqa: BLE001 - reported, retried; the minutes wait
            self.book.poll_failed(first, last, e, self._clock.now())
            return
        self.book.polled(first, last, bars, self._clock.now())
