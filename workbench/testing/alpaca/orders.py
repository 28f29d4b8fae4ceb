"""Orders at the fake broker: the :class:`BookOrder` record, reading alpaca-py's order body
(:func:`parse_order`, every refusal a 422 naming the field) and writing Alpaca's order JSON
(:func:`order_json`, every field alpaca-py's ``Order`` model requires)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pandas as pd

from workbench.brokers.base import OrderRejected
from workbench.brokers.sim_rules import check_bracket
from workbench.model import OrderIntent, OrderType, Side
from workbench.testing.alpaca.answers import ApiError, iso, num

__all__ = ["TERMINAL", "TYPES", "BookOrder", "asset_id", "decimal", "order_json", "parse_order"]

ZERO = Decimal(0)
TERMINAL = ("filled", "canceled", "expired", "replaced", "rejected")
TYPES = ("market", "limit", "stop", "stop_limit")
_NAMESPACE = uuid.UUID("6f1c2b1e-4a63-4d49-9a7e-3b7f1d2c9e10")


def decimal(value, name: str) -> Decimal | None:
    """A positive Decimal from a JSON number or string (None for absent); 422 otherwise."""
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ApiError(422, 40010001, f"invalid {name}: {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ApiError(422, 40010001, f"{name} must be a positive number, got {value!r}")
    return d


def asset_id(symbol: str) -> str:
    """A stable UUID per symbol (Alpaca's asset id)."""
    return str(uuid.uuid5(_NAMESPACE, symbol))


@dataclass
class BookOrder:
    """One order at the fake broker (a bracket's legs are orders with ``parent``)."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal | None
    type: str
    time_in_force: str
    created_at: pd.Timestamp
    seq: int
    notional: Decimal | None = None
    order_class: str = "simple"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    status: str = "new"
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    updated_at: pd.Timestamp | None = None
    filled_at: pd.Timestamp | None = None
    canceled_at: pd.Timestamp | None = None
    expired_at: pd.Timestamp | None = None
    replaced_at: pd.Timestamp | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    parent: str | None = None  # the entry's id, for a bracket leg
    leg: str | None = None  # stop_loss | take_profit
    legs: list[str] = field(default_factory=list)
    not_before: pd.Timestamp | None = None
    active_from: pd.Timestamp | None = None  # a leg: armed after this bar
    triggered: bool = False  # a stop-limit whose stop has been reached
    manual: bool = False  # placed behind the client's back (an operator's order)
    reject_reason: str | None = None  # the fake's own record; Alpaca's JSON has no such field

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL


def parse_order(body: Mapping) -> dict:
    """The fields of a new order from alpaca-py's JSON body: ``symbol``, ``side``, ``qty``,
    ``notional``, ``type``, ``time_in_force``, ``order_class``, ``limit_price``,
    ``stop_price``, ``client_order_id`` (None: the broker makes one) and ``legs`` (a
    bracket's or an oco's ``{leg: (type, limit, stop)}``; an oco is Alpaca's: the order is the
    take-profit limit, its one leg the stop loss). ApiError 422 for anything the fake refuses."""
    if not isinstance(body, Mapping):
        raise ApiError(422, 40010001, "the request body must be a JSON object")
    symbol = str(body.get("symbol") or "").upper()
    if not symbol:
        raise ApiError(422, 40010001, "symbol is required")
    try:
        side = Side(str(body.get("side", "")).lower())
    except ValueError:
        raise ApiError(422, 40010001, f"invalid side {body.get('side')!r}") from None
    kind = str(body.get("type") or body.get("order_type") or "").lower()
    if kind not in TYPES:
        raise ApiError(422, 40010001, f"invalid order type {kind!r} (the fake serves "
                                      f"{', '.join(TYPES)})")
    tif = str(body.get("time_in_force") or "").lower()
    if tif not in ("day", "gtc"):
        raise ApiError(422, 40010001, f"invalid time_in_force {tif!r} (the fake serves "
                                      "day and gtc)")
    order_class = str(body.get("order_class") or "simple").lower()
    if order_class not in ("simple", "bracket", "oco"):
        raise ApiError(422, 40010001, f"order_class {order_class!r} is not served by the "
                                      "fake (simple, bracket and oco are)")
    qty, notional = decimal(body.get("qty"), "qty"), decimal(body.get("notional"), "notional")
    if (qty is None) == (notional is None):
        raise ApiError(422, 40010001, "qty or notional is required, not both")
    if notional is not None and (kind != "market" or order_class != "simple"):
        raise ApiError(422, 40010001, "notional is for simple market orders only")
    limit = decimal(body.get("limit_price"), "limit_price")
    stop = decimal(body.get("stop_price"), "stop_price")
    legs = {}
    if order_class == "oco":  # Alpaca's shape: a take-profit limit with a stop-loss leg
        if kind != "limit":
            raise ApiError(422, 40010001, "an oco order is a limit order (the take profit)")
        limit, legs = _oco(body, symbol, side, qty, limit)
    if kind in ("limit", "stop_limit") and limit is None:
        raise ApiError(422, 40010001, f"limit_price is required for a {kind} order")
    if kind in ("stop", "stop_limit") and stop is None:
        raise ApiError(422, 40010001, f"stop_price is required for a {kind} order")
    if kind in ("market", "stop") and limit is not None:
        raise ApiError(422, 40010001, f"a {kind} order takes no limit_price")
    if kind in ("market", "limit") and stop is not None:
        raise ApiError(422, 40010001, f"a {kind} order takes no stop_price")
    cid = body.get("client_order_id")
    if cid is not None and (not isinstance(cid, str) or not 0 < len(cid) <= 128):
        raise ApiError(422, 40010001, "client_order_id must be a string of 1 to 128 characters")
    if order_class == "bracket":
        legs = _bracket(body, symbol, side, qty, kind, limit)
    return {"symbol": symbol, "side": side, "qty": qty, "notional": notional, "type": kind,
            "time_in_force": tif, "order_class": order_class, "limit_price": limit,
            "stop_price": stop, "client_order_id": cid, "legs": legs}


def _bracket(body, symbol, side, qty, kind, limit) -> dict:
    if kind not in ("market", "limit"):
        raise ApiError(422, 40010001, "a bracket's entry is a market or limit order")
    tp_price, sl_stop, sl_limit = _levels(body)
    if tp_price is None or sl_stop is None:
        raise ApiError(422, 40010001, "a bracket needs take_profit.limit_price and "
                                      "stop_loss.stop_price")
    try:  # the sim broker's rule: the stop loss on the losing side of the take profit
        check_bracket(OrderIntent("bracket-check", symbol, side, qty, OrderType.BRACKET,
                                  limit_price=limit, take_profit=tp_price, stop_loss=sl_stop))
    except OrderRejected as e:
        raise ApiError(422, 42210000, str(e)) from None
    return {"stop_loss": ("stop" if sl_limit is None else "stop_limit", sl_limit, sl_stop),
            "take_profit": ("limit", tp_price, None)}


def _levels(body) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    tp, sl = body.get("take_profit") or {}, body.get("stop_loss") or {}
    return (decimal(tp.get("limit_price"), "take_profit.limit_price"),
            decimal(sl.get("stop_price"), "stop_loss.stop_price"),
            decimal(sl.get("limit_price"), "stop_loss.limit_price"))


def _oco(body, symbol, side, qty, limit) -> tuple[Decimal, dict]:
    tp_price, sl_stop, sl_limit = _levels(body)
    if tp_price is None or sl_stop is None:
        raise ApiError(422, 40010001, "an oco order needs take_profit.limit_price and "
                                      "stop_loss.stop_price")
    if limit is not None and limit != tp_price:
        raise ApiError(422, 40010001, "an oco order's limit_price is its take_profit's")
    try:  # the sim broker's rule: the stop loss on the losing side of the take profit
        check_bracket(OrderIntent("oco-check", symbol, side, qty, OrderType.OCO,
                                  take_profit=tp_price, stop_loss=sl_stop))
    except OrderRejected as e:
        raise ApiError(422, 42210000, str(e)) from None
    return tp_price, {"stop_loss": ("stop" if sl_limit is None else "stop_limit", sl_limit,
                                    sl_stop)}


def order_json(o: BookOrder, legs: list[BookOrder] | None) -> dict:
    """Alpaca's order JSON; ``legs`` rendered (not nested further) when given."""
    return {
        "id": o.id, "client_order_id": o.client_order_id,
        "created_at": iso(o.created_at), "updated_at": iso(o.updated_at or o.created_at),
        "submitted_at": iso(o.created_at), "filled_at": iso(o.filled_at),
        "expired_at": iso(o.expired_at), "canceled_at": iso(o.canceled_at),
        "failed_at": None, "replaced_at": iso(o.replaced_at), "replaced_by": o.replaced_by,
        "replaces": o.replaces, "asset_id": asset_id(o.symbol), "symbol": o.symbol,
        "asset_class": "us_equity", "notional": num(o.notional), "qty": num(o.qty),
        "filled_qty": num(o.filled_qty), "filled_avg_price": num(o.filled_avg_price),
        "order_class": o.order_class, "order_type": o.type, "type": o.type,
        "side": o.side.value, "time_in_force": o.time_in_force,
        "limit_price": num(o.limit_price), "stop_price": num(o.stop_price), "status": o.status,
        "extended_hours": False,
        "legs": None if legs is None else [order_json(leg, None) for leg in legs],
        "trail_percent": None, "trail_price": None, "hwm": None, "position_intent": None,
    }
