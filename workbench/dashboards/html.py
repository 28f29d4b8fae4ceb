"""Small HTML pieces for the dashboards' ``ipywidgets.HTML`` cells: every value escaped,
money and quantities shown plainly, times in New York."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

import pandas as pd

__all__ = ["GREEN", "RED", "cell", "money", "ny_time", "quantity", "table", "tag"]

RED = "#c62828"
GREEN = "#2e7d32"


def ny_time(value: Any, fmt: str = "%H:%M:%S") -> str:
    if value is None:
        return ""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return ts.tz_convert("America/New_York").strftime(fmt)


def money(value: Decimal | float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    number = float(value)
    return f"{number:+,.2f}" if signed else f"{number:,.2f}"


def quantity(value: Decimal | float | None) -> str:
    if value is None:
        return ""
    number = float(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.4f}"


def cell(value: Any) -> str:
    """A value as escaped text (Decimals and floats plainly)."""
    if value is None:
        return ""
    if isinstance(value, (Decimal, float)):
        return escape(quantity(value))
    if isinstance(value, pd.Timestamp):
        return escape(ny_time(value))
    return escape(str(value))


def tag(text: str, cls: str, color: str | None = None, bold: bool = False) -> str:
    """``text`` (escaped) in a span of class ``cls``."""
    style = ";".join(s for s in (f"color:{color}" if color else "",
                                 "font-weight:bold" if bold else "") if s)
    return (f'<span class="{escape(cls)}"' + (f' style="{style}"' if style else "")
            + f">{escape(text)}</span>")


def table(rows: Iterable[Sequence[str]], columns: Sequence[str], cls: str,
          empty: str = "(none)") -> str:
    """An HTML table; ``rows`` hold HTML already escaped (:func:`cell`, :func:`tag`)."""
    rows = list(rows)
    if not rows:
        return f'<div class="{escape(cls)}"><i>{escape(empty)}</i></div>'
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{escape(c)}</th>"
                   for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{v}</td>" for v in row)
                   + "</tr>" for row in rows)
    return (f'<table class="{escape(cls)}" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
