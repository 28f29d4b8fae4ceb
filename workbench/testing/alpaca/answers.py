"""Shared bits of the fake's HTTP answers: Alpaca errors, JSON, times and numbers as Alpaca
writes them."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pandas as pd
from starlette.responses import JSONResponse

__all__ = ["ApiError", "Json", "error", "iso", "num"]


class Json(JSONResponse):
    """A JSON answer in which a bad number (NaN, inf) is written as ``null``: strict JSON,
    as Alpaca's servers send, and the only form every client parses (``requests`` decodes
    with simplejson when it is installed, which refuses a bare ``NaN``). A bad bar in the
    data is still served, for the client's validator to catch, never a 500. ``bytes`` are
    sent as they are."""

    def render(self, content) -> bytes:
        if isinstance(content, bytes):  # a fault's raw body (e.g. not JSON at all), as it is
            return content
        return json.dumps(_nulls(content), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")


def _nulls(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls(v) for v in value]
    return value


class ApiError(Exception):
    """Raised by a route to answer ``{"code", "message"}`` with ``status``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error(status: int, code: int, message: str, headers: dict | None = None) -> Json:
    """An Alpaca-style error answer: ``{"code": <8 digits>, "message": ...}``."""
    return Json({"code": code, "message": message}, status_code=status, headers=headers)


def iso(ts: pd.Timestamp | None) -> str | None:
    """RFC 3339 UTC with ``Z`` (microseconds when present), None for None."""
    if ts is None:
        return None
    ts = pd.Timestamp(ts).tz_convert("UTC")
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond:06d}"
    return text + "Z"


def num(value) -> str | None:
    """A Decimal (or number) as Alpaca's money/quantity string, None for None."""
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d.normalize(), "f")
    return text
