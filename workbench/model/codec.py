"""One JSON shape per model type, for the journal, the order manager and the catalog.

    payload = encode(fill)   # {"_type": "Fill", "execution_id": "x-1", ..., "time": "2026-..."}
    decode(payload) == fill  # by the "_type" tag; decode(payload, Fill) for an untagged one

A model object (:data:`MODELS`) is an object of its fields, in field order, first
``"_type"`` naming its class; each value is plain JSON by :mod:`workbench.plain`'s rules
(a Decimal its exact text, a time ISO UTC, an enum its value) and a nested model object
(an ``Order``'s intent, an ``Account``'s positions) is encoded the same way. A field keeps
the model's name everywhere: a ``Fill``'s time is ``time``.

Decoding ignores fields the class does not have (an event adds its own: ``source``,
``note``), takes the class default for a missing one, and reads a field under an old name
(:data:`LEGACY_FIELDS`) as today's, so journals written before the shapes were unified
still rebuild; an old name wins over today's, which meant something else then.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model.types import Account, Fill, Order, OrderIntent, Position, Signal
from workbench.plain import TAG, plain
from workbench.times import to_utc

__all__ = [
    "LEGACY_FIELDS",
    "MODELS",
    "TAG",
    "CodecError",
    "decimal_of",
    "decode",
    "encode",
    "field_names",
    "time_of",
]

MODELS: dict[str, type] = {cls.__name__: cls for cls in (Signal, OrderIntent, Order, Fill,
                                                         Position, Account)}

# class -> {old field name: today's}: what journals on users' machines still hold. The order
# manager once journaled a fill's time as ``fill_time`` (and its own clock as ``time``).
LEGACY_FIELDS: dict[type, dict[str, str]] = {Fill: {"fill_time": "time"}}


class CodecError(WorkbenchError, ValueError):
    """A payload does not encode a model object (no known tag, or a field it cannot hold)."""


def encode(obj: Any, *, tag: bool = True) -> dict[str, Any]:
    """The JSON shape of a model object: its fields as plain JSON, ``"_type"`` first."""
    if MODELS.get(type(obj).__name__) is not type(obj):
        raise CodecError(f"not a model object: {obj!r}")
    payload = plain(obj, tag=True)
    if not tag:
        del payload[TAG]
    return payload


def decode(payload: Mapping[str, Any], cls: type | None = None) -> Any:
    """The model object ``payload`` encodes (by its ``"_type"`` tag, or as ``cls``)."""
    if cls is None:
        name = payload.get(TAG)
        if name not in MODELS:
            raise CodecError(f"payload has no known {TAG} tag: {name!r}")
        cls = MODELS[name]
    renamed = LEGACY_FIELDS.get(cls)
    if renamed and not renamed.keys().isdisjoint(payload):
        payload = {**payload, **{new: payload[old] for old, new in renamed.items()
                                 if old in payload}}
    try:
        return cls(**{name: convert(payload[name]) for name, convert in _fields(cls)
                      if name in payload})
    except (ArithmeticError, TypeError, ValueError) as e:
        raise CodecError(f"not a {cls.__name__}: {e}") from e


def field_names(cls: type, field: str) -> tuple[str, ...]:
    """The names ``cls.field`` is found under in journals: old ones first, then today's."""
    if field not in {f.name for f in dataclasses.fields(cls)}:
        raise CodecError(f"{cls.__name__} has no field {field!r}")
    old = tuple(o for o, new in LEGACY_FIELDS.get(cls, {}).items() if new == field)
    return (*old, field)


def decimal_of(value: Any) -> Decimal | None:
    """A payload's Decimal (its text; a number's shortest text), None for None."""
    return None if value is None else Decimal(value if isinstance(value, str) else str(value))


def time_of(value: Any) -> pd.Timestamp | None:
    """A payload's time as a UTC Timestamp (a naive one is UTC), None for None."""
    return None if value is None else to_utc(value)


# -- decoding by the field's type -----------------------------------------------------------


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))


def _converter(hint: Any) -> Callable[[Any], Any]:
    """A function of a plain JSON value (None passes) to the field type ``hint``."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is dict:
        item = _converter(typing.get_args(hint)[1])
        return lambda v: None if v is None else {k: item(x) for k, x in v.items()}
    if hint is Decimal:
        return decimal_of
    if hint is pd.Timestamp:
        return time_of
    if isinstance(hint, type) and issubclass(hint, Enum):
        return lambda v: None if v is None else hint(v)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda v: None if v is None else decode(v, hint)
    return lambda v: v
