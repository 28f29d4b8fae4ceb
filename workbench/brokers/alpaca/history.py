"""Alpaca's order history, for reconciliation: every order created after a time.

``GET /v2/orders?status=all&nested=true&direction=asc&after=...`` page by page (at most
``PAGE`` a page; of a full page, the orders created at its last time are left for the
next page, which starts after the time before it, so orders sharing a time are never
split; a full page of one time cannot be paged past: an error, never a short history):
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
        keep = raws
        if len(raws) >= page:  # more may follow: the orders of the last time come again
            times = [_created(r) for r in raws]
            keep = [r for r, t in zip(raws, times, strict=True) if t < times[-1]]
            if not keep:
                raise TemporaryBrokerError(f"list orders: more than {page} orders created at "
                                           f"{times[-1].isoformat()}: the history cannot be "
                                           "paged")
            after = times[len(keep) - 1]
        for raw in keep:
            if str(raw.get("id")) not in seen:
                seen.add(str(raw.get("id")))
                order = learn(raw)
                out += [order, *order.legs]
        if keep is raws:
            return out


def _created(raw: dict) -> pd.Timestamp:
    try:
        return to_utc(pd.Timestamp(raw["created_at"]))
    except (KeyError, ValueError, TypeError):
        raise TemporaryBrokerError("list orders: an order without created_at") from None
