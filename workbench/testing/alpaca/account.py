"""The fake account's JSON as Alpaca writes it: ``/v2/account`` and a ``Position`` (money and
quantities as strings, ids as UUIDs, every field alpaca-py's models require)."""

from __future__ import annotations

from decimal import Decimal

from workbench.model import Position
from workbench.testing.alpaca.answers import num
from workbench.testing.alpaca.orders import asset_id

__all__ = ["account_json", "position_json"]

ZERO = Decimal(0)


def position_json(p: Position, price: Decimal) -> dict:
    """A position marked at ``price`` (the last close the fake published, else its cost)."""
    qty = p.quantity
    value = qty * price
    return {
        "asset_id": asset_id(p.symbol), "symbol": p.symbol, "exchange": "NASDAQ",
        "asset_class": "us_equity", "asset_marginable": True,
        "avg_entry_price": num(p.average_price), "qty": num(qty),
        "qty_available": num(qty), "side": "long" if qty > 0 else "short",
        "market_value": num(value), "cost_basis": num(abs(qty) * p.average_price),
        "unrealized_pl": num(value - qty * p.average_price),
        "current_price": num(price), "lastday_price": num(price), "change_today": "0",
    }


def account_json(account_id: str, cash: Decimal, marks: dict[str, tuple[Decimal, Decimal]],
                 paper: bool = True) -> dict:
    """The account: ``cash``, and equity marked from ``marks`` ({symbol: (qty, price)}).
    Buying power is the cash (no margin: the fake makes no buying-power checks). A paper
    account's number starts with ``PA``, as Alpaca's do; a live one's (``paper=False``) not."""
    longs = sum((q * price for q, price in marks.values() if q > 0), ZERO)
    shorts = sum((q * price for q, price in marks.values() if q < 0), ZERO)
    equity = cash + longs + shorts
    power = num(max(cash, ZERO))
    return {
        "id": account_id, "account_number": ("PA" if paper else "9") + account_id[:8].upper(),
        "status": "ACTIVE", "crypto_status": "INACTIVE", "currency": "USD",
        "cash": num(cash), "equity": num(equity), "last_equity": num(equity),
        "portfolio_value": num(equity), "buying_power": power,
        "non_marginable_buying_power": power, "regt_buying_power": power,
        "daytrading_buying_power": "0", "long_market_value": num(longs),
        "short_market_value": num(shorts), "initial_margin": "0", "maintenance_margin": "0",
        "multiplier": "1", "pattern_day_trader": False, "trading_blocked": False,
        "transfers_blocked": False, "account_blocked": False, "shorting_enabled": True,
        "trade_suspended_by_user": False, "created_at": "2020-01-01T00:00:00Z",
        "sma": "0", "daytrade_count": 0,
    }
