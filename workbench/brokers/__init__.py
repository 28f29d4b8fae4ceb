"""Brokers: the ``Broker`` protocol, its errors, and the simulated broker.

``SimBroker`` fills against bars with the backtest's ``CostModel`` and keeps its state in
its own SQLite file; ``AlpacaBroker`` (the package ``alpaca/``) speaks the same protocol
over alpaca-py. The protocol is imported here; ``AlpacaBroker``, ``SimBroker``,
``SimFaults`` and ``reference_price`` on first use, so an order path on one broker never
loads the other (nor alpaca-py).
"""

from __future__ import annotations

from workbench.brokers.base import (
    Broker,
    BrokerError,
    BrokerOrder,
    BrokerUpdate,
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TemporaryBrokerError,
)
from workbench.lazy import lazy_names

# name -> module, imported on first access
_LAZY = {"AlpacaBroker": "workbench.brokers.alpaca", "SimBroker": "workbench.brokers.sim", "SimFaults": "workbench.brokers.sim_rules",
         "reference_price": "workbench.brokers.sim_rules"}

__all__ = [
    "AlpacaBroker",
    "Broker",
    "BrokerError",
    "BrokerOrder",
    "BrokerUpdate",
    "DuplicateClientOrderId",
    "OrderNotFound",
    "OrderRejected",
    "OutcomeUnknown",
    "RateLimited",
    "SimBroker",
    "SimFaults",
    "TemporaryBrokerError",
    "reference_price",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
