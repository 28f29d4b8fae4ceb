"""The order manager: intents journaled before they are sent, outcomes settled by lookup.

    manager = OrderManager(broker, journal, clock)      # journal: append / append_durable
    manager.start()                                     # a new run: the broker's account
    manager.place(intent)        # intent (durable) -> broker_request -> broker_reply
    manager.place_all(intents)   # a bar's intents: all journaled, ONE sync, then each sent
    manager.stage(intent); ...; manager.commit()   # the same, staged as they are decided
    manager.process_updates()    # stream: fills (de-duplicated by execution id), statuses
    manager.settle_unknown()     # UNKNOWN orders looked up by client id, never resent blindly
    manager.reconcile()          # at a restart: adopt what is explained, list the rest

    # after a crash
    manager = OrderManager.from_journal(broker, journal, clock, journal_events)
    rec = manager.reconcile(); if not rec.ok: halt (fail closed)

Every change of state is an event journaled first and applied second through
:func:`workbench.orders.book.apply`, so the state rebuilt from the journal equals the live
state. Only the intent is journaled durably (before the broker call that depends on it);
anything journaled after it and lost in a crash is found again at the broker.

Group commit (the session's path): :meth:`OrderManager.stage` journals an intent without a
sync and books it NEW (an open order: the rest of the bar's sizing and one-order-per-symbol
rules see it); :meth:`OrderManager.commit` makes every staged intent durable with one
``sink.sync()`` and only then sends them, in the order staged. Intent-before-send holds for
each order; a bar's N intents cost one fdatasync instead of N. A crash after the sync and
before some send leaves intents without a request or reply: :func:`~workbench.orders.book.rebuild`
marks them UNKNOWN and the restart settles them by lookup, as for a single intent. A crash
before the sync loses (machine crash) or keeps (process crash) intents that were never sent:
either is safe. The sink must have ``sync()`` (the journal has); staging on one without is
refused.

Outcomes of a submit: accepted (``broker_reply``), refused (``broker_reply`` outcome
``rejected``: a rejection, or a rate limit: not sent, not retried here), duplicate client
id (the order exists: looked up at once), or anything else (timeout, lost reply, 5xx, a
bug in the adapter) -> ``order_unknown``: UNKNOWN, never "failed". ``place`` is idempotent
per client order id: an intent the book already holds is never sent again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench.brokers.base import (
    Broker,
    BrokerOrder,
    BrokerUpdate,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    TemporaryBrokerError,
)
from workbench.model import Account, Fill, Order, OrderIntent, OrderStatus, Position
from workbench.model import events as ev
from workbench.model.codec import encode
from workbench.model.events import EventSink
from workbench.orders.book import OrderBook, apply, order_payload, rebuild
from workbench.orders.payloads import encode_model, held, plain_payload
from workbench.orders.reconcile import Difference, Reconciliation, reconcile
from workbench.orders.sending import Sending
from workbench.orders.states import IllegalTransition, catch_up

__all__ = ["OrderManager"]

S = OrderStatus
_ROUNDS = 3  # reconciliation's re-reads of a broker that moved on during the first
NEVER_ARRIVED = "never arrived: not at the broker after its acknowledgement window"


class OrderManager(Sending):
    """Places, tracks and settles the orders of one run (see the module doc).

    ``sink`` is the run's journal or any :class:`~workbench.model.events.EventSink`;
    ``clock`` gives event times and the age of UNKNOWN orders; ``ack_window`` defaults to
    the broker's."""

    def __init__(self, broker: Broker, sink: EventSink, clock, *, book: OrderBook | None = None,
                 ack_window: pd.Timedelta | None = None) -> None:
        self.broker = broker
        self.sink = sink
        self.clock = clock
        self.book = book if book is not None else OrderBook()
        window = ack_window if ack_window is not None else getattr(broker, "ack_window", None)
        self.ack_window = pd.Timedelta(window if window is not None else 0)
        self._staged: list[OrderIntent] = []  # journaled, not yet synced nor sent
        self.syncs = 0  # syncs made for intents (one per place, one per commit)

    @classmethod
    def from_journal(cls, broker: Broker, sink: EventSink, clock, events: Iterable[Any],
                     **kw) -> OrderManager:
        """A manager whose state is rebuilt from a run's journaled events."""
        return cls(broker, sink, clock, book=rebuild(events), **kw)

    def rebuild(self, events: Iterable[Any]) -> OrderBook:
        """Replace the state with the one ``events`` describe (pure: see ``book.rebuild``)."""
        self.book = rebuild(events)
        return self.book

    # -- the journal ----------------------------------------------------------------------
    def _emit(self, event_type: str, durable: bool = False, model=None, **payload) -> None:
        """Journal, then apply. ``time`` is the manager's clock, except in a fill's payload,
        where it is the fill's own time. ``model``: what the payload encodes, if held."""
        payload = plain_payload({**payload, "time": payload.get("time", self.clock.now())})
        (self.sink.append_durable if durable else self.sink.append)(event_type, **payload)
        apply(self.book, event_type, payload, model)

    # -- views ----------------------------------------------------------------------------
    @property
    def orders(self) -> dict[str, Order]:
        return dict(self.book.orders)

    def order(self, client_order_id: str) -> Order | None:
        return self.book.orders.get(client_order_id)

    def open_orders(self) -> dict[str, Order]:
        return self.book.open_orders()

    def positions(self) -> dict[str, Position]:
        return self.book.ledger.open_positions()

    @property
    def cash(self):
        return self.book.ledger.cash

    def account(self) -> Account:
        return self.book.ledger.account()

    @property
    def anomalies(self) -> list[str]:
        return list(self.book.anomalies)

    # -- start ----------------------------------------------------------------------------
    def start(self) -> None:
        """Take the broker's account (cash, positions, open orders) as this run's start;
        once per run (a rebuilt run already has it)."""
        if self.book.started_at is not None:
            return
        account, open_orders = self.broker.account(), self.broker.open_orders()
        # fills already in the account: of open orders, and any stamped at or after now
        executions = {f.execution_id for o in open_orders if o.filled_quantity > 0
                      for f in self.broker.fills(o.client_order_id)}
        executions |= {f.execution_id for f in self.broker.fills(since=self.clock.now())}
        self._emit(ev.ACCOUNT_SNAPSHOT, durable=True, cash=account.cash,
                   positions=[encode(p) for p in account.positions.values()],
                   open_orders=[order_payload(o) for o in open_orders],
                   executions=sorted(executions))

    # -- placing and canceling ------------------------------------------------------------
    def place(self, intent: OrderIntent) -> Order:
        """Journal ``intent`` durably, then send it once; the order as it then stands."""
        cid = intent.client_order_id
        if cid in self.book.orders:
            return self.book.orders[cid]  # one broker order per intent, ever
        self._emit(ev.INTENT, durable=True, model=held(intent), **encode_model(intent))
        self.syncs += 1
        return self._send(intent, "submit")

    def stage(self, intent: OrderIntent) -> Order:
        """Journal ``intent`` (not yet synced) and book it NEW, to be sent by :meth:`commit`;
        an intent the book already holds is not staged again (its order as it stands)."""
        cid = intent.client_order_id
        if cid in self.book.orders:
            return self.book.orders[cid]
        if not callable(getattr(self.sink, "sync", None)):
            raise TypeError(f"group commit needs a sink with sync(); {type(self.sink).__name__} "
                            "has none: use place()")
        self._emit(ev.INTENT, model=held(intent), **encode_model(intent))
        self._staged.append(intent)
        return self.book.orders[cid]

    @property
    def staged(self) -> tuple[OrderIntent, ...]:
        """Intents journaled by :meth:`stage` and not yet sent."""
        return tuple(self._staged)

    def commit(self) -> list[Order]:
        """One sync makes every staged intent durable; then each is sent once, in order.
        The orders as they then stand (none if nothing was staged: no sync either).

        A broker with ``submit_many`` (the simulated broker: one transaction) gets the
        group in one call, after a ``broker_request`` for each; each outcome is then
        settled as a single submit's (a reply, a rejection, a duplicate looked up, or
        UNKNOWN), and a failure of the call itself leaves every order of the group
        UNKNOWN, settled by lookup. Otherwise each intent is submitted in turn.

        An exception from a send (an adapter bug) propagates after the intents not yet
        sent are left staged: durable, NEW in the book, sent by the next ``commit`` (or,
        after a crash, UNKNOWN and settled by lookup)."""
        if not self._staged:
            return []
        self.sink.sync()
        self.syncs += 1
        submit_many = getattr(self.broker, "submit_many", None)
        if callable(submit_many) and len(self._staged) > 1:
            return self._send_many(submit_many)
        sent = []
        while self._staged:
            intent = self._staged.pop(0)
            sent.append(self._send(intent, "submit"))
        return sent

    def place_all(self, intents: Iterable[OrderIntent]) -> list[Order]:
        """:meth:`stage` each intent, then :meth:`commit`: N intents, one sync. The orders
        of ``intents`` as they then stand, in their order (known ones not sent again)."""
        cids = [self.stage(i).client_order_id for i in intents]
        self.commit()
        return [self.book.orders[c] for c in cids]

    def _send(self, intent: OrderIntent, action: str) -> Order:
        cid = intent.client_order_id
        self._emit(ev.BROKER_REQUEST, client_order_id=cid, action=action)
        try:
            result = self.broker.submit(intent)
        except Exception as e:  # noqa: BLE001 - any failure is an answer _settle judges
            result = e
        return self._settle(cid, action, result)

    def _reply(self, cid: str, outcome: str, action: str = "submit", **fields) -> None:
        self._emit(ev.BROKER_REPLY, client_order_id=cid, action=action, outcome=outcome, **fields)

    def cancel(self, client_order_id: str) -> Order:
        """Ask the broker to cancel; the outcome arrives as an update (drained here)."""
        order = self.book.orders[client_order_id]
        if order.status.is_terminal:
            return order
        self._emit(ev.BROKER_REQUEST, client_order_id=client_order_id, action="cancel")
        try:
            self.broker.cancel(client_order_id)
        except (OrderNotFound, OrderRejected) as e:  # gone, filled or ended meanwhile
            self._reply(client_order_id, "rejected", action="cancel", reason=str(e))
            return self.sync(client_order_id)
        except RateLimited as e:
            self._reply(client_order_id, "rejected", action="cancel", reason=str(e))
        except TemporaryBrokerError as e:  # did the cancel happen? settle by lookup
            self._mark_unknown(client_order_id, "cancel", repr(e))
        else:
            self._reply(client_order_id, "accepted", action="cancel")
        self.process_updates()
        return self.book.orders[client_order_id]

    # -- what the broker tells ------------------------------------------------------------
    def process_updates(self) -> list[Fill]:
        """Apply the broker's pending updates; the fills that were new."""
        fills = []
        for update in self.broker.updates():
            fill = self._on_update(update)
            if fill is not None:
                fills.append(fill)
        return fills

    def _on_update(self, update: BrokerUpdate) -> Fill | None:
        order = update.order
        if order.client_order_id not in self.book.orders:
            if order.parent_id not in self.book.orders:
                self._emit(ev.UNMATCHED_UPDATE, client_order_id=order.client_order_id,
                           event=update.event, symbol=order.symbol, side=order.side,
                           quantity=order.quantity, status=order.status,
                           execution_id=update.fill.execution_id if update.fill else None)
                return None
            self._learn_legs(order, as_leg=True)
        if update.fill is not None:
            return update.fill if self._record_fill(update.fill, "stream") else None
        self._record_status(order, "stream")
        return None

    def _learn_legs(self, order: BrokerOrder, as_leg: bool = False) -> None:
        """Register bracket legs as ACCEPTED; their fills and updates then move them."""
        for leg in ((order,) if as_leg else order.legs):
            if leg.client_order_id not in self.book.orders:
                self._emit(ev.ORDER_LEG, **{**order_payload(leg), "status": S.ACCEPTED,
                                           "filled_quantity": "0", "average_price": None})

    def _record_fill(self, fill: Fill, source: str) -> bool:
        """Journal a new fill, then (for readers of the journal: the catalog's ``orders``
        and ``positions`` views) the order and the position it left."""
        if fill.execution_id in self.book.executions:
            return False
        self._emit(ev.FILL, model=held(fill), **encode_model(fill), source=source)
        order = self.book.orders.get(fill.client_order_id)
        if order is not None:
            self._emit(ev.ORDER_UPDATE, client_order_id=order.client_order_id,
                       status=order.status, filled_quantity=order.filled_quantity,
                       average_price=order.average_price,
                       broker_order_id=order.broker_order_id, source="fill")
        self._emit(ev.POSITION, **encode_model(self.book.ledger.positions[fill.symbol]))
        return True

    def _record_status(self, order: BrokerOrder, source: str) -> None:
        ours = self.book.orders[order.client_order_id]
        try:
            if catch_up(ours, order.status) == ours:
                return  # stale or already known
        except IllegalTransition:
            pass  # journaled all the same: the book records the anomaly
        self._emit(ev.ORDER_UPDATE, client_order_id=order.client_order_id, status=order.status,
                   filled_quantity=ours.filled_quantity, average_price=ours.average_price,
                   broker_order_id=order.broker_order_id, reason=order.reason, source=source)

    def sync(self, client_order_id: str) -> Order:
        """Look the order up and adopt the broker's view (its legs, fills, then status)."""
        self._emit(ev.BROKER_REQUEST, client_order_id=client_order_id, action="lookup")
        try:
            found = self.broker.get_order(client_order_id)
        except TemporaryBrokerError as e:
            self._mark_unknown(client_order_id, "lookup", e)
            return self.book.orders[client_order_id]
        if found is None:
            self._mark_unknown(client_order_id, "lookup", "not found")
        else:
            self.adopt(found, "lookup")
        return self.book.orders[client_order_id]

    def _mark_unknown(self, cid: str, action: str, error) -> None:
        if self.book.orders[cid].status in (S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED):
            self._emit(ev.ORDER_UNKNOWN, client_order_id=cid, action=action, error=str(error))

    def adopt(self, order: BrokerOrder, source: str) -> None:
        """Bring a known order (and its legs) up to the broker's view of it."""
        cid = order.client_order_id
        if self.book.orders[cid].status is S.UNKNOWN:
            self._emit(ev.ORDER_SETTLED, client_order_id=cid, found=True, status=order.status,
                       broker_order_id=order.broker_order_id)
        self._learn_legs(order)
        for member in (order, *order.legs):
            for fill in self.broker.fills(member.client_order_id):
                self._record_fill(fill, source)
            self._record_status(member, source)

    def settle_unknown(self, *, resend: bool = False) -> list[Order]:
        """Look up every UNKNOWN order: found -> its real state; else left UNKNOWN until
        the acknowledgement window has passed, then REJECTED ("never arrived") or, with
        ``resend``, sent again under the same client id (never blindly: the lookup says
        it is not there, and a late original would make the broker refuse the copy as a
        duplicate, which is then looked up). The orders that left UNKNOWN."""
        settled = []
        if not any(o.status is S.UNKNOWN for o in self.book.open.values()):
            return settled  # UNKNOWN is an open state: the open orders say (every bar)
        for cid in [c for c, o in self.book.orders.items() if o.status is S.UNKNOWN]:
            try:
                found = self.broker.get_order(cid)
            except TemporaryBrokerError:
                continue
            if found is not None:
                self.adopt(found, "lookup")
            elif self._never_arrived(cid) and resend:
                self._send(self.book.orders[cid].intent, "resubmit")
            elif self._never_arrived(cid):
                self._emit(ev.ORDER_SETTLED, client_order_id=cid, found=False, reason=NEVER_ARRIVED)
            if self.book.orders[cid].status is not S.UNKNOWN:
                settled.append(self.book.orders[cid])
        return settled

    def _never_arrived(self, cid: str) -> bool:
        """Not found, never acknowledged, and the acknowledgement window has passed (an
        order the broker acknowledged and then lost stays UNKNOWN: reconcile reports it)."""
        if self.book.orders[cid].broker_order_id is not None:
            return False
        now = self.clock.now()
        return now - self.book.unknown_since.get(cid, now) >= self.ack_window

    def _adopt(self, found: Reconciliation, before_orders=None) -> None:
        """Apply what the broker did that the journal lacks: legs, fills, orders' states."""
        for order in found.adopted_orders:
            if order.parent_id and order.client_order_id not in self.book.orders:
                self._learn_legs(order, as_leg=True)
        for fill in found.adopted_fills:  # in the broker's order, as they happened
            self._record_fill(fill, "reconcile")
        if before_orders is not None:
            before_orders()
        for order in found.adopted_orders:  # ended while we were away; legs we had not seen
            self.adopt(order, "reconcile")

    def reconcile(self, *, resend: bool = False, cash_tolerance=0) -> Reconciliation:
        """Drain updates, settle UNKNOWN orders, compare with the broker, adopt what the
        broker did while we were away (fills, ended orders, unseen legs), journal the
        result. Trading must stop unless ``result.ok``: fail closed."""
        self.process_updates()
        first = reconcile(self.book, self.broker, cash_tolerance=cash_tolerance)
        self._adopt(first, before_orders=lambda: self.settle_unknown(resend=resend))
        fills, orders = list(first.adopted_fills), list(first.adopted_orders)
        for _ in range(_ROUNDS):  # a live broker moves on meanwhile (an order fills between
            self.process_updates()  # two reads): adopt what it did, then compare again
            final = reconcile(self.book, self.broker, cash_tolerance=cash_tolerance)
            if not (final.adopted_fills or final.adopted_orders):
                break
            self._adopt(final)
            fills += final.adopted_fills
            orders += final.adopted_orders
        leftover = [Difference("order", o.client_order_id, str(self.book.orders[
            o.client_order_id].status), f"{o.status}: could not be adopted")
            for o in final.adopted_orders if o.client_order_id in self.book.orders]
        result = Reconciliation(final.differences + tuple(leftover), tuple(fills),
                                tuple(orders))
        self._emit(ev.RECONCILE, ok=result.ok,
                   differences=[str(d) for d in result.differences],
                   adopted_fills=[f.execution_id for f in result.adopted_fills],
                   adopted_orders=[o.client_order_id for o in result.adopted_orders])
        return result
