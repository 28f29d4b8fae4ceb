"""What a restarted session rebuilds so that it decides as the uncrashed one would have.

A session's decisions read more than the order book (which
:meth:`~workbench.orders.OrderManager.from_journal` rebuilds) and the risk state (the last
``state`` event, :meth:`~workbench.risk.RiskGateway.restore`):

* **last prices** (``_Session.last_prices``): each symbol's last close of the day so far.
  They price the cash a pending buy reserves in the shared account's budget
  (``Trader._pending_cost``), size entries, value positions for the daily-loss and
  position-loss switches and the equity events. An uncrashed session holds the close of
  every symbol seen since the day's first bar; a restart that began empty valued a
  pending buy on a symbol without a bar on the resumed minute at $0 and sized the next
  entries larger (issue 12: 961.77 vs 856.08 shares). :func:`last_prices` reads them
  from the bars before the resumed one (the replay's history, or a live restart's minutes
  read from REST).
* **order times** (``Trader.order_times``, the order-rate kill switch's count): the time
  of each intent the run journaled (:func:`order_times`).
* **counters** reported in the session's figures: the orders (intents) and the bars the
  run processed before the resumed bar (:func:`counters`); the resumed bar is processed
  again and counted then.

Indicator warmup needs nothing here: the engine's window is filled with the bars before
the resumed one (``ReplayFeed.history``, a live restart's REST minutes) and its first
evaluation runs on that whole window, as the uncrashed engine's state was computed.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from workbench.model import events as ev
from workbench.model import to_decimal

__all__ = ["counters", "last_prices", "order_times"]


def last_prices(close: pd.DataFrame, since: pd.Timestamp,
                before: pd.Timestamp | None = None) -> dict[str, Decimal]:
    """Each symbol's last close among the rows of ``close`` (times x symbols) from
    ``since`` (the day's first bar) up to, not including, ``before``; symbols without one
    are left out (as a session that has not seen them yet)."""
    rows = close.loc[close.index >= since]
    if before is not None:
        rows = rows.loc[rows.index < before]
    out = {}
    for symbol in rows.columns:
        seen = rows[symbol].dropna()
        if len(seen):
            out[str(symbol)] = to_decimal(float(seen.iloc[-1]))
    return out


def order_times(events) -> list[pd.Timestamp]:
    """When each journaled intent was placed (the journal's time of its ``intent`` event:
    the session's clock when it staged the order)."""
    return [e.ts for e in events if e.type == ev.INTENT]


def counters(events, resume_at) -> tuple[int, int]:
    """``(bars, orders)`` the run processed before the bar ``resume_at`` it resumes at."""
    times = {e.payload.get("bar_time") for e in events if e.type == ev.BAR}
    bars = sum(1 for t in times if t is not None and pd.Timestamp(t) < resume_at)
    return bars, sum(1 for e in events if e.type == ev.INTENT)
