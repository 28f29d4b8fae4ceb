"""The fake broker's order book: orders, fills, positions and cash, in memory.

Fills follow the simulated broker's rules (:mod:`workbench.brokers.sim_rules`, the same
functions, not a copy), so a session trading against the fake makes the trades it makes on
``SimBroker`` over the same bars:

* An order fills only on a bar that starts after the last minute the fake had published
  when it accepted the order (``not_before``; the sim broker's "bar after the last bar it
  had seen"): a market order sent on minute m's bar fills at the open of the symbol's next
  bar. A limit, stop or stop-limit order and a bracket's legs trigger on the bar's range, a
  gap through the level filling at the open (``reference_price``). On each bar market orders
  fill first, then the others in the order they arrived. Prices are
  ``costs.fill_price(side, reference)`` held exactly (``Decimal(repr(x))``), fees
  ``costs.fee(qty, price)`` come off the cash; the default ``CostModel`` here has no slippage
  and no fees.
* A bracket (``order_class="bracket"``) is an entry (market, or limit with ``limit_price``)
  with a stop-loss leg (stop, or stop-limit with ``stop_loss.limit_price``) and a
  take-profit leg (limit). The legs are ``held`` until the entry is filled, then ``new`` and
  checked from the bar after the entry's fill bar; on a bar reaching both the stop loss fills
  (it is checked first) and the take profit is canceled (one cancels the other).
* An oco (``order_class="oco"``, Alpaca's shape: a take-profit limit order with one
  stop-loss leg) is live from the bar after its acceptance, both sides at once; on a bar
  reaching both the stop loss fills (checked first, as the sim broker's oco) and the other
  is canceled.
* A stop-limit order (the sim broker has none): on the bar its stop triggers it fills at the
  stop reference if that satisfies its limit, else it rests as a limit order from the next bar.
* DAY orders expire at the close (:meth:`Book.expire_day`, called when a replay ends).

Every change emits one trade update through ``emit`` (the hub's ``trade_update``): ``new``,
``fill`` / ``partial_fill`` (with a fresh UUID ``execution_id``, ``price``, ``qty``,
``position_qty``), ``canceled``, ``expired``, ``replaced``, ``rejected``. Money is Decimal
inside and strings in JSON. The book is thread-safe (one lock): routes run on the server's
loop, the replay fills from its own thread.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal

import pandas as pd

from workbench.brokers.sim_rules import (
    SimFaults,
    fill_quantity,
    ohlc,
    position_after,
    reference_price,
)
from workbench.model import Fill, OrderType, Position, Side
from workbench.model.costs import CostModel
from workbench.testing.alpaca.account import account_json, position_json
from workbench.testing.alpaca.answers import ApiError, iso, num
from workbench.testing.alpaca.orders import (
    BookOrder,
    decimal,
    order_json,
    parse_order,
)

__all__ = ["Book", "BookOrder"]

ZERO = Decimal(0)
_KIND = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}
_EPOCH = pd.Timestamp(0, tz="UTC")  # an oco leg accepted before any bar: live from the first


def _other(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def _exact(x: float) -> Decimal:
    """A float as the Decimal of its shortest repr (the sim broker's exact prices)."""
    return Decimal(repr(float(x)))


class Book:
    """Orders, positions and cash of one fake account; see the module docstring.

    ``now``: the fake's clock (a callable giving a UTC Timestamp); ``emit``: where trade
    updates go; ``costs``: slippage and fees (default none); ``faults``: the sim broker's
    ``SimFaults``, of which the book uses ``max_fill_quantity`` (partial fills).
    """

    def __init__(self, *, now: Callable[[], pd.Timestamp], emit: Callable[[dict], None],
                 cash=100_000, costs: CostModel | None = None,
                 faults: SimFaults | None = None) -> None:
        self.now, self.emit = now, emit
        self.costs = costs if costs is not None else CostModel(slippage_bps=0)
        self.faults = faults or SimFaults()
        self.cash = Decimal(str(cash))
        self.account_id = str(uuid.uuid4())
        self.paper = True  # a paper account's number starts with PA (as Alpaca's do)
        self.lock = threading.RLock()
        self._orders: dict[str, BookOrder] = {}
        self._by_client: dict[str, str] = {}
        self._positions: dict[str, Position] = {}
        self._prices: dict[str, Decimal] = {}
        self._seq = 0
        self.last_bar: pd.Timestamp | None = None  # the last minute filled against
        self.fills: list[Fill] = []
        self.rejections: list[str] = []  # reasons for the next client orders to reject

    # -- JSON views ---------------------------------------------------------------------------
    def order_json(self, o: BookOrder, nested: bool = True) -> dict:
        """Alpaca's JSON of ``o``; with ``nested`` its legs inside (call under ``lock``)."""
        return order_json(o, [self._orders[i] for i in o.legs] if nested and o.legs else None)

    def position_json(self, p: Position) -> dict:
        return position_json(p, self._prices.get(p.symbol, p.average_price))

    def account_json(self) -> dict:
        with self.lock:
            marks = {s: (p.quantity, self._prices.get(s, p.average_price))
                     for s, p in self._positions.items()}
            return account_json(self.account_id, self.cash, marks, paper=self.paper)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, order_id: str) -> BookOrder:
        with self.lock:
            o = self._orders.get(order_id)
        if o is None:
            raise ApiError(404, 40410000, f"order not found for {order_id}")
        return o

    def by_client_id(self, client_order_id: str) -> BookOrder:
        with self.lock:
            oid = self._by_client.get(client_order_id)
        if oid is None:
            raise ApiError(404, 40410000, f"order not found for {client_order_id}")
        return self._orders[oid]

    def all_orders(self) -> list[BookOrder]:
        with self.lock:
            return sorted(self._orders.values(), key=lambda o: o.seq)

    def positions(self) -> dict[str, Position]:
        with self.lock:
            return {s: p for s, p in self._positions.items() if p.quantity != 0}

    def position(self, symbol: str) -> Position:
        p = self.positions().get(symbol)
        if p is None:
            raise ApiError(404, 40410000, "position does not exist")
        return p

    # -- placing ---------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return str(uuid.uuid4())

    def _emit(self, event: str, o: BookOrder, **extra) -> None:
        self.emit({"event": event, "timestamp": iso(o.updated_at or o.created_at),
                   "order": self.order_json(o), **extra})

    def submit(self, body: Mapping, *, manual: bool = False) -> BookOrder:
        """Accept an order from a request body (alpaca-py's JSON); ApiError if invalid."""
        spec = parse_order(body)
        cid = spec["client_order_id"] or str(uuid.uuid4())
        with self.lock:
            if cid in self._by_client:
                raise ApiError(422, 40010001, "client_order_id must be unique")
            now, oco = self.now(), spec["order_class"] == "oco"
            o = BookOrder(
                self._new_id(), cid, spec["symbol"], spec["side"], spec["qty"], spec["type"],
                spec["time_in_force"], now, 0, notional=spec["notional"],
                order_class=spec["order_class"], limit_price=spec["limit_price"],
                stop_price=spec["stop_price"], not_before=self.last_bar, manual=manual)
            if not oco:
                self._add(o)
            for leg, (kind, limit, stop) in spec["legs"].items():
                # a bracket's legs (the other side) wait for the entry; an oco's stop-loss
                # leg (the same side) is live at once and checked before its take profit,
                # as the sim broker checks an oco's stop first
                child = self._add(BookOrder(
                    self._new_id(), f"{cid}.{'sl' if leg == 'stop_loss' else 'tp'}",
                    o.symbol, o.side if oco else _other(o.side), o.qty, kind,
                    o.time_in_force, now, 0, order_class=o.order_class, limit_price=limit,
                    stop_price=stop, status="new" if oco else "held", parent=o.id, leg=leg,
                    active_from=(self.last_bar if self.last_bar is not None else _EPOCH)
                    if oco else None))
                o.legs.append(child.id)
            if oco:
                self._add(o)
            self._emit("new", o)
            return o

    def _add(self, o: BookOrder) -> BookOrder:
        self._seq += 1
        o.seq, o.updated_at = self._seq, o.created_at
        self._orders[o.id] = o
        self._by_client[o.client_order_id] = o.id
        return o

    # -- cancel, replace, expire ------------------------------------------------------------
    def _end(self, o: BookOrder, status: str, event: str | None = None) -> None:
        now = self.now()
        o.status, o.updated_at = status, now
        if status == "canceled":
            o.canceled_at = now
        elif status == "expired":
            o.expired_at = now
        self._emit(event or status, o)

    def reject(self, order_id: str, reason: str) -> None:
        """End an open order as ``rejected`` (after it was accepted), legs included."""
        with self.lock:
            o = self.get(order_id)
            if not o.is_open:
                return
            o.reject_reason = reason
            self._end(o, "rejected")
            for leg in (self._orders[i] for i in o.legs):
                if leg.is_open:
                    self._end(leg, "rejected")

    def take_rejection(self) -> str | None:
        """The reason queued for the next client order to be rejected, None if none."""
        with self.lock:
            return self.rejections.pop(0) if self.rejections else None

    def cancel(self, order_id: str) -> None:
        with self.lock:
            o = self.get(order_id)
            if not o.is_open:
                raise ApiError(422, 42210000, f"order is {o.status}: not cancelable")
            self._end(o, "canceled")
            for leg in (self._orders[i] for i in o.legs):
                if leg.is_open:
                    self._end(leg, "canceled")

    def cancel_all(self) -> list[BookOrder]:
        with self.lock:
            out = [o for o in self.all_orders() if o.is_open and o.parent is None]
            for o in out:
                self.cancel(o.id)
            return out

    def replace(self, order_id: str, body: Mapping) -> BookOrder:
        """PATCH: the old order ``replaced``, a new one with the changed fields."""
        with self.lock:
            old = self.get(order_id)
            if not old.is_open or old.filled_qty > 0 or old.parent is not None or old.legs:
                raise ApiError(422, 42210000, f"order {order_id} is {old.status}"
                               + (" (partly filled)" if old.filled_qty else "")
                               + (", a bracket" if old.legs or old.parent else "")
                               + ": the fake cannot replace it")
            spec = {"symbol": old.symbol, "side": old.side.value, "type": old.type,
                    "time_in_force": body.get("time_in_force") or old.time_in_force,
                    "qty": body.get("qty") or old.qty,
                    "limit_price": body.get("limit_price") or old.limit_price,
                    "stop_price": body.get("stop_price") or old.stop_price,
                    "client_order_id": body.get("client_order_id") or str(uuid.uuid4())}
            if old.notional is not None:
                raise ApiError(422, 42210000, "a notional order cannot be replaced")
            if body.get("client_order_id") and body["client_order_id"] in self._by_client:
                raise ApiError(422, 40010001, "client_order_id must be unique")
            new = self.submit_quiet(spec)
            now = self.now()
            old.status, old.updated_at, old.replaced_at, old.replaced_by = \
                "replaced", now, now, new.id
            new.replaces = old.id
            self._emit("replaced", old)
            self._emit("new", new)
            return new

    def submit_quiet(self, body: Mapping) -> BookOrder:
        """Accept an order without its ``new`` update (the caller emits)."""
        emit, self.emit = self.emit, (lambda data: None)
        try:
            return self.submit(body)
        finally:
            self.emit = emit

    def expire_day(self) -> list[BookOrder]:
        """End the open DAY orders (the close); the orders expired."""
        with self.lock:
            out = [o for o in self.all_orders() if o.is_open and o.time_in_force == "day"]
            for o in out:
                self._end(o, "expired")
            return out

    # -- positions --------------------------------------------------------------------------------
    def close_position(self, symbol: str, qty=None, percentage=None) -> BookOrder:
        """A market order closing ``qty`` shares or ``percentage`` % (default all)."""
        with self.lock:
            p = self.position(symbol)
            size = abs(p.quantity)
            if qty is not None and percentage is not None:
                raise ApiError(422, 40010001, "qty or percentage, not both")
            if qty is not None:
                size = decimal(qty, "qty")
                if size > abs(p.quantity):
                    raise ApiError(403, 40310000, f"insufficient qty available for order "
                                                  f"(requested: {size}, available: {abs(p.quantity)})")
            elif percentage is not None:
                pct = decimal(percentage, "percentage")
                if pct > 100:
                    raise ApiError(422, 40010001, "percentage must be at most 100")
                size = abs(p.quantity) * pct / 100
            side = "sell" if p.quantity > 0 else "buy"
            return self.submit({"symbol": symbol, "side": side, "type": "market",
                                "time_in_force": "day", "qty": str(size)})

    def set_position(self, symbol: str, qty, avg_price) -> None:
        """Change a position behind the client's back (no order, no update)."""
        with self.lock:
            self._positions[symbol] = Position(symbol, Decimal(str(qty)), Decimal(str(avg_price)))

    # -- fills --------------------------------------------------------------------------------
    def on_bars(self, time: pd.Timestamp, bars: Mapping[str, Mapping]) -> list[Fill]:
        """Fill what the bars of minute ``time`` (``{symbol: {"o","h","l","c",...}}``) trigger."""
        fills: list[Fill] = []
        with self.lock:
            self.last_bar = time
            for sym, bar in bars.items():
                self._prices[sym] = _exact(bar["c"])
            due = [o for o in self._orders.values() if self._due(o, time, bars)]
            due.sort(key=lambda o: (o.type != "market", o.seq))
            for o in due:
                if o.is_open:  # a sibling may have canceled it on this bar
                    fills += self._try_fill(o, time, ohlc(bars[o.symbol]))
        return fills

    def _due(self, o: BookOrder, time, bars) -> bool:
        if not o.is_open or o.symbol not in bars or o.status == "held":
            return False
        if o.parent is not None:
            return o.active_from is not None and time > o.active_from
        return o.not_before is None or time > o.not_before

    def _try_fill(self, o: BookOrder, time, bar: tuple[float, float, float]) -> list[Fill]:
        limit = float(o.limit_price) if o.limit_price is not None else None
        stop = float(o.stop_price) if o.stop_price is not None else None
        if o.type == "stop_limit" and not o.triggered:
            ref = reference_price(OrderType.STOP, o.side, *bar, stop=stop)
            if ref is None:
                return []
            o.triggered = True
            within = ref <= limit if o.side is Side.BUY else ref >= limit
            if not within:
                o.active_from, o.not_before = time, time  # a limit order from the next bar
                return []
        elif o.type == "stop_limit":
            ref = reference_price(OrderType.LIMIT, o.side, *bar, limit=limit)
        else:
            ref = reference_price(_KIND[o.type], o.side, *bar, limit=limit, stop=stop)
        if ref is None:
            return []
        price = self.costs.fill_price(o.side.value, ref)
        qty = fill_quantity({"notional": o.notional, "quantity": o.qty or ZERO,
                             "filled_quantity": o.filled_qty}, self.costs, price, self.faults)
        if o.notional is not None:
            o.qty = qty
        fill = Fill(str(uuid.uuid4()), o.client_order_id, o.symbol, o.side, qty, _exact(price),
                    _exact(self.costs.fee(float(qty), price)), time)
        self._book_fill(o, fill)
        return [fill]

    def _book_fill(self, o: BookOrder, fill: Fill) -> None:
        self.fills.append(fill)
        position = position_after(self._positions.get(fill.symbol), fill)
        self._positions[fill.symbol] = position
        self.cash -= fill.side.sign * fill.quantity * fill.price + fill.fee
        done, avg = o.filled_qty, o.filled_avg_price or ZERO
        o.filled_qty = done + fill.quantity
        o.filled_avg_price = (avg * done + fill.price * fill.quantity) / o.filled_qty
        o.updated_at = self.now()
        full = o.filled_qty == o.qty
        o.status = "filled" if full else "partially_filled"
        if full:
            o.filled_at = o.updated_at
        self._emit("fill" if full else "partial_fill", o, execution_id=fill.execution_id,
                   price=num(fill.price), qty=num(fill.quantity),
                   position_qty=num(position.quantity))
        if full:
            self._after_filled(o, fill.time)

    def _after_filled(self, o: BookOrder, time) -> None:
        """A filled bracket entry arms its legs; a filled leg cancels its sibling; a filled
        oco order its leg, and a filled oco leg its order (one cancels the other)."""
        for leg in (self._orders[i] for i in o.legs):
            if leg.status == "held":
                leg.status, leg.active_from, leg.updated_at = "new", time, self.now()
                self._emit("new", leg)  # held -> new: the leg is live
            elif o.order_class == "oco" and leg.is_open:
                self._end(leg, "canceled")
        if o.parent is not None:
            parent = self._orders[o.parent]
            others = [self._orders[i] for i in parent.legs if i != o.id]
            for other in others + ([parent] if parent.order_class == "oco" else []):
                if other.is_open:
                    self._end(other, "canceled")
