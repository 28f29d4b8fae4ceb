"""Feeds: where the engine's bars come from, one timestamp at a time.

A :class:`Feed` yields :class:`BarRow` objects in increasing time order; a row holds every
symbol's bar of one timestamp (NaN for a symbol without a bar then), the same layout as
one row of :class:`~workbench.data.bars.Bars`. A feed may also offer ``history()``: bars
before its first row, which the engine loads into its window (no signals) so that a
session does not spend its first ``warmup`` bars waiting.

:class:`ReplayFeed` replays stored bars (``ReplayFeed.from_store``) or any ``Bars``. It
stamps each row with ``time.perf_counter()`` as it hands it over: the row's arrival, from
which the engine measures its decision latency. A live feed (Alpaca stream) does the same
when the last bar of a timestamp arrives.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.data import calendar
from workbench.data.bars import FIELDS, Bars
from workbench.data.store import Store
from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError, DataError
from workbench.times import bound, ny_date, ny_midnight, to_utc

__all__ = ["BarRow", "Feed", "ReplayFeed", "bar_close", "load_sessions"]


@dataclass(frozen=True, slots=True, eq=False)
class BarRow:
    """Every symbol's bar at one timestamp.

    ``values`` is ``(len(FIELDS), len(symbols))``: open, high, low, close, volume, NaN where
    a symbol has no bar. ``received`` is ``time.perf_counter()`` when the row arrived (None:
    the engine takes its own arrival time).
    """

    time: pd.Timestamp
    symbols: tuple[str, ...]
    values: np.ndarray
    received: float | None = None

    def __post_init__(self) -> None:
        if self.values.shape != (len(FIELDS), len(self.symbols)):
            raise DataError(f"BarRow at {self.time}: values have shape {self.values.shape}, "
                            f"need {(len(FIELDS), len(self.symbols))}")

    @classmethod
    def from_mapping(cls, time_, symbols: Sequence[str],
                     bars: Mapping[str, Sequence[float]], received: float | None = None) -> BarRow:
        """From ``{symbol: (open, high, low, close, volume)}`` (a live feed's shape)."""
        symbols = tuple(symbols)
        position = {s: i for i, s in enumerate(symbols)}
        values = np.full((len(FIELDS), len(symbols)), np.nan)
        for symbol, bar in bars.items():
            if symbol not in position:
                raise DataError(f"BarRow: a bar for {symbol!r}, not one of the row's symbols")
            values[:, position[symbol]] = bar
        return cls(to_utc(time_), symbols, values, received)

    def field(self, name: str) -> np.ndarray:
        return self.values[FIELDS.index(name)]

    @property
    def close(self) -> np.ndarray:
        return self.values[FIELDS.index("close")]

    @property
    def present(self) -> np.ndarray:
        """Which symbols have a bar at this timestamp."""
        return ~np.isnan(self.close)


@runtime_checkable
class Feed(Protocol):
    """A source of bars, one timestamp at a time, in increasing time order."""

    symbols: tuple[str, ...]
    timeframe: Timeframe | None

    def history(self) -> Bars | None:
        """Bars before the first row, to fill the engine's window (None: none)."""
        ...

    def __iter__(self) -> Iterator[BarRow]:
        ...


class ReplayFeed:
    """Stored bars replayed row by row; bars before ``start`` are the feed's history
    (``start`` by the one date rule: a bare date is that New York day's midnight)."""

    def __init__(self, bars: Bars, start=None) -> None:
        if not isinstance(bars, Bars):
            raise DataError(f"ReplayFeed needs wb.Bars, got {type(bars).__name__}")
        self.symbols = tuple(bars.symbols)
        self.timeframe = bars.timeframe
        first = 0 if start is None else int(bars.index.searchsorted(bound(start, "start", error=ConfigError)))
        self._history = bars.iloc(slice(0, first)) if first else None
        self.replayed = bars.iloc(slice(first, None))
        self._arrays = [getattr(self.replayed, f).to_numpy(dtype=float) for f in FIELDS]

    @classmethod
    def from_store(cls, days: int, symbols=None, timeframe: str | Timeframe = "1Min", *,
                   end=None, history_days: int = 0, store: Store | None = None) -> ReplayFeed:
        """The last ``days`` stored sessions up to ``end``; ``history_days`` sessions
        before them are the feed's history."""
        bars = load_sessions(days + history_days, symbols, timeframe, end=end, store=store)
        start = None
        if history_days:
            start = ny_midnight(calendar.last_sessions(days, ny_date(bars.index[-1]))[0])
        return cls(bars, start=start)

    def __len__(self) -> int:
        return len(self.replayed)

    def __repr__(self) -> str:
        hist = len(self._history) if self._history is not None else 0
        return (f"<ReplayFeed {len(self)} timestamps x {len(self.symbols)} symbols, "
                f"{hist} history rows>")

    def history(self) -> Bars | None:
        return self._history

    def __iter__(self) -> Iterator[BarRow]:
        index, symbols, arrays = self.replayed.index, self.symbols, self._arrays
        for t in range(len(index)):
            values = np.empty((len(FIELDS), len(symbols)))
            for k, array in enumerate(arrays):
                values[k] = array[t]
            yield BarRow(index[t], symbols, values, time.perf_counter())


def load_sessions(days: int, symbols=None, timeframe: str | Timeframe = "1Min", *,
                  end=None, store: Store | None = None) -> Bars:
    """The last ``days`` NYSE sessions of stored bars, ending at ``end`` (a date; None: the
    last session the store holds for these symbols)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"days must be a positive int, got {days!r}")
    store = store or Store()
    tf = Timeframe.parse(timeframe)
    last = ny_date(_last_stored(store, tf, symbols)) if end is None else pd.Timestamp(end)
    sessions = calendar.last_sessions(days, last)
    day = "%Y-%m-%d"
    return store.load(symbols, tf, start=sessions[0].strftime(day), end=sessions[-1].strftime(day))


def _last_stored(store: Store, tf: Timeframe, symbols) -> pd.Timestamp:
    listing = store.ls()
    listing = listing[listing["timeframe"] == str(tf)]
    if symbols is not None:
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        listing = listing[listing["symbol"].isin(wanted)]
    if listing.empty:
        raise DataError(f"the store at {store.root} holds no {tf} bars for these symbols; "
                        "try `workbench data synth`")
    return pd.Timestamp(listing["last"].max())


def bar_close(open_time: pd.Timestamp, timeframe: Timeframe | None) -> pd.Timestamp:
    """When a bar ends: its open plus the timeframe, cut at the session's close (a daily
    bar ends at its session's close). Without a timeframe, the open time itself."""
    if timeframe is None:
        return open_time
    end = open_time + timeframe.delta
    close = _session_close(ny_date(open_time))
    if close is None:
        return end
    return min(end, close) if timeframe.is_intraday else close


@functools.lru_cache(maxsize=64)
def _session_close(date: pd.Timestamp) -> pd.Timestamp | None:
    try:
        return calendar.session_close(date)
    except DataError:  # not a session (bars outside the calendar): no cut
        return None
