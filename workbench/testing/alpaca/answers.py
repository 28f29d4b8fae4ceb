"""Shared bits of the fake's HTTP answers: Alpaca errors, JSON, times and numbers as Alpaca
writes them."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
from starlette.responses import JSONResponse

__all__ = ["ApiError", "Json", "error", "iso", "num"]


class Json(JSONResponse):
    """A JSON answer that writes NaN as Alpaca's servers (and Python) do, not a 500: a bad
    bar in the data is served as it is, for the client's validator to catch."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True,
                          separators=(",", ":")).encode("utf-8")


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
