"""The workbench: research to production for systematic trading of US stocks.

    import workbench as wb
    bars = wb.data.load(["AAPL", "MSFT"], timeframe="1Min", start="2026-01-02")
"""

from __future__ import annotations

from workbench import data
from workbench.data.bars import Bars
from workbench.errors import ConfigError, DataError, StrategyError, WorkbenchError

__all__ = ["data", "Bars", "WorkbenchError", "ConfigError", "DataError", "StrategyError"]
__version__ = "0.1.0"
