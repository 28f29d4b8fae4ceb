"""From signals and risk actions to order intents, and the risk context of a bar.

Sizing follows the backtest's (``workbench.backtesting.simulation``): an entry spends ``size`` x
the cash of its account, fees included, floored with ``shares="whole"``; an entry that
buys (or sells short) no share is skipped. The account (``accounts``):

* ``"shared"`` (default, a real paper account): one account for every symbol; an entry
  spends ``size`` x the cash left (open buys and this bar's entries deducted) at the last
  close (the fill comes at the next open, so the shares are those of the close, not of
  the fill); a short sale is sized the same way;
* ``"per_symbol"`` (the backtest's research default): each symbol its own account of
  ``cash`` plus what its fills on the account moved (this run's, and earlier runs' on the
  same broker account: :func:`carried_flows`, fixed at the run's first start). With fractional shares an entry is a
  *notional* market order of ``size`` x that cash (Alpaca's ``notional``; a notional
  short sale is the simulated broker's): the broker sets the shares at the fill price with
  :meth:`CostModel.max_quantity`, exactly as the backtest sizes at the fill, so when no
  risk limit binds the session makes the backtest's trades (``tests/test_session_parity.py``,
  ``tests/test_session_longshort.py``). Whole shares cannot be sized at the fill by any
  broker: their count is fixed at the decision, from the fill price the last close gives
  (``CostModel.fill_price``, slippage included); it is the backtest's count when the next
  open equals the last close, else it may differ by the shares the gap moves across the
  floor (``tests/test_session_whole.py``).

``direction`` (the backtest's): ``"long"`` trades ``entry``/``exit`` only (short signals
are journaled, not traded); ``"longshort"`` also sells short on ``short_entry`` and covers
on ``short_exit``, with the backtest's rules (vectorbt's ``from_signals`` defaults): an
entry and an exit of one side on one bar cancel out, as do a long and a short entry; an
entry in the direction held is ignored; an entry against the position held *reverses* it:
the whole position is closed and the new one opened, two market orders filling at the
same next open, the close first. A reversal's new entry is sized from the account's cash
*after* the close, which no broker order can express (the close's proceeds are known only
at its fill): the session estimates them at the last close (fill price and fees of the
cost model), which is exact when the next open equals the last close and otherwise off by
the position x the gap (x ``size``).

Target ``weight`` signals (``Signals(weights=...)``) are traded as the backtest trades them:
one market order per symbol and bar of :func:`workbench.model.weights.rebalance_quantity`
shares (the backtest's very function) from the account's cash and position and the last
close, filled at the next open; the order's shares are fixed at the decision, in the
backtest too, so they are the backtest's numbers. With ``accounts="shared"`` the weight is
of the one account's value (cash + every position at the last closes). Negative weights
need ``direction="longshort"`` and weights exclude stops: both refused (``ConfigError``),
as the backtest refuses them.

An exit closes the whole position. One order per symbol at a time: no entry while a
position or an open order exists (but the reversal's pair), no close while one of its side
is open. With ``Sizing.stops`` (``sl_stop``/``tp_stop``), or the stops the strategy gives
per bar on its entry signals (the entry bar's fractions, kept per entry), a filled entry
gets its exit
protection, a broker-side stop loss / take profit (:mod:`workbench.session.stops`): a
sell for a long position, a buy for a short one: :meth:`Trader.protections`. The
protection is not an "open order" for these rules nor for the risk context (it is a
contingent exit, canceled before any other order of its symbol).

Client order ids are :func:`workbench.model.client_order_id` of (run, strategy, symbol,
bar time, leg), so a bar processed again after a restart yields the same ids and the
order manager never sends an intent twice.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Annotated, Literal, get_args

import pandas as pd
from pydantic import Field

from workbench.errors import ConfigError
from workbench.model import OrderIntent, OrderType, Side, Signal, client_order_id, to_decimal
from workbench.model.costs import CostModel, Shares
from workbench.model.weights import rebalance_quantity
from workbench.risk import FLATTEN, FORCE_EXIT, RiskContext
from workbench.risk.switches import Flatten, ForceExit
from workbench.session.stops import LEG, Stops, is_protection, protection, signal_stops
from workbench.values import Number, Value

__all__ = ["ACCOUNTS", "Accounts", "Direction", "Sizing", "Trader", "resolve"]

Accounts = Literal["shared", "per_symbol"]
ACCOUNTS = get_args(Accounts)
Direction = Literal["long", "longshort"]  # the backtest's (workbench.backtesting.simulation)
_ZERO = Decimal(0)
_CLOSING = {1: Side.SELL, -1: Side.BUY}  # the side that closes a long (+1) / short (-1)


def resolve(sig: Signal, shorts: bool) -> tuple[bool, bool, bool, bool]:
    """(long entry, long exit, short entry, short exit) of ``sig`` after the backtest's
    conflict rules (``workbench.backtesting.passes.resolve``): an entry and an exit of one
    side cancel out, and so do a long and a short entry; without ``shorts`` the short
    signals are dropped."""
    le, lx = sig.entry, sig.exit
    se, sx = (sig.short_entry, sig.short_exit) if shorts else (False, False)
    if le and lx:
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:
        le = se = False
    return le, lx, se, sx


class Sizing(Value):
    """Entry size: a fraction of its account's cash per entry; whole or fractional shares;
    one shared account, or one of ``cash`` per symbol (see the module doc)."""

    size: Annotated[Number, Field(gt=0, le=1, description="fraction of cash per entry")] = 0.1
    shares: Shares = "fractional"
    costs: CostModel = Field(default_factory=CostModel)
    accounts: Accounts = "shared"
    cash: Decimal = Field(Decimal(100_000), gt=0)  # each symbol's account, accounts="per_symbol"
    stops: Stops = Field(default_factory=Stops)  # sl_stop / tp_stop as broker-side orders
    sl_trail: bool = False  # the stop loss trails (replaced bar by bar: Trader.protections)
    direction: Direction = "long"

    def quantity(self, budget: Decimal, price: Decimal, side: Side = Side.BUY) -> Decimal:
        """Shares ``size`` x ``budget`` pays for, fees included, at the fill price the
        last close ``price`` gives (slippage included), floored with whole shares."""
        fill = self.costs.fill_price(side.value, float(price))
        qty = self.costs.max_quantity(float(budget) * self.size, fill,
                                      whole=self.shares == "whole")
        return Decimal(int(qty)) if self.shares == "whole" else to_decimal(qty)

    def close_flow(self, quantity: Decimal, price: Decimal) -> Decimal:
        """The cash closing the signed position ``quantity`` at the last close ``price``
        would move (fill price and fee of the cost model): a reversal's estimate."""
        side = Side.SELL if quantity > 0 else Side.BUY
        fill = self.costs.fill_price(side.value, float(price))
        qty = abs(float(quantity))
        flow = qty * fill - self.costs.fee(qty, fill) if quantity > 0 else \
            -(qty * fill + self.costs.fee(qty, fill))
        return Decimal(repr(flow))  # exact: a 4-place rounding would move the size


class Trader:
    """Builds the intents of one bar for one run and strategy (see the module doc)."""

    def __init__(self, run_id: str, strategy: str, manager, sizing: Sizing) -> None:
        self.run_id, self.strategy = run_id, strategy
        self.manager, self.sizing = manager, sizing
        self.order_times: deque[pd.Timestamp] = deque(maxlen=1000)
        # the strategy's own stops of each entry signal: (symbol, bar time) -> Stops
        self.entry_stops: dict[tuple[str, pd.Timestamp], Stops] = {}
        # trailing (``Sizing.sl_trail``): symbol -> [entry id, best price, stops, tp level]
        self.trailing: dict[str, list] = {}
        # per-symbol accounts: the cash each symbol's fills on this account moved before
        # this run (earlier runs' days: ``carried_flows``), so a run of days sizes as one
        self.carried: dict[str, Decimal] = {}

    def learn_stops(self, signal) -> None:
        """Keep the stops the strategy gave with an entry ``signal`` (a ``Signal`` or its
        journaled payload): its entry is protected with them. Given with ``Sizing.stops``
        too: a ``ConfigError`` (one of them would be ignored; the backtest refuses it)."""
        stops = signal_stops(signal)
        if stops is None:
            return
        if self.sizing.stops.any:
            raise ConfigError(f"{self.strategy} returns its own stops and the session was "
                              "given sl_stop/tp_stop too: give them in one place")
        get = signal.get if isinstance(signal, dict) else lambda k: getattr(signal, k)
        self.entry_stops[(get("symbol"), pd.Timestamp(get("bar_time")))] = stops

    def _cid(self, symbol: str, bar_time, leg: str) -> str:
        return client_order_id(self.run_id, self.strategy, symbol, bar_time, leg)

    def _open_sides(self, symbol: str) -> set[Side]:
        return {o.intent.side for o in self._open().values() if o.intent.symbol == symbol}

    def _open(self) -> dict:
        """Open orders but the protections (see the module doc)."""
        return {c: o for c, o in self.manager.open_orders().items() if not is_protection(c)}

    def open_protection(self, symbol: str) -> list[str]:
        """Client ids of ``symbol``'s open protection orders (their legs go with them)."""
        return [c for c, o in self.manager.open_orders().items()
                if o.intent.symbol == symbol and c.endswith(f"-{LEG}")]

    def protections(self, bar_time, bars=None) -> list[OrderIntent]:
        """The exit protection of each position whose entry (the symbol's last one) has
        filled and is not protected yet; none for a symbol with a closing order open.

        With ``Sizing.sl_trail`` and this bar's ``bars`` ({symbol: (open, high, low, close,
        ...)}), a protected position's stop trails: after the bar (whose stop check the
        broker made at the level before it) the best price since the entry moves to the
        bar's high (a short: its low); if it moved, the protection is replaced by one at
        ``best * (1 - sl)`` (short ``best * (1 + sl)``), the same take profit, id leg
        ``stops`` of this bar: the session cancels the old one first. The backtest's rule
        (``workbench.backtesting.simulation``), float for float."""
        if not self.sizing.stops.any and not self.entry_stops:
            return []
        entries: dict[str, object] = {}
        for cid, order in self.manager.book.orders.items():
            if cid.endswith("-entry"):
                entries[order.intent.symbol] = order  # the last one wins: placement order
        closing = {(o.intent.symbol, o.intent.side) for o in self._open().values()}
        positions, out = self.manager.positions(), []
        for symbol, entry in entries.items():
            held = positions[symbol].quantity if symbol in positions else _ZERO
            if held == 0 or (symbol, _CLOSING[1 if held > 0 else -1]) in closing \
                    or (held > 0) != (entry.intent.side is Side.BUY):
                continue
            stops = self.entry_stops.get((symbol, entry.intent.bar_time), self.sizing.stops)
            if not stops.any:
                continue  # NaN on the entry's bar: no stop for it
            intent = protection(self.run_id, self.strategy, entry, abs(held), bar_time, stops)
            if self.sizing.sl_trail and intent is not None:
                intent = self._trail(symbol, entry, intent, held, bar_time, bars, stops)
            if intent is not None and intent.client_order_id not in self.manager.book.orders:
                out.append(intent)
        return out

    def _trail(self, symbol, entry, first: OrderIntent, held, bar_time, bars, stops):
        """The protection to place now for a trailing stop: ``first`` (the initial one) if
        not placed yet; a replacement if this bar moved the best price; else None."""
        cid = entry.client_order_id
        state = self.trailing.get(symbol)
        if first.client_order_id not in self.manager.book.orders:
            if state is None or state[0] != cid:
                self.trailing[symbol] = [cid, float(entry.average_price), stops,
                                         first.take_profit]
            return first
        if state is None or state[0] != cid or stops.sl_stop is None or bars is None:
            return None
        if not self.open_protection(symbol):
            return None  # it filled (the position goes) or was canceled by an exit
        values = bars.get(symbol)
        if values is None:
            return None
        o, h, lo = (float(v) for v in values[:3])
        if not o > 0.0 or math.isnan(h) or math.isnan(lo):
            return None  # a bar without open, high or low does not move it (as the backtest)
        best = max(state[1], h) if held > 0 else min(state[1], lo)
        if best == state[1]:
            return None
        state[1] = best
        level = best * (1.0 - stops.sl_stop) if held > 0 else best * (1.0 + stops.sl_stop)
        return OrderIntent(self._cid(symbol, bar_time, LEG), symbol, first.side, first.quantity,
                           OrderType.OCO, stop_loss=Decimal(repr(level)),
                           take_profit=state[3], time_in_force=first.time_in_force,
                           bar_time=bar_time, reason="stop_loss")

    def context(self, now, start_equity: Decimal, last_prices, last_bar_time,
                bar_interval, **live) -> RiskContext:
        """The risk gateway's snapshot: cash, positions, marks and open orders now."""
        buys: dict[str, Decimal] = {}
        sells: dict[str, Decimal] = {}
        for order in self._open().values():
            book = buys if order.intent.side is Side.BUY else sells
            book[order.intent.symbol] = book.get(order.intent.symbol, _ZERO) + order.remaining
        return RiskContext(now=now, cash=self.manager.cash, start_equity=start_equity,
                           positions=self.manager.positions(), last_prices=last_prices,
                           pending_buys=buys, pending_sells=sells,
                           order_times=tuple(self.order_times), last_bar_time=last_bar_time,
                           bar_interval=bar_interval, **live)

    def from_actions(self, actions, bar_time) -> list[OrderIntent]:
        """Orders carrying out the gateway's Flatten (every position closed) and ForceExit."""
        out = []
        for action in actions:
            if isinstance(action, Flatten):
                for symbol, pos in self.manager.positions().items():
                    side = _CLOSING[1 if pos.quantity > 0 else -1]
                    if pos.quantity != 0 and side not in self._open_sides(symbol):
                        out.append(self._close(symbol, side, abs(pos.quantity), bar_time,
                                               "flat", FLATTEN))
            elif isinstance(action, ForceExit) and action.side not in self._open_sides(
                    action.symbol):
                out.append(self._close(action.symbol, action.side, action.quantity, bar_time,
                                       "fexit", FORCE_EXIT))
        return out

    def from_signals(self, signals: tuple[Signal, ...], last_prices) -> list[OrderIntent]:
        """Entries sized from the cash left, closes of whole positions, reversals (see the
        module doc)."""
        out = []
        budget = [self.manager.cash - self._pending_cost(last_prices)]
        positions = self.manager.positions()
        shorts = self.sizing.direction == "longshort"
        for sig in signals:
            self.learn_stops(sig)
            if sig.weight is not None:
                intent = self._rebalance(sig, last_prices, positions)
                out += [intent] if intent is not None else []
                continue
            le, lx, se, sx = resolve(sig, shorts)
            held = positions[sig.symbol].quantity if sig.symbol in positions else _ZERO
            sides = self._open_sides(sig.symbol)
            if held != 0:
                long_ = held > 0
                if not ((lx or se) if long_ else (le or sx)):
                    continue  # nothing changes the position held
                side = _CLOSING[1 if long_ else -1]
                if side in sides:
                    continue  # its close is already on the way
                out.append(self._close(sig.symbol, side, abs(held), sig.bar_time, "exit",
                                       "signal"))
                if se if long_ else le:  # a reversal: the opposite entry, at the same open
                    entry = self._entry(sig, side, last_prices, budget,
                                        self.sizing.close_flow(held, last_prices[sig.symbol]))
                    out += [entry] if entry is not None else []
            elif (le or se) and not sides:
                entry = self._entry(sig, Side.BUY if le else Side.SELL, last_prices, budget)
                out += [entry] if entry is not None else []
        return out

    def _rebalance(self, sig: Signal, last_prices, positions) -> OrderIntent | None:
        """The order bringing the symbol to its target weight: ``rebalance_quantity`` (the
        backtest's very function) of the account's cash and position and the last close;
        None if no share changes or a symbol order is open."""
        if self.sizing.stops.any:
            raise ConfigError("target weights cannot be traded with sl_stop/tp_stop (the "
                              "backtest refuses them too)")
        price = last_prices.get(sig.symbol)
        held = positions[sig.symbol].quantity if sig.symbol in positions else _ZERO
        if not price or self._open_sides(sig.symbol):
            return None
        if sig.weight < 0 and self.sizing.direction == "long":
            raise ConfigError(f"{sig.symbol}: a negative (short) target weight with "
                              "direction='long': the backtest refuses it; use 'longshort'")
        if self.sizing.accounts == "per_symbol":
            cash = self.account_cash(sig.symbol)
        else:  # one account: the weight of its whole value
            cash = self.manager.account().equity(last_prices) - held * price
        delta = rebalance_quantity(sig.weight, float(cash), float(held), float(price),
                                   self.sizing.shares == "whole")
        if delta == 0.0 or abs(delta) < 1e-12:
            return None
        return OrderIntent(self._cid(sig.symbol, sig.bar_time, "weight"), sig.symbol,
                           Side.BUY if delta > 0 else Side.SELL, Decimal(repr(abs(delta))),
                           bar_time=sig.bar_time, reason="weight")

    def _entry(self, sig: Signal, side: Side, last_prices, budget: list,
               proceeds: Decimal = _ZERO) -> OrderIntent | None:
        """An entry of ``side`` for ``sig``'s symbol (``proceeds``: the estimated cash a
        reversal's close adds first), None if it would trade no share. ``budget`` (a
        one-item list) is the shared account's cash left, reduced here."""
        price = last_prices.get(sig.symbol)
        if self.sizing.accounts == "per_symbol":
            return self._own_account_entry(sig, side, price, proceeds)
        cash = budget[0] + proceeds
        qty = self.sizing.quantity(cash, price, side) if price and cash > 0 else _ZERO
        if not qty > 0:
            return None
        budget[0] -= qty * price
        return OrderIntent(self._cid(sig.symbol, sig.bar_time, "entry"), sig.symbol, side, qty,
                           bar_time=sig.bar_time)

    def account_cash(self, symbol: str) -> Decimal:
        """The cash of ``symbol``'s own account (``accounts="per_symbol"``)."""
        return (self.sizing.cash + self.carried.get(symbol, _ZERO)
                + self.manager.book.ledger.flows.get(symbol, _ZERO))

    def _own_account_entry(self, sig: Signal, side: Side, price,
                           proceeds: Decimal = _ZERO) -> OrderIntent | None:
        """``size`` x the symbol's own cash (plus a reversal's estimated ``proceeds``):
        notional with fractional shares (shares set at the fill), else whole shares at the
        fill price of the last close; None if none."""
        cash = self.account_cash(sig.symbol) + proceeds
        qty = self.sizing.quantity(cash, price, side) if price and cash > 0 else _ZERO
        if not qty > 0:
            return None
        notional = (cash * Decimal(repr(float(self.sizing.size)))
                    if self.sizing.shares == "fractional" else None)
        return OrderIntent(self._cid(sig.symbol, sig.bar_time, "entry"), sig.symbol, side,
                           qty, bar_time=sig.bar_time, notional=notional)

    def _pending_cost(self, last_prices) -> Decimal:
        return sum((o.remaining * last_prices.get(o.intent.symbol, _ZERO)
                    for o in self._open().values()
                    if o.intent.side is Side.BUY), _ZERO)

    def _close(self, symbol, side: Side, quantity, bar_time, leg, reason) -> OrderIntent:
        return OrderIntent(self._cid(symbol, bar_time, leg), symbol, side, Decimal(quantity),
                           bar_time=bar_time, reason=reason)

    def placed(self, at) -> None:
        """Count an order sent (the order-rate kill switch reads these times)."""
        self.order_times.append(at)


def carried_flows(fills) -> dict[str, Decimal]:
    """The cash each symbol's ``fills`` moved (the ledger's rule): an account's earlier
    runs, read from the broker at a run's first start."""
    out: dict[str, Decimal] = {}
    for f in fills:
        out[f.symbol] = out.get(f.symbol, _ZERO) - (f.side.sign * f.quantity * f.price + f.fee)
    return out
