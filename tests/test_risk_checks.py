"""Pre-trade checks and the gateway's review: each check approves and denies, the trading
states gate orders as documented, every decision is journaled, and (hypothesis) no
sequence of orders breaks the caps or, in REDUCING, adds exposure."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderType, Position, Side, TradingState
from workbench.risk import (
    FLATTEN,
    BracketLegs,
    Denied,
    KnownPrice,
    NotionalCap,
    PriceBand,
    RiskContext,
    RiskGateway,
    RiskSettings,
    SymbolExposureCap,
    TotalExposureCap,
    is_reducing,
)
from workbench.testing.sinks import ListSink

T0 = pd.Timestamp("2024-03-04 15:00", tz="UTC")  # 10:00 in New York


def order(symbol="AAA", side="buy", qty="10", n=0, **kw) -> OrderIntent:
    return OrderIntent(f"cid-{symbol}-{n}", symbol, Side(side), D(qty), **kw)


def context(positions=None, prices=None, cash="100000", start="100000", **kw) -> RiskContext:
    pos = {s: Position(s, D(q), D(a)) for s, (q, a) in (positions or {}).items()}
    last = {s: D(p) for s, p in (prices if prices is not None else {"AAA": "100"}).items()}
    return RiskContext(now=T0, cash=D(cash), start_equity=D(start), positions=pos,
                       last_prices=last, **kw)


def gateway(**overrides) -> tuple[RiskGateway, ListSink]:
    sink = ListSink()
    return RiskGateway(RiskSettings(**overrides), SimClock(T0), sink), sink


# -- settings ---------------------------------------------------------------------------

def test_settings_defaults_follow_the_kill_switch_table():
    s = RiskSettings()
    assert (s.daily_loss_reduce, s.daily_loss_halt, s.position_loss_exit) == (
        D("0.03"), D("0.05"), D("0.05"))
    assert (s.max_orders, s.order_window) == (50, pd.Timedelta(minutes=5))
    assert s.disconnect_grace == pd.Timedelta(seconds=30) and s.stale_bar_intervals == 2
    assert s.latency_budget_ms == 250 and s.price_band == D("0.05")
    assert RiskSettings(daily_loss_reduce=0.02).daily_loss_reduce == D("0.02")  # float -> exact


@pytest.mark.parametrize("bad", [{"daily_loss_halt": "0.02"}, {"price_band": 0},
                                 {"max_orders": 0}, {"unknown": 1}])
def test_settings_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        RiskSettings(**bad)


# -- each check -------------------------------------------------------------------------

def test_known_price():
    check = KnownPrice()
    assert check.check(order(), context()).approved
    assert check.check(order("BBB"), context()) == Denied(
        "no valid last trade for BBB (got None): cannot value the order", "known_price")
    assert not check.check(order(), context(prices={"AAA": "0"})).approved
    # a market exit needs no price: it only closes what is held
    assert check.check(order("BBB", "sell"), context({"BBB": ("10", "50")})).approved


def test_price_band():
    check = PriceBand(D("0.05"))
    limit = {"order_type": OrderType.LIMIT}
    assert check.check(order(), context()).approved  # market order: nothing to compare
    assert check.check(order(limit_price=D(105), **limit), context()).approved
    denied = check.check(order(limit_price=D("105.01"), **limit), context())
    assert denied.check == "price_band" and "5.01%" in denied.reason
    assert not check.check(order(limit_price=D(94), **limit), context()).approved
    stop = order(order_type=OrderType.STOP, stop_price=D(90))
    assert not check.check(stop, context()).approved
    assert not check.check(order(limit_price=D(100), **limit), context(prices={})).approved


def test_bracket_legs():
    check = BracketLegs()
    br = {"order_type": OrderType.BRACKET}
    assert check.check(order(), context()).approved
    assert check.check(order(stop_loss=D(95), take_profit=D(110), **br), context()).approved
    assert check.check(order(side="sell", stop_loss=D(105), take_profit=D(90), **br),
                       context()).approved
    wrong = check.check(order(stop_loss=D(110), take_profit=D(95), **br), context())
    assert wrong.check == "bracket_legs" and "wrong sides" in wrong.reason


def test_notional_cap():
    check = NotionalCap(D(1000))
    assert check.check(order(qty="10"), context()).approved  # exactly the cap
    denied = check.check(order(qty="11"), context())
    assert denied == Denied("order notional 1,100.00 exceeds the per-order cap 1,000.00",
                            "notional_cap")
    # valued at the higher of the last trade and the limit
    limit = order(qty="10", order_type=OrderType.LIMIT, limit_price=D(101))
    assert not check.check(limit, context()).approved
    # an exit is bounded by the position, not by the cap
    assert check.check(order(side="sell", qty="500"), context({"AAA": ("500", "90")})).approved


def test_symbol_exposure_cap():
    check = SymbolExposureCap(D(10000))
    held = context({"AAA": ("50", "100")})
    assert check.check(order(qty="50"), held).approved  # 100 x 100 = the cap
    assert check.check(order(qty="51"), held).check == "symbol_exposure_cap"
    # open orders count: 50 held + 40 pending buys + 11 > 100 shares
    pending = context({"AAA": ("50", "100")}, pending_buys={"AAA": D(40)})
    assert not check.check(order(qty="11"), pending).approved
    # short side is exposure too
    assert not check.check(order(side="sell", qty="101"), context()).approved
    # above the cap already (prices rose): reducing still passes
    assert check.check(order(side="sell", qty="10"), context({"AAA": ("200", "50")})).approved


def test_total_exposure_cap_and_leverage():
    prices = {"AAA": "100", "BBB": "100"}
    book = context({"AAA": ("600", "100")}, prices, cash="40000")  # equity 100k, 60k gross
    assert TotalExposureCap(D(70000), D(1)).check(order("BBB", qty="100"), book).approved
    denied = TotalExposureCap(D(65000), D(1)).check(order("BBB", qty="100"), book)
    assert denied.check == "total_exposure_cap" and "70,000.00" in denied.reason
    # leverage: 1x of 100k equity binds before a 500k cap
    lev = TotalExposureCap(D(500000), D(1))
    assert lev.check(order("BBB", qty="400"), book).approved
    assert not lev.check(order("BBB", qty="401"), book).approved
    assert TotalExposureCap(D(500000), D(2)).check(order("BBB", qty="401"), book).approved
    assert lev.check(order("AAA", "sell", "100"), book).approved


def test_is_reducing_never_allows_a_reversal():
    held = context({"AAA": ("100", "100")}, pending_sells={"AAA": D(30)})
    assert is_reducing(order(side="sell", qty="70"), held)
    assert not is_reducing(order(side="sell", qty="71"), held)  # with the open 30: crosses 0
    assert not is_reducing(order(side="buy", qty="1"), held)
    assert is_reducing(order(side="buy", qty="5"), context({"AAA": ("-5", "100")}))
    assert not is_reducing(order(side="sell", qty="1"), context())


# -- the gateway's review ---------------------------------------------------------------

def test_active_runs_checks_in_order_and_journals_every_decision():
    gw, sink = gateway(max_order_notional=1000)
    bad = order(qty="20", order_type=OrderType.LIMIT, limit_price=D(120))  # band and cap
    assert gw.review(bad, context()).check == "price_band"
    assert gw.review(order(qty="5"), context()).approved
    first, second = sink.of("risk_decision")
    assert first == {"client_order_id": "cid-AAA-0", "symbol": "AAA", "side": "buy",
                     "quantity": "20", "order_type": "limit", "intent_reason": "signal",
                     "approved": False, "check": "price_band", "reason": first["reason"],
                     "state": "active", "at": T0.isoformat()}
    assert second["approved"] is True and second["check"] is None


def test_orders_of_one_bar_count_together_against_the_caps():
    gw, _ = gateway(max_symbol_exposure=10_000)
    ctx = context()
    assert gw.review(order(qty="60", n=1), ctx).approved
    assert gw.review(order(qty="40", n=2), ctx).approved
    assert gw.review(order(qty="1", n=3), ctx).check == "symbol_exposure_cap"
    # a new snapshot is the order manager's view: the 100 shares must show in it
    fresh = context(pending_buys={"AAA": D(100)})
    assert not gw.review(order(qty="1", n=4), fresh).approved
    assert gw.review(order(qty="1", n=5), context()).approved


def test_reducing_lets_only_reductions_through():
    gw, _ = gateway()
    gw.restore({"state": "reducing", "reason": "test"})
    held = context({"AAA": ("100", "100")})
    assert gw.review(order(qty="1"), held).check == "state"
    assert gw.review(order("BBB", "sell", "1"), context(prices={"BBB": "10"})).check == "state"
    assert gw.review(order(side="sell", qty="101"), held).check == "state"  # would reverse
    assert gw.review(order(side="sell", qty="60", n=1), held).approved
    assert gw.review(order(side="sell", qty="41", n=2), held).check == "state"  # 60 + 41 > 100
    assert gw.review(order(side="sell", qty="40", n=3), held).approved


def test_halted_denies_everything_unless_a_flatten_is_demanded():
    gw, sink = gateway()
    gw.halt("checking a fill", operator="ann")
    held = context({"AAA": ("100", "100")})
    for intent in (order(qty="1"), order(side="sell", qty="100"),
                   order(side="sell", qty="100", reason=FLATTEN)):
        assert gw.review(intent, held).check == "state"
    gw.halt("get out", operator="ann", flatten=True)
    assert gw.review(order(side="sell", qty="100", reason=FLATTEN), held).approved
    assert gw.review(order(side="sell", qty="100", reason="signal", n=1), held).check == "state"
    assert gw.review(order(side="sell", qty="101", reason=FLATTEN, n=2), held).check == "state"
    states = sink.of("state")
    assert [(s["state"], s["flatten"], s["operator"]) for s in states] == [
        ("halted", False, "ann"), ("halted", True, "ann")]


# -- properties -------------------------------------------------------------------------

SYMBOLS = ("AAA", "BBB", "CCC")
qty = st.one_of(st.just(0), st.integers(0, 20), st.integers(0, 150)).map(D)
books = st.fixed_dictionaries({
    "positions": st.fixed_dictionaries({s: st.integers(-120, 120) for s in SYMBOLS}),
    "prices": st.fixed_dictionaries({s: st.integers(20, 200) for s in SYMBOLS}),
    "pending_buys": st.fixed_dictionaries({s: qty for s in SYMBOLS}),
    "pending_sells": st.fixed_dictionaries({s: qty for s in SYMBOLS}),
})
intents = st.lists(st.tuples(
    st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]),
    st.one_of(st.integers(1, 30), st.integers(1, 150)),
    st.sampled_from(["signal", "force_exit", FLATTEN]), st.one_of(st.none(), st.floats(0.9, 1.1)),
), max_size=25)


def _context(book) -> RiskContext:
    positions = {s: Position(s, D(q), D(book["prices"][s])) for s, q in book["positions"].items()
                 if q}
    prices = {s: D(p) for s, p in book["prices"].items()}
    return RiskContext(now=T0, cash=D(100_000), start_equity=D(100_000), positions=positions,
                       last_prices=prices, pending_buys=dict(book["pending_buys"]),
                       pending_sells=dict(book["pending_sells"]))


def _intent(i, symbol, side, n, reason, limit_factor, prices) -> OrderIntent:
    if limit_factor is None:
        return OrderIntent(f"c{i}", symbol, Side(side), D(n), reason=reason)
    limit = (D(prices[symbol]) * D(str(round(limit_factor, 3)))).quantize(D("0.01"))
    return OrderIntent(f"c{i}", symbol, Side(side), D(n), OrderType.LIMIT, limit_price=limit,
                       reason=reason)


def _worst(q, pb, ps) -> D:
    return max(abs(q + pb), abs(q - ps))


@settings(max_examples=300, deadline=None)
@given(books, intents)
def test_reducing_never_approves_an_order_that_adds_exposure(book, orders):
    gw, _ = gateway()
    gw.restore({"state": "reducing", "reason": "property"})
    ctx = _context(book)
    buys = {s: D(0) for s in SYMBOLS}
    sells = {s: D(0) for s in SYMBOLS}
    for i, spec in enumerate(orders):
        intent = _intent(i, *spec, book["prices"])
        if gw.review(intent, ctx).approved:
            (buys if intent.side is Side.BUY else sells)[intent.symbol] += intent.quantity
    for s in SYMBOLS:
        q, pb, ps = D(book["positions"][s]), book["pending_buys"][s], book["pending_sells"][s]
        if q > 0:  # only sells, and never more than held (with the open sells)
            assert buys[s] == 0 and (sells[s] == 0 or ps + sells[s] <= q)
        elif q < 0:
            assert sells[s] == 0 and (buys[s] == 0 or pb + buys[s] <= -q)
        else:
            assert buys[s] == sells[s] == 0
        assert _worst(q, pb + buys[s], ps + sells[s]) <= _worst(q, pb, ps)
    assert gw.state is TradingState.REDUCING


@settings(max_examples=300, deadline=None)
@given(books, intents)
def test_no_approved_order_breaks_the_notional_or_exposure_caps(book, orders):
    caps = {"max_order_notional": 5_000, "max_symbol_exposure": 12_000,
            "max_total_exposure": 30_000, "max_gross_leverage": 2}
    gw, _ = gateway(**caps)
    ctx = _context(book)
    prices = {s: D(p) for s, p in book["prices"].items()}
    pb, ps = dict(book["pending_buys"]), dict(book["pending_sells"])

    def exposure(s):
        return _worst(D(book["positions"][s]), pb[s], ps[s]) * prices[s]

    start = {s: exposure(s) for s in SYMBOLS}
    start_total = sum(start.values())
    for i, spec in enumerate(orders):
        intent = _intent(i, *spec, book["prices"])
        q = D(book["positions"][intent.symbol])
        open_same = ps[intent.symbol] if intent.side is Side.SELL else pb[intent.symbol]
        reducing = -intent.side.sign * q > 0 and open_same + intent.quantity <= abs(q)
        if not gw.review(intent, ctx).approved:
            continue
        price = max(prices[intent.symbol], intent.limit_price or D(0))
        assert reducing or intent.quantity * price <= caps["max_order_notional"]
        (pb if intent.side is Side.BUY else ps)[intent.symbol] += intent.quantity
    for s in SYMBOLS:
        assert exposure(s) <= max(D(caps["max_symbol_exposure"]), start[s])
    limit = min(D(caps["max_total_exposure"]), 2 * ctx.current_equity())
    assert sum(exposure(s) for s in SYMBOLS) <= max(limit, start_total)


def test_equity_and_total_exposure_are_the_sums_of_marks_and_symbol_exposures():
    """Each bar's sums over every symbol (computed in one loop) equal the per-symbol
    definitions: a held symbol without a last trade marked at its average price, pending
    orders on symbols not held, shorts, a zero price."""
    from workbench.risk import symbol_exposure, total_exposure
    ctx = context(positions={"AAA": ("10", "95.5"), "BBB": ("-4", "20"), "CCC": ("3", "7.25"),
                             "ZZZ": ("2", "0")},
                  prices={"AAA": "101.25", "CCC": "0", "DDD": "55", "ZZZ": "3"},
                  cash="1234.5", pending_buys={"AAA": D(5), "DDD": D(7), "EEE": D(1)},
                  pending_sells={"BBB": D(3), "AAA": D(30)})
    marks = {"AAA": D("101.25"), "BBB": D(20), "CCC": D(0), "ZZZ": D(3)}
    held = {"AAA": D(10), "BBB": D(-4), "CCC": D(3), "ZZZ": D(2)}
    assert ctx.current_equity() == D("1234.5") + sum(q * marks[s] for s, q in held.items())
    assert ctx.current_equity() == D("1234.5") + D("1012.5") - 80 + 0 + 6
    by_symbol = {s: symbol_exposure(ctx, s) for s in ("AAA", "BBB", "CCC", "DDD", "EEE", "ZZZ")}
    assert by_symbol == {"AAA": 20 * D("101.25"), "BBB": 7 * D(20), "CCC": D(0), "DDD": 7 * D(55),
                         "EEE": D(0), "ZZZ": 2 * D(3)}
    assert total_exposure(ctx) == sum(by_symbol.values())
