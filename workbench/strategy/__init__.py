"""The strategy contract: ``@strategy``, ``Signals`` and the parameter schema."""

from workbench.strategy.core import ShortWarmupWarning, Strategy, TradingFrom, as_strategy, strategy
from workbench.strategy.params import Param, Schema
from workbench.strategy.signals import Signals

__all__ = ["Param", "Schema", "ShortWarmupWarning", "Signals", "Strategy", "TradingFrom", "as_strategy", "strategy"]
