"""The simulated broker: orders fill against incoming bars with the backtest's cost model.

    broker = SimBroker(path / "broker.sqlite", costs=CostModel(slippage_bps=2), cash=100_000)
    broker.submit(intent)                    # -> BrokerOrder (accepted)
    broker.on_bars(ts, {"AAPL": bar, ...})   # fills due on these bars -> [Fill]
    for update in broker.updates(): ...      # accepted / fill / partial_fill / canceled / ...

State (orders, fills, positions, cash, the update stream) lives in its own SQLite file
(:mod:`workbench.brokers.sim_store`), one transaction per call: a session process can be
killed at any point and a new ``SimBroker`` opened on the file knows everything it
accepted, as a real broker would.

Fill semantics, as the backtest's (``workbench.backtesting.simulation``):

* An order fills only on a bar that starts after the order's bar: after ``intent.bar_time``
  and after the last bar this broker had seen when it accepted the order. A market order
  placed on bar t's signal therefore fills at the open of the symbol's next bar with an
  open, at ``CostModel.fill_price(side, open)`` with ``CostModel.fee(qty, price)``; a bar
  without an open delays it. Prices are the cost model's floats held exactly as Decimals
  (``Decimal(repr(x))``); cash moves by ``qty * price + fee`` in Decimal.
* Stops, limits and bracket legs trigger on the bar's range; a gap through the level fills
  at the open (:mod:`workbench.brokers.sim_rules`). On each bar market orders fill first
  (the open is the bar's first trade), then the others in the order they arrived.
* A bracket is an entry (market, or limit with ``limit_price``) plus a stop-loss leg (a
  stop order) and a take-profit leg (a limit order) of the opposite side, with client ids
  ``<entry>.sl`` and ``<entry>.tp``. The legs become active once the entry is filled and
  are checked from the bar after the entry's fill bar (the backtest never checks stops on
  the entry bar); on a bar that reaches both, the stop loss fills (it is checked first)
  and the take profit is canceled: one cancels the other. Canceling an unfilled entry
  cancels its legs. With partial fills (a test fault) the legs wait for the whole entry,
  and a leg cancels its sibling once it is filled completely.
* An oco order (``OrderType.OCO``: a position's exit protection) is a stop at
  ``stop_loss`` (the order itself) with a take-profit leg ``<id>.tp`` (a limit at
  ``take_profit``), or with one level only a plain stop or limit. Both are active from the
  bar after the one it was accepted on (as any order); on a bar that reaches both the stop
  fills and the take profit is canceled; canceling the order cancels its leg.
* A notional buy (``intent.notional``, Alpaca's notional market order) fills in one
  execution of ``CostModel.max_quantity(notional, fill price)`` shares: the backtest's
  sizing at the fill, fees included; the order's quantity becomes those shares.
* Every fill has a unique execution id. There is no buying-power check: limits are the
  risk gateway's job. ``expire()`` ends DAY orders (the session calls it at the close).

The broker is synchronous: a request it accepted is visible at once (``ack_window`` 0).
Its positions are computed here from its own fills, independently of the order manager's
ledger, so reconciliation compares two separate records.
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd

from workbench.brokers.base import (
    BrokerError,
    BrokerOrder,
    BrokerUpdate,
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from workbench.brokers.sim_rules import (
    SimFaults,
    check_bracket,
    exact,
    fill_quantity,
    ohlc,
    reference_price,
    trigger,
)
from workbench.brokers.sim_store import SimStore, order_from_row, stored_time
from workbench.model import (
    Account,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from workbench.model.costs import CostModel
from workbench.times import to_utc

__all__ = ["SimBroker"]

S = OrderStatus
_ZERO = Decimal(0)
_OPPOSITE = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}


class SimBroker:
    """A broker simulated over bars, persisted in one SQLite file (see the module doc)."""

    ack_window = pd.Timedelta(0)

    def __init__(self, path: str | Path, *, costs: CostModel | None = None, cash=100_000,
                 clock=None, faults: SimFaults | None = None, timeout: float = 10.0,
                 sleep=_time.sleep, durable: bool = False, checkpoint: str = "auto") -> None:
        self.store = SimStore(path, durable=durable, checkpoint=checkpoint)
        self.costs = costs or CostModel()
        self.clock = clock
        self.faults = faults or SimFaults()
        self.timeout = timeout
        self._sleep = sleep
        with self.store.write():
            if self.store.meta("cash") is None:
                self.store.set_meta("cash", Decimal(str(cash)))
        last = self.store.meta("last_bar_time")
        self._last_bar = pd.Timestamp(last) if last else None
        self._cursor = self.store.last_update()  # a new connection sees new updates only

    def close(self) -> None:
        self.store.close()

    def checkpoint(self, min_commits: int = 0) -> tuple[int, int]:
        """:meth:`SimStore.checkpoint` (``checkpoint="manual"``: only this call does one)."""
        return self.store.checkpoint(min_commits)

    def _now(self) -> pd.Timestamp:
        if self.clock is not None:
            return self.clock.now()
        return self._last_bar if self._last_bar is not None else pd.Timestamp(0, tz="UTC")

    # -- requests -------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> BrokerOrder:
        fault = self.faults.take("submit")
        kind = fault.kind if fault else None
        if kind == "rate_limit":
            raise RateLimited("simulated rate limit")
        if kind == "reject":
            raise OrderRejected(f"order {intent.client_order_id} rejected: {fault.reason}",
                                fault.reason)
        if kind == "drop_request":
            raise OutcomeUnknown(f"order {intent.client_order_id}: request lost (simulated)")
        silent = kind == "delay" and fault.seconds >= self.timeout
        if kind == "delay" and not silent:
            self._sleep(fault.seconds)
        order = self._accept(intent)
        if silent:
            self._sleep(self.timeout)
            raise OutcomeUnknown(f"order {intent.client_order_id}: no answer in {self.timeout} s")
        if kind == "lose_reply":
            raise OutcomeUnknown(f"order {intent.client_order_id}: reply lost (simulated)")
        return order

    def submit_many(self, intents) -> list[BrokerOrder | BrokerError]:
        """Submit a group of orders in one transaction (one commit for the group, where
        :meth:`submit` commits each): each intent's outcome as :meth:`submit` would give
        it, in order, a :class:`BrokerOrder` or the error it would raise (returned, not
        raised: a duplicate or a rejected bracket does not stop the others). A process
        killed during the call leaves none of the group at the broker; after it, all the
        accepted ones. With submit faults pending (tests) each intent goes through
        :meth:`submit`, one by one, so every fault keeps its meaning."""
        intents = list(intents)
        if any(f.op == "submit" for f in self.faults.pending):
            return [self._outcome(intent) for intent in intents]
        out: list[BrokerOrder | BrokerError] = []
        with self.store.write():
            stored = self._stored_bar()
            seq = self.store.next_order_seq()
            for intent in intents:
                try:
                    order, seq = self._accept_in(intent, stored, seq)
                except (OrderRejected, DuplicateClientOrderId) as e:
                    out.append(e)
                else:
                    out.append(order)
        return out

    def _outcome(self, intent: OrderIntent) -> BrokerOrder | BrokerError:
        try:
            return self.submit(intent)
        except BrokerError as e:
            return e

    def _accept(self, intent: OrderIntent) -> BrokerOrder:
        with self.store.write():  # committed as the with block ends, after the return value
            return self._accept_in(intent, self._stored_bar(), self.store.next_order_seq())[0]

    def _accept_in(self, intent: OrderIntent, stored, seq: int) -> tuple[BrokerOrder, int]:
        """Insert ``intent`` (and its legs) in the open transaction; ``seq``: the next
        order's sequence number. The order as stored, and the sequence after it."""
        check_bracket(intent)
        row = self._row(intent, self._not_before(intent, stored), seq)
        try:  # the file's unique index finds a duplicate (no read first); nothing is added
            orders = [self._insert(row)]
        except sqlite3.IntegrityError as e:
            if "orders.client_order_id" not in str(e):
                raise
            raise DuplicateClientOrderId(
                f"client_order_id must be unique: {intent.client_order_id}") from None
        if intent.order_type is OrderType.BRACKET:
            orders += self._insert_legs(intent, row, seq + 1)
        elif intent.order_type is OrderType.OCO and intent.stop_loss is not None \
                and intent.take_profit is not None:
            orders.append(self._insert_oco_leg(intent, row, seq + 1))
        return (orders[0] if len(orders) == 1 else replace(orders[0], legs=tuple(orders[1:])),
                seq + len(orders))

    def _stored_bar(self) -> pd.Timestamp | None:
        """The last bar any broker object on this file saw (read in the transaction)."""
        stored = self.store.meta("last_bar_time")
        return to_utc(stored) if stored else None

    def _not_before(self, intent: OrderIntent, stored) -> pd.Timestamp | None:
        times = [t for t in (intent.bar_time, self._last_bar, stored) if t is not None]
        return max(to_utc(t) for t in times) if times else None

    def _row(self, intent: OrderIntent, not_before, seq: int) -> dict:
        now = self._now()
        return {"client_order_id": intent.client_order_id,
                "broker_order_id": f"sim-{seq:08d}",
                "symbol": intent.symbol, "side": intent.side, "quantity": intent.quantity,
                "order_type": intent.order_type, "limit_price": intent.limit_price,
                "stop_price": intent.stop_price, "take_profit": intent.take_profit,
                "stop_loss": intent.stop_loss, "time_in_force": intent.time_in_force,
                "notional": intent.notional,
                "status": S.ACCEPTED, "filled_quantity": _ZERO, "not_before": not_before,
                "created_at": now, "updated_at": now}

    def _insert_legs(self, intent: OrderIntent, entry: dict, seq: int) -> list[BrokerOrder]:
        rows = []
        for n, (suffix, leg, kind, price) in enumerate((
                ("sl", "stop_loss", OrderType.STOP, "stop_price"),
                ("tp", "take_profit", OrderType.LIMIT, "limit_price"))):
            row = {**entry, "client_order_id": f"{intent.client_order_id}.{suffix}",
                   "broker_order_id": f"sim-{seq + n:08d}",
                   "side": _OPPOSITE[intent.side], "order_type": kind, "limit_price": None,
                   "stop_price": None, "take_profit": None, "stop_loss": None,
                   "parent_id": intent.client_order_id, "leg": leg, "not_before": None}
            row[price] = getattr(intent, leg)
            rows.append(self._insert(row))
        return rows

    def _insert_oco_leg(self, intent: OrderIntent, parent: dict, seq: int) -> BrokerOrder:
        """The take-profit leg of an oco: active at once (from the parent's ``not_before``)."""
        return self._insert({**parent, "client_order_id": f"{intent.client_order_id}.tp",
                             "broker_order_id": f"sim-{seq:08d}",
                             "order_type": OrderType.LIMIT, "limit_price": intent.take_profit,
                             "stop_price": None, "take_profit": None, "stop_loss": None,
                             "parent_id": intent.client_order_id, "leg": "take_profit",
                             "not_before": None, "active_from": parent["not_before"]})

    def _insert(self, row: dict) -> BrokerOrder:
        """Store an order and its "accepted" update; the order as stored (parsed once)."""
        stored = self.store.insert_order(row)
        order = order_from_row(stored)
        self.store.add_update("accepted", stored, None, stored["created_at"], order)
        return order

    def cancel(self, client_order_id: str) -> None:
        fault = self.faults.take("cancel")
        if fault and fault.kind == "drop_request":
            raise OutcomeUnknown(f"cancel {client_order_id}: request lost (simulated)")
        with self.store.write():
            row = self.store.order(client_order_id)
            if row is None:
                raise OrderNotFound(f"no order {client_order_id}")
            if S(row["status"]).is_terminal:
                raise OrderRejected(f"order {client_order_id} is {row['status']}: not cancelable",
                                    "not open")
            self._end(row, S.CANCELED, "canceled on request")
            if row["parent_id"] is None:
                for leg in self.store.children(client_order_id):
                    if not S(leg["status"]).is_terminal:
                        self._end(leg, S.CANCELED, "entry canceled")
        if fault and fault.kind == "lose_reply":
            raise OutcomeUnknown(f"cancel {client_order_id}: reply lost (simulated)")

    def _end(self, row: dict, status: OrderStatus, reason: str) -> None:
        now = self._now()
        self.store.update_order(row["client_order_id"], status=status, reason=reason,
                                updated_at=now)
        row.update(status=status.value, reason=reason, updated_at=now)
        self.store.add_update(status.value, row, None, now)

    def expire(self, time_in_force: TimeInForce = TimeInForce.DAY) -> list[str]:
        """End the open orders of ``time_in_force`` (DAY at the close); their client ids."""
        with self.store.write():
            rows = [r for r in self.store.open_orders() if r["time_in_force"] == time_in_force]
            for row in rows:
                self._end(row, S.EXPIRED, f"{time_in_force} order expired")
        return [r["client_order_id"] for r in rows]

    # -- reads ----------------------------------------------------------------------------
    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        row = self.store.order(client_order_id)
        return None if row is None else order_from_row(row, tuple(
            order_from_row(r) for r in self.store.children(client_order_id)))

    def orders(self, since=None) -> list[BrokerOrder]:
        """Every order accepted (at or after ``since``), oldest first, legs included."""
        out = [order_from_row(r) for r in self.store.all_orders()]
        return out if since is None else [o for o in out if o.created_at is None
                                          or o.created_at >= to_utc(since)]

    def open_orders(self) -> list[BrokerOrder]:
        return [order_from_row(r) for r in self.store.open_orders()]

    def positions(self) -> dict[str, Position]:
        return self.store.positions()

    def account(self) -> Account:
        return Account(Decimal(self.store.meta("cash")), self.positions())

    def fills(self, client_order_id: str | None = None, since=None) -> list[Fill]:
        out = self.store.fills(client_order_id)
        return out if since is None else [f for f in out if f.time >= to_utc(since)]

    def updates(self) -> Iterator[BrokerUpdate]:
        for update in self.store.updates_after(self._cursor):
            self._cursor = update.sequence
            yield update

    # -- bars -----------------------------------------------------------------------------
    def on_bar(self, symbol: str, time, bar) -> list[Fill]:
        return self.on_bars(time, {symbol: bar})

    def on_bars(self, time, bars: Mapping[str, object]) -> list[Fill]:
        """Fill what the bars of one timestamp (``{symbol: bar}``) trigger; the new fills."""
        time = to_utc(time)
        self._last_bar = time if self._last_bar is None else max(self._last_bar, time)
        if not any(self._due(r, time, bars) for r in self.store.open_orders()):
            return []
        fills: list[Fill] = []
        with self.store.write():
            rows = [r for r in self.store.open_orders() if self._due(r, time, bars)]
            rows.sort(key=lambda r: (r["order_type"] not in ("market", "bracket")
                                     or r["limit_price"] is not None, r["seq"]))
            ended: set[str] = set()
            # the bar's fills numbered from the file's next one, cash moved in memory and
            # written once: the same rows as a fill at a time, in the same transaction
            tally = {"seq": self.store.next_fill_seq(), "cash": Decimal(self.store.meta("cash"))}
            for row in rows:
                if row["client_order_id"] not in ended:
                    fills += self._try_fill(row, time, ohlc(bars[row["symbol"]]), ended, tally)
            if fills:
                self.store.set_meta("cash", tally["cash"])
            self.store.set_meta("last_bar_time", self._last_bar)
        return fills

    @staticmethod
    def _due(row: dict, time: pd.Timestamp, bars) -> bool:
        if row["symbol"] not in bars:
            return False
        if row["parent_id"] is not None:
            return row["active_from"] is not None and time > stored_time(row["active_from"])
        return row["not_before"] is None or time > stored_time(row["not_before"])

    def _try_fill(self, row: dict, time, ohlc, ended: set[str], tally: dict) -> list[Fill]:
        side, (kind, limit, stop) = Side(row["side"]), trigger(row)
        ref = reference_price(kind, side, *ohlc, limit=limit, stop=stop)
        if ref is None:
            return []
        price = self.costs.fill_price(side.value, ref)
        qty = fill_quantity(row, self.costs, price, self.faults)
        if row["notional"] is not None:  # its shares are known now: the order's quantity
            row["quantity"] = str(qty)
            self.store.update_order(row["client_order_id"], quantity=qty)
        fill = Fill(f"sim-x{tally['seq']:08d}", row["client_order_id"],
                    row["symbol"], side, qty, exact(price),
                    exact(self.costs.fee(float(qty), price)), time)
        tally["cash"] = self.store.record_fill(row, fill, tally["cash"])
        tally["seq"] += 1
        if S(row["status"]) is S.FILLED:
            self._after_filled(row, time, ended)
        return [fill]

    def _after_filled(self, row: dict, time, ended: set[str]) -> None:
        """A filled bracket entry arms its legs; a filled leg cancels its sibling, and a
        filled oco order its leg or a filled oco leg its order (one cancels the other)."""
        ended.add(row["client_order_id"])
        if row["order_type"] == OrderType.BRACKET:
            for leg in self.store.children(row["client_order_id"]):
                self.store.update_order(leg["client_order_id"], active_from=time)
        elif row["order_type"] == OrderType.OCO:
            for leg in self.store.children(row["client_order_id"]):
                self._cancel_other(leg, ended)
        elif row["parent_id"] is not None:
            parent = self.store.order(row["parent_id"])
            others = [r for r in self.store.children(row["parent_id"])
                      if r["client_order_id"] != row["client_order_id"]]
            if parent is not None and parent["order_type"] == OrderType.OCO:
                others.append(parent)
            for other in others:
                self._cancel_other(other, ended)

    def _cancel_other(self, row: dict, ended: set[str]) -> None:
        if not S(row["status"]).is_terminal:
            self._end(row, S.CANCELED, "one-cancels-other: the other side filled")
            ended.add(row["client_order_id"])
