"""The one cost and fill model, shared by the backtester and the simulated broker.

    costs = CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)
    price = costs.fill_price("buy", 100.0)      # 100.02: buys pay up, sells give up
    fee = costs.fee(quantity=50, price=price)   # 50 * 100.02 * 1e-4 + 50 * 0.005

Rules (every fill, entries and exits alike, stops included):

* fill price: a buy fills at ``reference * (1 + slippage_bps / 1e4)``, a sell at
  ``reference * (1 - slippage_bps / 1e4)``; the reference is the price the order met (the
  bar's open for ``next_open`` fills, its close for ``close`` fills, the stop level or the
  open for stops);
* fee: ``notional * fees_bps / 1e4 + shares * fee_per_share``, notional = shares x fill price;
* sizing with fees included: a budget ``B`` buys (or sells short)
  ``B / (price * (1 + fees_bps / 1e4) + fee_per_share)`` shares, so that notional plus fee
  equals ``B``; with whole shares that number is floored.

Plain floats in, plain floats out (the ``*_array`` variants take numpy arrays): no pandas,
no vectorbt, so the live simulated broker can import it cheaply. The compiled backtest core
(:mod:`workbench.backtesting.simulation`) evaluates these same expressions in the same order,
and ``tests/test_backtest_fills.py`` checks that they agree to the last bit.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from workbench.errors import ConfigError
from workbench.values import Number, Value

__all__ = ["BUY", "SELL", "CostModel", "Shares"]

Shares = Literal["fractional", "whole"]  # whole: share counts floored (max_quantity's whole)
BUY, SELL = 1, -1
_SIDES = {"buy": BUY, "sell": SELL, "long": BUY, "short": SELL, BUY: BUY, SELL: SELL}
_BPS = 10_000.0


def _side(side) -> int:
    key = side.lower() if isinstance(side, str) else side
    try:
        return _SIDES[key]
    except (KeyError, TypeError):
        raise ConfigError(f"side must be 'buy' or 'sell' (or +1/-1), got {side!r}") from None


class CostModel(Value):
    """Fees and slippage: ``fees_bps`` of the notional plus ``fee_per_share``, and
    ``slippage_bps`` against the trader on every fill. Bad values raise ``ConfigError``."""

    fees_bps: Annotated[Number, Field(ge=0, lt=_BPS)] = 0.0
    fee_per_share: Annotated[Number, Field(ge=0, lt=1e6)] = 0.0
    slippage_bps: Annotated[Number, Field(ge=0, lt=_BPS)] = 2.0

    # -- the rates the compiled core uses ----------------------------------------------
    @property
    def fee_rate(self) -> float:
        """Fee as a fraction of the notional (``fees_bps / 1e4``)."""
        return self.fees_bps / _BPS

    @property
    def slippage(self) -> float:
        """Slippage as a fraction of the reference price (``slippage_bps / 1e4``)."""
        return self.slippage_bps / _BPS

    # -- scalars ------------------------------------------------------------------------
    def fill_price(self, side, reference_price: float) -> float:
        """The price a ``side`` ("buy"/"sell") order fills at when it meets ``reference_price``."""
        if _side(side) == BUY:
            return reference_price * (1.0 + self.slippage)
        return reference_price * (1.0 - self.slippage)

    def fee(self, quantity: float, price: float) -> float:
        """Fee of a fill of ``quantity`` shares (sign ignored) at fill ``price``."""
        q = abs(quantity)
        return q * price * self.fee_rate + q * self.fee_per_share

    def max_quantity(self, budget: float, price: float, whole: bool = False) -> float:
        """Shares that ``budget`` pays for at fill ``price``, fees included (0 if none)."""
        if not budget > 0 or not price > 0:
            return 0.0
        qty = budget / (price * (1.0 + self.fee_rate) + self.fee_per_share)
        return float(math.floor(qty)) if whole else qty

    # -- numpy arrays -------------------------------------------------------------------
    def fill_price_array(self, side, reference_prices) -> np.ndarray:
        """:meth:`fill_price` element-wise; ``side`` is one side or an array of +1/-1."""
        ref = np.asarray(reference_prices, dtype=float)
        if np.ndim(side) == 0:
            sign = _side(side.item() if isinstance(side, np.ndarray) else side)
        else:
            sign = np.asarray(side)
            if not np.isin(sign, (BUY, SELL)).all():
                raise ConfigError("side arrays must hold +1 (buy) or -1 (sell)")
        buy, sell = ref * (1.0 + self.slippage), ref * (1.0 - self.slippage)
        return np.where(np.asarray(sign) == BUY, buy, sell)

    def fee_array(self, quantities, prices) -> np.ndarray:
        """:meth:`fee` element-wise."""
        q = np.abs(np.asarray(quantities, dtype=float))
        return q * np.asarray(prices, dtype=float) * self.fee_rate + q * self.fee_per_share

    def describe(self) -> dict[str, float]:
        return {"fees_bps": self.fees_bps, "fee_per_share": self.fee_per_share,
                "slippage_bps": self.slippage_bps}
