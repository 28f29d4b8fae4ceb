"""Journal payloads of the order path as plain JSON values, and back.

Decimals travel as strings (exact), times as ISO-8601 UTC strings, enums as their values,
so any journal format (JSON Lines, SQLite) stores them without loss.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from workbench.brokers.base import BrokerOrder
from workbench.model import Fill, OrderIntent, OrderType, Position, Side, TimeInForce

__all__ = [
    "dec",
    "fill_from",
    "fill_payload",
    "intent_from",
    "intent_payload",
    "order_payload",
    "plain",
    "position_from",
    "position_payload",
    "ts",
]

_INTENT_DECIMALS = ("quantity", "notional", "limit_price", "stop_price", "take_profit",
                    "stop_loss")


def plain(value):
    """``value`` as a JSON value: Decimal -> str, Timestamp -> ISO str, enum -> its value."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return str(value)


def dec(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def ts(value) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")


def intent_payload(intent: OrderIntent) -> dict:
    return {"client_order_id": intent.client_order_id, "symbol": intent.symbol,
            "side": plain(intent.side), "quantity": plain(intent.quantity),
            "order_type": plain(intent.order_type), "limit_price": plain(intent.limit_price),
            "stop_price": plain(intent.stop_price), "take_profit": plain(intent.take_profit),
            "stop_loss": plain(intent.stop_loss), "time_in_force": plain(intent.time_in_force),
            "bar_time": plain(intent.bar_time), "reason": intent.reason,
            **({} if intent.notional is None else {"notional": plain(intent.notional)})}


def intent_from(p: dict) -> OrderIntent:
    return OrderIntent(
        client_order_id=p["client_order_id"], symbol=p["symbol"], side=Side(p["side"]),
        quantity=dec(p["quantity"]), order_type=OrderType(p["order_type"]),
        limit_price=dec(p.get("limit_price")), stop_price=dec(p.get("stop_price")),
        take_profit=dec(p.get("take_profit")), stop_loss=dec(p.get("stop_loss")),
        time_in_force=TimeInForce(p.get("time_in_force", "day")), bar_time=ts(p.get("bar_time")),
        reason=p.get("reason", "signal"), notional=dec(p.get("notional")))


def fill_payload(fill: Fill) -> dict:
    return {"execution_id": fill.execution_id, "client_order_id": fill.client_order_id,
            "symbol": fill.symbol, "side": plain(fill.side), "quantity": plain(fill.quantity),
            "price": plain(fill.price), "fee": plain(fill.fee), "fill_time": plain(fill.time)}


def fill_from(p: dict) -> Fill:
    return Fill(p["execution_id"], p["client_order_id"], p["symbol"], Side(p["side"]),
                dec(p["quantity"]), dec(p["price"]), dec(p["fee"]), ts(p["fill_time"]))


def position_payload(position: Position) -> dict:
    return {"symbol": position.symbol, "quantity": plain(position.quantity),
            "average_price": plain(position.average_price)}


def position_from(p: dict) -> Position:
    return Position(p["symbol"], dec(p["quantity"]), dec(p["average_price"]))


def order_payload(order: BrokerOrder) -> dict:
    """A broker order as an intent payload plus the broker's view of it."""
    return {**intent_payload(order.intent()), "status": plain(order.status),
            "broker_order_id": order.broker_order_id, "parent_id": order.parent_id,
            "leg": order.leg, "filled_quantity": plain(order.filled_quantity),
            "average_price": plain(order.average_price), "reason": order.reason}
