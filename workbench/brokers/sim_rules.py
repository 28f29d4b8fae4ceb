"""The simulated broker's trigger rules and its fault injection.

Trigger rules (the backtest's, see ``workbench.backtesting.simulation``): on a bar with an open
(> 0), a high and a low,

* a market order meets the bar's open;
* a stop order (buy above, sell below the market) meets the open if the bar opens through
  the stop (a gap), else the stop price if the bar's range reaches it;
* a limit order (buy below, sell above) meets the open if the bar opens through the
  limit, else the limit price if the bar's range reaches it.

A long position's stop loss (a sell stop) and take profit (a sell limit) meet exactly the
prices the backtest's stops fill at (vectorbt's ``get_stop_price_nb``), and so do a short
position's. The price met is the reference of ``CostModel.fill_price``: slippage and fees
apply to every fill, as in the backtest.

Faults (tests): ``SimFaults`` holds faults that the next requests suffer, in order, and an
optional cap on the quantity of each execution (partial fills).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from workbench.brokers.base import OrderRejected
from workbench.errors import ConfigError
from workbench.model import Fill, OrderIntent, OrderType, Position, Side

__all__ = ["Fault", "SimFaults", "check_bracket", "exact", "ohlc", "position_after",
           "reference_price", "trigger"]

ZERO = Decimal(0)


def _ok(o: float, h: float, lo: float) -> bool:
    return o > 0 and not (math.isnan(h) or math.isnan(lo))


def _through(side: Side, below: bool, level: float, o: float, h: float, lo: float) -> float | None:
    """The open if it is already through ``level``, else the level if the range reaches it.
    ``below``: the order triggers at or below the level (sell stop, buy limit)."""
    if below:
        return o if o <= level else (level if lo <= level else None)
    return o if o >= level else (level if h >= level else None)


def reference_price(order_type: OrderType, side: Side, o: float, h: float, lo: float,
                    limit: float | None = None, stop: float | None = None) -> float | None:
    """The price an order meets on a bar (open, high, low), None if it does not trigger.
    A bracket entry behaves as a limit order if it has a limit price, else as a market one."""
    if not _ok(o, h, lo):
        return None
    if order_type is OrderType.BRACKET:
        order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    if order_type is OrderType.MARKET:
        return o
    if order_type is OrderType.STOP:
        return _through(side, side is Side.SELL, stop, o, h, lo)
    if order_type is OrderType.LIMIT:
        return _through(side, side is Side.BUY, limit, o, h, lo)
    raise ConfigError(f"no trigger rule for order type {order_type}")


def trigger(row: Mapping) -> tuple[OrderType, float | None, float | None]:
    """A stored order's (type, limit, stop) for :func:`reference_price`: an oco order is a
    stop at its stop loss, else (one level only) a limit at its take profit."""
    kind = OrderType(row["order_type"])
    limit = float(row["limit_price"]) if row["limit_price"] else None
    stop = float(row["stop_price"]) if row["stop_price"] else None
    if kind is OrderType.OCO:
        stop = float(row["stop_loss"]) if row["stop_loss"] else None
        limit = None if stop is not None else float(row["take_profit"])
        kind = OrderType.STOP if stop is not None else OrderType.LIMIT
    return kind, limit, stop


def exact(x: float) -> Decimal:
    """A float as the Decimal of its shortest repr: ``float(exact(x)) == x`` (a fill's
    price and fee from the cost model's floats)."""
    return Decimal(repr(float(x)))


def ohlc(bar) -> tuple[float, float, float]:
    """(open, high, low) of a bar given as a mapping, an object or a tuple."""
    if isinstance(bar, Mapping):
        return tuple(float(bar[k] if k in bar else bar[k[0]]) for k in ("open", "high", "low"))
    if hasattr(bar, "open"):
        return float(bar.open), float(bar.high), float(bar.low)
    return float(bar[0]), float(bar[1]), float(bar[2])


def position_after(position: Position | None, fill: Fill) -> Position:
    """The broker's own position arithmetic (average entry price of the open position)."""
    qty = position.quantity if position else ZERO
    avg = position.average_price if position else ZERO
    new = qty + fill.side.sign * fill.quantity
    if qty == 0 or (qty > 0) == (fill.side is Side.BUY):
        avg = (abs(qty) * avg + fill.quantity * fill.price) / abs(new)
    elif new == 0:
        avg = ZERO
    elif (new > 0) != (qty > 0):
        avg = fill.price
    return Position(fill.symbol, new, avg)


def fill_quantity(row: dict, costs, price: float, faults) -> Decimal:
    """The shares an order fills at ``price``: a notional buy's, sized at the fill as the
    backtest sizes an entry (fees included, one execution); else what remains of the
    order, capped by a partial-fill fault."""
    if row.get("notional") is not None:
        return Decimal(repr(costs.max_quantity(float(row["notional"]), price)))
    qty = Decimal(row["quantity"]) - Decimal(row["filled_quantity"])
    if faults.max_fill_quantity is not None:
        qty = min(qty, faults.max_fill_quantity)
    return qty


def check_bracket(intent: OrderIntent) -> None:
    """A bracket's (or an oco's) stop loss lies on the losing side of its take profit: below
    it for a long position (a bracket buying, an oco selling), above it for a short one."""
    kind = intent.order_type
    if kind not in (OrderType.BRACKET, OrderType.OCO) or None in (intent.stop_loss,
                                                                    intent.take_profit):
        return
    long_ = (intent.side is Side.BUY) == (kind is OrderType.BRACKET)
    low, high = sorted((intent.stop_loss, intent.take_profit))
    wrong = (intent.stop_loss, intent.take_profit) != ((low, high) if long_ else (high, low))
    if wrong or low == high:
        raise OrderRejected(f"{kind} {intent.client_order_id}: the stop loss must be on the "
                            "losing side of the take profit", f"bad {kind} levels")


@dataclass(frozen=True, slots=True)
class Fault:
    """``kind``: ``lose_reply`` (accept, then raise OutcomeUnknown), ``drop_request``
    (raise OutcomeUnknown, never accept), ``reject`` (OrderRejected), ``rate_limit``
    (RateLimited, nothing done), ``delay`` (sleep ``seconds`` first; at or over the
    broker's timeout: accept, sleep the timeout, raise OutcomeUnknown)."""

    kind: str
    op: str = "submit"  # submit | cancel
    seconds: float = 0.0
    reason: str = "rejected by injected fault"


KINDS = ("lose_reply", "drop_request", "reject", "rate_limit", "delay")


@dataclass
class SimFaults:
    """Faults for the next requests: each request takes the first pending fault of its
    kind (submit or cancel)."""

    pending: deque = field(default_factory=deque)
    max_fill_quantity: Decimal | None = None  # cap of one execution: partial fills

    def add(self, kind: str, n: int = 1, **kw) -> SimFaults:
        if kind not in KINDS:
            raise ConfigError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        self.pending.extend(Fault(kind, **kw) for _ in range(n))
        return self

    def lose_reply(self, n: int = 1, op: str = "submit") -> SimFaults:
        return self.add("lose_reply", n, op=op)

    def drop_request(self, n: int = 1, op: str = "submit") -> SimFaults:
        return self.add("drop_request", n, op=op)

    def reject(self, reason: str = "rejected by injected fault", n: int = 1) -> SimFaults:
        return self.add("reject", n, reason=reason)

    def rate_limit(self, n: int = 1) -> SimFaults:
        return self.add("rate_limit", n)

    def delay(self, seconds: float, n: int = 1) -> SimFaults:
        return self.add("delay", n, seconds=float(seconds))

    def partial_fills(self, max_quantity) -> SimFaults:
        self.max_fill_quantity = None if max_quantity is None else Decimal(str(max_quantity))
        return self

    def take(self, op: str) -> Fault | None:
        """The next fault for a request of kind ``op`` (removed), None if none is due."""
        for fault in self.pending:
            if fault.op == op:
                self.pending.remove(fault)
                return fault
        return None

    @classmethod
    def parse(cls, spec: str) -> SimFaults:
        """Faults from text, e.g. ``"lose_reply,delay=12,reject,partial=10"`` (for a test
        that configures a session process from its command line or environment)."""
        faults = cls()
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            name, _, value = item.partition("=")
            if name == "partial":
                faults.partial_fills(value)
            elif name == "delay":
                faults.delay(float(value or 0))
            elif name == "reject":
                faults.reject(value or "rejected by injected fault")
            else:
                faults.add(name)
        return faults
