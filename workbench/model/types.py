"""Frozen value types: signals, intents, orders, fills, positions, the account."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from workbench.model.enums import OrderStatus, OrderType, Side, TimeInForce

__all__ = ["Account", "Fill", "Order", "OrderIntent", "Position", "Signal", "to_decimal"]

_CENT = Decimal("0.0001")


def to_decimal(value, places: Decimal = _CENT) -> Decimal:
    """A float price or quantity from the data layer, as an exact Decimal (4 places)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(float(value))).quantize(places)


@dataclass(frozen=True, slots=True)
class Signal:
    """What the strategy said for one symbol at one bar (the bar's open time)."""

    strategy: str
    symbol: str
    bar_time: pd.Timestamp
    entry: bool = False
    exit: bool = False
    short_entry: bool = False
    short_exit: bool = False
    weight: float | None = None
    # the strategy's own stops at this bar (``Signals(sl_stop=...)``): fractions of the
    # entry fill price an entry of this bar is protected with; None: none given (or NaN)
    sl_stop: float | None = None
    tp_stop: float | None = None


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the session means to place; journaled before it is sent."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit: Decimal | None = None  # bracket legs; an oco's levels
    stop_loss: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    bar_time: pd.Timestamp | None = None
    reason: str = "signal"  # signal | stop_loss | take_profit | flatten | ...
    # a notional market order (Alpaca's ``notional``): buy (or sell short) this many
    # dollars' worth, fees included; the broker sets the shares at the fill price.
    # ``quantity`` is then the estimate at the last price that the risk gateway reviews.
    # (Alpaca takes notional sells only of fractional long positions: a notional short
    # sale is the simulated broker's, for a per-symbol account sized as the backtest.)
    notional: Decimal | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be positive, got {self.quantity}")
        if self.notional is not None and not (
                self.notional > 0 and self.order_type is OrderType.MARKET):
            raise ValueError("a notional order is a market order of a positive notional, got "
                             f"{self.side} {self.order_type} of {self.notional}")
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs a limit price")
        if self.order_type is OrderType.STOP and self.stop_price is None:
            raise ValueError("a stop order needs a stop price")
        if self.order_type is OrderType.BRACKET and (self.take_profit is None or self.stop_loss is None):
            raise ValueError("a bracket order needs take_profit and stop_loss")
        if self.order_type is OrderType.OCO and (
                (self.take_profit is None and self.stop_loss is None)
                or self.limit_price is not None or self.stop_price is not None):
            raise ValueError("an oco order needs stop_loss and/or take_profit (and no "
                             "limit_price or stop_price)")


@dataclass(frozen=True, slots=True)
class Order:
    """The order as last known: the intent plus the broker's view of it."""

    intent: OrderIntent
    status: OrderStatus = OrderStatus.NEW
    broker_order_id: str | None = None
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    updated_at: pd.Timestamp | None = None

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def remaining(self) -> Decimal:
        if self.intent.notional is not None and self.filled_quantity > 0:
            return Decimal(0)  # a notional order fills in one execution
        return self.intent.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution; ``execution_id`` is unique per broker and de-duplicates fills."""

    execution_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    time: pd.Timestamp


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: Decimal  # signed: negative is short
    average_price: Decimal

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0


@dataclass(frozen=True, slots=True)
class Account:
    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)

    def equity(self, prices: dict[str, Decimal]) -> Decimal:
        """Cash plus positions marked at ``prices`` (average price where none is given)."""
        return self.cash + sum(
            (p.quantity * prices.get(s, p.average_price) for s, p in self.positions.items()),
            Decimal(0),
        )
