"""The messages the fake's streams publish: checked and encoded on the publisher's thread.

`trade_update_message` turns the ``data`` object of one ``trade_updates`` message into its
JSON frame; `bar_message` turns one minute bar into the market-data stream's wire message
(``t`` a msgpack Timestamp, as alpaca-py requires). Anything missing, unknown, naive or not
a number raises here, in the caller's thread, rather than being sent in some other form.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgpack
import numpy as np
import pandas as pd

_BAR_KEYS = ("S", "t", "o", "h", "l", "c", "v", "n", "vw")
_BAR_KEY_SET = frozenset(_BAR_KEYS)
_NUMBERS = ("o", "h", "l", "c", "v", "n", "vw")
_OPTIONAL = ("n", "vw")
_MINUTE_NS = 60_000_000_000
_FILL_KEYS = ("execution_id", "price", "qty", "position_qty")


@dataclass(frozen=True)
class UpdateMessage:
    text: str                          # the whole JSON frame
    data: dict
    event: str
    order_id: str
    execution_id: str | None


@dataclass(frozen=True)
class BarMessage:
    wire: dict                         # {"T": "b", ..., "t": msgpack.Timestamp}
    minute: pd.Timestamp
    symbol: str


def trade_update_message(data: dict) -> UpdateMessage:
    """Check one trade update's ``data`` object and encode its frame (caller's thread)."""
    if not isinstance(data, dict):
        raise TypeError(f"a trade update is a dict, got {type(data).__name__}")
    missing = [k for k in ("event", "timestamp", "order") if k not in data]
    if data.get("event") in ("fill", "partial_fill"):
        missing += [k for k in _FILL_KEYS if k not in data]
    if missing:
        raise ValueError(f"trade update misses {missing}: {data!r}")
    order = data["order"]
    if not isinstance(order, dict) or not order.get("id"):
        raise ValueError(f"a trade update's order is the full order JSON with an id: {order!r}")
    text = json.dumps({"stream": "trade_updates", "data": data}, default=_json_default)
    execution_id = data.get("execution_id")
    return UpdateMessage(text, json.loads(text)["data"], str(data["event"]), str(order["id"]),
                         None if execution_id is None else str(execution_id))


def bar_message(bar: dict) -> BarMessage:
    """Check one minute bar and build its wire message (caller's thread; a few µs, since
    the replay publishes hundreds of symbols a minute)."""
    if type(bar) is not dict or bar.keys() != _BAR_KEY_SET:
        _bar_shape_error(bar)
    symbol, t = bar["S"], bar["t"]
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"bar symbol must be a non-empty string: {symbol!r}")
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise ValueError(f"bar {symbol} time must be a tz-aware timestamp, got {t!r}")
    minute = t if type(t) is pd.Timestamp else pd.Timestamp(t)
    if minute.tzname() != "UTC":
        minute = minute.tz_convert("UTC")
    ns = minute.value
    if ns % _MINUTE_NS:
        raise ValueError(f"bar {symbol} time {minute} is not the start of a minute")
    wire: dict[str, Any] = {"T": "b", "S": symbol}
    for key in _NUMBERS:
        value = bar[key]
        kind = type(value)
        if kind is float or kind is int:
            wire[key] = value
        elif value is None and key in _OPTIONAL:
            wire[key] = None
        elif kind is not bool and isinstance(value, int | float | np.integer | np.floating):
            wire[key] = int(value) if isinstance(value, int | np.integer) else float(value)
        else:
            raise ValueError(f"bar {symbol} {key} must be a number, got {value!r}")
    wire["t"] = msgpack.Timestamp.from_unix_nano(ns)
    return BarMessage(wire, minute, symbol)


def _bar_shape_error(bar: Any) -> None:
    if not isinstance(bar, dict):
        raise TypeError(f"a bar is a dict, got {type(bar).__name__}")
    missing = [k for k in _BAR_KEYS if k not in bar]
    extra = [k for k in bar if k not in _BAR_KEYS]
    raise ValueError(f"a stream bar has exactly {_BAR_KEYS}; missing {missing}, "
                     f"unknown {extra}: {bar!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in a trade update (UTC is required)")
        return pd.Timestamp(value).tz_convert("UTC").isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, np.integer | np.floating):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")
