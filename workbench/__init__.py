"""The workbench: research to production for systematic trading of US stocks.

    import workbench as wb

    bars = wb.data.load(["AAPL", "MSFT"], timeframe="1Min", start="2026-01-02")

    @wb.strategy(warmup=60)
    def sma_cross(bars, fast: int = 10, slow: int = 30):
        fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
        return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                          exits=wb.crossed_below(fast_ma, slow_ma))

    result = wb.backtest(sma_cross, bars, fast=10, slow=30)

Heavy parts (the store's DuckDB, vectorbt, TA-Lib) are imported on first use, so
``import workbench`` is quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.errors import ConfigError, DataError, StrategyError, WorkbenchError
from workbench.lazy import lazy_names

# Bound here, eagerly: importing the subpackage ``workbench.strategy`` binds the package's
# attribute ``strategy`` to that module, which would shadow a lazily bound decorator.
from workbench.strategy import Signals, Strategy, strategy

if TYPE_CHECKING:
    from workbench import data  # noqa: F401
    from workbench.data.bars import Bars  # noqa: F401

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself), imported on first access
_LAZY = {
    "data": ("workbench.data", None),
    "Bars": ("workbench.data.bars", "Bars"),
    "ta": ("workbench.ta", None),
    "crossed_above": ("workbench.crossings", "crossed_above"),
    "crossed_below": ("workbench.crossings", "crossed_below"),
    "lookahead_check": ("workbench.strategy.lookahead", "lookahead_check"),
    "LookaheadError": ("workbench.strategy.lookahead", "LookaheadError"),
    "backtest": ("workbench.backtesting", "backtest"),
    "sweep": ("workbench.backtesting", "sweep"),
    "walk_forward": ("workbench.backtesting", "walk_forward"),
    "catalog": ("workbench.journal.catalog", "catalog"),
    "run": ("workbench.execution.modes", "run"),
}

__all__ = ["Signals", "Strategy", "strategy",
           "WorkbenchError", "ConfigError", "DataError", "StrategyError", *_LAZY]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
