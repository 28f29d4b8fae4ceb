"""What a session's end says of the orders the close left unfilled (session.ending)."""

from __future__ import annotations

from decimal import Decimal as D

from workbench.model import OrderIntent, Side
from workbench.model.enums import OrderStatus as S
from workbench.model.enums import TimeInForce
from workbench.model.types import Order
from workbench.orders.book import OrderBook
from workbench.session.ending import unfilled_at_close


def _book(*orders: tuple) -> OrderBook:
    book = OrderBook()
    for cid, status, symbol, filled, tif, *reason in orders:
        intent = OrderIntent(cid, symbol, Side.BUY, D(10), time_in_force=tif,
                             reason=reason[0] if reason else "signal")
        book.orders[cid] = Order(intent, status, filled_quantity=filled)
    return book


def test_expired_and_still_open_day_orders_are_named_legs_stops_and_filled_ones_not():
    book = _book(("e1", S.EXPIRED, "AAA", D(0), TimeInForce.DAY),
                 ("e2", S.EXPIRED, "BBB", D(4), TimeInForce.DAY),
                 ("o1", S.ACCEPTED, "CCC", D(0), TimeInForce.DAY),
                 ("g1", S.ACCEPTED, "DDD", D(0), TimeInForce.GTC),
                 ("f1", S.FILLED, "EEE", D(10), TimeInForce.DAY),
                 ("e1.sl", S.EXPIRED, "AAA", D(0), TimeInForce.DAY),
                 ("s1", S.EXPIRED, "FFF", D(0), TimeInForce.DAY, "stop_loss"),
                 ("s2", S.ACCEPTED, "FFF", D(0), TimeInForce.DAY, "take_profit"))
    book.parents["e1.sl"] = "e1"
    text = unfilled_at_close(book)
    assert text == ("2 order(s) expired unfilled at the close, trades the session did not "
                    "make: AAA buy 10 (e1), BBB buy 6 of 10 (e2); 1 DAY order(s) still open at "
                    "the end, left to the broker's expiry after the close: CCC buy 10 (o1)")
    assert unfilled_at_close(_book(("f1", S.FILLED, "EEE", D(10), TimeInForce.DAY))) == ""
