"""Journal events: the envelope, the event types, and their JSON encoding.

One event is one line of JSON (ASCII only, so a torn line never splits a character)::

    {"type":"fill","seq":42,"ts":"2026-01-02T14:31:00+00:00","payload":{...}}

``type`` is one of :data:`EVENT_TYPES` (or another lowercase word) and comes first, so
the catalog picks the lines of a type by their first bytes (:data:`LINE_PREFIX`) before
parsing any JSON; ``seq`` counts from 1 without gaps over the whole run; ``ts`` is the
clock's time in ISO UTC; ``payload`` is an object. In a payload a ``Decimal`` is a
string (``"123.4500"``, never an exponent), a timestamp an ISO string, an enum its
value, NaN and inf null, and a dataclass (the ``workbench.model`` types) an object with a
``_type`` tag naming its class, which :func:`to_model` turns back into the object.

Payload fields the catalog reads (top level, or under ``intent`` for an encoded ``Order``):
``intent``/``broker_request``/``broker_reply``/``order_update``: ``client_order_id``,
``symbol``, ``side``, ``quantity``, ``status``, ``filled_quantity``, ``average_price``,
``broker_order_id``; ``fill``: the ``Fill`` fields; ``position``: ``symbol``, ``quantity``,
``average_price``; ``equity``: ``equity``, ``cash``. Appending the model object itself
(``journal.append(FILL, fill)``) produces exactly these.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import typing
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any

import numpy as np
import pandas as pd

from workbench import model
from workbench.errors import WorkbenchError
from workbench.secrets import redact, secret_values

__all__ = [
    "BAR", "SIGNAL", "RISK_DECISION", "INTENT", "BROKER_REQUEST", "BROKER_REPLY",
    "ORDER_UPDATE", "FILL", "POSITION", "EQUITY", "HEARTBEAT", "ALERT", "CONFIG", "COMMAND",
    "STATE", "RECONCILE", "SESSION_START", "SESSION_END", "ERROR", "ACCOUNT_SNAPSHOT",
    "ORDER_LEG", "ORDER_UNKNOWN", "ORDER_SETTLED", "UNMATCHED_UPDATE", "EVENT_TYPES",
    "ORDER_EVENT_TYPES", "LEGACY_ALIASES", "canonical_type", "LINE_PREFIX", "Event",
    "JournalError", "JournalLocked", "JournalCorrupt",
    "encode_event", "decode_event", "make_payload", "to_model",
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

LINE_PREFIX = '{"type":"%s",'  # every line starts so (types are plain words)
_TYPE_WORD = re.compile(r"[a-z][a-z0-9_]{0,47}")

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

_MODELS = {cls.__name__: cls for cls in (model.Signal, model.OrderIntent, model.Order,
                                         model.Fill, model.Position, model.Account)}


class JournalError(WorkbenchError):
    """The journal refused an operation or cannot be read."""


class JournalLocked(JournalError):
    """Another writer holds the run's journal: only one process may write a run."""


class JournalCorrupt(JournalError):
    """A line before the tail is not a valid event: the journal was damaged."""

    def __init__(self, message: str, segment: Path, line: int) -> None:
        super().__init__(message)
        self.segment = segment
        self.line = line


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One journaled event: its place (``seq``), time, type and JSON payload."""

    seq: int
    ts: pd.Timestamp
    type: str
    payload: dict[str, Any]

    def model(self) -> Any:
        """The ``workbench.model`` object the payload encodes (``_type`` tag)."""
        return to_model(self.payload)


# -- encoding -----------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    """JSON for the values json does not know (called by ``json.dumps``)."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return pd.Timedelta(obj).isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"_type": type(obj).__name__,
                **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot journal a {type(obj).__name__}")


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(_plain(key))


def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON values all the way down (NaN and inf become None)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj if not isinstance(obj, Enum) else obj.value
    if isinstance(obj, Mapping):
        return {_key(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return _plain(_default(obj))


def _redacted(tree: Any) -> Any:
    if isinstance(tree, str):
        return redact(tree)
    if isinstance(tree, dict):
        return {redact(k): _redacted(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_redacted(v) for v in tree]
    return tree


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, allow_nan=False, separators=(",", ":"))


def _has_secret(text: str) -> bool:
    for value in secret_values():
        if value in text or json.dumps(value)[1:-1] in text:
            return True
    return False


def _body(kind: str, payload: Mapping[str, Any]) -> str:
    """The payload as compact ASCII JSON, secrets masked in every string and key."""
    try:
        body = _dumps(payload)
    except (ValueError, TypeError):  # NaN/inf (written as null) or keys json refuses
        try:
            body = _dumps(_plain(payload))
        except TypeError as e:
            raise JournalError(f"{kind} event: {e}") from None
    if _has_secret(body):
        body = _dumps(_redacted(_plain(payload)))
    return body


def encode_event(seq: int, ts: pd.Timestamp, kind: str, payload: Mapping[str, Any]) -> bytes:
    """One event as a line of ASCII JSON ending in a newline, secrets masked."""
    if kind not in EVENT_TYPES and not (isinstance(kind, str) and _TYPE_WORD.fullmatch(kind)):
        raise JournalError(f"event type {kind!r} is not a lowercase word like {FILL!r}")
    stamp = pd.Timestamp(ts).isoformat()
    line = (f'{LINE_PREFIX % kind}"seq":{seq:d},"ts":"{stamp}",'
            f'"payload":{_body(kind, payload)}}}\n')
    return line.encode("ascii")


def make_payload(obj: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of ``append(type, obj, **fields)``: the object's fields, then ``fields``."""
    if obj is None:
        return dict(fields)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        base = _default(obj)
    elif isinstance(obj, Mapping):
        base = dict(obj)
    else:
        raise JournalError(f"an event payload is a dataclass or a mapping, not {obj!r}")
    clash = set(base) & set(fields)
    if clash:
        raise JournalError(f"payload fields given twice: {sorted(clash)}")
    return {**base, **fields}


# -- decoding -----------------------------------------------------------------------------


def decode_event(line: bytes | str) -> Event:
    """The event of one journal line; ValueError if it is not a whole, valid event."""
    obj = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    seq, ts, kind, payload = obj.get("seq"), obj.get("ts"), obj.get("type"), obj.get("payload")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"bad seq {seq!r}")
    if not isinstance(ts, str) or not isinstance(kind, str) or not isinstance(payload, dict):
        raise ValueError("missing ts, type or payload")
    return Event(seq, _timestamp(ts), kind, payload)


@functools.lru_cache(maxsize=4096)
def _timestamp(text: str) -> pd.Timestamp:
    """A parsed ``ts`` (cached: many events of a replay share one time)."""
    return pd.Timestamp(text)


def _convert(value: Any, hint: Any) -> Any:
    """``value`` (plain JSON) as the type ``hint`` of a model field."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _convert(v, item) for k, v in value.items()}
    if hint is Decimal:
        return Decimal(value)
    if hint is pd.Timestamp:
        return pd.Timestamp(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return to_model(value, hint)
    return value


def to_model(payload: Mapping[str, Any], cls: type | None = None) -> Any:
    """The ``workbench.model`` object a payload encodes (by its ``_type`` tag, or ``cls``).

    Fields the class does not have (extra payload fields) are ignored.
    """
    if cls is None:
        name = payload.get("_type")
        if name not in _MODELS:
            raise JournalError(f"payload has no known _type tag: {name!r}")
        cls = _MODELS[name]
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _convert(payload[f.name], hints[f.name])
              for f in dataclasses.fields(cls) if f.name in payload}
    return cls(**kwargs)
