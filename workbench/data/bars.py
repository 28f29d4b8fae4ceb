"""``Bars``: wide OHLCV, one time x symbol DataFrame per field, UTC index.

This is the shape every strategy, indicator and backtest works on: ``bars.close`` is a
DataFrame whose index is the bar open time (UTC) and whose columns are symbols. A symbol
with no bar at a timestamp holds NaN there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data.timeframe import Timeframe
from workbench.errors import DataError
from workbench.times import bounds

__all__ = ["FIELDS", "Bars", "pivot_arrays"]

FIELDS = ("open", "high", "low", "close", "volume")


def _utc_index(index: pd.Index, what: str) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(index)
        except (TypeError, ValueError) as e:
            raise DataError(f"{what}: the index must hold timestamps") from e
    if index.tz is None:
        raise DataError(f"{what}: the index is timezone-naive; localize it (bars are UTC)")
    return index.tz_convert("UTC").as_unit("ns")


def _dense_codes(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``ts`` (int64) and each element's position among them.

    When the timestamps sit on a regular grid (bars always do) this is a linear-time
    bucket pass instead of a sort.
    """
    if ts.size == 0:
        return ts.copy(), ts.astype(np.intp)
    lo, hi = int(ts.min()), int(ts.max())
    offsets = ts - lo
    step = int(np.gcd.reduce(offsets[: min(offsets.size, 4096)])) or 1
    if step > 1 and (hi - lo) // step < 8 * ts.size + 1024:
        slot, rest = np.divmod(offsets, step)
        if not rest.any():
            present = np.zeros((hi - lo) // step + 1, dtype=bool)
            present[slot] = True
            rank = np.cumsum(present, dtype=np.int64) - 1
            uniq = lo + np.flatnonzero(present).astype(np.int64) * step
            return uniq, rank[slot]
    return np.unique(ts, return_inverse=True)


def pivot_arrays(
    ts_ns: np.ndarray,
    symbol_codes: np.ndarray,
    symbols: Iterable[str],
    columns: Mapping[str, np.ndarray],
) -> dict[str, pd.DataFrame]:
    """Scatter long arrays (one row per symbol and time) into wide float frames.

    The frames are stored symbol-major (each symbol's column is contiguous), which is
    what column-wise indicators read, and which makes this scatter sequential for input
    grouped by symbol.
    """
    symbols = list(symbols)
    uniq, t_idx = _dense_codes(np.asarray(ts_ns, dtype=np.int64))
    n_t, n_s = uniq.size, len(symbols)
    flat = np.asarray(symbol_codes, dtype=np.int64) * n_t + t_idx
    index = pd.DatetimeIndex(uniq.view("datetime64[ns]"), name="ts").tz_localize("UTC")
    cols = pd.Index(symbols, name="symbol")
    block = np.full((len(columns), n_s * n_t), np.nan)  # one allocation for every field
    out = {}
    for row, (name, values) in zip(block, columns.items()):
        _scatter(row, flat, values)
        out[name] = pd.DataFrame(row.reshape(n_s, n_t).T, index=index, columns=cols, copy=False)
    return out


def _scatter(target: np.ndarray, flat: np.ndarray, values) -> None:
    """``target[flat] = values``; an Arrow ChunkedArray is scattered chunk by chunk (no concat)."""
    chunks = getattr(values, "chunks", None)
    if chunks is None:
        target[flat] = values
        return
    start = 0
    for chunk in chunks:
        stop = start + len(chunk)
        target[flat[start:stop]] = chunk.to_numpy(zero_copy_only=False)
        start = stop


@dataclass(frozen=True, eq=False)
class Bars:
    """Wide OHLCV bars. Build with :meth:`from_long`, :meth:`from_wide` or ``wb.data.load``."""

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    timeframe: Timeframe | None = None

    def __post_init__(self) -> None:
        ref = self.close
        for name in FIELDS:
            frame = getattr(self, name)
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"Bars.{name} must be a DataFrame, got {type(frame).__name__}")
            if not frame.index.equals(ref.index) or not frame.columns.equals(ref.columns):
                raise DataError(f"Bars.{name} is not aligned with Bars.close (index and columns)")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_long(cls, df: pd.DataFrame, timeframe: str | Timeframe | None = None) -> Bars:
        """From one row per (symbol, ts): columns ``symbol``, ``ts`` (or ``timestamp``), OHLCV."""
        lower = {str(c).lower(): c for c in df.columns}
        ts_col = lower.get("ts", lower.get("timestamp"))
        missing = [f for f in ("symbol", *FIELDS) if f not in lower]
        if ts_col is None or missing:
            need = ", ".join(["ts"] * (ts_col is None) + missing)
            raise DataError(f"Bars.from_long: missing column(s): {need}")
        ts = pd.DatetimeIndex(df[ts_col])
        if ts.tz is None:
            raise DataError("Bars.from_long: timestamps are timezone-naive; localize them first")
        ts_ns = ts.tz_convert("UTC").as_unit("ns").asi8
        codes, symbols = pd.factorize(df[lower["symbol"]].astype(str), sort=True)
        dup = pd.DataFrame({"t": ts_ns, "s": codes}).duplicated()
        if dup.any():
            raise DataError(
                f"Bars.from_long: {int(dup.sum())} duplicate (symbol, ts) rows; "
                "validate the bars first"
            )
        frames = pivot_arrays(
            ts_ns, codes, symbols, {f: df[lower[f]].to_numpy(dtype=float) for f in FIELDS}
        )
        tf = Timeframe.parse(timeframe) if timeframe is not None else None
        return cls(**frames, timeframe=tf)

    @classmethod
    def from_wide(
        cls,
        close: pd.DataFrame,
        open: pd.DataFrame | None = None,
        high: pd.DataFrame | None = None,
        low: pd.DataFrame | None = None,
        volume: pd.DataFrame | None = None,
        timeframe: str | Timeframe | None = None,
    ) -> Bars:
        """From wide frames; missing open/high/low default to close, missing volume to NaN."""
        if isinstance(close, pd.Series):
            close = close.to_frame()
        index = _utc_index(close.index, "Bars.from_wide")
        close = close.set_axis(index, axis=0).astype(float)
        close.index.name, close.columns.name = "ts", "symbol"

        def conform(frame: pd.DataFrame | None, name: str, default: pd.DataFrame) -> pd.DataFrame:
            if frame is None:
                return default.copy()
            if isinstance(frame, pd.Series):
                frame = frame.to_frame(close.columns[0] if close.shape[1] == 1 else None)
            frame = frame.set_axis(_utc_index(frame.index, f"Bars.from_wide({name})"), axis=0)
            if not frame.index.equals(close.index) or not frame.columns.equals(close.columns):
                raise DataError(f"Bars.from_wide: {name} is not aligned with close")
            frame = frame.astype(float)
            frame.index.name, frame.columns.name = "ts", "symbol"
            return frame

        nan = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
        tf = Timeframe.parse(timeframe) if timeframe is not None else None
        return cls(
            open=conform(open, "open", close),
            high=conform(high, "high", close),
            low=conform(low, "low", close),
            close=close,
            volume=conform(volume, "volume", nan),
            timeframe=tf,
        )

    # -- views --------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return [str(s) for s in self.close.columns]

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.close.index  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    def __len__(self) -> int:
        return len(self.close)

    def _map(self, fn) -> Bars:
        return Bars(**{f: fn(getattr(self, f)) for f in FIELDS}, timeframe=self.timeframe)

    def select(self, symbols: str | Iterable[str]) -> Bars:
        """The same bars for a subset of symbols."""
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        unknown = [s for s in wanted if s not in self.close.columns]
        if unknown:
            raise DataError(f"Bars.select: unknown symbol(s) {unknown}; have {self.symbols[:10]}")
        return self._map(lambda f: f[wanted])

    def between(self, start=None, end=None) -> Bars:
        """Bars with ``start <= ts <= end``, by the one date rule (:func:`workbench.times.bound`):
        a bare date is a New York trading day and the end day is included whole, so
        ``between("2026-11-23", "2026-11-23")`` is that day; a time without a zone is UTC."""
        lo, hi = bounds(start, end, error=DataError)
        return self._map(lambda f: f.loc[lo:hi])

    def iloc(self, rows) -> Bars:
        """Positional row selection, e.g. ``bars.iloc(slice(-100, None))``."""
        return self._map(lambda f: f.iloc[rows])

    def tail(self, n: int) -> Bars:
        return self.iloc(slice(-n, None) if n else slice(0, 0))

    def dropna(self) -> Bars:
        """Drop timestamps where every symbol lacks a close."""
        keep = self.close.notna().any(axis=1)
        return self._map(lambda f: f.loc[keep])

    def to_long(self) -> pd.DataFrame:
        """One row per (symbol, ts) with a bar; columns ``symbol, ts`` and OHLCV."""
        stacked = {f: getattr(self, f).stack(future_stack=True) for f in FIELDS}
        out = pd.DataFrame(stacked)
        out = out[out["close"].notna()].reset_index()
        return out[["symbol", "ts", *FIELDS]].sort_values(["symbol", "ts"], ignore_index=True)

    def __repr__(self) -> str:
        if len(self) == 0:
            span = "empty"
        else:
            span = f"{self.index[0]} .. {self.index[-1]}"
        tf = f" {self.timeframe}" if self.timeframe else ""
        syms = ", ".join(self.symbols[:5]) + (", ..." if len(self.symbols) > 5 else "")
        return f"<Bars{tf}: {len(self)} times x {len(self.symbols)} symbols [{syms}], {span}>"

    def _repr_html_(self) -> str:
        head = repr(self).replace("<", "&lt;").replace(">", "&gt;")
        return f"<p><code>{head}</code></p>" + self.close.tail(5)._repr_html_()
