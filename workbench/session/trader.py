"""From signals and risk actions to order intents, and the risk context of a bar.

Sizing follows the backtest's (``workbench.backtesting.simulation``): an entry spends ``size`` x
the cash of its account, fees included, floored with ``shares="whole"``; an entry that
buys no share is skipped. The account (``accounts``):

* ``"shared"`` (default, a real paper account): one account for every symbol; an entry
  spends ``size`` x the cash left (open buys deducted) at the last close (the fill comes
  at the next open, so the shares are those of the close, not of the fill);
* ``"per_symbol"`` (the backtest's research default): each symbol its own account of
  ``cash`` plus what its fills in this run moved. With fractional shares an entry is a
  *notional* market buy of ``size`` x that cash (Alpaca's ``notional``): the broker sets
  the shares at the fill price with :meth:`CostModel.max_quantity`, exactly as the
  backtest sizes at the fill, so when no risk limit binds the session makes the
  backtest's trades (``tests/test_session_parity.py``). Whole shares cannot be bought by
  notional: the shares are then fixed at the last close.

An exit sells the whole position. An entry and an exit on one bar cancel out, as in the
backtest. Long only in this slice: ``short_entry``/``short_exit`` and ``weight`` signals
are journaled but not traded. One order per symbol at a time: no entry while a position
or an open order exists, no exit while a sell is open. With ``Sizing.stops``
(``sl_stop``/``tp_stop``) a filled entry gets its exit protection, a broker-side stop
loss / take profit (:mod:`workbench.session.stops`): :meth:`Trader.protections`. The
protection is not an "open order" for these rules nor for the risk context (it is a
contingent exit, canceled before any other sell of its symbol).

Client order ids are :func:`workbench.model.client_order_id` of (run, strategy, symbol,
bar time, leg), so a bar processed again after a restart yields the same ids and the
order manager never sends an intent twice.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Annotated, Literal, get_args

import pandas as pd
from pydantic import Field

from workbench.model import OrderIntent, Side, Signal, client_order_id, to_decimal
from workbench.model.costs import CostModel, Shares
from workbench.risk import FLATTEN, FORCE_EXIT, RiskContext
from workbench.risk.switches import Flatten, ForceExit
from workbench.session.stops import LEG, Stops, is_protection, protection
from workbench.values import Number, Value

__all__ = ["ACCOUNTS", "Accounts", "Sizing", "Trader"]

Accounts = Literal["shared", "per_symbol"]
ACCOUNTS = get_args(Accounts)
_ZERO = Decimal(0)


class Sizing(Value):
    """Entry size: a fraction of its account's cash per entry; whole or fractional shares;
    one shared account, or one of ``cash`` per symbol (see the module doc)."""

    size: Annotated[Number, Field(gt=0, le=1, description="fraction of cash per entry")] = 0.1
    shares: Shares = "fractional"
    costs: CostModel = Field(default_factory=CostModel)
    accounts: Accounts = "shared"
    cash: Decimal = Field(Decimal(100_000), gt=0)  # each symbol's account, accounts="per_symbol"
    stops: Stops = Field(default_factory=Stops)  # sl_stop / tp_stop as broker-side orders

    def quantity(self, budget: Decimal, price: Decimal) -> Decimal:
        qty = self.costs.max_quantity(float(budget) * self.size, float(price),
                                      whole=self.shares == "whole")
        return Decimal(int(qty)) if self.shares == "whole" else to_decimal(qty)


class Trader:
    """Builds the intents of one bar for one run and strategy (see the module doc)."""

    def __init__(self, run_id: str, strategy: str, manager, sizing: Sizing) -> None:
        self.run_id, self.strategy = run_id, strategy
        self.manager, self.sizing = manager, sizing
        self.order_times: deque[pd.Timestamp] = deque(maxlen=1000)

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

    def protections(self, bar_time) -> list[OrderIntent]:
        """The exit protection of each position whose entry (the symbol's last one) has
        filled and is not protected yet; none for a symbol with a sell open."""
        if not self.sizing.stops.any:
            return []
        entries: dict[str, object] = {}
        for cid, order in self.manager.book.orders.items():
            if cid.endswith("-entry"):
                entries[order.intent.symbol] = order  # the last one wins: placement order
        selling = {o.intent.symbol for o in self._open().values() if o.intent.side is Side.SELL}
        positions, out = self.manager.positions(), []
        for symbol, entry in entries.items():
            held = positions[symbol].quantity if symbol in positions else _ZERO
            if held <= 0 or symbol in selling:
                continue
            intent = protection(self.run_id, self.strategy, entry, held, bar_time,
                                self.sizing.stops)
            if intent is not None and intent.client_order_id not in self.manager.book.orders:
                out.append(intent)
        return out

    def context(self, now, start_equity: Decimal, last_prices, last_bar_time,
                bar_interval) -> RiskContext:
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
                           bar_interval=bar_interval)

    def from_actions(self, actions, bar_time) -> list[OrderIntent]:
        """Sell orders carrying out the gateway's Flatten and ForceExit actions."""
        out = []
        for action in actions:
            if isinstance(action, Flatten):
                for symbol, pos in self.manager.positions().items():
                    if pos.quantity > 0 and Side.SELL not in self._open_sides(symbol):
                        out.append(self._sell(symbol, pos.quantity, bar_time, "flat", FLATTEN))
            elif isinstance(action, ForceExit) and action.side is Side.SELL \
                    and Side.SELL not in self._open_sides(action.symbol):
                out.append(self._sell(action.symbol, action.quantity, bar_time, "fexit",
                                      FORCE_EXIT))
        return out

    def from_signals(self, signals: tuple[Signal, ...], last_prices) -> list[OrderIntent]:
        """Entries sized from the cash left, exits of whole positions."""
        out = []
        budget = self.manager.cash - self._pending_cost(last_prices)
        positions = self.manager.positions()
        for sig in signals:
            held = positions[sig.symbol].quantity if sig.symbol in positions else _ZERO
            sides = self._open_sides(sig.symbol)
            if sig.entry and sig.exit:
                continue  # they cancel out, as in the backtest
            if sig.exit and held > 0 and Side.SELL not in sides:
                out.append(self._sell(sig.symbol, held, sig.bar_time, "exit", "signal"))
            elif sig.entry and held == 0 and not sides:
                price = last_prices.get(sig.symbol)
                if self.sizing.accounts == "per_symbol":
                    intent = self._own_account_entry(sig, price)
                    out += [intent] if intent is not None else []
                    continue
                qty = self.sizing.quantity(budget, price) if price and budget > 0 else _ZERO
                if qty > 0:
                    budget -= qty * price
                    out.append(OrderIntent(self._cid(sig.symbol, sig.bar_time, "entry"),
                                           sig.symbol, Side.BUY, qty, bar_time=sig.bar_time))
        return out

    def account_cash(self, symbol: str) -> Decimal:
        """The cash of ``symbol``'s own account (``accounts="per_symbol"``)."""
        return self.sizing.cash + self.manager.book.ledger.flows.get(symbol, _ZERO)

    def _own_account_entry(self, sig: Signal, price) -> OrderIntent | None:
        """A buy of ``size`` x the symbol's own cash: notional with fractional shares
        (shares set at the fill), else whole shares at the last close; None if none."""
        cash = self.account_cash(sig.symbol)
        qty = self.sizing.quantity(cash, price) if price and cash > 0 else _ZERO
        if not qty > 0:
            return None
        notional = (cash * Decimal(repr(float(self.sizing.size)))
                    if self.sizing.shares == "fractional" else None)
        return OrderIntent(self._cid(sig.symbol, sig.bar_time, "entry"), sig.symbol, Side.BUY,
                           qty, bar_time=sig.bar_time, notional=notional)

    def _pending_cost(self, last_prices) -> Decimal:
        return sum((o.remaining * last_prices.get(o.intent.symbol, _ZERO)
                    for o in self._open().values()
                    if o.intent.side is Side.BUY), _ZERO)

    def _sell(self, symbol, quantity, bar_time, leg, reason) -> OrderIntent:
        return OrderIntent(self._cid(symbol, bar_time, leg), symbol, Side.SELL,
                           Decimal(quantity), bar_time=bar_time, reason=reason)

    def placed(self, at) -> None:
        """Count an order sent (the order-rate kill switch reads these times)."""
        self.order_times.append(at)
