"""Reconciliation: the journal's account against the broker's (the broker is the truth).

:func:`reconcile` only reads. It sorts what differs into

* **explained, to adopt**: fills the broker has for our orders that the journal lacks
  (a fill while the runner was down, or lost with the journal's unflushed tail), orders of
  ours that ended at the broker meanwhile, and bracket legs of our entries we had not seen;
* **unexplained differences**: a position or open order the journal cannot explain (a
  manual order, a position changed behind the session's back), a fill of an order this run
  never placed, an order the broker no longer has, cash that does not match, an UNKNOWN
  order not yet settled, and every anomaly the book recorded. Any of them means the
  session must halt: fail closed.
* **history** (issue 12): the broker's order and fill history since the run began is
  compared with the journal by execution id and client order id, not only the open orders
  and positions: a fill the journal has that the broker no longer lists, or lists with
  another order, side, quantity or price (a filled order deleted or edited at the broker
  between a kill and a restart), and an order of ours with fills that the broker's order
  history lacks or shows less filled, are differences.

Positions and cash are compared after applying the adoptable fills to a copy of the
ledger; a symbol missing from the broker's positions is compared as flat there, never
assumed flat here. Fills are listed from ``book.started_at``: the run's clock and the
broker's fill times must share a timeline (a ``SimClock`` in replays).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal

from workbench.brokers.base import Broker, BrokerOrder
from workbench.model import Fill, OrderStatus

__all__ = ["Difference", "Reconciliation", "reconcile"]

S = OrderStatus


@dataclass(frozen=True, slots=True)
class Difference:
    """One unexplained difference: ``kind`` is position, order, fill, cash, unsettled or
    anomaly; ``key`` the symbol, client order id or execution id."""

    kind: str
    key: str
    ours: str
    broker: str

    def __str__(self) -> str:
        if self.kind == "anomaly":
            return f"anomaly: {self.ours}"
        return f"{self.kind} {self.key}: journal says {self.ours}, broker says {self.broker}"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    differences: tuple[Difference, ...] = ()
    adopted_fills: tuple[Fill, ...] = ()
    adopted_orders: tuple[BrokerOrder, ...] = ()

    @property
    def ok(self) -> bool:
        """No unexplained difference: trading may go on."""
        return not self.differences

    @property
    def message(self) -> str:
        adopted = (f"adopted {len(self.adopted_fills)} fill(s) and "
                   f"{len(self.adopted_orders)} order update(s) the journal lacked")
        if self.ok:
            return f"reconciled with the broker: no unexplained difference; {adopted}"
        head = (f"{len(self.differences)} unexplained difference(s) with the broker; "
                f"trading halts ({adopted}):")
        return "\n".join([head] + [f"  - {d}" for d in self.differences])


def _describe(order: BrokerOrder) -> str:
    return (f"{order.status} {order.side} {order.quantity} {order.symbol} "
            f"{order.order_type} (broker id {order.broker_order_id})")


def _missing_fills(book, broker: Broker, adopted: dict[str, BrokerOrder], theirs: list[Fill]):
    """(adoptable fills, differences) among the broker's fills since the run started."""
    fills, diffs = [], []
    for fill in theirs:
        if fill.execution_id in book.executions:
            continue
        cid = fill.client_order_id
        if cid not in book.orders and cid not in adopted:
            order = broker.get_order(cid)
            if order is not None and order.parent_id in book.orders:
                adopted[cid] = order  # a leg of our bracket we had not seen
            else:
                diffs.append(Difference("fill", fill.execution_id, "no such fill",
                                        f"{fill.side} {fill.quantity} {fill.symbol} @ "
                                        f"{fill.price} for order {cid} this run did not place"))
                continue
        fills.append(fill)
    return fills, diffs


def _fill_text(f: Fill) -> str:
    return f"{f.side} {f.quantity} {f.symbol} @ {f.price} for order {f.client_order_id}"


def _compare_history(book, broker: Broker, theirs: list[Fill]) -> list[Difference]:
    """The journal's fills and filled orders against the broker's history (module doc)."""
    diffs = []
    by_id = {f.execution_id: f for f in theirs}
    for eid, ours in book.fills.items():
        if book.started_at is not None and ours.time < book.started_at:
            continue
        fill = by_id.get(eid)
        if fill is None:
            diffs.append(Difference("fill", eid, _fill_text(ours),
                                    "no such fill (deleted at the broker?)"))
        elif (fill.client_order_id, fill.side, fill.quantity, fill.price) != (
                ours.client_order_id, ours.side, ours.quantity, ours.price):
            diffs.append(Difference("fill", eid, _fill_text(ours), _fill_text(fill)))
    history = getattr(broker, "orders", None)
    if history is None:
        return diffs
    known = {o.client_order_id: o for o in history(since=book.started_at)}
    for cid, ours in book.orders.items():
        if ours.filled_quantity <= 0:
            continue
        order = known.get(cid) or broker.get_order(cid)
        if order is None:
            diffs.append(Difference("order", cid, f"{ours.status} {ours.intent.side} "
                                    f"{ours.filled_quantity} {ours.intent.symbol} filled",
                                    "no such order in its history (deleted?)"))
        elif (order.filled_quantity < ours.filled_quantity or order.side != ours.intent.side
              or order.symbol != ours.intent.symbol):
            diffs.append(Difference("order", cid, f"{ours.intent.side} "
                                    f"{ours.filled_quantity} {ours.intent.symbol} filled",
                                    f"{order.side} {order.filled_quantity} {order.symbol} "
                                    f"filled ({order.status})"))
    return diffs


def _compare_orders(book, broker: Broker, adopted: dict[str, BrokerOrder]) -> list[Difference]:
    diffs = []
    theirs = {o.client_order_id: o for o in broker.open_orders()}
    for cid, order in theirs.items():
        ours = book.orders.get(cid)
        if ours is None and order.parent_id not in book.orders:
            diffs.append(Difference("order", cid, "no such order", _describe(order)))
        elif ours is not None and ours.status.is_terminal:
            diffs.append(Difference("order", cid, str(ours.status), _describe(order)))
        elif ours is None or ours.status is S.UNKNOWN:
            adopted[cid] = order
    for cid, ours in book.open_orders().items():
        if cid in theirs:
            continue
        order = broker.get_order(cid)
        if order is not None:
            adopted[cid] = order  # it ended at the broker while we were away
        elif ours.status in (S.NEW, S.UNKNOWN) and ours.broker_order_id is None:
            diffs.append(Difference("unsettled", cid, str(ours.status),
                                    "not found yet (settle it by lookup later)"))
        else:
            diffs.append(Difference("order", cid, f"{ours.status} (broker id "
                                    f"{ours.broker_order_id})", "no such order"))
    return diffs


def _compare_money(book, broker: Broker, fills: list[Fill], cash_tolerance) -> list[Difference]:
    ledger = copy.deepcopy(book.ledger)
    for fill in fills:
        ledger.apply(fill)
    ours, theirs = ledger.open_positions(), broker.positions()
    diffs = []
    for symbol in sorted(set(ours) | set(theirs)):
        q_ours = ours[symbol].quantity if symbol in ours else Decimal(0)
        q_theirs = theirs[symbol].quantity if symbol in theirs else Decimal(0)
        if q_ours != q_theirs:
            diffs.append(Difference("position", symbol, f"{q_ours:f}", f"{q_theirs:f}"))
    if book.started_at is not None:
        cash = broker.account().cash
        if abs(cash - ledger.cash) > cash_tolerance:
            diffs.append(Difference("cash", "account", f"{ledger.cash:f}", f"{cash:f}"))
    return diffs


def reconcile(book, broker: Broker, *, cash_tolerance=Decimal(0)) -> Reconciliation:
    """Compare the order book (``workbench.orders.book.OrderBook``) with the broker."""
    adopted: dict[str, BrokerOrder] = {}
    theirs = broker.fills(since=book.started_at)
    fills, diffs = _missing_fills(book, broker, adopted, theirs)
    diffs += _compare_history(book, broker, theirs)
    diffs += _compare_orders(book, broker, adopted)
    diffs += _compare_money(book, broker, fills, Decimal(cash_tolerance))
    diffs += [Difference("anomaly", "", text, "") for text in book.anomalies]
    return Reconciliation(tuple(diffs), tuple(fills), tuple(adopted.values()))
