"""The ``Broker`` protocol every broker adapter speaks, its value types and its errors.

Errors are named for what the caller must do:

==========================  ==========================================================
``OrderRejected``           the broker refused the order for good: do not resend it
``DuplicateClientOrderId``  an order with this client id exists: look it up, do not resend
``OrderNotFound``           no order with this client id (cancel of an unknown id)
``RateLimited``             not processed: back off ``retry_after`` seconds, then retry
``OutcomeUnknown``          may or may not have taken effect (timeout, 5xx on a write):
                            mark the order UNKNOWN and settle it by lookup, never resend
``TemporaryBrokerError``    transient (disconnected, 5xx on a read): retry with backoff
==========================  ==========================================================

``RateLimited`` and ``OutcomeUnknown`` are ``TemporaryBrokerError`` subclasses, so a caller
that only reads may treat all three alike; a caller that writes must tell them apart.
Adapters translate their third-party exceptions into these (``raise ... from e``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model import (
    Account,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

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
    "TemporaryBrokerError",
]


class BrokerError(WorkbenchError):
    """Base of the broker errors."""

    exit_code = 5


class OrderRejected(BrokerError):
    """The broker refused the order (or the cancel) for good."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DuplicateClientOrderId(BrokerError):
    """An order with this client order id already exists at the broker: look it up."""


class OrderNotFound(BrokerError):
    """The broker has no order with this client order id."""


class TemporaryBrokerError(BrokerError):
    """A transient failure: retry with backoff (reads), or settle by lookup (writes)."""


class RateLimited(TemporaryBrokerError):
    """The request was refused unprocessed for the rate limit: retry after ``retry_after`` s."""

    def __init__(self, message: str = "rate limited", retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(TemporaryBrokerError):
    """The request may or may not have taken effect (timeout, lost reply, 5xx on a write)."""


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker knows it. Legs of a bracket are orders of their own with
    ``parent_id`` (the entry's client id) and ``leg`` ("stop_loss" / "take_profit");
    the entry lists them in ``legs``."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    status: OrderStatus
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    parent_id: str | None = None
    leg: str | None = None
    legs: tuple[BrokerOrder, ...] = ()
    reason: str | None = None  # why it was rejected, canceled or expired
    created_at: pd.Timestamp | None = None
    updated_at: pd.Timestamp | None = None

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    def intent(self, reason: str | None = None) -> OrderIntent:
        """The intent this order carries out (legs: their own stop or limit intent)."""
        return OrderIntent(
            client_order_id=self.client_order_id, symbol=self.symbol, side=self.side,
            quantity=self.quantity, order_type=self.order_type, limit_price=self.limit_price,
            stop_price=self.stop_price, take_profit=self.take_profit, stop_loss=self.stop_loss,
            time_in_force=self.time_in_force, reason=reason or self.leg or "broker")


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """One message of the broker's update stream: ``event`` is ``accepted``, ``fill``,
    ``partial_fill``, ``canceled``, ``expired`` or ``rejected``; ``fill`` is set (with its
    unique ``execution_id``) for the two fill events; ``order`` is the order after it."""

    event: str
    order: BrokerOrder
    fill: Fill | None = None
    time: pd.Timestamp | None = None
    sequence: int = 0


@runtime_checkable
class Broker(Protocol):
    """What the order manager needs of a broker. Every call may raise the errors above;
    reads raise only ``TemporaryBrokerError`` (and subclasses)."""

    #: how long after a request a broker may still not show the order (lookup settles
    #: an UNKNOWN order as never arrived only once this has passed)
    ack_window: pd.Timedelta

    def submit(self, intent: OrderIntent) -> BrokerOrder:
        """Place the order. Raises OrderRejected, DuplicateClientOrderId, RateLimited,
        OutcomeUnknown (timeout / lost reply: it may exist) or TemporaryBrokerError."""
        ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client id, None if the broker has none."""
        ...

    def cancel(self, client_order_id: str) -> None:
        """Ask to cancel (the outcome arrives as an update). Raises OrderNotFound, or
        OrderRejected when the order is no longer open."""
        ...

    def open_orders(self) -> list[BrokerOrder]:
        """Every order not in a terminal state, bracket legs included."""
        ...

    def orders(self, since: pd.Timestamp | None = None) -> list[BrokerOrder]:
        """The order history: every order created at or after ``since`` (all: None), ended
        ones and legs included, oldest first (reconciliation compares it with the
        journal: a filled order deleted or edited at the broker is a difference)."""
        ...

    def positions(self) -> dict[str, Position]:
        """Non-flat positions by symbol (signed quantities)."""
        ...

    def account(self) -> Account:
        ...

    def fills(self, client_order_id: str | None = None,
              since: pd.Timestamp | None = None) -> list[Fill]:
        """Executions (all, one order's, or those at or after ``since``), oldest first."""
        ...

    def updates(self) -> Iterator[BrokerUpdate]:
        """The updates that arrived since the last call (non-blocking; may be empty).
        Delivery is at most once per broker object: after a restart, what was missed is
        found through ``fills`` and ``get_order`` (reconciliation)."""
        ...
