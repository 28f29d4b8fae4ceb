"""The order manager with the simulated broker: intent before send, unknown outcomes
settled by lookup, fills de-duplicated, brackets, restarts and reconciliation."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.brokers import SimBroker, SimFaults
from workbench.brokers.base import OutcomeUnknown
from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderStatus, OrderType, Side, TimeInForce
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.orders import NEVER_ARRIVED, OrderManager, rebuild

S = OrderStatus
T0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
COSTS = CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)


class Crash(BaseException):
    """A simulated SIGKILL: nothing in the manager catches it."""


class FakeJournal:
    """Records events as a JSON round trip; ``crash_on`` a type raises :class:`Crash`
    before (``after=False``) or after that event is written."""

    def __init__(self, crash_on: str | None = None, after: bool = True) -> None:
        self.events: list[tuple[str, dict]] = []
        self.durable = 0  # events up to here were fsynced
        self.syncs = 0
        self.crash_on, self.after = crash_on, after

    def append(self, event_type: str, **payload) -> None:
        self._write(event_type, payload, durable=False)

    def append_durable(self, event_type: str, **payload) -> None:
        self._write(event_type, payload, durable=True)
        self.syncs += 1

    def sync(self) -> None:
        if self.crash_on == "sync":
            raise Crash("sync")
        self.durable = len(self.events)
        self.syncs += 1

    def _write(self, event_type, payload, durable) -> None:
        if event_type == self.crash_on and not self.after:
            raise Crash(event_type)
        self.events.append((event_type, json.loads(json.dumps(payload))))
        if durable:
            self.durable = len(self.events)
        if event_type == self.crash_on and self.after:
            raise Crash(event_type)

    def surviving(self, flushed: bool = True) -> list[tuple[str, dict]]:
        """What a restart reads: everything, or only up to the last durable event."""
        return list(self.events if flushed else self.events[:self.durable])

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


def t(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(i, "min")


def bar(o: float, h=None, lo=None) -> dict:
    return {"open": o, "high": h or o, "low": lo or o, "close": o}


def intent(cid="c1", qty=10, i=0, side=Side.BUY, symbol="AAPL", **kw) -> OrderIntent:
    return OrderIntent(cid, symbol, side, D(qty), bar_time=t(i), **kw)


class Session:
    """A broker file, a clock, a journal and a manager; ``restart`` opens new ones."""

    def __init__(self, tmp_path, journal=None, faults=None, sleep=None, **kw) -> None:
        self.path = tmp_path / "broker.sqlite"
        self.clock = SimClock(T0)
        self.sleep = sleep
        self.broker = self._open(faults, cash=100_000)
        self.journal = journal or FakeJournal()
        self.manager = OrderManager(self.broker, self.journal, self.clock, **kw)
        self.manager.start()

    def _open(self, faults=None, **kw) -> SimBroker:
        extra = {"sleep": self.sleep} if self.sleep else {}
        return SimBroker(self.path, costs=COSTS, faults=faults, **extra, **kw)

    def bar(self, i: int, o: float = 100.0, h=None, lo=None, symbol="AAPL"):
        self.clock.set(t(i))
        fills = self.broker.on_bars(t(i), {symbol: bar(o, h, lo)})
        self.manager.process_updates()
        return fills

    def restart(self, flushed: bool = True) -> OrderManager:
        self.broker.close()
        self.broker = self._open()
        events = self.journal.surviving(flushed)
        self.journal = FakeJournal()
        self.journal.events, self.journal.durable = list(events), len(events)
        self.manager = OrderManager.from_journal(self.broker, self.journal, self.clock, events)
        return self.manager


@pytest.fixture
def session(tmp_path):
    s = Session(tmp_path)
    yield s
    s.broker.close()


def broker_orders(broker) -> list[str]:
    return [o.client_order_id for o in broker.orders()]


# -- placing ------------------------------------------------------------------------------


def test_the_intent_is_journaled_durably_before_the_broker_call(session):
    seen = []
    submit = session.broker.submit

    def spy(order_intent):
        seen.append(session.journal.events[session.journal.durable - 1])
        return submit(order_intent)

    session.broker.submit = spy
    order = session.manager.place(intent())
    assert seen[0][0] == ev.INTENT and seen[0][1]["client_order_id"] == "c1"
    assert session.journal.types() == [ev.ACCOUNT_SNAPSHOT, ev.INTENT, ev.BROKER_REQUEST,
                                       ev.BROKER_REPLY]
    assert order.status is S.ACCEPTED and order.broker_order_id is not None


def test_a_market_order_fills_and_moves_cash_and_position(session):
    session.manager.place(intent(qty=10))
    (fill,) = session.bar(1, 101.0)
    m = session.manager
    assert m.order("c1").status is S.FILLED and m.order("c1").average_price == fill.price
    assert m.positions()["AAPL"].quantity == D(10)
    assert m.cash == D(100_000) - D(10) * fill.price - fill.fee == session.broker.account().cash


def test_placing_the_same_intent_again_never_sends_it_twice(session):
    calls = []
    submit = session.broker.submit
    session.broker.submit = lambda i: calls.append(i) or submit(i)
    first = session.manager.place(intent())
    again = session.manager.place(intent())
    assert len(calls) == 1 and again == first
    assert broker_orders(session.broker) == ["c1"]


def test_a_lost_reply_leaves_the_order_unknown_then_lookup_settles_it(tmp_path):
    s = Session(tmp_path, faults=SimFaults().lose_reply())
    order = s.manager.place(intent())
    assert order.status is S.UNKNOWN  # not "failed"
    assert ev.ORDER_UNKNOWN in s.journal.types()
    settled = s.manager.settle_unknown()
    assert [o.status for o in settled] == [S.ACCEPTED]
    assert broker_orders(s.broker) == ["c1"]  # exactly one broker order for the intent
    s.bar(1)
    assert s.manager.order("c1").status is S.FILLED


def test_a_broker_that_never_answers_times_out_and_the_runner_goes_on(tmp_path):
    slept = []
    s = Session(tmp_path, faults=SimFaults().delay(3600), sleep=slept.append)
    assert s.manager.place(intent("slow")).status is S.UNKNOWN
    assert slept == [10.0]
    assert s.manager.place(intent("next", i=0)).status is S.ACCEPTED  # keeps going
    s.manager.settle_unknown()
    assert s.manager.order("slow").status is S.ACCEPTED
    assert broker_orders(s.broker) == ["slow", "next"]


def test_a_request_that_never_arrived_is_rejected_after_the_acknowledgement_window(tmp_path):
    s = Session(tmp_path, faults=SimFaults().drop_request(), ack_window=pd.Timedelta("30s"))
    s.manager.place(intent())
    assert s.manager.settle_unknown() == []  # too early to tell
    assert s.manager.order("c1").status is S.UNKNOWN
    s.clock.advance("30s")
    (order,) = s.manager.settle_unknown()
    assert order.status is S.REJECTED and s.manager.book.reasons["c1"] == NEVER_ARRIVED
    assert broker_orders(s.broker) == []


def test_resend_after_lookup_places_exactly_one_order(tmp_path):
    s = Session(tmp_path, faults=SimFaults().drop_request())
    s.manager.place(intent())
    (order,) = s.manager.settle_unknown(resend=True)
    assert order.status is S.ACCEPTED and broker_orders(s.broker) == ["c1"]


def test_a_duplicate_client_order_id_means_the_order_exists(session):
    other = SimBroker(session.path)
    other.submit(intent())  # e.g. sent by a run that died before journaling the reply
    order = session.manager.place(intent())
    assert order.status is S.ACCEPTED and order.broker_order_id is not None
    assert "duplicate" in [p.get("outcome") for _, p in session.journal.events]
    assert broker_orders(session.broker) == ["c1"]
    other.close()


def test_rejections_and_rate_limits_are_final_refusals(tmp_path):
    s = Session(tmp_path, faults=SimFaults().reject("insufficient buying power").rate_limit())
    assert s.manager.place(intent("a")).status is S.REJECTED
    assert s.manager.place(intent("b")).status is S.REJECTED
    assert s.manager.book.reasons["a"] == "insufficient buying power"
    assert s.manager.book.reasons["b"].startswith("rate limited, not sent")


# -- fills, brackets, cancels -------------------------------------------------------------


def test_fills_are_deduplicated_by_execution_id(session):
    session.manager.place(intent())
    session.clock.set(t(1))
    session.broker.on_bars(t(1), {"AAPL": bar(100.0)})
    updates = list(session.broker.updates())
    session.broker.updates = lambda: iter(updates + updates)  # a stream that repeats itself
    fills = session.manager.process_updates()
    assert len(fills) == 1
    assert session.manager.positions()["AAPL"].quantity == D(10)
    assert session.journal.types().count(ev.FILL) == 1


def test_partial_fills_then_filled(tmp_path):
    s = Session(tmp_path, faults=SimFaults().partial_fills(4))
    s.manager.place(intent(qty=10))
    s.bar(1, 100.0)
    assert s.manager.order("c1").status is S.PARTIALLY_FILLED
    s.bar(2, 110.0)
    s.bar(3, 120.0)
    order = s.manager.order("c1")
    assert (order.status, order.filled_quantity) == (S.FILLED, D(10))
    prices = [f.price for f in s.broker.fills()]
    assert order.average_price == (4 * prices[0] + 4 * prices[1] + 2 * prices[2]) / 10


def test_bracket_legs_are_tracked_and_cancel_each_other(session):
    session.manager.place(intent("b", order_type=OrderType.BRACKET, stop_loss=D(95),
                                 take_profit=D(105)))
    assert set(session.manager.open_orders()) == {"b", "b.sl", "b.tp"}
    session.bar(1, 100.0)
    session.bar(2, 100.0, h=106.0, lo=99.0)
    statuses = {c: o.status for c, o in session.manager.orders.items()}
    assert statuses == {"b": S.FILLED, "b.tp": S.FILLED, "b.sl": S.CANCELED}
    assert session.manager.positions() == {}
    assert session.manager.reconcile().ok


def test_cancel_and_cancels_with_unknown_outcomes(tmp_path):
    s = Session(tmp_path, faults=SimFaults().lose_reply(op="cancel").drop_request(op="cancel"))
    for cid in "abc":
        s.manager.place(intent(cid, time_in_force=TimeInForce.GTC))
    # the reply is lost, but the stream tells what happened
    assert s.manager.cancel("a").status is S.CANCELED
    # the request is lost: UNKNOWN, looked up: still open, so cancel again
    assert s.manager.cancel("b").status is S.UNKNOWN
    s.manager.settle_unknown()
    assert s.manager.order("b").status is S.ACCEPTED
    assert s.manager.cancel("b").status is S.CANCELED
    assert s.manager.cancel("c").status is S.CANCELED
    assert s.manager.cancel("c").status is S.CANCELED  # ended: nothing sent
    assert s.journal.types().count(ev.BROKER_REQUEST) == 3 + 4


def test_the_live_state_equals_the_state_rebuilt_from_the_journal(tmp_path):
    s = Session(tmp_path, faults=SimFaults().lose_reply().partial_fills(6))
    s.manager.place(intent("a", qty=10))
    s.manager.settle_unknown()
    s.manager.place(intent("b", side=Side.SELL, qty=3, symbol="MSFT"))
    s.manager.place(intent("br", order_type=OrderType.BRACKET, stop_loss=D(90), take_profit=D(120)))
    for i in (1, 2, 3):
        s.bar(i, 100.0 + i)
    s.broker.on_bars(t(3), {"MSFT": bar(50.0)})
    s.manager.process_updates()
    book = rebuild(s.journal.events)
    assert book.orders == s.manager.book.orders
    assert book.ledger == s.manager.book.ledger
    assert book.executions == s.manager.book.executions


def test_a_journal_written_before_the_unified_names_still_rebuilds(tmp_path):
    """Runs journaled before the names were unified call the intent ``order_intent``."""
    s = Session(tmp_path, faults=SimFaults().lose_reply())
    s.manager.place(intent("a"))  # reply lost: UNKNOWN
    s.manager.place(intent("b", qty=3))
    s.manager.place(intent("c", qty=2))
    s.bar(1, 101.0)
    new = s.journal.events
    old = [("order_intent" if k == ev.INTENT else k, p) for k, p in new]
    assert "order_intent" in [k for k, _ in old] and ev.INTENT not in [k for k, _ in old]
    book, expected = rebuild(old), rebuild(new)
    assert book.orders == expected.orders == s.manager.book.orders
    assert book.ledger == expected.ledger and book.unknown_since == expected.unknown_since
    cut = old[:[k for k, _ in old].index(ev.BROKER_REQUEST, 2)]  # "a" journaled, not sent
    assert rebuild(cut).orders["a"].status is S.UNKNOWN  # never resent blindly
    s.broker.close()


# -- restarts -----------------------------------------------------------------------------


@pytest.mark.parametrize("crash_on, after, flushed", [
    (ev.INTENT, True, True),     # intent journaled, nothing sent
    (ev.BROKER_REQUEST, True, True),   # about to send
    (ev.BROKER_REPLY, False, True),    # the broker accepted; the reply never journaled
    (ev.BROKER_REPLY, False, False),   # ... and the journal's unflushed tail is lost
    (ev.FILL, False, True),            # during fill handling
    (ev.FILL, False, False),
])
def test_after_a_crash_at_each_point_one_order_per_intent_and_the_brokers_positions(
        tmp_path, crash_on, after, flushed):
    s = Session(tmp_path, journal=FakeJournal(crash_on, after))
    with pytest.raises(Crash):
        s.manager.place(intent())
        s.bar(1, 100.0)
    s.clock.set(t(2))
    manager = s.restart(flushed)
    result = manager.reconcile(resend=True)
    assert result.ok, result.message
    assert broker_orders(s.broker) == ["c1"]
    assert manager.place(intent()).client_order_id == "c1"  # the engine re-decides: no resend
    assert broker_orders(s.broker) == ["c1"]
    s.bar(3, 100.0)
    assert manager.order("c1").status is S.FILLED
    assert manager.positions() == s.broker.positions()
    assert manager.cash == s.broker.account().cash
    assert manager.reconcile().ok


def test_a_restart_sees_the_same_orders_and_positions(session):
    session.manager.place(intent("a"))
    session.manager.place(intent("b", order_type=OrderType.BRACKET, stop_loss=D(90),
                                 take_profit=D(110), time_in_force=TimeInForce.GTC))
    session.bar(1, 100.0)
    before = (session.manager.orders, session.manager.positions(), session.manager.cash)
    manager = session.restart()
    assert (manager.orders, manager.positions(), manager.cash) == before
    assert manager.reconcile().ok


def test_a_fill_while_the_runner_was_down_is_adopted_and_not_reentered(session):
    session.manager.place(intent())
    session.broker.on_bars(t(1), {"AAPL": bar(100.0)})  # fills while nobody listens
    session.clock.set(t(2))
    manager = session.restart()
    assert manager.order("c1").status is S.ACCEPTED
    result = manager.reconcile()
    assert result.ok, result.message
    assert [f.client_order_id for f in result.adopted_fills] == ["c1"]
    assert manager.order("c1").status is S.FILLED
    assert manager.positions() == session.broker.positions()
    manager.place(intent())  # the same intent again: nothing new
    assert broker_orders(session.broker) == ["c1"]


def test_an_order_that_fills_during_the_reconciliation_is_adopted_not_a_difference(session):
    """A live broker moves on while the restart compares: the order is open at the first
    read and filled by the second. That is adopted (a later read), not a failed start."""
    session.manager.place(intent())
    session.clock.set(t(1))
    manager = session.restart()
    broker = session.broker
    reads = {"n": 0}
    real_positions = broker.positions

    def positions():  # the first comparison's read, then the market fills the order
        reads["n"] += 1
        out = real_positions()
        if reads["n"] == 1:
            broker.on_bars(t(1), {"AAPL": bar(100.0)})
        return out

    broker.positions = positions
    result = manager.reconcile()
    assert reads["n"] >= 2
    assert result.ok, result.message
    assert manager.order("c1").status is S.FILLED  # by the update or by adoption
    assert manager.positions() == real_positions()
    assert broker_orders(broker) == ["c1"]


def test_a_bracket_leg_filled_while_down_is_adopted(session):
    session.manager.place(intent("b", order_type=OrderType.BRACKET, stop_loss=D(95),
                                 take_profit=D(105)))
    session.bar(1, 100.0)
    session.broker.on_bars(t(2), {"AAPL": bar(100.0, 100.0, 94.0)})
    session.clock.set(t(3))
    manager = session.restart()
    result = manager.reconcile()
    assert result.ok, result.message
    assert manager.order("b.sl").status is S.FILLED
    assert manager.order("b.tp").status is S.CANCELED
    assert manager.positions() == {} == session.broker.positions()


def test_a_bracket_whose_reply_was_lost_is_found_with_its_legs_after_a_restart(tmp_path):
    s = Session(tmp_path, faults=SimFaults().lose_reply())
    s.manager.place(intent("b", order_type=OrderType.BRACKET, stop_loss=D(95),
                           take_profit=D(105)))
    s.broker.on_bars(t(1), {"AAPL": bar(100.0)})
    s.broker.on_bars(t(2), {"AAPL": bar(100.0, 100.0, 94.0)})  # nobody listening
    s.clock.set(t(3))
    manager = s.restart()
    result = manager.reconcile()
    assert result.ok, result.message
    assert {c: o.status for c, o in manager.orders.items()} == {
        "b": S.FILLED, "b.sl": S.FILLED, "b.tp": S.CANCELED}
    assert manager.anomalies == [] and manager.positions() == {}
    assert rebuild(s.journal.events).orders == manager.book.orders


# -- group commit: a bar's intents, one sync, then each sent --------------------------------

GROUP = [intent(f"g{k}", qty=k + 1, symbol=s) for k, s in enumerate(("AAPL", "MSFT", "IBM",
                                                                      "XOM", "KO"))]


def _spy_submits(s: Session, crash_at: int | None = None) -> list[tuple[str, int]]:
    """Each submit's client id and how many events were durable then; ``crash_at``: the
    k-th submit (1-based) crashes before reaching the broker. The broker's
    ``submit_many`` is hidden: these tests hold the one-submit-per-intent protocol (a
    broker without a group call); the group call is tested below."""
    seen, submit = [], s.broker.submit
    s.broker.submit_many = None

    def spy(order_intent):
        seen.append((order_intent.client_order_id, s.journal.durable))
        if len(seen) == crash_at:
            raise Crash("before send")
        return submit(order_intent)

    s.broker.submit = spy
    return seen


def test_a_groups_intents_are_all_durable_with_one_sync_before_the_first_send(session):
    seen = _spy_submits(session)
    before = session.journal.syncs
    orders = session.manager.place_all(GROUP)
    assert session.journal.syncs - before == 1 == session.manager.syncs
    types = session.journal.types()
    assert types[1:6] == [ev.INTENT] * 5 and types[6:] == [ev.BROKER_REQUEST, ev.BROKER_REPLY] * 5
    assert [c for c, _ in seen] == ["g0", "g1", "g2", "g3", "g4"]
    assert all(durable >= 6 for _, durable in seen)  # every intent durable at the first send
    assert [o.status for o in orders] == [S.ACCEPTED] * 5
    assert broker_orders(session.broker) == ["g0", "g1", "g2", "g3", "g4"]
    assert session.manager.place_all(GROUP) == [session.manager.order(i.client_order_id)
                                                for i in GROUP]  # known: nothing sent again
    assert len(seen) == 5 and session.journal.syncs - before == 1  # nothing staged: no sync


def test_staged_intents_are_open_orders_until_the_commit_sends_them(session):
    seen, before = _spy_submits(session), session.journal.syncs
    assert session.manager.commit() == [] and session.journal.syncs == before  # nothing: no sync
    session.manager.stage(GROUP[0])
    assert session.manager.stage(GROUP[0]).status is S.NEW  # staged once
    session.manager.stage(GROUP[1])
    assert set(session.manager.open_orders()) == {"g0", "g1"} and seen == []
    assert session.manager.staged == (GROUP[0], GROUP[1]) and session.journal.durable == 1
    assert [o.client_order_id for o in session.manager.commit()] == ["g0", "g1"]
    assert session.manager.staged == () and session.journal.syncs == before + 1
    assert len(seen) == 2


def test_staging_on_a_sink_without_sync_is_refused(tmp_path):
    class NoSync:
        def append(self, event_type, **payload):
            pass

        def append_durable(self, event_type, **payload):
            pass

    broker = SimBroker(tmp_path / "broker.sqlite", cash=1000)
    manager = OrderManager(broker, NoSync(), SimClock(T0))
    with pytest.raises(TypeError, match="sink with sync"):
        manager.stage(intent())
    assert manager.orders == {} and broker.orders() == []
    broker.close()


@pytest.mark.parametrize("crash_at", [1, 3, 5])  # the first, middle and last send
@pytest.mark.parametrize("flushed", [True, False])
def test_a_crash_between_the_groups_sync_and_a_send_leaves_one_order_per_intent(
        tmp_path, crash_at, flushed):
    s = Session(tmp_path)
    _spy_submits(s, crash_at)
    with pytest.raises(Crash):
        s.manager.place_all(GROUP)
    assert broker_orders(s.broker) == [i.client_order_id for i in GROUP[:crash_at - 1]]
    s.clock.set(t(1))
    manager = s.restart(flushed)  # unflushed: requests and replies after the sync are lost
    assert {c for c, o in manager.orders.items() if o.status is S.UNKNOWN} >= {
        i.client_order_id for i in GROUP[crash_at - 1:]}  # never sent: settled by lookup
    result = manager.reconcile(resend=True)
    assert result.ok, result.message
    manager.place_all(GROUP)  # the engine re-decides the bar: nothing is sent again
    assert sorted(broker_orders(s.broker)) == [i.client_order_id for i in GROUP]
    s.broker.on_bars(t(2), {i.symbol: bar(100.0) for i in GROUP})
    manager.process_updates()
    assert all(manager.order(i.client_order_id).status is S.FILLED for i in GROUP)
    assert manager.positions() == s.broker.positions() and manager.reconcile().ok
    s.broker.close()


@pytest.mark.parametrize("flushed", [True, False])
def test_a_crash_before_the_groups_sync_sends_nothing_twice(tmp_path, flushed):
    s = Session(tmp_path, journal=FakeJournal("sync"))
    with pytest.raises(Crash):
        s.manager.place_all(GROUP)
    assert broker_orders(s.broker) == []
    s.clock.set(t(1))
    manager = s.restart(flushed)  # a machine crash loses the unsynced intents: none was sent
    assert len(manager.orders) == (5 if flushed else 0)
    assert manager.reconcile(resend=True).ok
    manager.place_all(GROUP)
    assert sorted(broker_orders(s.broker)) == [i.client_order_id for i in GROUP]
    s.broker.close()


# -- group commit with a broker that takes the group in one call (submit_many) ----------------


def _spy_groups(s: Session) -> list[tuple[list[str], int]]:
    """Each ``submit_many`` call's client ids and how many events were durable then."""
    calls, submit_many = [], s.broker.submit_many

    def spy(intents):
        calls.append(([i.client_order_id for i in intents], s.journal.durable))
        return submit_many(intents)

    s.broker.submit_many = spy
    return calls


def test_a_group_goes_to_the_broker_in_one_call_after_its_one_sync(session):
    calls, before = _spy_groups(session), session.journal.syncs
    orders = session.manager.place_all(GROUP)
    assert session.journal.syncs - before == 1 == session.manager.syncs
    assert calls == [([i.client_order_id for i in GROUP], 6)]  # every intent durable first
    types = session.journal.types()
    assert types[1:] == [ev.INTENT] * 5 + [ev.BROKER_REQUEST] * 5 + [ev.BROKER_REPLY] * 5
    assert [o.status for o in orders] == [S.ACCEPTED] * 5
    assert [o.broker_order_id for o in orders] == [
        session.broker.get_order(i.client_order_id).broker_order_id for i in GROUP]
    assert broker_orders(session.broker) == ["g0", "g1", "g2", "g3", "g4"]
    session.manager.place_all(GROUP)  # known: nothing sent again
    assert len(calls) == 1 and session.journal.syncs - before == 1
    assert rebuild(session.journal.events).orders == session.manager.book.orders


def test_a_groups_outcomes_are_settled_one_by_one(session):
    """A duplicate (someone placed it already), a bracket with its levels the wrong way
    round (rejected) and good orders in one call: each gets its own outcome."""
    SimBroker(session.path).submit(GROUP[1])  # at the broker before we send it
    bad = intent("bad", order_type=OrderType.BRACKET, stop_loss=D(110), take_profit=D(90))
    legs = intent("brk", order_type=OrderType.BRACKET, stop_loss=D(90), take_profit=D(110))
    orders = session.manager.place_all([GROUP[0], GROUP[1], bad, legs])
    assert [o.status for o in orders] == [S.ACCEPTED, S.ACCEPTED, S.REJECTED, S.ACCEPTED]
    replies = [p for k, p in session.journal.events if k == ev.BROKER_REPLY]
    assert [p["outcome"] for p in replies] == ["accepted", "duplicate", "rejected", "accepted"]
    assert {"brk.sl", "brk.tp"} <= set(session.manager.orders)  # the legs learned
    assert sorted(broker_orders(session.broker)) == ["brk", "brk.sl", "brk.tp", "g0", "g1"]
    assert session.manager.reconcile().ok


class Flaky(Exception):
    """Not a broker error: an adapter bug."""


@pytest.mark.parametrize("error", [OutcomeUnknown("lost"), Flaky("bug")])
def test_a_failed_group_call_leaves_each_order_unknown_then_settled_by_lookup(session, error):
    submit_many = session.broker.submit_many

    def fails_after_sending(intents):
        submit_many(intents)
        raise error

    session.broker.submit_many = fails_after_sending
    if isinstance(error, Flaky):
        with pytest.raises(Flaky):
            session.manager.place_all(GROUP)
    else:
        session.manager.place_all(GROUP)
    assert {c: o.status for c, o in session.manager.orders.items()} == {
        i.client_order_id: S.UNKNOWN for i in GROUP}
    assert session.manager.staged == ()
    settled = session.manager.settle_unknown()
    assert [o.status for o in settled] == [S.ACCEPTED] * 5  # found: no resend
    assert broker_orders(session.broker) == [i.client_order_id for i in GROUP]


@pytest.mark.parametrize("crash_at", [1, 3, 5])  # dies inserting the first, middle, last
@pytest.mark.parametrize("flushed", [True, False])
def test_a_crash_inside_the_group_call_leaves_none_at_the_broker_then_one_per_intent(
        tmp_path, crash_at, flushed):
    """A process killed inside the broker's transaction: nothing of the group committed
    (the broker's file rolls back), every intent durable; the restart settles them as
    never arrived and resends each once."""
    s = Session(tmp_path)
    insert, inserted = s.broker.store.insert_order, []

    def dies(row):
        inserted.append(row["client_order_id"])
        if len(inserted) == crash_at:
            raise Crash("inside the broker's transaction")
        return insert(row)

    s.broker.store.insert_order = dies
    with pytest.raises(Crash):
        s.manager.place_all(GROUP)
    s.broker.store.insert_order = insert
    assert broker_orders(SimBroker(s.path)) == []  # rolled back: none of the group
    s.clock.set(t(1))
    manager = s.restart(flushed)
    assert {c: o.status for c, o in manager.orders.items()} == {
        i.client_order_id: S.UNKNOWN for i in GROUP}
    assert manager.reconcile(resend=True).ok
    manager.place_all(GROUP)  # the engine re-decides the bar: nothing is sent again
    assert sorted(broker_orders(s.broker)) == [i.client_order_id for i in GROUP]
    s.broker.on_bars(t(2), {i.symbol: bar(100.0) for i in GROUP})
    manager.process_updates()
    assert all(manager.order(i.client_order_id).status is S.FILLED for i in GROUP)
    assert manager.positions() == s.broker.positions() and manager.reconcile().ok
    s.broker.close()


@pytest.mark.parametrize("flushed", [True, False])
def test_a_crash_after_the_group_call_before_its_replies_adopts_each_order_once(
        tmp_path, flushed):
    s = Session(tmp_path)
    submit_many = s.broker.submit_many

    def dies_after(intents):
        submit_many(intents)
        raise Crash("before the replies")

    s.broker.submit_many = dies_after
    with pytest.raises(Crash):
        s.manager.place_all(GROUP)
    s.clock.set(t(1))
    manager = s.restart(flushed)
    assert manager.reconcile(resend=True).ok
    assert all(manager.order(i.client_order_id).status is S.ACCEPTED for i in GROUP)
    manager.place_all(GROUP)
    assert broker_orders(s.broker) == [i.client_order_id for i in GROUP]
    s.broker.close()


# -- reconciliation -----------------------------------------------------------------------


def test_a_manual_trade_behind_the_sessions_back_halts_it(session):
    session.manager.place(intent())
    other = SimBroker(session.path)  # someone trading the account directly
    other.submit(intent("manual-1", qty=5, symbol="MSFT"))
    session.bar(1, 100.0)
    session.broker.on_bars(t(1), {"MSFT": bar(50.0)})
    session.manager.process_updates()
    assert any("manual-1" in a for a in session.manager.anomalies)
    result = session.manager.reconcile()
    assert not result.ok
    kinds = {d.kind for d in result.differences}
    assert {"position", "fill", "cash", "anomaly"} <= kinds
    assert "position MSFT: journal says 0, broker says 5" in result.message
    assert "manual-1" in result.message and "trading halts" in result.message
    other.close()


def test_an_open_order_the_journal_cannot_explain_is_detected_at_restart(session):
    session.manager.place(intent())
    other = SimBroker(session.path)
    other.submit(intent("manual-2", side=Side.SELL, qty=1))
    other.close()
    manager = session.restart()
    result = manager.reconcile()
    assert not result.ok
    expected = ("order manual-2: journal says no such order, broker says accepted sell 1 AAPL "
                "market (broker id sim-00000002)")
    assert [str(d) for d in result.differences if d.kind == "order"] == [expected]


def test_a_position_changed_behind_the_back_while_down_is_detected(session):
    session.manager.place(intent())
    session.bar(1, 100.0)
    other = SimBroker(session.path)
    other.submit(intent("flatten-by-hand", side=Side.SELL, qty=10, i=1))
    other.on_bars(t(2), {"AAPL": bar(90.0)})
    other.close()
    session.clock.set(t(3))
    result = session.restart().reconcile()
    assert not result.ok
    assert "position AAPL: journal says 10, broker says 0" in result.message


def test_a_fresh_run_takes_the_brokers_account_as_its_start(session):
    session.manager.place(intent(time_in_force=TimeInForce.GTC))
    session.manager.place(intent("rest", qty=2, order_type=OrderType.LIMIT, limit_price=D(50),
                                 time_in_force=TimeInForce.GTC))
    session.bar(1, 100.0)
    nxt = OrderManager(session.broker, FakeJournal(), session.clock)  # the next day's run
    nxt.start()
    assert nxt.positions() == session.broker.positions() and nxt.cash == session.manager.cash
    assert set(nxt.open_orders()) == {"rest"}
    assert nxt.reconcile().ok


# -- any sequence of operations, faults and restarts ---------------------------------------

place_ops = st.tuples(
    st.just("place"), st.sampled_from(["market", "limit", "stop", "bracket"]),
    st.sampled_from(list(Side)), st.integers(1, 20),
    st.sampled_from([None, "lose_reply", "drop_request", "delay", "cancel:lose_reply",
                     "cancel:drop_request"]))
group_ops = st.tuples(  # a bar's intents by group commit: staged, one sync, then sent
    st.just("group"), st.sampled_from(["market", "limit", "stop", "bracket"]),
    st.sampled_from(list(Side)), st.integers(2, 4),
    st.sampled_from([None, "lose_reply", "drop_request", "delay"]))
ops = st.lists(st.one_of(
    place_ops, place_ops, group_ops,
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("bar"), st.floats(90, 110), st.floats(0, 6)),
    st.tuples(st.just("restart"), st.booleans()),
    st.tuples(st.just("crash"), st.sampled_from([ev.INTENT, ev.BROKER_REQUEST,
                                                 ev.BROKER_REPLY, ev.ORDER_LEG, ev.FILL,
                                                 ev.ORDER_UPDATE, ev.ORDER_UNKNOWN, "sync"]),
              st.booleans(), st.booleans()),
), max_size=30)


def make_intent(n: int, kind: str, side: Side, qty: int, i: int) -> OrderIntent:
    sign = side.sign
    extra = {"limit": {"order_type": OrderType.LIMIT, "limit_price": D(100 - 2 * sign)},
             "stop": {"order_type": OrderType.STOP, "stop_price": D(100 + 3 * sign)},
             "bracket": {"order_type": OrderType.BRACKET, "stop_loss": D(100 - 4 * sign),
                         "take_profit": D(100 + 4 * sign)}}.get(kind, {})
    return intent(f"o{n}", qty, i, side, time_in_force=TimeInForce.GTC, **extra)


def apply_op(s: Session, op, placed: list, i: int) -> int:
    if op[0] == "place":
        if op[4]:
            on, _, kind = op[4].rpartition(":")
            s.broker.faults.add(kind, op=on or "submit", seconds=60.0 if kind == "delay" else 0)
        placed.append(make_intent(len(placed), op[1], op[2], op[3], i))
        s.manager.place(placed[-1])
    elif op[0] == "group":
        if op[4]:  # on one send of the group
            s.broker.faults.add(op[4], op="submit", seconds=60.0 if op[4] == "delay" else 0)
        group = [make_intent(len(placed) + k, op[1], op[2], 1 + k, i) for k in range(op[3])]
        placed.extend(group)
        s.manager.place_all(group)
    elif op[0] == "cancel" and placed:
        cid = placed[op[1] % len(placed)].client_order_id
        if cid in s.manager.book.orders:
            s.manager.cancel(cid)
    elif op[0] == "bar":
        i += 1
        s.bar(i, op[1], h=op[1] + op[2], lo=op[1] - op[2])
    elif op[0] == "restart":
        s.restart(flushed=op[1]).reconcile(resend=True)
    return i


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_any_sequence_ends_with_one_order_per_intent_and_the_brokers_account(tmp_path_factory,
                                                                               sequence):
    s = Session(tmp_path_factory.mktemp("seq"), sleep=lambda _: None)
    placed, i = [], 0
    flushed = True
    for op in sequence:
        try:
            i = apply_op(s, op, placed, i)
        except Crash:  # the process died: restart from the journal and the broker's file
            s.restart(flushed).reconcile(resend=True)
        if op[0] == "crash":
            s.journal.crash_on, s.journal.after, flushed = op[1], op[2], op[3]
        assert s.manager.anomalies == []
    s.journal.crash_on = None
    s.clock.set(t(i + 1))
    result = s.manager.reconcile(resend=True)
    assert result.ok, result.message
    entries = [c for c in broker_orders(s.broker) if "." not in c]
    journaled = [p["client_order_id"] for k, p in s.journal.events if k == ev.INTENT]
    assert sorted(entries) == sorted(journaled)  # exactly one broker order per intent
    assert set(journaled) <= {p.client_order_id for p in placed}  # a crash before: none
    assert s.manager.positions() == s.broker.positions()
    assert s.manager.cash == s.broker.account().cash
    assert {c: o.status for c, o in s.manager.orders.items()} == \
        {c: s.broker.get_order(c).status for c in broker_orders(s.broker)}
    assert rebuild(s.journal.events).orders == s.manager.book.orders
    s.broker.close()


def test_the_managers_payloads_are_the_codecs():
    """The manager builds intent, fill and position payloads field by field (fast); they
    are exactly :func:`workbench.model.codec.encode`'s."""
    from workbench.model import Fill, Position
    from workbench.model.codec import encode
    from workbench.orders.payloads import encode_model as _encode

    objects = [intent(), intent("x", 3, 2, Side.SELL, order_type=OrderType.BRACKET,
                                stop_loss=D("90.125"), take_profit=D(100),
                                time_in_force=TimeInForce.GTC, reason="flatten",
),
               intent("n", 3, 2, notional=D("1234.5000")),
               Fill("e1", "c1", "AAPL", Side.BUY, D("0.5"), D("100.01"), D(0), t(3)),
               Position("AAPL", D("-2.50"), D("99.9"))]
    for obj in objects:
        assert _encode(obj) == encode(obj)
        assert list(_encode(obj)) == list(encode(obj))  # the same field order


def test_an_intent_or_fill_applied_as_held_is_the_decoded_payload():
    """The manager applies the intent or fill it journaled without decoding the payload
    back (``round_trips``): only when decoding would give the same object; a float where a
    Decimal belongs is decoded, as a reader of the journal would."""
    from workbench.model import Fill
    from workbench.model.codec import decode
    from workbench.orders.payloads import encode_model, round_trips

    objects = [intent(), intent("n", 3, 2, notional=D("1234.5000")),
               intent("x", 3, 2, Side.SELL, order_type=OrderType.BRACKET,
                      stop_loss=D("90.125"), take_profit=D(100)),
               Fill("e1", "c1", "AAPL", Side.BUY, D("0.5"), D("100.01"), D(0), t(3))]
    for obj in objects:
        assert round_trips(obj)
        assert decode(encode_model(obj), type(obj)) == obj
    loose = Fill("e2", "c1", "AAPL", Side.BUY, 0.5, D("100.01"), D(0), t(3))
    assert not round_trips(loose)
    assert type(decode(encode_model(loose), Fill).quantity) is D
