"""Brokers: the ``Broker`` protocol, its errors, and the simulated broker.

``SimBroker`` fills against bars with the backtest's ``CostModel`` and keeps its state in
its own SQLite file; the Alpaca adapter (``alpaca.py``) speaks the same protocol.
"""

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
from workbench.brokers.sim import SimBroker
from workbench.brokers.sim_rules import SimFaults, reference_price

__all__ = [
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
