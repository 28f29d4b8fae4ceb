"""``lookahead_check``: do a strategy's past signals change when the future is cut off?

    report = wb.lookahead_check(sma_cross, bars, fast=10, slow=30)

The live engine computes signals on the history up to now and acts on the last row; a
backtest computes them on the whole history at once. The two agree only if the signal at
bar t depends on bars up to t alone. This check recomputes the strategy on truncated
histories ``bars[:k]`` for cut points spread over the bars after the warmup (and for the
last few bars), and compares each with the first k rows of the full-history signals. Any
difference is a look-ahead (``shift(-1)``, a centered window, a normalization over the
whole history...) and raises :class:`LookaheadError` naming the first changed signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.data.bars import Bars
from workbench.errors import StrategyError
from workbench.strategy.core import as_strategy
from workbench.strategy.signals import Signals

__all__ = ["LookaheadError", "LookaheadReport", "Mismatch", "lookahead_check"]

_TAIL = 3  # the last few cut points: dropping 1, 2, 3 bars


@dataclass(frozen=True)
class Mismatch:
    """One signal that differs between a truncated history and the full one."""

    field: str
    symbol: str
    time: pd.Timestamp
    truncated: Any
    full: Any
    cut: int  # rows in the truncated history

    def __str__(self) -> str:
        return (
            f"{self.field}[{self.symbol}] at {self.time} is {self.truncated!r} computed on the "
            f"first {self.cut} bars but {self.full!r} computed on the full history"
        )


@dataclass(frozen=True)
class LookaheadReport:
    """The outcome of :func:`lookahead_check`."""

    strategy: str
    params: dict[str, Any]
    cut_points: tuple[int, ...] = field(default=())
    first_mismatch: Mismatch | None = None

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"LOOK-AHEAD: {self.first_mismatch}"
        return f"<LookaheadReport {self.strategy}: {len(self.cut_points)} cut points, {verdict}>"


class LookaheadError(StrategyError):
    """A strategy's past signals change when later bars are added: it looks ahead."""

    def __init__(self, report: LookaheadReport) -> None:
        self.report = report
        self.mismatch = report.first_mismatch
        super().__init__(
            f"{report.strategy} looks ahead: {self.mismatch}; a signal at bar t must use "
            f"bars up to t only (look for shift(-n), centered windows, whole-history statistics)"
        )


def lookahead_check(strategy, bars: Bars, checkpoints: int = 20, **params: Any) -> LookaheadReport:
    """Recompute ``strategy`` on ``bars[:k]`` for ``checkpoints`` cut points (plus the last
    few bars) and compare with the full-history signals; raise :class:`LookaheadError` on the
    first past signal that changed, else return the report."""
    strat = as_strategy(strategy, "lookahead_check")
    if not isinstance(bars, Bars):
        raise StrategyError(f"lookahead_check expects wb.Bars, got {type(bars).__name__}")
    if not isinstance(checkpoints, int) or checkpoints < 1:
        raise StrategyError(f"lookahead_check: checkpoints must be an int >= 1, got {checkpoints!r}")
    resolved = strat.params(**params)
    full = strat(bars, **resolved)
    cuts = cut_points(len(bars), strat.warmup(resolved), checkpoints)
    if not cuts:
        raise StrategyError(
            f"{strat.name}: lookahead_check needs more than warmup + 1 = "
            f"{strat.warmup(resolved) + 1} bars, got {len(bars)}"
        )
    for k in cuts:
        mismatch = compare(strat(bars.iloc(slice(0, k)), **resolved), full, k, bars)
        if mismatch is not None:
            raise LookaheadError(LookaheadReport(strat.name, resolved, cuts, mismatch))
    return LookaheadReport(strat.name, resolved, cuts)


def cut_points(n: int, warmup: int, checkpoints: int) -> tuple[int, ...]:
    """Truncated lengths to check: spread over ``(warmup, n)``, plus ``n-3 .. n-1``."""
    lo, hi = warmup + 1, n - 1
    if hi < lo:
        return ()
    spread = np.linspace(lo, hi, num=min(checkpoints, hi - lo + 1)).round().astype(int)
    tail = range(max(lo, n - _TAIL), n)
    return tuple(sorted({int(k) for k in spread} | set(tail)))


def compare(truncated: Signals, full: Signals, k: int, bars: Bars) -> Mismatch | None:
    """The earliest signal of ``truncated`` differing from the first ``k`` rows of ``full``."""
    short, long = _frames(truncated), _frames(full)
    index, symbols = bars.index, bars.symbols
    odd = sorted(set(short) ^ set(long))
    if odd:
        given = odd[0] in short
        return Mismatch(odd[0], symbols[0] if symbols else "", index[k - 1],
                        "given" if given else "absent", "absent" if given else "given", k)
    best: tuple[int, int, str] | None = None
    for name in sorted(short):
        hits = np.argwhere(_differs(short[name].to_numpy(), long[name].iloc[:k].to_numpy(), name))
        if hits.size and (best is None or (hits[0][0], hits[0][1]) < best[:2]):
            best = (int(hits[0][0]), int(hits[0][1]), name)
    if best is None:
        return None
    row, col, name = best
    return Mismatch(name, symbols[col], index[row],
                    _scalar(short[name].iat[row, col]), _scalar(long[name].iat[row, col]), k)


def _frames(signals: Signals) -> dict:
    """The signal frames and the stops given per bar (a stop that looks ahead is one too)."""
    return {**signals.frames(), **{n: v for n, v in signals.stops().items()
                                   if isinstance(v, pd.DataFrame)}}


def _differs(a: np.ndarray, b: np.ndarray, name: str) -> np.ndarray:
    if name in ("weights", "sl_stop", "tp_stop"):  # NaN == NaN; tolerate float noise
        return ~np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    return a != b


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
