"""Values as plain JSON, in one place: the journal, the model codec and the run records.

    plain({"qty": Decimal("1.50"), "at": ts, "side": Side.BUY, "n": np.int64(3)})
    # {'qty': '1.50', 'at': '2026-03-02T14:30:00+00:00', 'side': 'buy', 'n': 3}
    plain(fill, tag=True)              # {'_type': 'Fill', 'execution_id': ..., 'time': ...}
    plain(params, strict=True, where="params")   # NotPlain unless already plain JSON

A ``Decimal`` becomes a string (``"123.4500"``, never an exponent), a date or timestamp
its ISO text, a duration its ISO text (``P0DT0H1M0S``), an enum its value, a numpy
scalar the Python number, NaN, inf, ``NaT`` and ``NA`` null, a path its text, an array,
a set or a tuple a list, a Series a mapping, a DataFrame a list of rows, a dataclass an
object of its fields (first ``"_type"``: the class name, with ``tag``), mapping keys
text. ``strict`` takes only what is JSON already (finite numbers, text keys; enums of
text or numbers and numpy scalars too) and raises :class:`NotPlain` for anything else.

:func:`default` converts one value (the ``default`` hook of ``json.dumps``, for a fast
path that only walks the tree when ``json`` refuses it). Imports nothing of ours.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TAG", "NotPlain", "default", "plain"]

TAG = "_type"  # names the class of an encoded dataclass (see workbench.model.codec)


class NotPlain(TypeError):
    """A value with no plain JSON form (or, strict, one that is not plain JSON already)."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def default(obj: Any, *, tag: bool = False, where: str = "value") -> Any:
    """``obj``, which JSON has no type for, as a value it has (perhaps not plain inside)."""
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
        fields = {name: getattr(obj, name) for name in _field_names(type(obj))}
        return {TAG: type(obj).__name__, **fields} if tag else fields
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.Series):
        return obj.to_dict()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise NotPlain(f"{where}: cannot write a {type(obj).__name__} as JSON", obj)


def plain(value: Any, *, strict: bool = False, tag: bool = False, where: str = "value") -> Any:
    """``value`` as plain JSON values all the way down (see the module doc).

    ``where`` names the value in a :class:`NotPlain` message (``params.legs[0]``)."""
    kind = type(value)
    if kind in _JSON:  # the common cases first: the order path encodes on every event
        return value
    if not strict and kind in _TEXT:
        return _TEXT[kind](value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        if strict and not isinstance(value, (str, int)):
            raise NotPlain(f"{where}: a {type(value).__name__} is not a plain JSON value", value)
        return plain(value.value, strict=strict, tag=tag, where=where)
    if isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        if strict:
            raise NotPlain(f"{where} is {value}: not a finite number", value)
        return None
    if isinstance(value, np.generic):
        return plain(value.item(), strict=strict, tag=tag, where=where)
    if isinstance(value, Mapping):
        return {_key(k, strict, where): plain(v, strict=strict, tag=tag, where=f"{where}.{k}")
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, strict=strict, tag=tag, where=f"{where}[{i}]")
                for i, v in enumerate(value)]
    if strict:
        raise NotPlain(f"{where}: a {type(value).__name__} is not a plain JSON value", value)
    return plain(default(value, tag=tag, where=where), tag=tag, where=where)


_JSON = frozenset({str, int, bool, type(None)})
_TEXT = {Decimal: lambda d: format(d, "f"), pd.Timestamp: pd.Timestamp.isoformat}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _key(key: Any, strict: bool, where: str) -> str:
    if isinstance(key, str):
        return key.value if isinstance(key, Enum) else key
    if strict:
        raise NotPlain(f"{where}: keys must be text, got {key!r}", key)
    text = plain(key, where=where)
    return text if isinstance(text, str) else str(text)
