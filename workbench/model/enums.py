"""Enumerations of the order path."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OrderStatus", "OrderType", "Side", "TimeInForce", "TradingState"]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    BRACKET = "bracket"  # entry with attached stop-loss and take-profit legs
    # a position's exit protection: a stop at ``stop_loss`` and/or a limit at ``take_profit``,
    # one cancels the other (Alpaca's order_class "oco"; one level alone: a plain stop/limit)
    OCO = "oco"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"


class OrderStatus(StrEnum):
    """The order state table's states (see ``workbench.orders``)."""

    NEW = "new"  # intent journaled, not yet acknowledged by the broker
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # the outcome of a request is not known: settle by lookup, never resend

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                        OrderStatus.EXPIRED)


class TradingState(StrEnum):
    ACTIVE = "active"  # entries and exits allowed
    REDUCING = "reducing"  # only orders that reduce exposure
    HALTED = "halted"  # nothing new; an operator resumes
