"""Prices as Alpaca accepts them: whole cents, or 4 places below one dollar.

Alpaca refuses a sub-penny increment (``422``: "sub-penny increment does not fulfill
minimum pricing criteria"): a price of $1.00 or more may have 2 decimal places, one below
$1.00 four. Intent prices are Decimals with up to 4 places (``workbench.model.to_decimal``)
computed from floats (a stop at ``fill * 0.95``), so they are rounded here, in the
adapter, just before the request is built (:func:`order_prices`), and nowhere else.

Rounding never gives the order a worse price than it asked for:

* a **limit** (an entry limit, a take profit) rounds to a price at least as good as the one
  asked: a buy limit down, a sell limit up (a fraction of a cent less likely to fill);
* a **stop** (a stop order, a stop loss) rounds toward the market it protects against:
  a sell stop up, a buy stop down (it triggers a fraction of a cent earlier, never later).

After rounding, the order's levels must keep their order (for a buy bracket
``stop_loss < limit entry < take_profit``, reversed for a sell; for an oco ``stop_loss <
take_profit`` on a sell, reversed on a buy). If rounding made two levels equal or crossed
(levels less than a tick apart), the order is refused with :class:`PriceError` naming the
prices, rather than sent with a stop on the wrong side. The rounded prices are what the
order at the broker carries (its ``BrokerOrder`` shows them); the adapter reports each
rounding as a ``price_rounded`` event.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise

from workbench.model import OrderIntent, OrderType, Side

__all__ = ["PriceError", "order_prices", "tick"]

_CENT = Decimal("0.01")
_SUB = Decimal("0.0001")


class PriceError(ValueError):
    """A price cannot be put on Alpaca's grid without moving a level to the wrong side."""


def tick(price: Decimal) -> Decimal:
    """The price increment Alpaca accepts at ``price``."""
    return _SUB if price < 1 else _CENT


def _round(price: Decimal, up: bool) -> Decimal:
    if price <= 0:
        raise PriceError(f"price must be positive, got {price}")
    out = price.quantize(tick(price), rounding=ROUND_CEILING if up else ROUND_FLOOR)
    if out >= 1 > price:  # 0.99995 rounded up is 1.0000: on the cent grid that is 1.00
        out = out.quantize(_CENT)
    if out <= 0:
        raise PriceError(f"price {price} rounds to zero on Alpaca's grid")
    return out


def _limit(price: Decimal | None, side: Side) -> Decimal | None:
    return None if price is None else _round(price, up=side is Side.SELL)


def _stop(price: Decimal | None, side: Side) -> Decimal | None:
    return None if price is None else _round(price, up=side is Side.SELL)


def order_prices(intent: OrderIntent) -> dict[str, Decimal | None]:
    """``limit_price``, ``stop_price``, ``take_profit``, ``stop_loss`` of ``intent`` on
    Alpaca's grid (see the module doc); raises :class:`PriceError`."""
    side = intent.side
    exit_side = Side.SELL if side is Side.BUY else Side.BUY
    kind = intent.order_type
    # bracket legs exit the entry (the opposite side); an oco's levels are the order's own
    leg_side = exit_side if kind is OrderType.BRACKET else side
    out = {"limit_price": _limit(intent.limit_price, side),
           "stop_price": _stop(intent.stop_price, side),
           "take_profit": _limit(intent.take_profit, leg_side),
           "stop_loss": _stop(intent.stop_loss, leg_side)}
    _check_levels(intent, out, leg_side)
    return out


def _check_levels(intent: OrderIntent, out: dict, leg_side: Side) -> None:
    sl, tp, limit = out["stop_loss"], out["take_profit"], out["limit_price"]
    # levels in the order they must be for a position held long (the legs sell)
    chain = [p for p in (sl, limit if intent.order_type is OrderType.BRACKET else None, tp)
             if p is not None]
    if leg_side is Side.BUY:  # the legs buy back a short: reversed
        chain = chain[::-1]
    if any(a >= b for a, b in pairwise(chain)):
        raise PriceError(
            f"order {intent.client_order_id}: levels out of order for a {intent.side} "
            f"{intent.order_type} after rounding to Alpaca's grid (stop_loss {sl}, limit "
            f"{limit}, take_profit {tp}; asked {intent.stop_loss}, {intent.limit_price}, "
            f"{intent.take_profit}): refused rather than sent with a level on the wrong side")
