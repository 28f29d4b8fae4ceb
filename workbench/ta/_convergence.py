"""How many rows an indicator needs before its value no longer depends on where it started.

    wb.ta.convergence("EMA", {"timeperiod": 30})     # 29 + 552 rows
    wb.ta.convergence("KAMA", {})                     # None: no rule, use the whole history

The live engine evaluates a strategy on the last rows of its window only. SMA and RSI
carry their state from bar to bar (:mod:`workbench.ta._stream`) and are exact on any
window (the SMA is a function of its window alone, :mod:`workbench.ta._sma`: its rule is
its lookback, and exact); every other ``wb.ta`` function is computed on the rows the
engine gives it, and these are its rules:

* TA-Lib's lookback (the rows before its first value), for every function;
* plus, for a function with memory, the rows after which the start-up difference has
  decayed below double precision: a recursive average with weight ``alpha`` on the new
  value keeps ``(1 - alpha) ** m`` of it, below ``2 ** -53`` from ``m = 53 * ln 2 /
  -ln(1 - alpha)`` rows on. EMA: ``alpha = 2 / (n + 1)``; Wilder's averages (ATR, NATR,
  CMO, DX, +/-DI, +/-DM): ``1 / n``; ADX smooths twice (2 m), ADXR (2 m plus n), DEMA
  (2 m), TEMA and TRIX (3 m) stack EMAs, MACD/MACDFIX stack the slow EMA and the signal EMA;
  STOCHRSI holds an RSI;
* None (no rule: the engine evaluates on its whole window) for KAMA, MAMA, T3, MACDEXT,
  the Hilbert-transform functions, and any function given a moving-average type other
  than the simple one (``matype``).

What the rule does not make exact: after ``m`` rows the start-up difference is below one
part in ``2 ** 53`` of the value, not zero, and running sums (TA-Lib's own SMA inside STOCH,
BBANDS, WMA...; ``wb.ta.SMA`` is not one) round differently from a different start; the values can differ in their
last bits, and a comparison that ties to the last bit (``a > b`` with ``a == b`` in exact
arithmetic) can go the other way. tests/test_ta_stream.py measures the difference against
the whole history's values; ``workbench parity`` shows whether any signal changed.
"""

from __future__ import annotations

import math

from talib import abstract

__all__ = ["convergence"]

_EMA = frozenset({"EMA"})
_WILDER = frozenset({"ATR", "NATR", "CMO", "DX", "PLUS_DI", "MINUS_DI", "PLUS_DM", "MINUS_DM"})
_NONE = frozenset({"KAMA", "MAMA", "T3", "MACDEXT", "MAVP"})
_STACKED = {"DEMA": 2, "TEMA": 3, "TRIX": 3}


def _memory(alpha: float) -> int:
    return math.ceil(53 * math.log(2) / -math.log1p(-alpha))


def convergence(name: str, params: dict) -> int | None:
    """Rows ``name`` with ``params`` needs to give its whole-history value (module doc), or None."""
    if name in _NONE or name.startswith("HT_") or params.get("matype", 0) != 0:
        return None
    fn = abstract.Function(name)
    if params:
        fn.set_parameters(params)
    lookback = int(fn.lookback)
    got = fn.parameters
    n = int(got.get("timeperiod", 0) or 0)
    if name in _EMA:
        return lookback + _memory(2 / (n + 1))
    if name in _STACKED:
        return lookback + _STACKED[name] * _memory(2 / (n + 1))
    if name in _WILDER:
        return lookback + _memory(1 / n)
    if name in ("RSI", "STOCHRSI"):
        return lookback + _memory(1 / n)
    if name == "ADX":
        return lookback + 2 * _memory(1 / n)
    if name == "ADXR":
        return lookback + 2 * _memory(1 / n) + n
    if name in ("MACD", "MACDFIX"):
        slow = int(got.get("slowperiod", 26) or 26)
        return lookback + _memory(2 / (slow + 1)) + _memory(2 / (int(got["signalperiod"]) + 1))
    return lookback
