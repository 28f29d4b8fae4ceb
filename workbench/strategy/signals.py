"""``Signals``: what a strategy returns, checked against the bars it was computed from.

Either boolean ``entries``/``exits`` frames (and optionally ``short_entries``/
``short_exits``), or a float ``weights`` frame of target weights per symbol (NaN: keep the
current position). Frames have the bars' index and columns exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from workbench.data.bars import Bars
from workbench.errors import StrategyError

__all__ = ["Signals"]

_BOOL_FIELDS = ("entries", "exits", "short_entries", "short_exits")


@dataclass(frozen=True, eq=False)
class Signals:
    entries: pd.DataFrame | None = None
    exits: pd.DataFrame | None = None
    short_entries: pd.DataFrame | None = None
    short_exits: pd.DataFrame | None = None
    weights: pd.DataFrame | None = None

    @property
    def kind(self) -> str:
        """``"signals"`` (entries/exits) or ``"weights"``."""
        return "weights" if self.weights is not None else "signals"

    @property
    def has_shorts(self) -> bool:
        return self.short_entries is not None or self.short_exits is not None

    def frames(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

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
        if self.weights is None:
            for name in ("entries", "exits"):
                out.setdefault(name, _false_like(bars))
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

    def last_row(self) -> dict[str, pd.Series]:
        """Each frame's last row: what the live engine acts on."""
        return {name: frame.iloc[-1] for name, frame in self.frames().items()}


def _false_like(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame(False, index=bars.close.index, columns=bars.close.columns)


def _conform(frame, name: str, bars: Bars, strategy: str) -> pd.DataFrame:
    where = f"{strategy}: Signals.{name}"
    close = bars.close
    if isinstance(frame, pd.Series):
        if close.shape[1] != 1:
            raise StrategyError(f"{where} is a Series but the bars hold {close.shape[1]} symbols")
        frame = frame.to_frame(close.columns[0])
    if not isinstance(frame, pd.DataFrame):
        raise StrategyError(f"{where} must be a DataFrame, got {type(frame).__name__}")
    if frame.shape != close.shape:
        raise StrategyError(f"{where} has shape {frame.shape}, the bars {close.shape}")
    if not frame.columns.equals(close.columns):
        raise StrategyError(f"{where} columns differ from the bars' symbols")
    if not frame.index.equals(close.index):
        bad = _first_difference(frame.index, close.index)
        raise StrategyError(f"{where} is not aligned with the bars: index differs at {bad}")
    if name == "weights":
        if not pd.api.types.is_numeric_dtype(np.result_type(*frame.dtypes)) or frame.dtypes.eq(bool).any():
            raise StrategyError(f"{where} must be float target weights, got {frame.dtypes.iloc[0]}")
        values = frame.to_numpy(dtype=float)
        if np.isinf(values).any():
            raise StrategyError(f"{where} holds infinite weights")
        return frame.astype(float)
    if not all(dtype == bool for dtype in frame.dtypes):
        odd = next(d for d in frame.dtypes if d != bool)
        raise StrategyError(
            f"{where} must be boolean, got {odd} (compare, e.g. `fast > slow`, and fill NaN with False)"
        )
    return frame


def _first_difference(a: pd.Index, b: pd.Index) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"row {i} ({x} vs bars {y})"
    return f"row {min(len(a), len(b))} (lengths {len(a)} vs {len(b)})"
