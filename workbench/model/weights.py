"""Target weights: the one sizing rule of a rebalance, shared by the backtest and the session.

    shares = rebalance_quantity(weight=0.5, cash=60_000.0, position=100.0, price=400.0,
                                whole=False)   # signed shares to trade: +25.0

A strategy's ``Signals(weights=...)`` says, at a bar's close, what fraction of its account's
value each symbol should hold (negative: short; NaN: keep the position). The order is
decided at that close and fills at the next bar's open (``fill="next_open"``), like an
entry: its size is fixed at the decision, from the decision bar's close ``price`` and the
account's ``cash`` and ``position`` then:

    equity = cash + position * price
    target = weight * equity / price          (truncated toward zero with whole shares)
    order  = target - position                (buy if > 0, sell if < 0; none if 0)

Fees and slippage are not in the target (as vectorbt's ``targetpercent``): a weight of 1
leaves the fill's costs to the cash, which may go a little negative, as a cover's may.
This is a plain Python function of floats: the session calls it as it is, and the
backtest's compiled core (``workbench.backtesting.vbt_core``) compiles this very function
with numba, so both compute the same numbers from the same floats.
"""

from __future__ import annotations

import math

__all__ = ["rebalance_quantity"]


def rebalance_quantity(weight: float, cash: float, position: float, price: float,
                       whole: bool) -> float:
    """Signed shares that bring ``position`` to ``weight`` x the account's value at
    ``price`` (see the module doc); 0.0 if the price is not positive."""
    if not price > 0.0:
        return 0.0
    equity = cash + position * price
    target = weight * equity / price
    if whole:
        target = float(math.trunc(target))
    return target - position
