"""Pre-trade checks: small objects, each ``check(intent, context) -> Approved | Denied``.

A check answers with a decision, never an exception. The context is a frozen snapshot the
session builds once per bar (:class:`RiskContext`); the gateway adds the orders it approves
against that snapshot to its own copy (:meth:`RiskContext.with_order`), so several orders
of one bar cannot together break a cap that each alone respects.

Exposure is the *worst case* over open orders: for a symbol with position ``q``, open buys
``b`` and open sells ``s``, gross quantity is ``max(|q + b|, |q - s|)``, valued at the last
trade (the position's average price where there is none yet). An order *reduces* when it
moves the position toward zero and, with every open order on its side, cannot cross it:
a sell with ``q > 0`` and ``s + qty <= q`` (the mirror for a buy). Reducing orders pass
every cap by construction: a cap never stops an exit or a flatten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Protocol

import pandas as pd

from workbench.config import RiskSettings
from workbench.model import Account, OrderIntent, OrderType, Position, Side

__all__ = [
    "APPROVED", "Approved", "BracketLegs", "Check", "Decision", "Denied", "KnownPrice",
    "NotionalCap", "PriceBand", "RiskContext", "SymbolExposureCap", "TotalExposureCap",
    "default_checks", "is_reducing", "reference_price", "symbol_exposure", "total_exposure",
]

_ZERO = Decimal(0)
_MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Approved:
    """The order may go."""

    approved: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Denied:
    """The order may not go: ``check`` names who said so, ``reason`` says why."""

    reason: str
    check: str
    approved: ClassVar[bool] = False


Decision = Approved | Denied
APPROVED = Approved()


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the gateway knows at one instant; built by the session each bar/heartbeat.

    Mappings are read, never copied or changed: pass the session's own dicts.
    ``pending_buys``/``pending_sells`` are the unfilled remainders of open orders by
    symbol (every approved intent must show here or in ``positions`` in the next snapshot).
    ``equity`` is computed from cash and marks when not given.
    """

    now: pd.Timestamp
    cash: Decimal
    start_equity: Decimal
    positions: Mapping[str, Position] = field(default_factory=dict)
    last_prices: Mapping[str, Decimal] = field(default_factory=dict)
    equity: Decimal | None = None
    pending_buys: Mapping[str, Decimal] = field(default_factory=dict)
    pending_sells: Mapping[str, Decimal] = field(default_factory=dict)
    order_times: tuple[pd.Timestamp, ...] = ()  # orders sent recently (journal), oldest first
    last_bar_time: pd.Timestamp | None = None
    bar_interval: pd.Timedelta = _MINUTE
    feed_down_since: pd.Timestamp | None = None  # None: connected
    broker_down_since: pd.Timestamp | None = None
    latencies_ms: tuple[float, ...] = ()  # recent decision latencies, oldest first
    exception_times: tuple[pd.Timestamp, ...] = ()  # recent unexpected exceptions
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_account(cls, now, account: Account, start_equity: Decimal,
                     **fields) -> RiskContext:
        """A context from an :class:`Account` (cash and positions) plus any other field."""
        return cls(now=now, cash=account.cash, start_equity=start_equity,
                   positions=account.positions, **fields)

    def quantity(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.quantity if pos is not None else _ZERO

    def last_trade(self, symbol: str) -> Decimal | None:
        """The symbol's last trade if it is a usable price (positive), else None."""
        price = self.last_prices.get(symbol)
        return price if price is not None and price > 0 else None

    def mark(self, symbol: str) -> Decimal | None:
        """Last trade, else the position's average price, else None."""
        price = self.last_prices.get(symbol)
        if price is None and (pos := self.positions.get(symbol)) is not None:
            price = pos.average_price
        return price

    def current_equity(self) -> Decimal:
        if self.equity is not None:
            return self.equity
        if (equity := self._memo.get("equity")) is None:
            # cash + the sum of quantity x mark, added in the same order as
            # ``sum(p.quantity * (self.mark(s) or 0) ...)``: :meth:`mark` inlined (a few
            # hundred positions, once a bar)
            price_of, held = self.last_prices.get, _ZERO
            for s, p in self.positions.items():
                price = price_of(s)
                if price is None:
                    price = p.average_price
                held += p.quantity * (price or _ZERO)
            equity = self._memo["equity"] = self.cash + held
        return equity

    def daily_loss(self) -> Decimal:
        """Loss since the start of the day as a fraction of start equity (negative: gain)."""
        if self.start_equity <= 0:
            return Decimal(1)  # nothing to lose: treat as fully lost, fail closed
        return (self.start_equity - self.current_equity()) / self.start_equity

    def with_order(self, intent: OrderIntent, at: pd.Timestamp) -> RiskContext:
        """This snapshot with ``intent`` added to the open orders and the order times."""
        book = self.pending_buys if intent.side is Side.BUY else self.pending_sells
        book = {**book, intent.symbol: book.get(intent.symbol, _ZERO) + intent.quantity}
        key = "pending_buys" if intent.side is Side.BUY else "pending_sells"
        new = object.__new__(RiskContext)  # dataclasses.replace, without __init__'s cost
        for name in _FIELDS:
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, key, book)
        object.__setattr__(new, "order_times", (*self.order_times, at))
        object.__setattr__(new, "_memo", {})
        if "equity" in self._memo:  # open orders do not change equity
            new._memo["equity"] = self._memo["equity"]
        if (total := self._memo.get("total")) is not None:  # keep the total incrementally
            new._memo["total"] = (total - symbol_exposure(self, intent.symbol)
                                  + symbol_exposure(new, intent.symbol))
        return new


_FIELDS = tuple(f.name for f in dataclasses.fields(RiskContext) if f.init)


# -- exposure arithmetic ------------------------------------------------------------

def _extremes(ctx: RiskContext, symbol: str, intent: OrderIntent | None = None):
    q = ctx.quantity(symbol)
    long_q = q + ctx.pending_buys.get(symbol, _ZERO)
    short_q = q - ctx.pending_sells.get(symbol, _ZERO)
    if intent is not None and intent.symbol == symbol:
        if intent.side is Side.BUY:
            long_q += intent.quantity
        else:
            short_q -= intent.quantity
    return long_q, short_q


def is_reducing(intent: OrderIntent, ctx: RiskContext) -> bool:
    """True when the order, with all open orders on its side, only brings |position| down."""
    q = ctx.quantity(intent.symbol)
    if intent.side is Side.SELL:
        return q > 0 and ctx.pending_sells.get(intent.symbol, _ZERO) + intent.quantity <= q
    return q < 0 and ctx.pending_buys.get(intent.symbol, _ZERO) + intent.quantity <= -q


def reference_price(intent: OrderIntent, ctx: RiskContext) -> Decimal | None:
    """The highest of the last trade and the order's own limit/stop price (conservative)."""
    known = [p for p in (ctx.last_prices.get(intent.symbol), intent.limit_price,
                         intent.stop_price) if p is not None]
    return max(known) if known else None


def symbol_exposure(ctx: RiskContext, symbol: str, intent: OrderIntent | None = None,
                    price: Decimal | None = None) -> Decimal:
    """Worst-case gross exposure of one symbol in USD (with ``intent`` added if given)."""
    long_q, short_q = _extremes(ctx, symbol, intent)
    price = price if price is not None else ctx.mark(symbol)
    return max(abs(long_q), abs(short_q)) * (price or _ZERO)


def total_exposure(ctx: RiskContext) -> Decimal:
    """Worst-case gross exposure over every symbol held or with open orders (memoized)."""
    total = ctx._memo.get("total")
    if total is None:
        symbols = set(ctx.positions) | set(ctx.pending_buys) | set(ctx.pending_sells)
        total = ctx._memo["total"] = sum(_exposures(ctx, symbols), _ZERO)
    return total


def _exposures(ctx: RiskContext, symbols):
    """``symbol_exposure(ctx, s)`` for each of ``symbols``, with ``_extremes`` and ``mark``
    inlined (every symbol held, once a bar)."""
    positions, buys, sells, price_of = (ctx.positions.get, ctx.pending_buys.get,
                                        ctx.pending_sells.get, ctx.last_prices.get)
    for s in symbols:
        pos = positions(s)
        q = pos.quantity if pos is not None else _ZERO
        price = price_of(s)
        if price is None and pos is not None:
            price = pos.average_price
        yield max(abs(q + buys(s, _ZERO)), abs(q - sells(s, _ZERO))) * (price or _ZERO)


# -- the checks ---------------------------------------------------------------------

class Check(Protocol):
    """A pre-trade check; ``name`` is what a denial's ``check`` says."""

    name: str

    def check(self, intent: OrderIntent, ctx: RiskContext) -> Decision: ...


def _money(x: Decimal) -> str:
    return f"{x:,.2f}"


@dataclass(frozen=True, slots=True)
class KnownPrice:
    """An order that adds exposure or carries a price needs a positive last trade."""

    name: str = "known_price"

    def check(self, intent, ctx):
        if intent.limit_price is None and intent.stop_price is None and is_reducing(intent, ctx):
            return APPROVED
        if ctx.last_trade(intent.symbol) is None:
            return Denied(f"no valid last trade for {intent.symbol} (got "
                          f"{ctx.last_prices.get(intent.symbol)}): cannot value the order",
                          self.name)
        return APPROVED


@dataclass(frozen=True, slots=True)
class PriceBand:
    """A limit or stop price within ``band`` of the last trade (fat fingers, bad ticks)."""

    band: Decimal
    name: str = "price_band"

    def check(self, intent, ctx):
        last = ctx.last_trade(intent.symbol)
        for label, price in (("limit", intent.limit_price), ("stop", intent.stop_price)):
            if price is None:
                continue
            if last is None:
                return Denied(f"{label} price {price} for {intent.symbol} with no last trade "
                              "to compare with", self.name)
            if abs(price / last - 1) > self.band:
                return Denied(f"{label} price {price} is {abs(price / last - 1):.2%} from the "
                              f"last trade {last} of {intent.symbol}; the band is "
                              f"{self.band:.2%}", self.name)
        return APPROVED


@dataclass(frozen=True, slots=True)
class BracketLegs:
    """A bracket's stop-loss and take-profit lie on the right sides of its entry."""

    name: str = "bracket_legs"

    def check(self, intent, ctx):
        if intent.order_type is not OrderType.BRACKET:
            return APPROVED
        entry = intent.limit_price or ctx.last_prices.get(intent.symbol)
        if entry is None:
            return Denied(f"bracket on {intent.symbol} with no entry reference", self.name)
        low, high = ((intent.stop_loss, intent.take_profit) if intent.side is Side.BUY
                     else (intent.take_profit, intent.stop_loss))
        if not low < entry < high:
            return Denied(f"bracket {intent.side} {intent.symbol}: stop_loss {intent.stop_loss}"
                          f" and take_profit {intent.take_profit} are on the wrong sides of "
                          f"the entry {entry}", self.name)
        return APPROVED


@dataclass(frozen=True, slots=True)
class NotionalCap:
    """An order that adds exposure is worth at most ``cap`` (qty x reference price)."""

    cap: Decimal
    name: str = "notional_cap"

    def check(self, intent, ctx):
        if is_reducing(intent, ctx):
            return APPROVED
        price = reference_price(intent, ctx)
        if price is None:
            return Denied(f"no price to value the order on {intent.symbol}", self.name)
        notional = intent.quantity * price
        if notional > self.cap:
            return Denied(f"order notional {_money(notional)} exceeds the per-order cap "
                          f"{_money(self.cap)}", self.name)
        return APPROVED


def _exposure_change(intent, ctx) -> tuple[Decimal, Decimal]:
    """The symbol's worst-case gross exposure before and after ``intent``, at one price."""
    price = reference_price(intent, ctx)
    return (symbol_exposure(ctx, intent.symbol, price=price),
            symbol_exposure(ctx, intent.symbol, intent, price=price))


@dataclass(frozen=True, slots=True)
class SymbolExposureCap:
    """Worst-case gross exposure of the order's symbol stays within ``cap`` (or falls)."""

    cap: Decimal
    name: str = "symbol_exposure_cap"

    def check(self, intent, ctx):
        before, after = _exposure_change(intent, ctx)
        if after > before and after > self.cap:
            return Denied(f"{intent.symbol} exposure would be {_money(after)}, above the "
                          f"per-symbol cap {_money(self.cap)}", self.name)
        return APPROVED


@dataclass(frozen=True, slots=True)
class TotalExposureCap:
    """Worst-case gross exposure of the book stays within ``min(cap, leverage x equity)``."""

    cap: Decimal
    leverage: Decimal
    name: str = "total_exposure_cap"

    def check(self, intent, ctx):
        before, after = _exposure_change(intent, ctx)
        if after <= before:
            return APPROVED
        limit = min(self.cap, max(self.leverage * ctx.current_equity(), _ZERO))
        total = total_exposure(ctx) - symbol_exposure(ctx, intent.symbol) + after
        if total > limit:
            return Denied(f"total exposure would be {_money(total)}, above the limit "
                          f"{_money(limit)} (cap {_money(self.cap)}, {self.leverage}x equity)",
                          self.name)
        return APPROVED


def default_checks(settings: RiskSettings) -> tuple[Check, ...]:
    """The checks the gateway runs in ACTIVE and REDUCING, in order; first denial wins."""
    return (
        KnownPrice(),
        PriceBand(settings.price_band),
        BracketLegs(),
        NotionalCap(settings.max_order_notional),
        SymbolExposureCap(settings.max_symbol_exposure),
        TotalExposureCap(settings.max_total_exposure, settings.max_gross_leverage),
    )
