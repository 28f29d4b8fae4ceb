"""Parity: does the live engine, fed bar by bar, say what the vectorized backtest says?

    report = check_parity(sma_cross, bars, {"fast": 10, "slow": 30})
    report.ok, report.mismatches, report.first      # first: symbol, time, field, both values

The backtest's signals are ``strategy(bars, **params)`` over the whole history at once.
The engine's are collected by replaying the same bars through an :class:`Engine` (a
:class:`ReplayFeed`, one timestamp at a time, starting from an empty window) and reading
back every :class:`~workbench.model.Signal` it emitted. Every field (entries, exits,
short_entries, short_exits; or weights) is compared for every symbol at every bar; a
symbol without a signal from the engine is all False there (NaN weight). Booleans must be
equal; weights equal within 1e-9 relative (NaN equals NaN). Both paths fill a signal of
bar t at t+1's open, so equal signals are what equal trades rest on.

A strategy that returns its own stops (``Signals(sl_stop=...)``, e.g. an ATR stop) has
them compared too (fields ``sl_stop``/``tp_stop``), where they are used: on each bar and
symbol with an entry (long or short), the engine's value handed with the entry against
the backtest's (within 1e-9 relative, NaN: no stop, equals NaN).

The engine's window is sized to hold the whole history (unless ``window`` is given), so
it stays anchored at the first bar, as a session's window does (see
:mod:`workbench.engine.engine`): at bar t the engine computes on exactly the rows 0..t
the backtest has, and a mismatch means the strategy looks ahead (its signal at t uses
bars after t). A ``window`` shorter than the history makes it slide, which shows what a
truncated history changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.data.bars import Bars
from workbench.engine.engine import DEFAULT_MARGIN, Decision, Engine
from workbench.engine.feed import ReplayFeed
from workbench.errors import DataError, StrategyError, WorkbenchError
from workbench.plain import plain
from workbench.strategy import as_strategy

__all__ = ["EXAMPLES", "ParityError", "ParityMismatch", "ParityReport", "check_parity"]

EXAMPLES = 5  # mismatches a report lists
_BOOL_FIELDS = ("entries", "exits", "short_entries", "short_exits")
_ATTRS = {"entries": "entry", "exits": "exit", "short_entries": "short_entry",
          "short_exits": "short_exit", "weights": "weight", "sl_stop": "sl_stop",
          "tp_stop": "tp_stop"}
_FLOATS = ("weights", "sl_stop", "tp_stop")
_STOPS = ("sl_stop", "tp_stop")


@dataclass(frozen=True)
class ParityMismatch:
    """One signal where the engine and the backtest differ."""

    symbol: str
    time: pd.Timestamp
    field: str
    engine: Any
    backtest: Any

    def __str__(self) -> str:
        return (f"{self.field} of {self.symbol} at {self.time}: engine {self.engine!r}, "
                f"backtest {self.backtest!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "time": self.time.isoformat(), "field": self.field,
                "engine": self.engine, "backtest": self.backtest}


@dataclass(frozen=True)
class ParityReport:
    """The outcome of :func:`check_parity`."""

    strategy: str
    params: dict[str, Any]
    timeframe: str | None
    start: pd.Timestamp
    end: pd.Timestamp
    timestamps: int
    symbols: int
    bars: int  # (symbol, time) pairs with a bar
    fields: tuple[str, ...]
    compared: int  # signals compared: timestamps x symbols x fields
    mismatches: int
    by_field: dict[str, int]
    first: ParityMismatch | None
    window: int  # the engine's window capacity (rows)
    anchored: bool  # the window never slid: it held every bar from the first
    latency: dict[str, float | int] = field(default_factory=dict)
    seconds: float = 0.0  # the replay's wall time (stopwatch)
    examples: tuple[ParityMismatch, ...] = ()  # the earliest few mismatches, ``first`` first

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out.update(ok=self.ok, start=self.start.isoformat(), end=self.end.isoformat(),
                   fields=list(self.fields), first=self.first.to_dict() if self.first else None,
                   examples=[m.to_dict() for m in self.examples])
        return out

    def lines(self) -> list[str]:
        """A summary for people."""
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lat = self.latency
        window = (f"{self.window} rows, anchored at the first bar throughout" if self.anchored
                  else f"{self.window} rows, sliding (history longer than the window)")
        out = [
            (f"parity {self.strategy}({params}) on {self.timeframe or '?'} bars, "
             f"{self.start} .. {self.end}"),
            f"  timestamps  {self.timestamps}",
            f"  symbols     {self.symbols}",
            f"  bars        {self.bars}",
            f"  signals     {self.compared} compared ({', '.join(self.fields)})",
            f"  mismatches  {self.mismatches}",
            f"  window      {window}",
        ]
        if lat.get("count"):
            out.append(f"  latency     p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
                       f"per timestamp; replay {self.seconds:.1f} s")
        if self.ok:
            out.append("OK: the engine's signals equal the backtest's")
        else:
            per = ", ".join(f"{k} {v}" for k, v in self.by_field.items() if v)
            out.append(f"MISMATCH: {self.mismatches} signal(s) differ ({per}); first: {self.first}")
        return out


class ParityError(WorkbenchError):
    """The engine and the backtest disagree; the message names the first difference."""

    exit_code = 1

    def __init__(self, report: ParityReport) -> None:
        self.report = report
        super().__init__(
            f"parity failed: {report.mismatches} of {report.compared} signals differ; first: "
            f"{report.first} (a signal that uses bars after its own bar, e.g. shift(-1), "
            f"looks ahead)"
        )


class _Recorder:
    """The ``on_decision`` handler: the engine's signals into (time, symbol) arrays per field."""

    def __init__(self, bars: Bars, fields: tuple[str, ...]) -> None:
        self.index = bars.index
        self.position = {s: j for j, s in enumerate(bars.symbols)}
        shape = bars.shape
        self.arrays = {f: np.full(shape, np.nan) if f in _FLOATS else np.zeros(shape, dtype=bool)
                       for f in fields}
        self.row = 0

    def __call__(self, decision: Decision) -> None:
        if decision.bar_time != self.index[self.row]:
            raise DataError(f"parity: the engine decided for {decision.bar_time}, expected "
                            f"{self.index[self.row]}")
        for signal in decision.signals:
            j = self.position[signal.symbol]
            for name, array in self.arrays.items():
                if name in _STOPS and not (signal.entry or signal.short_entry):
                    continue  # a stop is used, so compared, with an entry only
                value = getattr(signal, _ATTRS[name])
                array[self.row, j] = np.nan if value is None else value
        self.row += 1


def check_parity(strategy, bars: Bars, params: dict[str, Any] | None = None, *,
                 window: int | None = None, margin: int = DEFAULT_MARGIN,
                 progress: bool = False, incremental: bool = True) -> ParityReport:
    """Replay ``bars`` through the engine and compare every signal with ``strategy(bars)``."""
    strat = as_strategy(strategy, "check_parity")
    if not isinstance(bars, Bars):
        raise DataError(f"check_parity needs wb.Bars, got {type(bars).__name__}")
    resolved = strat.params(**(params or {}))
    expected = strat(bars, **resolved)
    fields = ("weights",) if expected.kind == "weights" else _BOOL_FIELDS
    fields += tuple(name for name in _STOPS if name in expected.stops())
    recorder = _Recorder(bars, fields)
    if window is None:  # anchored at the first bar for the whole replay, as a session is
        window = max(strat.warmup(resolved) + margin, len(bars))
    engine = Engine(strat, bars.symbols, params=resolved, window=window, margin=margin,
                    on_decision=recorder, timeframe=bars.timeframe, log_notices=False,
                    incremental=incremental)
    started = time.perf_counter()
    engine.run(ReplayFeed(bars), progress=progress)
    seconds = time.perf_counter() - started
    if recorder.row != len(bars):
        raise StrategyError(f"parity: the engine decided {recorder.row} of {len(bars)} timestamps")
    wanted = {f: _expected(expected, f, bars) for f in fields}
    by_field, examples = _compare(recorder.arrays, wanted, bars)
    return ParityReport(
        strategy=strat.name, params=resolved,
        timeframe=str(bars.timeframe) if bars.timeframe else None,
        start=bars.index[0], end=bars.index[-1], timestamps=len(bars), symbols=len(bars.symbols),
        bars=int(bars.close.notna().to_numpy().sum()), fields=fields,
        compared=len(bars) * len(bars.symbols) * len(fields),
        mismatches=sum(by_field.values()), by_field=by_field,
        first=examples[0] if examples else None, examples=examples,
        window=engine.window.capacity, anchored=engine.window.anchored,
        latency=engine.latency.summary(), seconds=seconds,
    )


def _expected(signals, name: str, bars: Bars) -> np.ndarray:
    frame = getattr(signals, name)
    if name in _STOPS:  # on the entries' cells (a number: the same on each), NaN elsewhere
        entries = _expected(signals, "entries", bars) | _expected(signals, "short_entries", bars)
        values = (frame.to_numpy(dtype=float) if isinstance(frame, pd.DataFrame)
                  else np.full(bars.shape, float(frame)))
        return np.where(entries, values, np.nan)
    if frame is None:
        return np.zeros(bars.shape, dtype=bool)
    return frame.to_numpy(dtype=float if name == "weights" else bool)


def _differs(a: np.ndarray, b: np.ndarray, name: str) -> np.ndarray:
    if name in _FLOATS:
        return ~np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    return a != b


def _compare(got: dict[str, np.ndarray], wanted: dict[str, np.ndarray], bars: Bars
             ) -> tuple[dict[str, int], tuple[ParityMismatch, ...]]:
    """Mismatches per field, and the earliest :data:`EXAMPLES` of them (by time, then
    symbol, then field order)."""
    counts: dict[str, int] = {}
    found: list[tuple[int, int, int]] = []
    for k, name in enumerate(got):
        diff = _differs(got[name], wanted[name], name)
        counts[name] = int(np.count_nonzero(diff))
        if counts[name]:
            rows, cols = np.nonzero(diff)  # row-major: the earliest rows first
            found.extend((int(r), int(c), k) for r, c in zip(rows[:EXAMPLES], cols[:EXAMPLES]))
    names = list(got)
    return counts, tuple(
        ParityMismatch(bars.symbols[col], bars.index[row], names[k],
                       plain(got[names[k]][row, col]), plain(wanted[names[k]][row, col]))
        for row, col, k in sorted(found)[:EXAMPLES])
