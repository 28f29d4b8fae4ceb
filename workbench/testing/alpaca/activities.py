"""``GET /v2/account/activities/FILL``: the fake's executions as Alpaca's FILL activities.

Added by the alpaca-broker branch (the adapter's ``fills()`` reads it after a restart).
Each activity: ``id`` ``<transaction time as %Y%m%d%H%M%S%f[:-3]>::<execution id>`` (the
real API's shape; the part after ``::`` is the trade update's ``execution_id`` here),
``activity_type`` ``FILL``, ``transaction_time``, ``type`` (``fill``/``partial_fill`` by
the order's fill state after it), ``price``, ``qty``, ``side``, ``symbol``,
``leaves_qty``, ``cum_qty``, ``order_id``, ``order_status``. Query: ``after``/``until``
(RFC 3339), ``direction`` (``desc`` default, as Alpaca), ``page_size`` (<= 100) and
``page_token`` (the id of the last activity of the previous page).
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from starlette.requests import Request
from starlette.routing import Route

from workbench.testing.alpaca.answers import ApiError, Json, error, iso, num
from workbench.testing.alpaca.book import Book

__all__ = ["routes"]


def _time(value: str | None, name: str) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise ApiError(422, 40010001, f"invalid {name} {value!r}") from None
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _activities(book: Book) -> list[dict]:
    out, done = [], {}
    with book.lock:
        for fill in book.fills:
            o = book.by_client_id(fill.client_order_id)
            cum = done.get(o.id, Decimal(0)) + fill.quantity
            done[o.id] = cum
            stamp = fill.time.strftime("%Y%m%d%H%M%S%f")[:-3]
            out.append({"id": f"{stamp}::{fill.execution_id}", "activity_type": "FILL",
                        "transaction_time": iso(fill.time),
                        "type": "fill" if cum == o.qty else "partial_fill",
                        "price": num(fill.price), "qty": num(fill.quantity),
                        "side": fill.side.value, "symbol": fill.symbol,
                        "leaves_qty": num(o.qty - cum), "cum_qty": num(cum),
                        "order_id": o.id, "order_status": o.status})
    return out


def routes(book: Book) -> list[Route]:
    async def fills(request: Request):
        q = request.query_params
        try:
            after, until = _time(q.get("after"), "after"), _time(q.get("until"), "until")
            direction = q.get("direction", "desc")
            if direction not in ("asc", "desc"):
                raise ApiError(422, 40010001, f"invalid direction {direction!r}")
            size = int(q.get("page_size", "100"))
            if not 1 <= size <= 100:
                raise ApiError(422, 40010001, "page_size must be between 1 and 100")
        except ValueError:
            return error(422, 40010001, "invalid page_size")
        except ApiError as e:
            return error(e.status, e.code, e.message)
        acts = [a for a in _activities(book)
                if (after is None or pd.Timestamp(a["transaction_time"]) > after)
                and (until is None or pd.Timestamp(a["transaction_time"]) < until)]
        if direction == "desc":
            acts.reverse()
        token = q.get("page_token")
        if token:
            ids = [a["id"] for a in acts]
            acts = acts[ids.index(token) + 1:] if token in ids else []
        return Json(acts[:size])

    return [Route("/v2/account/activities/FILL", fills, methods=["GET"])]
