"""Event names of a run, and the one interface events are appended through.

    from workbench.model import events as ev

    sink.append(ev.RISK_DECISION, approved=False, reason="...")
    sink.append_durable(ev.INTENT, **codec.encode(intent))   # before the broker call

An :class:`EventSink` is anything with the journal's ``append(type, **payload)`` and
``append_durable(type, **payload)``: the run's journal (:class:`workbench.journal.Journal`),
the crash-point wrapper of a test session, or :class:`workbench.testing.sinks.ListSink`.
The order path (risk gateway, order manager, session) writes to one and never needs the
journal package; the names below are the event types it writes.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ACCOUNT_SNAPSHOT",
    "ALERT",
    "BAR",
    "BROKER_REPLY",
    "BROKER_REQUEST",
    "COMMAND",
    "CONFIG",
    "EQUITY",
    "ERROR",
    "EVENT_TYPES",
    "FILL",
    "HEARTBEAT",
    "INTENT",
    "LEGACY_ALIASES",
    "ORDER_EVENT_TYPES",
    "ORDER_LEG",
    "ORDER_SETTLED",
    "ORDER_UNKNOWN",
    "ORDER_UPDATE",
    "POSITION",
    "RECONCILE",
    "RISK_DECISION",
    "SESSION_END",
    "SESSION_START",
    "SIGNAL",
    "STATE",
    "UNMATCHED_UPDATE",
    "EventSink",
    "canonical_type",
]

BAR = "bar"
SIGNAL = "signal"
RISK_DECISION = "risk_decision"
INTENT = "intent"
BROKER_REQUEST = "broker_request"
BROKER_REPLY = "broker_reply"
ORDER_UPDATE = "order_update"
FILL = "fill"
POSITION = "position"
EQUITY = "equity"
HEARTBEAT = "heartbeat"
ALERT = "alert"
CONFIG = "config"
COMMAND = "command"
STATE = "state"
RECONCILE = "reconcile"
SESSION_START = "session_start"
SESSION_END = "session_end"
ERROR = "error"
# the order manager's own kinds (workbench.orders), with no more general name above
ACCOUNT_SNAPSHOT = "account_snapshot"  # the broker's account at a run's start (durable)
ORDER_LEG = "order_leg"  # a bracket leg (or an open order) learned from the broker
ORDER_UNKNOWN = "order_unknown"  # a broker call whose outcome is not known
ORDER_SETTLED = "order_settled"  # an UNKNOWN order looked up: found or never arrived
UNMATCHED_UPDATE = "unmatched_update"  # a broker update for an order this run did not place

EVENT_TYPES = frozenset({
    BAR, SIGNAL, RISK_DECISION, INTENT, BROKER_REQUEST, BROKER_REPLY, ORDER_UPDATE, FILL,
    POSITION, EQUITY, HEARTBEAT, ALERT, CONFIG, COMMAND, STATE, RECONCILE, SESSION_START,
    SESSION_END, ERROR, ACCOUNT_SNAPSHOT, ORDER_LEG, ORDER_UNKNOWN, ORDER_SETTLED,
    UNMATCHED_UPDATE,
})

# the events about one order (keyed by ``client_order_id``), as the catalog's orders view reads
ORDER_EVENT_TYPES = (INTENT, BROKER_REQUEST, BROKER_REPLY, ORDER_UPDATE, ORDER_LEG,
                     ORDER_UNKNOWN, ORDER_SETTLED, UNMATCHED_UPDATE)

# old spellings still found in journals written before the names were unified (run folders
# on users' machines): replay and the catalog read them as the type they map to; nothing
# writes them any more
LEGACY_ALIASES = {"order_intent": INTENT}


def canonical_type(kind: str) -> str:
    """``kind`` with an old spelling (:data:`LEGACY_ALIASES`) replaced by today's name."""
    return LEGACY_ALIASES.get(kind, kind)


@runtime_checkable
class EventSink(Protocol):
    """Where events go: ``append`` (seen at once), ``append_durable`` (also on disk before
    it returns: call it for anything a broker call will depend on)."""

    def append(self, type: str, /, **payload: Any) -> Any: ...

    def append_durable(self, type: str, /, **payload: Any) -> Any: ...
