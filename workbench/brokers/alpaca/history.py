"""Alpaca's order history, for reconciliation: every order created after a time.

``GET /v2/orders?status=all&nested=true&direction=asc&after=...`` page by page (at most
``PAGE`` a page; the next page starts after the last order's ``created_at``, one
microsecond earlier and de-duplicated by id, so orders sharing that time are not lost):
each order tree learned and flattened, its legs after it. Without it a filled order
deleted or edited at the broker between a kill and a restart went unnoticed: only the
open orders and positions were compared (issue 12).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from workbench.brokers.base import BrokerOrder, TemporaryBrokerError
from workbench.times import to_utc

__all__ = ["PAGE", "order_history"]

PAGE = 500
_STEP = pd.Timedelta(microseconds=1)


def order_history(list_page: Callable[[dict], list[dict]], learn: Callable[[dict], BrokerOrder],
                  since=None, page: int = PAGE) -> list[BrokerOrder]:
    """Every order created after ``since`` (all: None), oldest first, legs flattened after
    their parent; ``list_page(query)`` reads one page (the ``get_orders`` keywords),
    ``learn(raw)`` makes a raw order tree a :class:`BrokerOrder`."""
    after = None if since is None else to_utc(since) - _STEP
    out, seen = [], set()
    while True:
        query = {"status": "all", "nested": True, "limit": page, "direction": "asc"}
        if after is not None:
            query["after"] = after.to_pydatetime()
        raws = list_page(query)
        new = [r for r in raws if str(r.get("id")) not in seen]
        for raw in new:
            seen.add(str(raw.get("id")))
            order = learn(raw)
            out += [order, *order.legs]
        if len(raws) < page or not new:
            return out
        try:
            after = to_utc(pd.Timestamp(raws[-1]["created_at"])) - _STEP
        except (KeyError, ValueError, TypeError):
            raise TemporaryBrokerError("list orders: an order without created_at") from None
