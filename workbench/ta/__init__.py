"""TA-Lib indicators, column-wise over symbols.

    fast = wb.ta.SMA(bars.close, 10)              # DataFrame: bars' index x symbols
    macd = wb.ta.MACD(bars.close)                 # NamedTuple of frames: macd, signal, hist
    atr = wb.ta.ATR(bars, timeperiod=14)          # high/low/close taken from the Bars
    kama = wb.ta.KAMA(bars.close, timeperiod=10)  # any of talib.get_functions() ...
    kama = wb.ta.call("KAMA", bars.close, 10)     # ... or by name

Inputs are wide frames (time x symbol) of the same index and columns, or a ``wb.Bars``
as the single first argument (each input is then read from the field TA-Lib names for it:
``close`` for a plain price, ``high``/``low``/``close``/``volume``/``open`` where the
function asks for those). A Series gives a Series. Parameters go positionally after the
inputs or by name (``timeperiod=10``); integral floats and numpy scalars are accepted.
Multi-output functions return a NamedTuple of frames named after TA-Lib's outputs, with
``macdsignal``/``macdhist`` shortened to ``signal``/``hist`` and ``upperband``/
``middleband``/``lowerband`` to ``upper``/``middle``/``lower``. Outputs are float64.

Gaps. Minute data has holes: a symbol that did not trade in a minute has NaN in that row.
TA-Lib carries a NaN forward forever in its running sums, so each symbol's indicator is
computed on that symbol's *present* bars only: the NaN rows of its column are dropped, the
indicator computed on what remains, and the values scattered back, with NaN at the rows
the input had NaN. ``SMA(close, 10)`` is thus the mean of the symbol's last 10 bars, however
far apart in time, and the first values are NaN until the symbol has had enough bars. For a
function of several inputs (high, low, close), a row counts as present when every input
has a value there. A consequence: index-valued outputs (``MINMAXINDEX``, ``MAXINDEX``...)
count positions among the present bars, not rows of the frame.
"""

from __future__ import annotations

from workbench.ta._cache import IndicatorCache, indicator_cache
from workbench.ta._convergence import convergence
from workbench.ta._engine import (
    BBandsOutput,
    MACDOutput,
    StochOutput,
    UnknownIndicatorError,
    call,
    functions,
    indicator,
)
from workbench.ta._stream import Stream

__all__ = [
    "ADX",
    "ATR",
    "BBANDS",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "STOCH",
    "BBandsOutput",
    "IndicatorCache",
    "MACDOutput",
    "StochOutput",
    "Stream",
    "UnknownIndicatorError",
    "call",
    "convergence",
    "functions",
    "indicator_cache",
]

SMA = indicator("SMA")
EMA = indicator("EMA")
RSI = indicator("RSI")
MACD = indicator("MACD")
BBANDS = indicator("BBANDS")
ATR = indicator("ATR")
ADX = indicator("ADX")
STOCH = indicator("STOCH")


def __getattr__(name: str):
    """``wb.ta.KAMA`` and every other TA-Lib function, built on first access."""
    if name.startswith("_"):
        raise AttributeError(f"module 'workbench.ta' has no attribute {name!r}")
    fn = indicator(name)
    globals()[name] = fn
    return fn


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(functions()))
