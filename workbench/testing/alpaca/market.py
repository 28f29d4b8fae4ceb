"""The market data the fake serves: :class:`BarBook` and the market-data REST routes.

Routes (as Alpaca serves them and alpaca-py reads them):

* ``GET /v2/stocks/bars``: ``symbols=A,B``, ``timeframe`` (``1Min``, ``5Min``, ``1Hour``,
  ``1Day``, ...), ``start``/``end`` (RFC 3339, both inclusive), ``limit`` (1..10000, default
  1000), ``page_token``, ``feed``, ``adjustment``, ``sort``. Answer ``{"bars": {"AAPL":
  [{"t","o","h","l","c","v","n","vw"}, ...]}, "next_page_token": tok|null}``: symbols in name
  order, bars in time order within a symbol, at most ``min(limit, page_size)`` bars a page,
  the token null on the last page (never ``""``), ``bars`` ``{}`` when empty.
* ``GET /v2/stocks/bars/latest``, ``/quotes/latest``, ``/trades/latest``: ``{"bars": {"AAPL":
  {bar}}}``; the quote and trade are made from the latest bar's close (the fake has no ticks).

A feed not in ``feeds`` is answered 403. The fake does not aggregate or adjust: given one
DataFrame it serves those bars for any timeframe; given ``{"1Min": df, "1Day": df2}`` each for
its own. During a replay the book's ``horizon`` (the last published minute) hides every bar
that has not closed on the fake's clock, for history and "latest" alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.routing import Route

from workbench.testing.alpaca.answers import Json, error

__all__ = ["ADJUSTMENTS", "FEEDS", "BarBook", "routes"]

FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
_TIMEFRAME = re.compile(r"^\d+(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_ANY = "*"


class _Series:
    """One symbol's bars as arrays, rendered to JSON dicts only when a page asks."""

    def __init__(self, rows: pd.DataFrame) -> None:
        rows = rows.sort_values("ts", kind="stable")
        ts = pd.DatetimeIndex(rows["ts"]).tz_convert("UTC").as_unit("ns")
        self.ns = ts.asi8
        self.stamps = ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
        self.values = {k: rows[c].to_numpy(dtype=float) for k, c in
                       (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("v", "volume"))}
        self.n = rows["n"].to_numpy() if "n" in rows else None
        self.vw = rows["vw"].to_numpy(dtype=float) if "vw" in rows else None

    def bar(self, i: int) -> dict:
        v = self.values
        volume = float(v["v"][i])
        return {
            "t": self.stamps[i], "o": float(v["o"][i]), "h": float(v["h"][i]),
            "l": float(v["l"][i]), "c": float(v["c"][i]),
            "v": int(volume) if volume.is_integer() else volume,
            "n": None if self.n is None else int(self.n[i]),
            "vw": None if self.vw is None else float(self.vw[i]),
        }

    def visible(self, horizon: int | None) -> int:
        """How many bars start at or before ``horizon`` (ns; None: all)."""
        return len(self.ns) if horizon is None else int(np.searchsorted(self.ns, horizon, "right"))


class BarBook:
    """The bars the fake serves, by timeframe (``"*"``: any) and symbol.

    ``horizon``: a callable giving the last bar start (ns) that may be shown, or None for
    "everything"; the replay sets it so no unclosed minute is ever served.
    """

    def __init__(self, bars=None, *, page_size: int = 10_000,
                 feeds: tuple[str, ...] = ("iex", "sip"),
                 horizon: Callable[[], int | None] | None = None) -> None:
        self.page_size = int(page_size)
        self.feeds = tuple(feeds)
        self.horizon = horizon
        self._book: dict[str, dict[str, _Series]] = {}
        frames = bars if isinstance(bars, Mapping) else {_ANY: bars}
        for timeframe, frame in frames.items():
            if frame is not None and len(frame):
                self._book[str(timeframe)] = {str(sym): _Series(rows)
                                              for sym, rows in frame.groupby("symbol", sort=True)}

    def series(self, timeframe: str) -> dict[str, _Series]:
        return self._book.get(timeframe, self._book.get(_ANY, {}))

    def _horizon(self) -> int | None:
        return None if self.horizon is None else self.horizon()

    def page(self, symbols: list[str], timeframe: str, start, end, desc: bool,
             offset: int, limit: int) -> tuple[dict[str, list[dict]], int | None]:
        """Bars ``offset .. offset+limit`` of the answer, and the next offset (None: done)."""
        book, horizon = self.series(timeframe), self._horizon()
        spans = []
        for sym in sorted(set(symbols)):
            if sym in book:
                s = book[sym]
                lo = 0 if start is None else int(np.searchsorted(s.ns, start.value, "left"))
                hi = len(s.ns) if end is None else int(np.searchsorted(s.ns, end.value, "right"))
                hi = min(hi, s.visible(horizon))
                if hi > lo:
                    spans.append((sym, s, lo, hi))
        out: dict[str, list[dict]] = {}
        skip, room = offset, limit
        for sym, s, lo, hi in spans:
            count = hi - lo
            if skip >= count:
                skip -= count
                continue
            take = min(count - skip, room)
            idx = range(hi - 1 - skip, hi - 1 - skip - take, -1) if desc else range(lo + skip, lo + skip + take)
            out[sym] = [s.bar(i) for i in idx]
            skip, room = 0, room - take
            if room == 0:
                break
        total = sum(hi - lo for _, _, lo, hi in spans)
        nxt = offset + limit
        return out, (nxt if nxt < total else None)

    def latest(self, symbols: list[str]) -> dict[str, dict]:
        """The last visible 1-minute (or only) bar of each symbol that has one."""
        book, horizon = self.series("1Min"), self._horizon()
        out = {}
        for sym in symbols:
            s = book.get(sym)
            n = 0 if s is None else s.visible(horizon)
            if n:
                out[sym] = s.bar(n - 1)
        return out


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid page_token") from None
    if not text.startswith("offset:") or not text[7:].isdigit():
        raise ValueError("invalid page_token")
    return int(text[7:])


def _time(query: Mapping[str, str], name: str):
    if name not in query:
        return None
    try:
        ts = pd.Timestamp(query[name])
    except (TypeError, ValueError):
        raise ValueError(f"invalid {name}") from None
    return (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("ns")


def _symbols(q) -> list[str]:
    symbols = [s for s in q.get("symbols", "").split(",") if s]
    if not symbols:
        raise ValueError("missing symbols")
    return symbols


def _feed(q, book: BarBook) -> Json | None:
    feed = q.get("feed", "iex")
    if feed not in FEEDS:
        return error(400, 40010001, f"invalid feed {feed!r}")
    if feed not in book.feeds:
        return error(403, 40310000, f"subscription does not permit querying {feed} data")
    return None


def routes(book: BarBook) -> list[Route]:
    """The market-data routes over ``book``."""

    async def get_bars(request: Request) -> Json:
        q = request.query_params
        try:
            symbols = _symbols(q)
            if not _TIMEFRAME.match(q.get("timeframe", "")):
                raise ValueError(f"invalid timeframe {q.get('timeframe', '')!r}")
            if q.get("feed", "iex") not in FEEDS:
                raise ValueError(f"invalid feed {q['feed']!r}")
            if q.get("adjustment", "raw") not in ADJUSTMENTS:
                raise ValueError(f"invalid adjustment {q['adjustment']!r}")
            if q.get("sort", "asc") not in ("asc", "desc"):
                raise ValueError(f"invalid sort {q['sort']!r}")
            limit = int(q.get("limit", "1000")) if q.get("limit", "1000").isdigit() else -1
            if not 1 <= limit <= 10_000:
                raise ValueError("invalid limit: must be between 1 and 10000")
            start, end, offset = _time(q, "start"), _time(q, "end"), _offset(q.get("page_token"))
        except ValueError as e:
            return error(400, 40010001, str(e))
        if start is not None and end is not None and start > end:
            return error(422, 42210000, "end should not be before start")
        refused = _feed(q, book)
        if refused is not None:
            return refused
        bars, nxt = book.page(symbols, q["timeframe"], start, end, q.get("sort") == "desc",
                              offset, min(limit, book.page_size))
        return Json({"bars": bars, "next_page_token": None if nxt is None else _token(nxt)})

    def latest(kind: str):
        async def get_latest(request: Request) -> Json:
            q = request.query_params
            try:
                symbols = _symbols(q)
            except ValueError as e:
                return error(400, 40010001, str(e))
            refused = _feed(q, book)
            if refused is not None:
                return refused
            bars = book.latest(symbols)
            if kind == "bars":
                return Json({"bars": bars})
            if kind == "quotes":
                return Json({"quotes": {s: {
                    "t": b["t"], "ax": "V", "ap": b["c"], "as": 1, "bx": "V", "bp": b["c"],
                    "bs": 1, "c": ["R"], "z": "C"} for s, b in bars.items()}})
            return Json({"trades": {s: {
                "t": b["t"], "x": "V", "p": b["c"], "s": 100, "c": ["@"], "i": 1, "z": "C"}
                for s, b in bars.items()}})
        return get_latest

    return [
        Route("/v2/stocks/bars", get_bars, methods=["GET"]),
        Route("/v2/stocks/bars/latest", latest("bars"), methods=["GET"]),
        Route("/v2/stocks/quotes/latest", latest("quotes"), methods=["GET"]),
        Route("/v2/stocks/trades/latest", latest("trades"), methods=["GET"]),
    ]
