"""``@wb.strategy``: a pure function of bars and parameters, with its schema and warmup.

    @wb.strategy(warmup=60)
    def sma_cross(bars, fast: int = 10, slow: int = 30):
        ...
        return wb.Signals(entries=..., exits=...)

Calling the decorated object checks the parameters, checks the history
(:meth:`Strategy.check_history`: each symbol's own bars against the warmup), calls the function, checks the signals it returned against the bars and clears
each symbol's first ``warmup`` bars (an indicator's first values are not signals; a
symbol's bars, not rows, as ``wb.ta`` counts them: see ``Signals.masked_warmup``). After
its warmup, a symbol's signal at a bar is then the same whatever history precedes it, for
a strategy whose indicators have no memory beyond their window (SMA, rolling windows,
lags); indicators with memory (EMA, RSI, ATR...) are told about once (see
:mod:`workbench.strategy.history`). The live engine
and every backtest call it the same way, so the backtested code is the traded code.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.data.bars import Bars
from workbench.errors import StrategyError
from workbench.strategy.params import Schema
from workbench.strategy.signals import Signals, symbol_bars

__all__ = ["ShortWarmupWarning", "Strategy", "TradingFrom", "as_strategy", "named_counts",
           "strategy"]

_NAMED = 8  # short symbols named in a message (then "and N more")


class ShortWarmupWarning(UserWarning):
    """Some symbols have no more bars than the strategy's warmup: no signal for them."""

Warmup = int | Callable[[dict[str, Any]], int]


class Strategy:
    """A strategy function with its parameter schema and warmup."""

    def __init__(self, fn: Callable[..., Signals], warmup: Warmup = 0, name: str | None = None) -> None:
        if not callable(fn):
            raise StrategyError("@strategy decorates a function")
        if not callable(warmup) and (not isinstance(warmup, int) or warmup < 0):
            raise StrategyError(f"warmup must be a non-negative int or a function of the params, got {warmup!r}")
        self.fn = fn
        self.name = name or fn.__name__
        self._warmup = warmup
        self.schema = Schema(fn, self.name)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in self.schema.describe())
        return f"<strategy {self.name}({params}) warmup={self._warmup if not callable(self._warmup) else 'f(params)'}>"

    def params(self, **given: Any) -> dict[str, Any]:
        """The full, checked parameter set: defaults overlaid with ``given``."""
        return self.schema.resolve(given)

    def warmup(self, params: dict[str, Any] | None = None) -> int:
        """Bars of history needed before the first meaningful signal."""
        if not callable(self._warmup):
            return self._warmup
        resolved = self.params(**(params or {}))
        try:
            value = self._warmup(resolved)
        except Exception as e:  # a user's function: say whose and why
            known = ", ".join(sorted(resolved)) or "none"
            hint = f" (parameters: {known})" if isinstance(e, KeyError) else ""
            raise StrategyError(f"{self.name}: its warmup function failed: {type(e).__name__}: "
                                f"{e}{hint}") from e
        if not isinstance(value, int) or value < 0:
            raise StrategyError(f"{self.name}: warmup function returned {value!r}, not an int >= 0")
        return value

    def check_history(self, bars: Bars, params: dict[str, Any]) -> int:
        """The warmup, checked against each symbol's own bars (rows with a close:
        :func:`~workbench.strategy.signals.symbol_bars`, the rule the warmup masking counts
        by; a wide frame's rows are not a symbol's bars). No symbol with more bars than the
        warmup: a ``StrategyError`` (no signal could come out). Some: a
        :class:`ShortWarmupWarning` naming them (their signals are all masked). No warmup:
        only an empty frame is refused (a symbol whose bars are all gaps has no signal, as
        in the backtest; it is not short of warmup)."""
        need = self.warmup(params)
        if need == 0 and len(bars):  # no warmup: a symbol without bars just has no signal
            return need
        present = symbol_bars(bars)
        # without a hole (the usual frame) every symbol has every row: no count per symbol
        counts = (np.full(present.shape[1], present.shape[0]) if present.all()
                  else np.count_nonzero(present, axis=0))
        # names only for the short ones: every call of a sweep checks (Bars.symbols builds a
        # list of str from the columns, 0.2 ms at 200 symbols, a fifth of a strategy call)
        idx = np.flatnonzero(counts <= need)
        names = bars.symbols if idx.size else []
        short = [(names[i], int(counts[i])) for i in idx]
        if len(short) == len(counts):
            most = int(counts.max()) if len(counts) else 0
            raise StrategyError(
                f"{self.name}: too little history: {most} bar(s) at most per symbol "
                f"({named_counts(short)}), but warmup needs {need} before the first signal; "
                "load more bars (start earlier)")
        if short:
            warnings.warn(f"{self.name}: warmup needs {need} bars of a symbol before its first "
                          f"signal; {len(short)} of {len(counts)} symbols have no more: "
                          f"{named_counts(short)}: no signal for them in these bars (load "
                          "more bars, start earlier)", ShortWarmupWarning)
        return need

    def __call__(self, bars: Bars, **given: Any) -> Signals:
        """Checked signals for ``bars``: the contract every backtest and the engine rely on."""
        return self.evaluate(bars, self.params(**given))

    def evaluate(self, bars: Bars, params: dict[str, Any],
                 before: np.ndarray | None = None) -> Signals:
        """Checked signals for checked ``params`` (what ``__call__`` does after checking
        them). ``before``: each symbol's bars in the history before ``bars``, when ``bars``
        are the last rows of a longer history (the live engine's window): they count
        toward the symbol's warmup, as they do in a backtest of the whole history."""
        if not isinstance(bars, Bars):
            raise StrategyError(f"{self.name}: expects wb.Bars, got {type(bars).__name__}")
        # the live engine's window (``before`` given) is not checked: the engine decides
        # once its window holds more than the warmup's rows (Engine.ready, the session's
        # check_warmup), and each symbol's signals stay masked until its own bars reach it
        need = self.check_history(bars, params) if before is None else self.warmup(params)
        return self.raw(bars, params).checked(bars, self.name).masked_warmup(bars, need, before)

    def raw(self, bars: Bars, params: dict[str, Any]) -> Signals:
        """The function's own output for already-checked params (no warmup masking)."""
        try:
            out = self.fn(bars, **params)
        except StrategyError:
            raise
        except Exception as e:
            raise StrategyError(f"{self.name} raised {type(e).__name__}: {e}") from e
        if not isinstance(out, Signals):
            raise StrategyError(f"{self.name} must return wb.Signals, got {type(out).__name__}")
        return out


class TradingFrom(Strategy):
    """``inner`` with its signals before ``start`` cleared: a session trades from its day's
    first bar, flat, so the backtest of a session's day (drift, the dashboards, parity)
    runs the strategy on the history and trades from ``start`` on."""

    def __init__(self, inner: Strategy, start: Any) -> None:
        super().__init__(inner.fn, warmup=inner._warmup, name=inner.name)
        self.start = start

    def evaluate(self, bars: Bars, params: dict[str, Any],
                 before: np.ndarray | None = None) -> Signals:
        signals = super().evaluate(bars, params, before)
        return signals.masked_before(int(bars.index.searchsorted(self.start)))


def named_counts(short: list[tuple[str, int]]) -> str:
    """``AAA (21), BBB (3)``, the first few of ``short`` (symbol, bars) and how many more."""
    text = ", ".join(f"{s} ({n})" for s, n in short[:_NAMED])
    return text + (f" and {len(short) - _NAMED} more" if len(short) > _NAMED else "")


def as_strategy(obj: Any, what: str = "this") -> Strategy:
    """``obj`` as a :class:`Strategy`: itself, or a plain function wrapped (no warmup).

    Anything else (a class, a value) is a ``StrategyError`` naming ``what`` needed it.
    """
    if isinstance(obj, Strategy):
        return obj
    if callable(obj) and not isinstance(obj, type):
        return Strategy(obj)
    raise StrategyError(f"{what} needs a strategy (a @wb.strategy function), "
                        f"got {type(obj).__name__}")


def strategy(fn: Callable | None = None, *, warmup: Warmup = 0, name: str | None = None):
    """Decorate a strategy function: ``@wb.strategy`` or ``@wb.strategy(warmup=N)``."""
    if fn is not None:
        return Strategy(fn, warmup=warmup, name=name)
    return lambda f: Strategy(f, warmup=warmup, name=name)
