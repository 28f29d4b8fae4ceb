"""Alpaca's JSON (alpaca-py with ``raw_data=True``) to the project's model, and back.

Everything that crosses the adapter's boundary is translated here, explicitly:

* **intents -> requests** (:func:`order_request`): market, limit, stop; ``BRACKET`` as
  ``order_class="bracket"`` (a market entry, or a limit entry with ``limit_price``) with
  ``take_profit.limit_price`` and ``stop_loss.stop_price``; ``OCO`` with both levels as
  ``order_class="oco"`` (a limit at the take profit with ``stop_loss.stop_price``), with
  one level as a plain stop or limit; a notional buy as ``notional``. Prices come
  already rounded (:mod:`.prices`); quantities are sent as numbers.
* **orders -> BrokerOrder** (:class:`Labels`): the project names bracket legs
  ``<entry>.sl`` / ``<entry>.tp`` (``parent_id`` the entry, ``leg`` ``stop_loss`` /
  ``take_profit``), as the simulated broker does; Alpaca gives legs client ids of its own
  and no parent pointer, so the adapter keeps a map from Alpaca's order ids to these
  labels, learned from every order tree it sees (``nested=true``). An oco at Alpaca is a
  take-profit limit (the parent, carrying our client id) with a stop leg; the project's
  oco (the simulated broker's) is the stop with a ``.tp`` limit leg. The labels swap them:
  Alpaca's stop leg is our ``<id>`` (``OrderType.OCO``), its parent our ``<id>.tp``, so
  fills land on the same client ids on both brokers.
* **statuses**: ``filled``, ``canceled``, ``expired``, ``rejected`` map to themselves;
  ``replaced`` is ``CANCELED`` (reason says replaced: the adapter never replaces); every
  open status (``new``, ``accepted``, ``pending_new``, ``held`` (a leg waiting for its
  entry), ``done_for_day``, ``pending_cancel``, ``suspended``, ...) is ``ACCEPTED``, or
  ``PARTIALLY_FILLED`` once something filled. A status whose name differs from ours is
  kept in ``reason`` ("alpaca status held").
* **fills**: trade updates ``fill``/``partial_fill`` carry the execution (``execution_id``,
  ``price``, ``qty``); Alpaca charges no commission on stock trades, so ``fee`` is 0
  (regulatory fees are separate account activities, not booked here).
* Order types the adapter never sends (``stop_limit``, ``trailing_stop``: a manual order)
  become ``STOP`` (with the limit kept) and say so in ``reason``; time in force other than
  day/gtc becomes ``DAY``, said in ``reason``. They are only ever listed (reconciliation
  reports them as orders this run did not place), never acted on.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

import pandas as pd

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.enums import OrderClass
    from alpaca.trading.enums import OrderSide as AlpacaSide
    from alpaca.trading.enums import TimeInForce as AlpacaTif
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        OrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )

from workbench.brokers.base import BrokerOrder, BrokerUpdate
from workbench.model import Fill, OrderIntent, OrderStatus, OrderType, Position, Side, TimeInForce

__all__ = ["Label", "Labels", "decimal", "execution_id_of_activity", "fill_activities",
           "fill_from_activity",
           "fill_from_update", "order_request",
           "position", "status_of", "timestamp", "update_from"]

S = OrderStatus
_ZERO = Decimal(0)
_TERMINAL = {"filled": S.FILLED, "canceled": S.CANCELED, "expired": S.EXPIRED,
             "rejected": S.REJECTED, "replaced": S.CANCELED}
_OPEN = {"new", "accepted", "pending_new", "accepted_for_bidding", "held", "done_for_day",
         "pending_cancel", "pending_replace", "pending_review", "calculated", "stopped",
         "suspended", "partially_filled"}
_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}


def decimal(value) -> Decimal | None:
    """A JSON number or numeric string as a Decimal (None for null or empty)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def timestamp(value) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def status_of(raw: dict) -> tuple[OrderStatus, str | None]:
    """Our status of an Alpaca order, and a reason when Alpaca's name says more."""
    name = str(raw.get("status") or "")
    if name in _TERMINAL:
        status = _TERMINAL[name]
    elif name in _OPEN:
        filled = decimal(raw.get("filled_qty")) or _ZERO
        status = S.PARTIALLY_FILLED if filled > 0 else S.ACCEPTED
    else:
        raise ValueError(f"unknown Alpaca order status {name!r}")
    return status, (None if name == status.value else f"alpaca status {name}")


# -- requests -----------------------------------------------------------------------------
def order_request(intent: OrderIntent, prices: dict[str, Decimal | None]) -> OrderRequest:
    """The alpaca-py request for ``intent`` with ``prices`` (already on Alpaca's grid)."""
    common = {"symbol": intent.symbol, "side": AlpacaSide(intent.side.value),
              "time_in_force": AlpacaTif(intent.time_in_force.value),
              "client_order_id": intent.client_order_id}
    if intent.notional is not None:
        common["notional"] = float(intent.notional)
    else:
        common["qty"] = float(intent.quantity)
    kind, p = intent.order_type, {k: (float(v) if v is not None else None)
                                  for k, v in prices.items()}
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if kind is OrderType.LIMIT:
        return LimitOrderRequest(**common, limit_price=p["limit_price"])
    if kind is OrderType.STOP:
        return StopOrderRequest(**common, stop_price=p["stop_price"])
    if kind is OrderType.BRACKET:
        legs = {"order_class": OrderClass.BRACKET,
                "take_profit": TakeProfitRequest(limit_price=p["take_profit"]),
                "stop_loss": StopLossRequest(stop_price=p["stop_loss"])}
        if p["limit_price"] is not None:
            return LimitOrderRequest(**common, **legs, limit_price=p["limit_price"])
        return MarketOrderRequest(**common, **legs)
    if kind is OrderType.OCO:
        if p["take_profit"] is not None and p["stop_loss"] is not None:
            return LimitOrderRequest(**common, order_class=OrderClass.OCO,
                                     take_profit=TakeProfitRequest(limit_price=p["take_profit"]),
                                     stop_loss=StopLossRequest(stop_price=p["stop_loss"]))
        if p["stop_loss"] is not None:
            return StopOrderRequest(**common, stop_price=p["stop_loss"])
        return LimitOrderRequest(**common, limit_price=p["take_profit"])
    raise ValueError(f"order type {kind} has no Alpaca request")


# -- orders -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Label:
    """How the project names one Alpaca order."""

    client_order_id: str
    order_type: OrderType
    parent_id: str | None = None
    leg: str | None = None


def _leg_kind(raw: dict) -> str:
    kind = str(raw.get("type") or raw.get("order_type") or "")
    return "stop_loss" if kind in ("stop", "stop_limit", "trailing_stop") else "take_profit"


class Labels:
    """Alpaca order id -> :class:`Label`, learned from order trees; thread-safe."""

    def __init__(self) -> None:
        self._by_id: dict[str, Label] = {}
        self._ids: dict[str, str] = {}  # our client id -> Alpaca order id
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def broker_id(self, client_order_id: str) -> str | None:
        with self._lock:
            return self._ids.get(client_order_id)

    def label(self, raw: dict) -> Label | None:
        with self._lock:
            return self._by_id.get(str(raw.get("id")))

    def _set(self, raw: dict, label: Label) -> None:
        with self._lock:
            self._by_id[str(raw["id"])] = label
            self._ids[label.client_order_id] = str(raw["id"])

    def learn(self, raw: dict) -> BrokerOrder:
        """Label a top-level order and its legs (``nested``); the project's view of it:
        the order a client id names, with its legs."""
        cid = str(raw["client_order_id"])
        cls = str(raw.get("order_class") or "simple")
        legs = list(raw.get("legs") or [])
        if cls == "oco" and legs:  # Alpaca: parent = take profit, leg = stop; ours: reversed
            stop = next((leg for leg in legs if _leg_kind(leg) == "stop_loss"), legs[0])
            self._set(raw, Label(f"{cid}.tp", OrderType.LIMIT, cid, "take_profit"))
            self._set(stop, Label(cid, OrderType.OCO))
            tp = self.order(raw)
            main = self.order(stop, take_profit=decimal(raw.get("limit_price")),
                              stop_loss=decimal(stop.get("stop_price")), stop_price=None)
            return _with_legs(main, (tp,))
        if cls in ("bracket", "oto", "oco"):
            kind = OrderType.BRACKET if cls == "bracket" else OrderType.OCO
            self._set(raw, Label(cid, kind))
            suffix = {"stop_loss": "sl", "take_profit": "tp"}
            for leg in legs:
                name = _leg_kind(leg)
                self._set(leg, Label(f"{cid}.{suffix[name]}",
                                     OrderType.STOP if name == "stop_loss" else OrderType.LIMIT,
                                     cid, name))
            children = tuple(self.order(leg) for leg in legs)
            levels = {c.leg: (c.stop_price if c.leg == "stop_loss" else c.limit_price)
                      for c in children}
            main = self.order(raw, take_profit=levels.get("take_profit"),
                              stop_loss=levels.get("stop_loss"))
            return _with_legs(main, children)
        kind = _TYPES.get(str(raw.get("type") or raw.get("order_type") or ""), OrderType.STOP)
        self._set(raw, Label(cid, kind))
        return self.order(raw)

    def order(self, raw: dict, **override) -> BrokerOrder:
        """One Alpaca order (no legs) as a ``BrokerOrder``, named by its label (an order
        never seen in a tree is named by its own client id)."""
        label = self.label(raw) or Label(str(raw["client_order_id"]), _TYPES.get(
            str(raw.get("type") or raw.get("order_type") or ""), OrderType.STOP))
        status, reason = status_of(raw)
        notes = [reason] if reason else []
        kind_name = str(raw.get("type") or raw.get("order_type") or "")
        if kind_name and kind_name not in _TYPES:
            notes.append(f"alpaca type {kind_name}")
        tif_name = str(raw.get("time_in_force") or "day")
        if tif_name not in ("day", "gtc"):
            notes.append(f"alpaca time_in_force {tif_name}")
        filled = decimal(raw.get("filled_qty")) or _ZERO
        avg = decimal(raw.get("filled_avg_price"))
        qty = decimal(raw.get("qty"))
        order = BrokerOrder(
            client_order_id=label.client_order_id, broker_order_id=str(raw["id"]),
            symbol=str(raw.get("symbol") or ""), side=Side(str(raw.get("side"))),
            quantity=qty if qty is not None else filled, order_type=label.order_type,
            status=status, filled_quantity=filled,
            average_price=avg if avg and filled > 0 else None,
            limit_price=decimal(raw.get("limit_price")),
            stop_price=decimal(raw.get("stop_price")),
            time_in_force=TimeInForce(tif_name) if tif_name in ("day", "gtc") else TimeInForce.DAY,
            parent_id=label.parent_id, leg=label.leg,
            reason="; ".join(notes) or None,
            created_at=timestamp(raw.get("created_at")),
            updated_at=timestamp(raw.get("updated_at")))
        return replace(order, **override) if override else order


def _with_legs(order: BrokerOrder, legs: tuple[BrokerOrder, ...]) -> BrokerOrder:
    return replace(order, legs=legs)


# -- fills, positions ---------------------------------------------------------------------
def fill_from_update(data: dict, order: BrokerOrder) -> Fill:
    """The execution of a ``fill``/``partial_fill`` trade update (``order`` translated)."""
    return Fill(execution_id=str(data["execution_id"]), client_order_id=order.client_order_id,
                symbol=order.symbol, side=order.side, quantity=decimal(data["qty"]),
                price=decimal(data["price"]), fee=_ZERO,
                time=timestamp(data.get("timestamp")))


def update_from(data: dict, labels: Labels, events: dict[str, str], sequence: int) -> BrokerUpdate:
    """One trade update's ``data`` as a ``BrokerUpdate``: its order named by ``labels``
    (an order never seen, with its legs when nested, is learned here), the event renamed by
    ``events`` (``new`` -> ``accepted``, ...; others keep Alpaca's name), the fill for
    ``fill``/``partial_fill``. Raises ValueError/KeyError/TypeError when malformed."""
    raw = data["order"]
    if labels.label(raw) is None:
        labels.learn(raw)
    order = labels.order(raw)
    event = str(data.get("event") or "")
    fill = fill_from_update(data, order) if event in ("fill", "partial_fill") else None
    return BrokerUpdate(events.get(event, event), order, fill, timestamp(data.get("timestamp")),
                        sequence)


def execution_id_of_activity(act: dict) -> str:
    """The execution id of a FILL activity: its ``execution_id`` when present, else the
    part of its ``id`` after ``::`` (``20210127144930176::ddc0a142-...``)."""
    if act.get("execution_id"):
        return str(act["execution_id"])
    return str(act["id"]).split("::")[-1]


def fill_activities(read, since=None) -> list[dict]:
    """Every FILL activity at or after ``since`` (all when None), oldest first;
    ``read(params)`` sends one ``GET /v2/account/activities/FILL`` and returns its page.
    Pages of 100 are followed by ``page_token`` (the last activity's id). Alpaca's
    ``after`` is strict and ``since`` inclusive: one microsecond earlier is asked."""
    params: dict = {"direction": "asc", "page_size": 100}
    if since is not None:
        params["after"] = (timestamp(since) - pd.Timedelta(1, "us")).isoformat()
    out: list[dict] = []
    while True:
        page = read(dict(params)) or []
        out += [a for a in page if str(a.get("activity_type", "FILL")) == "FILL"]
        if len(page) < params["page_size"]:
            return out
        params["page_token"] = str(page[-1]["id"])


def fill_from_activity(act: dict, client_order_id: str) -> Fill:
    side = str(act.get("side") or "")
    return Fill(execution_id=execution_id_of_activity(act), client_order_id=client_order_id,
                symbol=str(act["symbol"]), side=Side.BUY if side == "buy" else Side.SELL,
                quantity=decimal(act["qty"]), price=decimal(act["price"]), fee=_ZERO,
                time=timestamp(act.get("transaction_time")))


def position(raw: dict) -> Position:
    """A position, signed (Alpaca's ``side`` ``short`` makes it negative)."""
    qty = decimal(raw["qty"])
    if str(raw.get("side")) == "short" and qty > 0:
        qty = -qty
    return Position(str(raw["symbol"]), qty, decimal(raw["avg_entry_price"]))
