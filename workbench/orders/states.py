"""The order state table: every legal move of an order, and nothing else.

::

    NEW ──accept──► ACCEPTED ──fill──► PARTIALLY_FILLED ──fill──► FILLED
     │                 │  ╲ fill (whole rest) ───────────────────► FILLED
     │                 ├──cancel / expire / reject──► CANCELED / EXPIRED / REJECTED
     ├──reject──► REJECTED          PARTIALLY_FILLED ──cancel / expire──► CANCELED / EXPIRED
     └──lose──► UNKNOWN ◄──lose── ACCEPTED, PARTIALLY_FILLED   (a request's outcome is unknown)
                UNKNOWN ──found──► ACCEPTED (nothing filled) or PARTIALLY_FILLED
                UNKNOWN ──reject──► REJECTED (looked up, never arrived; nothing filled)

FILLED, CANCELED, REJECTED and EXPIRED are terminal: no event leaves them. A fill moves an
order to FILLED exactly when it completes the quantity and can never exceed it; a
notional order (``intent.notional``) is FILLED by its one execution, whose cost may not
exceed the notional (the shares are the broker's, set at the fill price). Anything
not in :data:`TABLE` raises :class:`IllegalTransition`; :func:`transition` is pure.

:func:`catch_up` moves an order toward a status a broker reports (a stream update or a
lookup), composing the table's events: a report the order is already past is stale and
changes nothing; FILLED and PARTIALLY_FILLED reports are left to the fills themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model import Order, OrderStatus

__all__ = [
    "OPEN",
    "TABLE",
    "Event",
    "EventKind",
    "IllegalTransition",
    "catch_up",
    "transition",
]

S = OrderStatus


class EventKind(StrEnum):
    ACCEPT = "accept"  # the broker acknowledged the order
    FILL = "fill"  # an execution of ``quantity`` at ``price``
    CANCEL = "cancel"
    EXPIRE = "expire"
    REJECT = "reject"
    LOSE = "lose"  # a request about the order has an unknown outcome
    FOUND = "found"  # a lookup found an UNKNOWN order at the broker


class IllegalTransition(WorkbenchError):
    """An event the state table does not allow: a bug or a broker we misunderstand."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    quantity: Decimal | None = None  # fills only
    price: Decimal | None = None  # fills only
    time: pd.Timestamp | None = None
    broker_order_id: str | None = None


# state -> event -> the states the event may lead to (FILL: partial or complete)
TABLE: dict[OrderStatus, dict[EventKind, frozenset[OrderStatus]]] = {
    S.NEW: {EventKind.ACCEPT: frozenset({S.ACCEPTED}),
            EventKind.REJECT: frozenset({S.REJECTED}),
            EventKind.LOSE: frozenset({S.UNKNOWN})},
    S.ACCEPTED: {EventKind.FILL: frozenset({S.PARTIALLY_FILLED, S.FILLED}),
                 EventKind.CANCEL: frozenset({S.CANCELED}),
                 EventKind.EXPIRE: frozenset({S.EXPIRED}),
                 EventKind.REJECT: frozenset({S.REJECTED}),
                 EventKind.LOSE: frozenset({S.UNKNOWN})},
    S.PARTIALLY_FILLED: {EventKind.FILL: frozenset({S.PARTIALLY_FILLED, S.FILLED}),
                         EventKind.CANCEL: frozenset({S.CANCELED}),
                         EventKind.EXPIRE: frozenset({S.EXPIRED}),
                         EventKind.LOSE: frozenset({S.UNKNOWN})},
    S.UNKNOWN: {EventKind.FOUND: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED}),
                EventKind.REJECT: frozenset({S.REJECTED})},
    S.FILLED: {}, S.CANCELED: {}, S.REJECTED: {}, S.EXPIRED: {},
}

# a notional order's fill may cost its notional up to the float rounding of the shares
_NOTIONAL_SLACK = Decimal("1.000000001")

OPEN = frozenset({S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.UNKNOWN})  # not terminal

_SIMPLE = {EventKind.ACCEPT: S.ACCEPTED, EventKind.CANCEL: S.CANCELED,
           EventKind.EXPIRE: S.EXPIRED, EventKind.REJECT: S.REJECTED, EventKind.LOSE: S.UNKNOWN}


def _illegal(order: Order, event: Event, why: str = "") -> IllegalTransition:
    return IllegalTransition(f"order {order.client_order_id}: {event.kind} not allowed in "
                             f"state {order.status}{': ' + why if why else ''}")


def _target(order: Order, event: Event) -> OrderStatus:
    if event.kind is EventKind.FILL:
        qty = event.quantity
        if qty is None or event.price is None or qty <= 0 or event.price <= 0:
            raise _illegal(order, event, "a fill needs a positive quantity and price")
        notional = order.intent.notional
        if notional is not None:  # one execution spends it, shares set at the fill price
            if order.filled_quantity > 0 or qty * event.price > notional * _NOTIONAL_SLACK:
                raise _illegal(order, event, f"fill of {qty} at {event.price} exceeds the "
                               f"notional {notional}")
            return S.FILLED
        if qty > order.remaining:
            raise _illegal(order, event, f"fill of {qty} exceeds the remaining {order.remaining}")
        return S.FILLED if qty == order.remaining else S.PARTIALLY_FILLED
    if event.kind is EventKind.FOUND:
        return S.PARTIALLY_FILLED if order.filled_quantity > 0 else S.ACCEPTED
    if event.kind is EventKind.REJECT and order.filled_quantity > 0:
        raise _illegal(order, event, "an order with fills cannot be rejected")
    return _SIMPLE[event.kind]


def transition(order: Order, event: Event) -> Order:
    """``order`` after ``event``; :class:`IllegalTransition` if the table forbids it."""
    allowed = TABLE[order.status].get(event.kind)
    if not allowed:
        raise _illegal(order, event)
    target = _target(order, event)
    if target not in allowed:  # pragma: no cover - the table and _target disagree
        raise _illegal(order, event, f"would lead to {target}")
    changes: dict = {"status": target}
    if event.time is not None:
        changes["updated_at"] = event.time
    if event.broker_order_id and not order.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id
    if event.kind is EventKind.FILL:
        filled = order.filled_quantity + event.quantity
        cost = (order.average_price or Decimal(0)) * order.filled_quantity
        changes["filled_quantity"] = filled
        changes["average_price"] = (cost + event.price * event.quantity) / filled
    return replace(order, **changes)


def _step_toward(order: Order, reported: OrderStatus, time, broker_id) -> Event | None:
    """The next event that moves ``order`` toward the ``reported`` status (None: done)."""
    status = order.status
    if status is S.NEW:
        return Event(EventKind.REJECT if reported is S.REJECTED else EventKind.ACCEPT,
                     time=time, broker_order_id=broker_id)
    if status is S.UNKNOWN:
        kind = EventKind.REJECT if reported is S.REJECTED else EventKind.FOUND
        return Event(kind, time=time, broker_order_id=broker_id)
    if status.is_terminal or reported in (S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED):
        return None  # stale, or up to the fills
    kind = {S.CANCELED: EventKind.CANCEL, S.EXPIRED: EventKind.EXPIRE,
            S.REJECTED: EventKind.REJECT}.get(reported)
    return Event(kind, time=time, broker_order_id=broker_id) if kind else None


def catch_up(order: Order, reported: OrderStatus, time=None, broker_order_id=None) -> Order:
    """``order`` moved toward a broker-reported status through the table's events.

    A terminal order stays as it is when the report agrees or is older (an "accepted"
    update arriving after the fill); a terminal order the broker reports as another
    terminal state, or a REJECTED order (here: refused, or never arrived) the broker
    reports as anything else, raises :class:`IllegalTransition`."""
    if reported is S.UNKNOWN:
        raise IllegalTransition(f"order {order.client_order_id}: a broker cannot report UNKNOWN")
    rejected_here = order.status is S.REJECTED and reported is not S.REJECTED
    if rejected_here or (order.status.is_terminal and reported.is_terminal
                         and reported not in (order.status, S.FILLED)):
        raise IllegalTransition(f"order {order.client_order_id} is {order.status} here "
                                f"but {reported} at the broker")
    for _ in range(3):
        event = _step_toward(order, reported, time, broker_order_id)
        if event is None:
            return order
        order = transition(order, event)
    return order
