"""A live session's bars above the minute: the feed's minute rows into the timeframe's bars
by the store's rule.

    builder = BarBuilder(["AAPL", "MSFT"], "2026-12-02", "5Min")
    builder.seed(rest_minutes)                 # the current bar's minutes closed before the start
    for row in minute_rows:
        for bar in builder.add(row): ...       # a 5Min row once its last minute is in
    for bar in builder.through(next_minute): ...   # every minute before it decided

A bar is the store's (:func:`workbench.data.aggregate.aggregate_minutes`, the one function
the store, the backtest and a replayed session aggregate with): on the NYSE bar grid of
the session (:func:`workbench.data.calendar.bar_grid`: from the open in steps of the
timeframe, the last one cut at the close, 13:00 on early closes; ``1Day``: the whole
session, stamped at New York midnight), first open, highest high, lowest low, last close,
summed volume of the minutes that traded in it; a symbol with no traded minute in it has
no bar (NaN), a bar no symbol traded in is not handed out (a stored day has no row for it).

A bar is complete, and handed out, when its last minute's row arrives or when every minute
of its interval has been decided (:meth:`through`: the feed decided its last minutes empty,
or a later minute came); a bar with missing minutes is the aggregate of those that came,
as the store makes it from the same minutes. Minutes come in time order (the minute
book's); one before the bar being built is refused (``DataError``), never folded in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from workbench.data import calendar
from workbench.data.aggregate import aggregate_minutes
from workbench.data.bars import FIELDS, Bars
from workbench.data.timeframe import Timeframe
from workbench.engine.feed import BarRow
from workbench.errors import ConfigError, DataError

__all__ = ["BarBuilder"]

MINUTE = pd.Timedelta(minutes=1)


class BarBuilder:
    """One session's minute rows (``BarRow``, every symbol, time order) into its
    ``timeframe`` bars (see the module doc)."""

    def __init__(self, symbols: Sequence[str], session, timeframe,
                 perf: Callable[[], float] = time.perf_counter) -> None:
        self.timeframe = Timeframe.parse(timeframe)
        if self.timeframe.seconds == 60:
            raise ConfigError("BarBuilder builds bars above the minute; 1Min rows are the feed's")
        self.symbols = tuple(symbols)
        day = pd.Timestamp(session).normalize()
        table = calendar.sessions(day, day)
        if table.empty:
            raise DataError(f"{day.date()} is not an NYSE session (weekend or holiday)")
        self.grid = calendar.bar_grid(table, self.timeframe)[0]
        close = pd.Timestamp(table["close"].iloc[0]).tz_convert("UTC")
        self.open = pd.Timestamp(table["open"].iloc[0]).tz_convert("UTC")
        #: when each bar ends: the next bar's open, the last cut at the close
        self.ends = self.grid[1:].append(pd.DatetimeIndex([close])) \
            if self.timeframe.is_intraday else pd.DatetimeIndex([close])
        self._perf = perf
        self._bar: int | None = None       # the bar being built
        self._minutes: list[np.ndarray] = []
        self._last: pd.Timestamp | None = None  # the last minute taken

    def bar_of(self, minute: pd.Timestamp) -> int:
        """The index of the bar ``minute`` (a session minute's open time) belongs to."""
        minute = pd.Timestamp(minute)
        k = int(self.grid.searchsorted(minute, side="right")) - 1
        if k < 0 or minute < self.open or minute >= self.ends[-1]:
            raise DataError(f"minute {minute.isoformat()} is outside the session of "
                            f"{self.ends[-1].tz_convert(calendar.NY).date()}")
        return k

    def bar_start(self, minute: pd.Timestamp) -> pd.Timestamp:
        """The open time of the bar ``minute`` falls in (stamped as the store stamps it)."""
        return self.grid[self.bar_of(minute)]

    @property
    def pending(self) -> pd.Timestamp | None:
        """The open time of the bar being built (None: none)."""
        return None if self._bar is None else self.grid[self._bar]

    def seed(self, minutes: Bars) -> None:
        """The minutes of the bar in progress that closed before the feed's first one (a
        start or restart mid-bar, read from REST); none of them may complete a bar."""
        if not len(minutes):
            return
        extra = set(minutes.symbols) - set(self.symbols)
        if extra:
            raise DataError(f"BarBuilder.seed: minutes of symbols not in the session: "
                            f"{sorted(extra)}")
        columns = list(self.symbols)
        arrays = np.stack([getattr(minutes, f).reindex(columns=columns).to_numpy(dtype=float)
                           for f in FIELDS])
        for t, time_ in enumerate(minutes.index):
            done = self.add(BarRow(time_, self.symbols, arrays[:, t, :].copy()))
            if done:
                raise DataError(f"seed minutes complete the bar of {done[0].time.isoformat()}: "
                                "a seed holds the minutes of the bar in progress only")

    def add(self, row: BarRow) -> list[BarRow]:
        """One decided minute: the bars it completes (the one before it, when it opens a
        new bar; its own, when it is its bar's last minute)."""
        if row.symbols != self.symbols:
            raise DataError("BarBuilder: a row of other symbols than the session's")
        k = self.bar_of(row.time)
        if self._last is not None and row.time <= self._last:
            raise DataError(f"minute {row.time.isoformat()} after {self._last.isoformat()}: "
                            "minutes come once, in time order")
        out = []
        if self._bar is not None and k != self._bar:
            out += self._emit(row.received)
        self._bar, self._last = k, row.time
        self._minutes.append(row.values)
        if row.time + MINUTE >= self.ends[k]:
            out += self._emit(row.received)
        return out

    def through(self, decided_before: pd.Timestamp) -> list[BarRow]:
        """Every minute before ``decided_before`` is decided (the feed's next undecided
        minute, or the close): the bar being built, once its interval is over."""
        if self._bar is not None and self.ends[self._bar] <= decided_before:
            return self._emit(None)
        return []

    def _emit(self, received: float | None) -> list[BarRow]:
        k, minutes = self._bar, self._minutes
        self._bar, self._minutes = None, []
        if k is None or not minutes:
            return []
        values = aggregate_block(np.stack(minutes, axis=1))
        if np.isnan(values[FIELDS.index("close")]).all():
            return []
        return [BarRow(self.grid[k], self.symbols, values,
                       received if received is not None else self._perf())]


def aggregate_block(minutes: np.ndarray) -> np.ndarray:
    """``minutes`` ``(fields, minutes, symbols)`` (NaN: no trade) into one bar per symbol
    ``(fields, symbols)`` by :func:`aggregate_minutes` (each symbol's traded minutes as one
    bar, all symbols in one call)."""
    _, m, n = minutes.shape
    close = minutes[FIELDS.index("close")]
    traded = ~np.isnan(close.T.ravel())  # symbol-major
    bar_id = np.repeat(np.arange(n), m)[traded]
    fields = {f: minutes[i].T.ravel()[traded] for i, f in enumerate(FIELDS)}
    got = aggregate_minutes(fields, bar_id, np.arange(n))
    out = np.full((len(FIELDS), n), np.nan)
    for i, f in enumerate(FIELDS):
        out[i, got["ts"]] = got[f]
    return out

