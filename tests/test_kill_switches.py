"""Every row of the kill-switch table, driven by a sequence of bars: the actions the gateway
returns, the state it ends in, what it still lets through, and what it journals."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderType, Position, Side, TradingState
from workbench.risk import (
    FLATTEN,
    FORCE_EXIT,
    Alert,
    BlockEntries,
    Flatten,
    ForceExit,
    RiskContext,
    RiskGateway,
    RiskSettings,
    SetState,
    UnblockEntries,
)
from workbench.testing.sinks import ListSink

OPEN = pd.Timestamp("2024-03-04 14:30", tz="UTC")  # 09:30 in New York
MINUTE = pd.Timedelta(minutes=1)
HALTED, REDUCING, ACTIVE = TradingState.HALTED, TradingState.REDUCING, TradingState.ACTIVE


class Desk:
    """A minimal session: a book filled at the last close, a clock at each bar's close,
    open orders and sent-order times as the order manager would report them."""

    def __init__(self, cash="100000", **risk) -> None:
        self.clock = SimClock(OPEN)
        self.sink = ListSink()
        self.gateway = RiskGateway(RiskSettings(**risk), self.clock, self.sink)
        self.cash, self.start = D(cash), D(cash)
        self.positions: dict[str, Position] = {}
        self.prices: dict[str, D] = {}
        self.pending: dict[str, OrderIntent] = {}
        self.sent: list[pd.Timestamp] = []
        self.bar_time: pd.Timestamp | None = None
        self.extra: dict = {}
        self.ctx: RiskContext | None = None
        self._n = 0

    def hold(self, symbol: str, qty, price) -> None:
        qty, price = D(qty), D(price)
        self.positions[symbol] = Position(symbol, qty, price)
        self.cash -= qty * price
        self.prices[symbol] = price

    def context(self) -> RiskContext:
        buys, sells = {}, {}
        for o in self.pending.values():
            side = buys if o.side is Side.BUY else sells
            side[o.symbol] = side.get(o.symbol, D(0)) + o.quantity
        self.ctx = RiskContext(
            now=self.clock.now(), cash=self.cash, start_equity=self.start,
            positions=dict(self.positions), last_prices=dict(self.prices), pending_buys=buys,
            pending_sells=sells, order_times=tuple(self.sent), last_bar_time=self.bar_time,
            bar_interval=MINUTE, **self.extra)
        return self.ctx

    def bar(self, **closes) -> list:
        """A one-minute bar closes: prices move, the gateway evaluates the switches."""
        close = (self.clock.now() + MINUTE).floor("min")
        self.clock.set(close)
        self.bar_time = close - MINUTE  # bars are labelled by their open
        self.prices.update({s: D(str(p)) for s, p in closes.items()})
        return self.gateway.on_bar(self.context())

    def heartbeat(self, seconds: float) -> list:
        """No bar: time passes, the switches are evaluated anyway."""
        self.clock.advance(pd.Timedelta(seconds=seconds))
        return self.gateway.on_bar(self.context())

    def send(self, symbol, side, qty, reason="signal", **kw):
        """Ask the gateway; an approved order becomes an open order."""
        self._n += 1
        intent = OrderIntent(f"cid-{self._n}", symbol, Side(side), D(qty), reason=reason, **kw)
        decision = self.gateway.review(intent, self.ctx or self.context())
        if decision.approved:
            self.pending[intent.client_order_id] = intent
            self.sent.append(self.clock.now())
        return decision

    def fill_all(self) -> None:
        for intent in self.pending.values():
            q = self.positions.get(intent.symbol, Position(intent.symbol, D(0), D(0))).quantity
            new = q + intent.side.sign * intent.quantity
            price = self.prices[intent.symbol]
            self.cash -= intent.side.sign * intent.quantity * price
            self.positions[intent.symbol] = Position(intent.symbol, new, price)
            if new == 0:
                del self.positions[intent.symbol]
        self.pending.clear()
        self.ctx = None


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


# -- one position's unrealized loss > 5%: force exit ------------------------------------

def test_losing_position_is_force_exited_once_and_not_reentered():
    desk = Desk()
    desk.hold("AAA", 100, 100)
    desk.hold("BBB", 100, 50)
    for price in (99, 97, 95.5, 95):  # 5% exactly: not beyond the threshold
        assert desk.bar(AAA=price, BBB=50) == []
    actions = desk.bar(AAA=94, BBB=50)
    assert actions == [ForceExit("AAA", Side.SELL, D(100), "AAA unrealized loss 6.00% > 5.00%: "
                                 "force exit"),
                       Alert("warning", "AAA unrealized loss 6.00% > 5.00%: force exit",
                             "position_loss")]
    assert desk.sink.of("alert")[-1]["switch"] == "position_loss"
    # the session carries it out; the order is reducing, so it passes in any state but HALTED
    assert desk.send("AAA", "sell", 100, reason=FORCE_EXIT).approved
    assert desk.bar(AAA=93, BBB=50) == []  # covered by the open exit: no second order
    desk.fill_all()
    assert "AAA" not in desk.positions
    desk.bar(AAA=99, BBB=50)
    assert desk.send("AAA", "buy", 10).check == "force_exited"
    assert desk.send("BBB", "buy", 10).approved
    assert desk.gateway.state is ACTIVE


def test_losing_short_is_bought_back():
    desk = Desk()
    desk.hold("AAA", -50, 100)
    assert desk.bar(AAA=105) == []
    (exit_, _alert) = desk.bar(AAA=105.5)
    assert exit_ == ForceExit("AAA", Side.BUY, D(50), exit_.reason)


def test_losing_position_while_halted_only_alerts_once():
    desk = Desk()
    desk.hold("AAA", 100, 100)
    desk.bar(AAA=100)
    desk.gateway.halt("investigating", operator="ann")
    (alert,) = desk.bar(AAA=94)
    assert alert == Alert("critical", "AAA unrealized loss 6.00% > 5.00%; halted: no order sent",
                          "position_loss")
    assert desk.bar(AAA=93) == []  # no alert storm
    assert desk.send("AAA", "sell", 100, reason=FORCE_EXIT).check == "state"


# -- daily loss > 3%: REDUCING; > 5%: flatten, HALTED for the day -------------------------

def test_daily_loss_reduces_then_flattens_and_halts_for_the_day():
    desk = Desk()
    desk.hold("AAA", 1000, 100)  # all in: equity follows AAA
    desk.prices["BBB"] = D(20)
    assert desk.bar(AAA=98) == []
    actions = desk.bar(AAA=96.9)  # -3.1%
    assert actions == [SetState(REDUCING, "daily loss 3.10% > 3.00%: reducing only",
                                "daily_loss"),
                       Alert("warning", "daily loss 3.10% > 3.00%: reducing only", "daily_loss")]
    assert desk.send("BBB", "buy", 10).check == "state"
    assert desk.send("AAA", "sell", 100).approved  # reducing is allowed
    desk.pending.clear()
    assert desk.bar(AAA=97) == []  # a recovery does not loosen the state
    actions = desk.bar(AAA=94.9)  # -5.1%; the position's own -5.1% is covered by the flatten
    assert kinds(actions) == ["SetState", "Flatten", "Alert"]
    assert actions[0] == SetState(HALTED, actions[1].reason, "daily_loss", for_day=True)
    assert actions[1] == Flatten("daily loss 5.10% > 5.00%: flatten, halted for the day")
    assert desk.gateway.flatten_demanded and desk.gateway.state is HALTED
    # only the flatten itself goes through
    assert desk.send("BBB", "buy", 1).check == "state"
    assert desk.send("AAA", "sell", 1000).check == "state"  # an ordinary exit
    assert desk.send("AAA", "sell", 1001, reason=FLATTEN).check == "state"  # would reverse
    assert desk.send("AAA", "sell", 1000, reason=FLATTEN).approved
    assert desk.bar(AAA=94.9) == []  # the open flatten order covers the position
    desk.pending.clear()  # ... and the broker rejected it: the flatten is asked for again
    assert desk.bar(AAA=94.9) == [Flatten("flatten demanded; positions remain")]
    assert desk.send("AAA", "sell", 1000, reason=FLATTEN).approved
    desk.fill_all()
    assert desk.bar(AAA=95) == []
    states = desk.sink.of("state")
    assert [(s["state"], s["switch"], s["flatten"]) for s in states] == [
        ("reducing", "daily_loss", False), ("halted", "daily_loss", True)]
    assert states[-1]["halted_for_day"] == "2024-03-04"
    # the same day: resume refused without force
    refused = desk.gateway.resume("ann")
    assert refused.check == "resume" and desk.gateway.state is HALTED
    assert "refused" in desk.sink.of("alert")[-1]["message"]
    assert desk.gateway.resume("ann", force=True).approved
    assert desk.gateway.state is ACTIVE
    # force does not disarm the switch: the loss is still there, so it halts again
    assert kinds(desk.bar(AAA=95)) == ["SetState", "Flatten", "Alert"]


# -- > 50 orders in 5 minutes: HALTED until an operator resumes --------------------------

def test_order_burst_halts_until_resume():
    desk = Desk()
    desk.bar(AAA=100)
    for minute in range(5):
        if minute:
            assert desk.bar(AAA=100) == []
        for _ in range(10):
            assert desk.send("AAA", "buy", 1).approved
    denied = desk.send("AAA", "buy", 1)  # the 51st within 4 minutes
    assert denied.check == "order_rate" and desk.gateway.state is HALTED
    actions = desk.bar(AAA=100)  # actions raised during review come with the next bar
    assert kinds(actions) == ["SetState", "Alert"] and actions[1].level == "critical"
    assert desk.send("AAA", "sell", 1).check == "state"  # exits too: positions stay
    for _ in range(10):  # the burst is long gone: still halted
        desk.bar(AAA=100)
    assert desk.gateway.state is HALTED
    assert desk.gateway.resume("bob").approved
    assert desk.send("AAA", "buy", 1).approved
    assert [s["state"] for s in desk.sink.of("state")] == ["halted", "active"]
    assert desk.sink.of("state")[-1]["operator"] == "bob"


def test_order_burst_seen_in_the_snapshot_halts_on_the_bar():
    desk = Desk()
    desk.bar(AAA=100)
    desk.sent = [desk.clock.now() - pd.Timedelta(seconds=s) for s in range(51)]
    actions = desk.bar(AAA=100)
    assert kinds(actions) == ["SetState", "Alert"] and actions[0].switch == "order_rate"
    desk2 = Desk()
    desk2.bar(AAA=100)
    desk2.sent = [desk2.clock.now() - pd.Timedelta(seconds=s) for s in range(50)]
    assert desk2.bar(AAA=100) == []


# -- disconnected > 30 s or last bar older than 2 intervals: no entries, alert ------------

def test_stale_bars_block_entries_but_not_exits():
    desk = Desk()
    desk.hold("AAA", 10, 100)
    desk.bar(AAA=100)
    assert desk.heartbeat(59) == []  # last bar (label) 1:59 old: within 2 intervals
    actions = desk.heartbeat(2)
    assert kinds(actions) == ["BlockEntries", "Alert"]
    assert actions[0].switch == "connectivity" and "last bar" in actions[0].reason
    assert desk.send("AAA", "buy", 1).check == "entries_blocked"
    assert desk.send("AAA", "sell", 5).approved
    assert desk.heartbeat(30) == []  # no repeated alert
    actions = desk.bar(AAA=100)
    assert actions == [UnblockEntries("connectivity", "condition cleared"),
                       Alert("info", "connectivity back to normal: entries allowed",
                             "connectivity")]
    assert desk.send("AAA", "buy", 1).approved
    blocks = [s["entries_blocked"] for s in desk.sink.of("state")]
    assert blocks == [{"connectivity": "last bar is 121 s old (limit 120 s)"}, {}]
    assert desk.gateway.state is ACTIVE


def test_disconnected_feed_or_broker_blocks_entries_after_30s():
    for field in ("feed_down_since", "broker_down_since"):
        desk = Desk()
        desk.bar(AAA=100)
        desk.extra = {field: desk.clock.now()}
        desk.clock.advance(pd.Timedelta(seconds=30))
        assert desk.gateway.on_bar(desk.context()) == []  # 30 s exactly: not beyond
        actions = desk.heartbeat(1)
        assert isinstance(actions[0], BlockEntries) and "disconnected for" in actions[0].reason
        assert desk.send("AAA", "buy", 1).check == "entries_blocked"
        desk.extra = {}
        assert kinds(desk.heartbeat(1)) == ["UnblockEntries", "Alert"]


# -- decision latency over budget: alert; N in a row: block entries ------------------------

def test_slow_decisions_alert_then_block_entries():
    desk = Desk(latency_breaches_to_block=3)
    desk.hold("AAA", 10, 100)
    latencies: list[float] = []

    def bar(ms):
        latencies.append(ms)
        desk.extra = {"latencies_ms": tuple(latencies[-20:])}
        return desk.bar(AAA=100)

    assert bar(120) == []
    first = bar(300)
    assert first == [Alert("warning", "decision latency 300 ms over the 250 ms budget",
                           "latency")]
    assert bar(400) == []  # still one episode: one alert
    actions = bar(260)
    assert kinds(actions) == ["BlockEntries", "Alert"] and actions[0].switch == "latency"
    assert desk.send("AAA", "buy", 1).check == "entries_blocked"
    assert desk.send("AAA", "sell", 1).approved
    assert kinds(bar(100)) == ["UnblockEntries", "Alert"]
    assert desk.send("AAA", "buy", 1).approved
    assert desk.gateway.state is ACTIVE


# -- unexpected exceptions > N per minute: HALTED, alert -----------------------------------

def test_exception_storm_halts():
    desk = Desk(max_exceptions=3)
    desk.hold("AAA", 10, 100)
    errors: list[pd.Timestamp] = []

    def bar(n_errors):  # n errors in the middle of the coming bar
        errors.extend([desk.clock.now() + pd.Timedelta(seconds=30)] * n_errors)
        desk.extra = {"exception_times": tuple(errors)}
        return desk.bar(AAA=100)

    assert bar(3) == []  # 3 within a minute: at the limit
    assert bar(1) == []  # 1 within the last minute, the others older
    actions = bar(4)
    assert kinds(actions) == ["SetState", "Alert"]
    assert actions[0].state is HALTED and actions[0].switch == "exceptions"
    assert desk.send("AAA", "sell", 10).check == "state"
    assert desk.gateway.resume("ann").approved
    assert bar(0) == []  # exceptions before the resume do not count again
    assert desk.send("AAA", "buy", 1).approved


# -- caps and price band: deny the order ---------------------------------------------------

def test_bad_tick_and_caps_deny_orders():
    desk = Desk(max_order_notional=5_000, max_symbol_exposure=8_000)
    desk.bar(AAA=100)
    limit = {"order_type": OrderType.LIMIT}
    assert desk.send("AAA", "buy", 10, limit_price=D("100.5"), **limit).approved
    desk.bar(AAA=10_000)  # a 100x spike that got through
    assert desk.send("AAA", "buy", 10, limit_price=D("100.5"), **limit).check == "price_band"
    assert desk.send("AAA", "buy", 1).check == "notional_cap"
    desk.bar(AAA=100)
    assert desk.send("AAA", "buy", 49).approved  # 100 with the open 10... within 5k each
    assert desk.send("AAA", "buy", 30).check == "symbol_exposure_cap"
    decisions = desk.sink.of("risk_decision")
    assert [d["check"] for d in decisions] == [None, "price_band", "notional_cap", None,
                                              "symbol_exposure_cap"]


# -- operator control and restart --------------------------------------------------------

def test_operator_halt_with_flatten_and_restore_after_restart():
    desk = Desk()
    desk.hold("AAA", 10, 100)
    desk.bar(AAA=100)
    actions = desk.gateway.halt("broker looks odd", operator="ann", flatten=True)
    assert kinds(actions) == ["SetState", "Flatten", "Alert"]
    assert desk.send("AAA", "sell", 10, reason=FLATTEN).approved
    last_state = desk.sink.of("state")[-1]
    reborn = RiskGateway(RiskSettings(), desk.clock, ListSink())
    reborn.restore(last_state)
    assert reborn.state is HALTED and reborn.flatten_demanded
    assert reborn.resume("ann").approved  # an operator halt is not for the day
    assert reborn.state is ACTIVE


# -- property: HALTED (and REDUCING) only loosen through an operator's resume -------------

steps = st.lists(st.one_of(
    st.tuples(st.just("bar"), st.integers(-2, 8), st.integers(0, 60), st.integers(0, 5),
              st.booleans()),
    st.tuples(st.just("halt"), st.booleans()),
    st.tuples(st.just("resume"), st.booleans()),
    st.tuples(st.just("order"), st.sampled_from(["buy", "sell"]), st.sampled_from(
        ["signal", FLATTEN])),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_state_never_loosens_without_an_operator_resume(ops):
    clock = SimClock(OPEN)
    gw = RiskGateway(RiskSettings(), clock, ListSink())
    ctx = None
    for op in ops:
        clock.advance(MINUTE)
        before = gw.state
        if op[0] == "bar":
            _, loss, n_orders, n_errors, stale = op
            now = clock.now()
            ctx = RiskContext(
                now=now, cash=D(0), start_equity=D(100_000), equity=D(100_000 - 1000 * loss),
                positions={"AAA": Position("AAA", D(100), D(100))}, last_prices={"AAA": D(100)},
                order_times=tuple(now - pd.Timedelta(seconds=i) for i in range(n_orders)),
                exception_times=(now,) * n_errors,
                last_bar_time=now - (5 if stale else 1) * MINUTE)
            gw.on_bar(ctx)
        elif op[0] == "halt":
            gw.halt("test", flatten=op[1])
        elif op[0] == "resume":
            gw.resume("ann", force=op[1])
            continue
        elif ctx is not None:
            gw.review(OrderIntent(f"c{clock.now():%H%M}", "AAA", Side(op[1]), D(1),
                                  reason=op[2]), ctx)
        rank = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
        assert rank[gw.state] >= rank[before], (op, before, gw.state)


def test_count_recent_bisects_times_oldest_first_as_a_scan_counts():
    from workbench.risk.switches import count_recent

    base = pd.Timestamp("2026-01-02 15:00", tz="UTC")
    times = tuple(base + pd.Timedelta(seconds=s) for s in (0, 10, 10, 30, 60, 61, 300))
    window = pd.Timedelta(seconds=60)
    for now_s in (0, 10, 59, 60, 70, 90, 120, 121, 360, 400):
        now = base + pd.Timedelta(seconds=now_s)
        for since in (None, base + pd.Timedelta(seconds=10), base + pd.Timedelta(seconds=500)):
            start = max(now - window, since) if since is not None else now - window
            assert count_recent(times, now, window, since) == sum(t > start for t in times)
            assert count_recent(iter(times), now, window, since) == sum(t > start for t in times)
    assert count_recent((), base, window) == 0
    newest_first = times[::-1]  # scanned, not bisected
    now = base + pd.Timedelta(seconds=90)
    assert count_recent(newest_first, now, window) == 3 == count_recent(times, now, window)
