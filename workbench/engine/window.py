"""``RollingWindow``: the last ``capacity`` timestamps of bars for a fixed set of symbols.

The window is stored the way :class:`~workbench.data.bars.Bars` is: one wide float array
per field (open, high, low, close, volume), symbol-major, NaN where a symbol had no bar
at a timestamp. A row is one timestamp; a timestamp with no bar for any symbol is never a
row (the feed does not deliver it, and ``wb.data.load`` does not return it either), so
the window's rows are exactly the rows the vectorized backtest sees.

Storage: ``(fields, symbols, 2 * capacity)`` with the live rows in ``[start, end)``.
Appending writes one column; once ``capacity`` rows are held, the oldest is dropped by
moving ``start``. When ``end`` reaches the buffer's end, the live rows are copied to the
front (once every ``capacity`` appends: amortized one column per append). :meth:`bars`
returns read-only views of the live rows as ``Bars``, without copying: a strategy that
writes into its input gets an error ("assignment destination is read-only"), and the
engine's buffer is never corrupted.

The window is *anchored* while it holds every row it was given (nothing dropped yet):
then its rows are a prefix of the history, which is what makes engine and backtest agree
exactly (see :mod:`workbench.engine.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench.data.bars import FIELDS, Bars
from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError, DataError

__all__ = ["RollingWindow"]


class RollingWindow:
    """Wide bars of the last ``capacity`` timestamps for ``symbols`` (NaN: no bar)."""

    def __init__(self, symbols: Sequence[str], capacity: int,
                 timeframe: str | Timeframe | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"window capacity must be a positive int, got {capacity!r}")
        self.symbols = tuple(str(s) for s in symbols)
        if not self.symbols:
            raise ConfigError("the window needs at least one symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("the window's symbols must be distinct")
        self.capacity = capacity
        self.timeframe = Timeframe.parse(timeframe) if timeframe is not None else None
        self.columns = pd.Index(list(self.symbols), name="symbol")
        width = 2 * capacity
        # np.empty: pages never written are never touched, so a generous capacity is cheap
        self._buf = np.empty((len(FIELDS), len(self.symbols), width))
        self._times = np.empty(width, dtype=np.int64)
        self._start = 0
        self._end = 0
        self.dropped = 0  # rows dropped off the front so far

    def __len__(self) -> int:
        return self._end - self._start

    def __repr__(self) -> str:
        state = "anchored" if self.anchored else f"sliding ({self.dropped} dropped)"
        return (f"<RollingWindow {len(self)}/{self.capacity} rows x {len(self.symbols)} "
                f"symbols, {state}>")

    @property
    def anchored(self) -> bool:
        """True while no row has been dropped: the window is a prefix of its history."""
        return self.dropped == 0

    @property
    def last_time(self) -> pd.Timestamp | None:
        """Open time of the newest row, or None when empty."""
        if not len(self):
            return None
        return pd.Timestamp(int(self._times[self._end - 1]), unit="ns", tz="UTC")

    # -- writing ------------------------------------------------------------------------
    def append(self, time_ns: int, values: np.ndarray) -> None:
        """Add one timestamp: ``values`` is ``(fields, symbols)`` in ``FIELDS`` order."""
        if values.shape != self._buf.shape[:2]:
            raise DataError(f"window: values have shape {values.shape}, need {self._buf.shape[:2]}")
        self._check_time(time_ns)
        if self._end == self._times.size:
            self._compact()
        self._buf[:, :, self._end] = values
        self._times[self._end] = time_ns
        self._end += 1
        if self._end - self._start > self.capacity:
            self._start += 1
            self.dropped += 1

    def extend(self, times_ns: np.ndarray, values: np.ndarray) -> None:
        """Add many timestamps at once: ``values`` is ``(fields, symbols, n)``."""
        times_ns = np.asarray(times_ns, dtype=np.int64)
        if values.shape != (len(FIELDS), len(self.symbols), times_ns.size):
            raise DataError(f"window: values have shape {values.shape}, need "
                            f"{(len(FIELDS), len(self.symbols), times_ns.size)}")
        if times_ns.size == 0:
            return
        if np.any(np.diff(times_ns) <= 0):
            raise DataError("window: bar times must be strictly increasing")
        self._check_time(int(times_ns[0]))
        new_keep = min(times_ns.size, self.capacity)
        old_keep = min(len(self), self.capacity - new_keep)
        self.dropped += len(self) + times_ns.size - old_keep - new_keep
        old, new = slice(self._end - old_keep, self._end), slice(times_ns.size - new_keep, None)
        buf = np.concatenate([self._buf[:, :, old], values[:, :, new]], axis=2)
        times = np.concatenate([self._times[old], times_ns[new]])
        self._buf[:, :, : times.size] = buf
        self._times[: times.size] = times
        self._start, self._end = 0, times.size

    def _check_time(self, time_ns: int) -> None:
        if len(self) and time_ns <= self._times[self._end - 1]:
            raise DataError(
                f"window: bar at {pd.Timestamp(time_ns, unit='ns', tz='UTC')} is not after the "
                f"last one ({self.last_time}); a feed delivers timestamps in increasing order"
            )

    def _compact(self) -> None:
        n = len(self)  # <= capacity, and start >= capacity: source and target do not overlap
        self._buf[:, :, :n] = self._buf[:, :, self._start : self._end]
        self._times[:n] = self._times[self._start : self._end]
        self._start, self._end = 0, n

    # -- reading ------------------------------------------------------------------------
    def index(self, rows: int | None = None) -> pd.DatetimeIndex:
        """The rows' bar open times (UTC), of the last ``rows`` rows."""
        start = self._start if rows is None else max(self._start, self._end - rows)
        stamps = self._times[start : self._end].view("datetime64[ns]")
        return pd.DatetimeIndex(stamps, name="ts").tz_localize("UTC")

    def field(self, name: str, rows: int | None = None) -> np.ndarray:
        """A read-only ``(symbols, rows)`` view of one field (its last ``rows`` rows)."""
        start = self._start if rows is None else max(self._start, self._end - rows)
        view = self._buf[FIELDS.index(name), :, start : self._end]
        view.flags.writeable = False
        return view

    def bars(self, rows: int | None = None) -> Bars:
        """The window (its last ``rows`` rows) as ``Bars`` (read-only views: no copy)."""
        index = self.index(rows)
        frames = {
            name: pd.DataFrame(self.field(name, rows).T, index=index, columns=self.columns,
                               copy=False)
            for name in FIELDS
        }
        return Bars(**frames, timeframe=self.timeframe)

    def present(self) -> np.ndarray:
        """Bars each symbol has in the window (rows with a close)."""
        return np.count_nonzero(~np.isnan(self.field("close")), axis=1)
