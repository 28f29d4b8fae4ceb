"""The strategy contract: ``@strategy``, ``Signals`` and the parameter schema."""

from workbench.strategy.core import Strategy, TradingFrom, as_strategy, strategy
from workbench.strategy.params import Param, Schema
from workbench.strategy.signals import Signals

__all__ = ["Param", "Schema", "Signals", "Strategy", "TradingFrom", "as_strategy", "strategy"]
