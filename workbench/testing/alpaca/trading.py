"""The trading REST routes of the fake Alpaca server, over a :class:`~.book.Book`.

Account, clock and calendar (the NYSE calendar of :mod:`workbench.data.calendar` on the
fake's clock; calendar times ``HH:MM``), orders (submit, get by id or client id, list,
cancel one or all, replace) and positions (list, one, close one by ``qty`` or ``percentage``,
close all). Answers carry every field alpaca-py's pydantic models require; errors are
``{"code", "message"}`` (404 unknown order or position, 422 invalid or duplicate client id).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from workbench.data import calendar
from workbench.errors import WorkbenchError
from workbench.testing.alpaca.answers import ApiError, Json, error
from workbench.testing.alpaca.book import Book
from workbench.times import NEW_YORK

__all__ = ["clock_json", "routes"]


def _flag(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def _time(value: str | None, name: str) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ApiError(422, 40010001, f"invalid {name}: {value!r}") from None
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def clock_json(now: pd.Timestamp) -> dict:
    """``/v2/clock`` at ``now``: open or not, the next open and close."""
    day = now.tz_convert(NEW_YORK).tz_localize(None).normalize()
    table = calendar.sessions(day - pd.Timedelta(days=1), day + pd.Timedelta(days=14))
    is_open = bool(((table["open"] <= now) & (now < table["close"])).any())
    next_open = table["open"][table["open"] > now].iloc[0]
    next_close = table["close"][table["close"] > now].iloc[0]
    ny = lambda ts: ts.tz_convert(NEW_YORK).isoformat()
    return {"timestamp": ny(now), "is_open": is_open, "next_open": ny(next_open),
            "next_close": ny(next_close)}


def _calendar_json(start: str | None, end: str | None, now: pd.Timestamp) -> list[dict]:
    today = now.tz_convert(NEW_YORK).date().isoformat()
    try:
        table = calendar.sessions(start or today, end or start or today)
    except WorkbenchError as e:
        raise ApiError(422, 40010001, str(e)) from None
    hhmm = lambda ts: ts.tz_convert(NEW_YORK).strftime("%H:%M")
    return [{"date": d.date().isoformat(), "open": hhmm(r.open), "close": hhmm(r.close),
             "session_open": "0400", "session_close": "2000",
             "settlement_date": (d + pd.offsets.BDay(1)).date().isoformat()}
            for d, r in table.iterrows()]


def routes(book: Book, now: Callable[[], pd.Timestamp]) -> list[Route]:
    """The trading routes over ``book``; ``now`` is the fake's clock."""

    def guarded(fn):
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except ApiError as e:
                return error(e.status, e.code, e.message)
        return endpoint

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, 40010000, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, 40010001, "the request body must be a JSON object")
        return body

    def order(o, nested=True) -> dict:
        with book.lock:
            return book.order_json(o, nested)

    async def account(request):
        return Json(book.account_json())

    async def clock(request):
        return Json(clock_json(now()))

    async def get_calendar(request):
        q = request.query_params
        return Json(_calendar_json(q.get("start"), q.get("end"), now()))

    async def submit(request):
        o = book.submit(await body_of(request))
        reason = book.take_rejection()  # accepted, then rejected once the answer is out
        later = None if reason is None else BackgroundTask(book.reject, o.id, reason)
        return Json(order(o), background=later)

    async def list_orders(request):
        q = request.query_params
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(422, 40010001, f"invalid status {status!r}")
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise ApiError(422, 40010001, f"invalid direction {direction!r}")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            raise ApiError(422, 40010001, f"invalid limit {q.get('limit')!r}") from None
        if not 1 <= limit <= 500:
            raise ApiError(422, 40010001, "limit must be between 1 and 500")
        after, until = _time(q.get("after"), "after"), _time(q.get("until"), "until")
        symbols = {s for s in q.get("symbols", "").split(",") if s}
        side, nested = q.get("side"), _flag(q.get("nested"))
        out = []
        for o in book.all_orders():
            if nested and o.parent is not None:
                continue
            if status != "all" and o.is_open != (status == "open"):
                continue
            if (after is not None and o.created_at <= after) or \
                    (until is not None and o.created_at >= until):
                continue
            if (symbols and o.symbol not in symbols) or (side and o.side.value != side):
                continue
            out.append(o)
        if direction == "desc":
            out.reverse()
        return Json([order(o, nested) for o in out[:limit]])

    async def get_order(request):
        return Json(order(book.get(request.path_params["order_id"]),
                                  _flag(request.query_params.get("nested"))))

    async def by_client_id(request):
        cid = request.query_params.get("client_order_id")
        if not cid:
            raise ApiError(422, 40010001, "client_order_id is required")
        return Json(order(book.by_client_id(cid)))

    async def replace(request):
        return Json(order(book.replace(request.path_params["order_id"],
                                               await body_of(request))))

    async def cancel(request):
        book.cancel(request.path_params["order_id"])
        return Response(status_code=204)

    async def cancel_all(request):
        done = book.cancel_all()
        return Json([{"id": o.id, "status": 200, "body": order(o)} for o in done],
                            status_code=207)

    async def positions(request):
        with book.lock:
            return Json([book.position_json(p) for _, p in
                                 sorted(book.positions().items())])

    async def position(request):
        with book.lock:
            return Json(book.position_json(book.position(request.path_params["symbol"])))

    async def close(request):
        q = request.query_params
        return Json(order(book.close_position(
            request.path_params["symbol"], q.get("qty"), q.get("percentage"))))

    async def close_all(request):
        if _flag(request.query_params.get("cancel_orders")):
            book.cancel_all()
        out = []
        for symbol in sorted(book.positions()):
            try:
                out.append({"symbol": symbol, "status": 200,
                            "body": order(book.close_position(symbol))})
            except ApiError as e:
                out.append({"symbol": symbol, "status": e.status,
                            "body": {"code": e.code, "message": e.message}})
        return Json(out, status_code=207)

    table = [
        ("/v2/account", account, ["GET"]),
        ("/v2/clock", clock, ["GET"]),
        ("/v2/calendar", get_calendar, ["GET"]),
        ("/v2/orders:by_client_order_id", by_client_id, ["GET"]),
        ("/v2/orders", submit, ["POST"]),
        ("/v2/orders", list_orders, ["GET"]),
        ("/v2/orders", cancel_all, ["DELETE"]),
        ("/v2/orders/{order_id}", get_order, ["GET"]),
        ("/v2/orders/{order_id}", replace, ["PATCH"]),
        ("/v2/orders/{order_id}", cancel, ["DELETE"]),
        ("/v2/positions", positions, ["GET"]),
        ("/v2/positions", close_all, ["DELETE"]),
        ("/v2/positions/{symbol}", position, ["GET"]),
        ("/v2/positions/{symbol}", close, ["DELETE"]),
    ]
    return [Route(path, guarded(fn), methods=methods) for path, fn, methods in table]
