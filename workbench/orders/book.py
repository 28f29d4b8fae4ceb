"""The order manager's state, and the one function that moves it: :func:`apply`.

The manager journals an event, then applies it here; :func:`rebuild` applies a run's
journaled events in order. Both go through :func:`apply`, so the state after a restart is
the state before it, and :func:`rebuild` is a pure function of the events.

Events of other components (signals, risk decisions, heartbeats) are ignored. An order
still NEW at the end of a replayed journal had its intent journaled but no reply: the
process died around the broker call, so :func:`rebuild` marks it UNKNOWN (unknown since
the intent's time), to be settled by lookup, never resent.

Event types are :mod:`workbench.model.events`' (this package never writes a journal
itself: it appends to an ``EventSink``), payloads the shapes of :mod:`workbench.model.codec`
(a broker's order: :func:`order_payload`). Journals written before the names were unified
call the intent ``order_intent``, and before the shapes were unified a fill's time
``fill_time``; :func:`apply` reads an old spelling as today's (``canonical_type``, the
codec's ``LEGACY_FIELDS``), so such runs still rebuild.

A fill or status report the state table refuses is an *anomaly*: recorded (the
reconciliation reports it and the session halts), never silently dropped; the fill still
moves cash and positions, because the money moved at the broker.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from workbench.brokers.base import BrokerOrder
from workbench.model import Fill, Order, OrderIntent, OrderStatus, Position
from workbench.model import events as ev
from workbench.model.codec import decimal_of, decode, encode
from workbench.model.codec import time_of as _parse_time
from workbench.orders.ledger import Ledger
from workbench.orders.states import Event, EventKind, IllegalTransition, catch_up, transition
from workbench.plain import plain

__all__ = ["EVENT_TYPES", "OrderBook", "apply", "order_payload", "rebuild"]

S = OrderStatus


@functools.lru_cache(maxsize=4096)
def time_of(value):
    """:func:`workbench.model.codec.time_of`, remembered: a bar's events share a few
    times, and parsing one ISO text costs more than the rest of an event's reducer."""
    return _parse_time(value)


EVENT_TYPES = (ev.ACCOUNT_SNAPSHOT, ev.INTENT, ev.BROKER_REQUEST, ev.BROKER_REPLY,
               ev.ORDER_UNKNOWN, ev.ORDER_SETTLED, ev.ORDER_LEG, ev.ORDER_UPDATE, ev.FILL,
               ev.UNMATCHED_UPDATE, ev.POSITION, ev.RECONCILE)


@dataclass
class OrderBook:
    """Orders by client id, bracket legs, the ledger, executions seen, anomalies."""

    orders: dict[str, Order] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # leg client id -> entry's
    ledger: Ledger = field(default_factory=Ledger)
    executions: set[str] = field(default_factory=set)
    fills: dict[str, Fill] = field(default_factory=dict)  # this journal's fills by execution id
    unknown_since: dict[str, pd.Timestamp] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why rejected / canceled / expired
    anomalies: list[str] = field(default_factory=list)
    started_at: pd.Timestamp | None = None  # the account snapshot's time
    open: dict[str, Order] = field(default_factory=dict)  # the non-terminal subset of orders

    def open_orders(self) -> dict[str, Order]:
        return dict(self.open)

    def legs(self, parent_id: str) -> list[str]:
        return [leg for leg, parent in self.parents.items() if parent == parent_id]


def _set(book: OrderBook, order: Order) -> None:
    """The one place an order changes: keeps the open-order index with it."""
    book.orders[order.client_order_id] = order
    if order.status.is_terminal:
        book.open.pop(order.client_order_id, None)
    else:
        book.open[order.client_order_id] = order
    if order.status is not S.UNKNOWN:
        book.unknown_since.pop(order.client_order_id, None)


def _guarded(book: OrderBook, cid: str, step) -> None:
    """Apply ``step(order) -> order`` to order ``cid``; a refusal is an anomaly."""
    order = book.orders.get(cid)
    if order is None:
        book.anomalies.append(f"update for order {cid} the journal does not know")
        return
    try:
        _set(book, step(order))
    except IllegalTransition as e:
        book.anomalies.append(str(e))


def order_payload(order: BrokerOrder) -> dict:
    """The journal shape of a broker's order (an order leg, an order open at the start):
    the intent it carries out (the codec's ``OrderIntent`` fields, untagged) and the
    broker's view of it (status, ids, leg, fills so far, why it ended)."""
    return {**encode(order.intent(), tag=False), **plain({
        "status": order.status, "broker_order_id": order.broker_order_id,
        "parent_id": order.parent_id, "leg": order.leg,
        "filled_quantity": order.filled_quantity, "average_price": order.average_price,
        "reason": order.reason})}


def _snapshot(book: OrderBook, p: dict) -> None:
    book.ledger = Ledger(decimal_of(p["cash"]),
                         {q["symbol"]: decode(q, Position) for q in p["positions"]})
    book.started_at = time_of(p["time"])
    book.executions.update(p.get("executions", ()))
    for o in p.get("open_orders", ()):
        _register(book, o)


def _register(book: OrderBook, p: dict) -> None:
    """An order learned from the broker (a bracket leg, an order open at the start)."""
    filled = decimal_of(p.get("filled_quantity")) or Decimal(0)
    order = Order(decode(p, OrderIntent), S(p["status"]), p.get("broker_order_id"), filled,
                  decimal_of(p.get("average_price")), time_of(p.get("time")))
    if order.client_order_id not in book.orders:
        _set(book, order)
    if p.get("parent_id"):
        book.parents[order.client_order_id] = p["parent_id"]


def _intent(book: OrderBook, p: dict, intent: OrderIntent | None = None) -> None:
    intent = intent if intent is not None else decode(p, OrderIntent)
    if intent.client_order_id not in book.orders:
        _set(book, Order(intent, updated_at=time_of(p["time"])))


def _reply(book: OrderBook, p: dict) -> None:
    if p.get("action") not in ("submit", "resubmit") or p["outcome"] in ("duplicate", "unknown"):
        return  # cancel replies change nothing: the outcome arrives as an update
    cid, when = p["client_order_id"], time_of(p["time"])
    if p["outcome"] == "rejected":
        book.reasons[cid] = p.get("reason") or "rejected"
        _guarded(book, cid, lambda o: transition(o, Event(EventKind.REJECT, time=when)))
    else:
        _guarded(book, cid, lambda o: catch_up(o, S(p["status"]), when, p.get("broker_order_id")))


def _unknown(book: OrderBook, p: dict) -> None:
    cid, when = p["client_order_id"], time_of(p["time"])
    _guarded(book, cid, lambda o: transition(o, Event(EventKind.LOSE, time=when)))
    book.unknown_since.setdefault(cid, when)


def _settled(book: OrderBook, p: dict) -> None:
    cid, when = p["client_order_id"], time_of(p["time"])
    if p["found"]:  # the real status follows as fills and updates
        _guarded(book, cid, lambda o: catch_up(o, S.ACCEPTED, when, p.get("broker_order_id")))
    else:
        book.reasons[cid] = p.get("reason") or "never arrived"
        _guarded(book, cid, lambda o: transition(o, Event(EventKind.REJECT, time=when)))


def _update(book: OrderBook, p: dict) -> None:
    cid, when = p["client_order_id"], time_of(p["time"])
    if p.get("reason"):
        book.reasons[cid] = p["reason"]
    _guarded(book, cid, lambda o: catch_up(o, S(p["status"]), when, p.get("broker_order_id")))


def _fill(book: OrderBook, p: dict, fill: Fill | None = None) -> None:
    fill = fill if fill is not None else decode(p, Fill)
    if fill.execution_id in book.executions:
        return
    book.executions.add(fill.execution_id)
    book.fills[fill.execution_id] = fill
    book.ledger.apply(fill)
    _guarded(book, fill.client_order_id, lambda o: _fill_order(o, fill))


def _fill_order(order: Order, fill: Fill) -> Order:
    order = catch_up(order, S.ACCEPTED, fill.time)  # a fill proves the order exists
    return transition(order, Event(EventKind.FILL, fill.quantity, fill.price, fill.time))


def _unmatched(book: OrderBook, p: dict) -> None:
    book.anomalies.append(f"broker {p.get('event')} for order {p['client_order_id']} "
                          f"({p.get('side')} {p.get('quantity')} {p.get('symbol')}) "
                          "that this run did not place")


_REDUCERS = {ev.ACCOUNT_SNAPSHOT: _snapshot, ev.INTENT: _intent, ev.BROKER_REPLY: _reply,
             ev.ORDER_UNKNOWN: _unknown, ev.ORDER_SETTLED: _settled, ev.ORDER_LEG: _register,
             ev.ORDER_UPDATE: _update, ev.FILL: _fill, ev.UNMATCHED_UPDATE: _unmatched}


_DECODED = (ev.INTENT, ev.FILL)  # reducers that take the payload's model object, if known


def apply(book: OrderBook, event_type: str, payload: dict, model: Any = None) -> None:
    """Move ``book`` by one journaled event (other event types are ignored; an old
    spelling of a type, as journals before the unified names hold, counts as today's).

    ``model``: the ``OrderIntent`` or ``Fill`` an intent's or a fill's payload encodes,
    when the caller holds it (the order manager, which journaled it): used instead of
    decoding the payload back, the same object by value (``encode_model`` then ``decode``
    gives it back field for field; ``tests/test_order_manager.py`` checks it)."""
    kind = ev.canonical_type(event_type)
    reducer = _REDUCERS.get(kind)
    if reducer is None:
        return
    if model is not None and kind in _DECODED:
        reducer(book, payload, model)
    else:
        reducer(book, payload)


def _split(event: Any) -> tuple[str, dict]:
    """(type, payload) of a journal event: a pair, a mapping with ``type`` and either a
    ``payload`` mapping or the fields inline, or an object with ``.type``/``.payload``."""
    if isinstance(event, tuple):
        return event[0], dict(event[1])
    if isinstance(event, dict):
        if isinstance(event.get("payload"), dict):
            return event["type"], event["payload"]
        return event["type"], {k: v for k, v in event.items() if k != "type"}
    return event.type, dict(event.payload)


def rebuild(events: Iterable[Any]) -> OrderBook:
    """The state the journaled ``events`` (in order) describe; see the module doc."""
    book = OrderBook()
    intents: dict[str, pd.Timestamp] = {}
    for event in events:
        kind, payload = _split(event)
        kind = ev.canonical_type(kind)
        try:
            apply(book, kind, payload)
            if kind == ev.INTENT:
                intents[payload["client_order_id"]] = time_of(payload["time"])
        except (ArithmeticError, ValueError, TypeError, KeyError) as e:
            if getattr(event, "where", None) is None:
                raise
            raise event.damaged(e) from e  # a journal line (before checksums) that is damaged
    for cid, order in list(book.orders.items()):
        if order.status is S.NEW:  # intent journaled, reply never journaled
            _set(book, transition(order, Event(EventKind.LOSE, time=intents.get(cid))))
            book.unknown_since[cid] = intents.get(cid) or pd.Timestamp(0, tz="UTC")
    return book
