"""``Signals``: what a strategy returns, checked against the bars it was computed from.

Either boolean ``entries``/``exits`` frames (and optionally ``short_entries``/
``short_exits``), or a float ``weights`` frame of target weights per symbol (NaN: keep the
current position). Frames have the bars' index and columns exactly.

With entries, the strategy may also give its stops: ``sl_stop``/``tp_stop`` as a number or
a float frame per bar and symbol (fractions of the entry fill price; NaN: no stop for an
entry on that bar), e.g. an ATR stop::

    return wb.Signals(entries=..., exits=..., sl_stop=2 * atr / bars.close)

An entry keeps the value of its signal bar until the position closes (see
``workbench.backtesting.simulation``); the session places it as the broker-side stop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from workbench.data.bars import Bars
from workbench.errors import StrategyError

__all__ = ["STOP_FIELDS", "Signals", "checked_stop", "symbol_bars"]

_BOOL_FIELDS = ("entries", "exits", "short_entries", "short_exits")
STOP_FIELDS = ("sl_stop", "tp_stop")


@dataclass(frozen=True, eq=False)
class Signals:
    entries: pd.DataFrame | None = None
    exits: pd.DataFrame | None = None
    short_entries: pd.DataFrame | None = None
    short_exits: pd.DataFrame | None = None
    weights: pd.DataFrame | None = None
    sl_stop: pd.DataFrame | float | None = None
    tp_stop: pd.DataFrame | float | None = None

    @property
    def kind(self) -> str:
        """``"signals"`` (entries/exits) or ``"weights"``."""
        return "weights" if self.weights is not None else "signals"

    @property
    def has_shorts(self) -> bool:
        return self.short_entries is not None or self.short_exits is not None

    def frames(self) -> dict[str, pd.DataFrame]:
        """The signal frames given (not the stops: :meth:`stops`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in STOP_FIELDS and getattr(self, f.name) is not None}

    def stops(self) -> dict[str, pd.DataFrame | float]:
        """The stops the strategy gave: name -> a number or a frame per bar and symbol."""
        return {n: getattr(self, n) for n in STOP_FIELDS if getattr(self, n) is not None}

    def checked(self, bars: Bars, strategy: str = "strategy") -> Signals:
        """These signals, conformed to ``bars`` (Series of a one-symbol universe become frames,
        missing exits become all-False), or a ``StrategyError`` naming what is wrong."""
        given = self.frames()
        if not given:
            raise StrategyError(f"{strategy} returned empty Signals: give entries/exits or weights")
        if self.weights is not None and any(k in given for k in _BOOL_FIELDS):
            raise StrategyError(f"{strategy} returned both weights and entries/exits: choose one")
        if self.weights is None and self.entries is None and self.short_entries is None:
            raise StrategyError(f"{strategy} returned exits without entries")
        out = {name: _conform(frame, name, bars, strategy) for name, frame in given.items()}
        stops = self.stops()
        if stops and self.weights is not None:
            raise StrategyError(f"{strategy} returned stops with target weights: stops need "
                                "entries/exits")
        out.update({name: checked_stop(value, name, bars, strategy) for name, value in stops.items()})
        if self.weights is None:
            for name in ("entries", "exits"):
                if name not in out:  # (built only when missing: a full frame per call)
                    out[name] = _false_like(bars)
        return replace(Signals(), **out)

    def masked_before(self, n: int) -> Signals:
        """The same signals with the first ``n`` rows cleared (warmup): False, or NaN weights."""
        if n <= 0:
            return self
        out = {}
        for name, frame in self.frames().items():
            frame = frame.copy()
            frame.iloc[:n] = np.nan if name == "weights" else False
            out[name] = frame
        return replace(self, **out)

    def masked_warmup(self, bars: Bars, n: int, before: np.ndarray | None = None) -> Signals:
        """The same signals with each symbol's first ``n`` bars cleared, and the rows before
        them: the warmup counts a symbol's own bars (rows with a close), as ``wb.ta`` does,
        so a symbol with holes or a late start is masked until it has had ``n`` bars. Rows
        are not bars: a row-count warmup let a symbol with holes signal from indicators
        that had fewer bars than the warmup in a short history, and not in a longer one.
        ``before``: each symbol's bars in the history before ``bars`` (the live engine
        evaluates the last rows of a longer history), counted toward its warmup."""
        if n <= 0:
            return self
        seen = np.cumsum(symbol_bars(bars), axis=0)
        if before is not None:
            seen += np.asarray(before, dtype=seen.dtype)
        early = seen <= n  # (rows, symbols): the symbol's bar number n (0-based) not reached
        if not early.any():
            return self
        out = {}
        for name, frame in self.frames().items():
            values = frame.to_numpy(copy=True)
            values[early] = np.nan if name == "weights" else False
            out[name] = pd.DataFrame(values, index=frame.index, columns=frame.columns)
        return replace(self, **out)

    def last_row(self) -> dict[str, np.ndarray | float]:
        """Each frame's last row as an array, in the columns' order (and each stop's: a
        number stays one): what the live engine acts on. (``to_numpy()[-1]``: a row as a
        Series, ``iloc[-1]``, costs ~30 us a frame, every bar.)"""
        out = {name: frame.to_numpy()[-1] for name, frame in self.frames().items()}
        out.update({name: v if not isinstance(v, pd.DataFrame) else v.to_numpy()[-1]
                    for name, v in self.stops().items()})
        return out


def symbol_bars(bars: Bars) -> np.ndarray:
    """(rows, symbols): whether the symbol has a bar at the row (a row with a close). The
    one rule for a symbol's bar count: its warmup counts these (:meth:`Signals.masked_warmup`,
    ``Strategy.check_history``), as ``wb.ta`` does."""
    return ~np.isnan(bars.close.to_numpy(dtype=float, na_value=np.nan))


def _false_like(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame(False, index=bars.close.index, columns=bars.close.columns)


def _conform(frame, name: str, bars: Bars, strategy: str) -> pd.DataFrame:
    where = f"{strategy}: Signals.{name}"
    if not isinstance(frame, (pd.DataFrame, pd.Series)):
        raise StrategyError(f"{where} must be a DataFrame, got {type(frame).__name__}")
    frame = _conform_shape(frame, where, bars)
    if name == "weights":
        if not pd.api.types.is_numeric_dtype(np.result_type(*frame.dtypes)) or frame.dtypes.eq(bool).any():
            raise StrategyError(f"{where} must be float target weights, got {frame.dtypes.iloc[0]}")
        values = frame.to_numpy(dtype=float)
        if np.isinf(values).any():
            raise StrategyError(f"{where} holds infinite weights")
        return frame.astype(float)
    if frame.to_numpy().dtype == bool:
        # every column numpy bool (a nullable or Arrow boolean column, or any other, gives an
        # object or numeric array): one view of the values for the usual one-block frame,
        # where ``frame.dtypes`` builds a Series of one dtype per symbol (0.1 ms at 200)
        return frame
    dtypes = frame.dtypes
    if not all(dtype == bool for dtype in set(dtypes)):  # each distinct dtype once, not per symbol
        odd = next(d for d in dtypes if d != bool)
        raise StrategyError(
            f"{where} must be boolean, got {odd} (compare, e.g. `fast > slow`, and fill NaN with False)"
        )
    return frame


def checked_stop(value, name: str, bars: Bars, strategy: str, where: str | None = None):
    """A stop: a number > 0, or a float frame like the bars' (values > 0, NaN: no stop for
    that bar's entries); a ``StrategyError`` naming in one line what is wrong."""
    where = where or f"{strategy}: Signals.{name}"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not (np.isfinite(value) and value > 0):
            raise StrategyError(f"{where} must be > 0 (a fraction of the entry price), got {value!r}")
        return float(value)
    if not isinstance(value, (pd.DataFrame, pd.Series)):
        raise StrategyError(f"{where} must be a number or a DataFrame like the bars', "
                            f"got {type(value).__name__}")
    frame = _conform_shape(value, where, bars)
    if frame.dtypes.eq(bool).any() or not all(pd.api.types.is_numeric_dtype(d) for d in frame.dtypes):
        raise StrategyError(f"{where} must be float fractions of the entry price, got "
                            f"{next(d for d in frame.dtypes if d == bool or not pd.api.types.is_numeric_dtype(d))}")
    frame = frame.astype(float)
    values = frame.to_numpy()
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise StrategyError(f"{where} must be > 0 or NaN (no stop), got {float(values[r, c])!r} at "
                            f"{frame.index[r]} {frame.columns[c]} ({int(bad.sum())} such value(s))")
    return frame


def _conform_shape(frame, where: str, bars: Bars) -> pd.DataFrame:
    close = bars.close
    if isinstance(frame, pd.Series):
        if close.shape[1] != 1:
            raise StrategyError(f"{where} is a Series but the bars hold {close.shape[1]} symbols")
        frame = frame.to_frame(close.columns[0])
    if frame.shape != close.shape:
        raise StrategyError(f"{where} has shape {frame.shape}, the bars {close.shape} "
                            f"(bars x symbols)")
    if not frame.columns.equals(close.columns):
        raise StrategyError(f"{where} columns differ from the bars' symbols: "
                            f"{_column_difference(frame.columns, close.columns)}")
    if not frame.index.equals(close.index):
        bad = _first_difference(frame.index, close.index)
        raise StrategyError(f"{where} is not aligned with the bars: index differs at {bad}")
    return frame


def _column_difference(got: pd.Index, want: pd.Index) -> str:
    missing = [str(c) for c in want if c not in got][:3]
    extra = [str(c) for c in got if c not in want][:3]
    if not missing and not extra:
        return "same symbols in another order (reindex it with the bars' columns)"
    return "; ".join(p for p in (f"missing {', '.join(missing)}" if missing else "",
                                 f"not in the bars {', '.join(extra)}" if extra else "") if p)


def _first_difference(a: pd.Index, b: pd.Index) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"row {i} ({x} vs bars {y})"
    return f"row {min(len(a), len(b))} (lengths {len(a)} vs {len(b)})"
