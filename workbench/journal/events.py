"""Journal events: the envelope and its JSON encoding (the event names are the model's).

One event is one line of JSON (ASCII only, so a torn line never splits a character)::

    {"type":"fill","seq":42,"ts":"2026-01-02T14:31:00+00:00","payload":{...},"sum":"1f0c9a3e"}

``sum`` (last, always 8 hex digits) is the first 8 hex digits of the SHA-256 of the line's
bytes before it (everything up to ``,"sum":"``: the whole event as written;
:func:`line_checksum`; SHA-256 rather than a CRC so that the DuckDB catalog checks it too,
with its own ``sha256``). A line whose sum does not match (a flipped byte, a
non-UTF-8 byte, a damaged number) is not an event: :func:`decode_line` refuses it, and the
readers report it with its file and line, never as an event. Lines written before
checksums have no ``sum``: they still read (unverified, :class:`UnverifiedJournalWarning`
once per journal), but once a run's journal has a checksummed line, a later line without
one is damage.

``type`` is one of :data:`~workbench.model.events.EVENT_TYPES` (or another lowercase
word) and comes first, so the catalog picks the lines of a type by their first bytes
(:data:`LINE_PREFIX`) before parsing any JSON; ``seq`` counts from 1 without gaps over the
whole run; ``ts`` is the clock's time in ISO UTC; ``payload`` is an object of plain JSON
values (:mod:`workbench.plain`: a ``Decimal`` is a string, ``"123.4500"``, never an
exponent; a timestamp an ISO string; an enum its value; NaN and inf null). A model object
(``journal.append(FILL, fill)``) is its one shape of :mod:`workbench.model.codec`, tagged
``_type``, which :func:`to_model` turns back into the object.

Payload fields the catalog reads (top level, or under ``intent`` for an encoded ``Order``):
``intent``/``broker_request``/``broker_reply``/``order_update``: ``client_order_id``,
``symbol``, ``side``, ``quantity``, ``status``, ``filled_quantity``, ``average_price``,
``broker_order_id``; ``fill``: the ``Fill`` fields; ``position``: ``symbol``, ``quantity``,
``average_price``; ``equity``: ``equity``, ``cash``. Appending the model object itself
produces exactly these, and so does the order manager.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model import codec
from workbench.model.events import EVENT_TYPES, FILL
from workbench.plain import NotPlain, default, plain
from workbench.secrets import redact_tree, secret_values

__all__ = [
    "LINE_PREFIX",
    "SUM_SUFFIX",
    "Event",
    "JournalCorrupt",
    "JournalDiskFull",
    "JournalError",
    "JournalLocked",
    "UnverifiedJournalWarning",
    "decode_event",
    "decode_line",
    "encode_event",
    "line_checksum",
    "make_payload",
    "to_model",
]

LINE_PREFIX = '{"type":"%s",'  # every line starts so (types are plain words)
_SUM_OPEN = b',"sum":"'
SUM_SUFFIX = len(_SUM_OPEN) + 8 + 2  # ,"sum":"xxxxxxxx"} ends every line (before "\n")
_TYPE_WORD = re.compile(r"[a-z][a-z0-9_]{0,47}")


class JournalError(WorkbenchError):
    """The journal refused an operation or cannot be read."""


class JournalLocked(JournalError):
    """Another writer holds the run's journal: only one process may write a run."""


class JournalDiskFull(JournalError):
    """The disk is full: the journal cannot take another event, so the session stops."""


class UnverifiedJournalWarning(UserWarning):
    """A journal written before checksums: its events are read, unverified."""


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
    #: (segment, line) the event was read from (None: not read from a file)
    where: tuple[Path, int] | None = dataclasses.field(default=None, compare=False, repr=False)

    def model(self) -> Any:
        """The ``workbench.model`` object the payload encodes (``_type`` tag)."""
        return to_model(self.payload)

    def damaged(self, error: BaseException) -> JournalCorrupt:
        """The error to raise when this event's payload cannot be used (a value that does
        not parse: a journal damaged before checksums), naming its file and line."""
        segment, line = self.where or (Path("(not from a file)"), 0)
        return JournalCorrupt(f"corrupt journal: {segment} line {line}: a {self.type} event "
                              f"that cannot be read ({type(error).__name__}: {error})",
                              segment, line)


# -- encoding -----------------------------------------------------------------------------


def _tagged(obj: Any) -> Any:
    """JSON for a value json does not know (``json.dumps``'s hook): a dataclass tagged."""
    return default(obj, tag=True)


_ENCODER = json.JSONEncoder(default=_tagged, allow_nan=False, separators=(",", ":"))


def _dumps(obj: Any) -> str:
    """Compact JSON (one encoder for every event: ``json.dumps`` with options builds one
    per call)."""
    return _ENCODER.encode(obj)


# a copy of the environment seen last, and its secrets: each as it is and as it reads
# inside JSON text
_SECRETS: tuple[Any, list[tuple[str, str]]] = (None, [])


def _secrets() -> list[tuple[str, str]]:
    """:func:`~workbench.secrets.secret_values` (with each one's JSON-escaped form), found
    again only when the environment changed (its whole contents are compared: a variable
    set, changed or removed is seen by the next event); scanning it costs about 45 us,
    most of an event's encoding."""
    global _SECRETS
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        return _escaped(secret_values())
    if data != _SECRETS[0]:  # compared in C, nothing built (a tuple of it cost ~5 us)
        _SECRETS = (dict(data), _escaped(secret_values()))
    return _SECRETS[1]


def _escaped(values) -> list[tuple[str, str]]:
    return [(value, json.dumps(value)[1:-1]) for value in values]


def _has_secret(text: str) -> bool:
    for value, escaped in _secrets():
        if value in text or escaped in text:
            return True
    return False


def _body(kind: str, payload: Mapping[str, Any]) -> str:
    """The payload as compact ASCII JSON, secrets masked in every string and key."""
    try:
        body = _dumps(payload)
    except (ValueError, TypeError):  # NaN/inf (written as null) or keys json refuses
        try:
            body = _dumps(plain(payload, tag=True))
        except NotPlain as e:
            what = type(e.value).__name__
            raise JournalError(f"{kind} event: cannot journal a {what}") from None
    if _has_secret(body):
        body = _dumps(redact_tree(plain(payload, tag=True)))
    return body


def encode_event(seq: int, ts: pd.Timestamp, kind: str, payload: Mapping[str, Any], *,
                 stamp: str | None = None) -> bytes:
    """One event as a line of ASCII JSON ending in a newline, secrets masked. ``stamp``:
    ``ts``'s ISO text, when the caller has it already."""
    if kind not in EVENT_TYPES and not (isinstance(kind, str) and _TYPE_WORD.fullmatch(kind)):
        raise JournalError(f"event type {kind!r} is not a lowercase word like {FILL!r}")
    if stamp is None:
        stamp = pd.Timestamp(ts).isoformat()
    head = (f'{LINE_PREFIX % kind}"seq":{seq:d},"ts":"{stamp}",'
            f'"payload":{_body(kind, payload)}').encode("ascii")
    return b"".join((head, _SUM_OPEN, _digest(head), b'"}\n'))


def _digest(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).hexdigest()[:8].encode("ascii")


def line_checksum(line: bytes) -> bool | None:
    """Check a journal line's ``sum`` (the line with or without its newline): True when it
    matches, None when the line has none (written before checksums), ValueError when it
    does not match."""
    body = line[:-1] if line.endswith(b"\n") else line
    if body[-SUM_SUFFIX:-10] != _SUM_OPEN or body[-2:] != b'"}':
        return None
    if _digest(body[:-SUM_SUFFIX]) != body[-10:-2]:
        raise ValueError("checksum mismatch (the line was changed after it was written)")
    return True


def make_payload(obj: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of ``append(type, obj, **fields)``: the object's fields, then ``fields``."""
    if obj is None:
        return dict(fields)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        base = default(obj, tag=True)
    elif isinstance(obj, Mapping):
        base = dict(obj)
    else:
        raise JournalError(f"an event payload is a dataclass or a mapping, not {obj!r}")
    clash = set(base) & set(fields)
    if clash:
        raise JournalError(f"payload fields given twice: {sorted(clash)}")
    return {**base, **fields}


# -- decoding -----------------------------------------------------------------------------


def decode_line(line: bytes, where: tuple[Path, int] | None = None) -> tuple[Event, bool]:
    """The event of one journal line and whether its checksum was verified (False: a line
    written before checksums); ValueError if it is not a whole, valid event or its checksum
    does not match. ``where``: the (segment, line) it was read from."""
    verified = line_checksum(line)
    return decode_event(line, where), bool(verified)


def decode_event(line: bytes | str, where: tuple[Path, int] | None = None) -> Event:
    """The event of one journal line, its checksum not checked (:func:`decode_line` does);
    ValueError if it is not a whole, valid event."""
    obj = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    seq, ts, kind, payload = obj.get("seq"), obj.get("ts"), obj.get("type"), obj.get("payload")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"bad seq {seq!r}")
    if not isinstance(ts, str) or not isinstance(kind, str) or not isinstance(payload, dict):
        raise ValueError("missing ts, type or payload")
    return Event(seq, _timestamp(ts), kind, payload, where)


@functools.lru_cache(maxsize=4096)
def _timestamp(text: str) -> pd.Timestamp:
    """A parsed ``ts`` (cached: many events of a replay share one time)."""
    return pd.Timestamp(text)


def to_model(payload: Mapping[str, Any], cls: type | None = None) -> Any:
    """The ``workbench.model`` object a payload encodes (by its ``_type`` tag, or ``cls``).

    Fields the class does not have (extra payload fields) are ignored; old field names
    are read as today's (:func:`workbench.model.codec.decode`).
    """
    try:
        return codec.decode(payload, cls)
    except codec.CodecError as e:
        raise JournalError(str(e)) from e
