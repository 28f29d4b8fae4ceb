"""Frozen value types of the order path. Imports nothing of ours.

Money and quantities are ``Decimal`` in the order path (never float-accumulated); prices
arriving from bars are converted at the boundary with :func:`to_decimal`. Times are UTC
``pandas.Timestamp``. Enums are ``StrEnum`` so they journal as their plain names.
"""

from workbench.model.enums import OrderStatus, OrderType, Side, TimeInForce, TradingState
from workbench.model.ids import client_order_id, parse_client_order_id
from workbench.model.types import (
    Account,
    Fill,
    Order,
    OrderIntent,
    Position,
    Signal,
    to_decimal,
)

__all__ = [
    "Account",
    "Fill",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "Signal",
    "TimeInForce",
    "TradingState",
    "client_order_id",
    "parse_client_order_id",
    "to_decimal",
]
