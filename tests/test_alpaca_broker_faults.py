"""Fault tests 1-4 and 23 of failure-modes.md on AlpacaBroker, through the real alpaca-py
client against the fake; 1, 2 and 4 drive the OrderManager so the whole settle-by-client-id
path shows."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from alpaca_broker_helpers import T0, D, FakeTime, at_fake, broker, posts, wait_for

from workbench.brokers.alpaca.transport import RateLimiter
from workbench.brokers.base import RateLimited
from workbench.clock import SimClock
from workbench.model import OrderIntent, OrderStatus, Side
from workbench.model import events as ev
from workbench.orders import OrderManager
from workbench.testing.sinks import ListSink

S = OrderStatus


#: the request timeout of the stalled-order tests: short, as a stall costs it in full, but
#: every request of the adapter has it, the constructor's account read too, which once
#: took longer than 0.5 s on the loaded CI machine
STALL_TIMEOUT = 2.0


def _manager(b):
    return OrderManager(b, ListSink(), SimClock(pd.Timestamp(T0)))


def _intent(cid="f1"):
    return OrderIntent(cid, "AAPL", Side.BUY, D(5))


def test_1_accepted_then_504_leaves_one_order_settled_by_lookup(fake):
    b = broker(fake, stream=False)
    try:
        m = _manager(b)
        fake.accept_then(504)
        order = m.place(_intent())
        assert order.status is S.UNKNOWN  # not "failed", not resent
        assert len(posts(fake)) == 1  # alpaca-py's own retry of a 504 did not happen
        assert len(at_fake(fake, "f1")) == 1
        settled = m.settle_unknown()
        assert [o.client_order_id for o in settled] == ["f1"]
        assert m.order("f1").status is S.ACCEPTED
        assert m.order("f1").broker_order_id == at_fake(fake, "f1")[0]["id"]
        assert m.sink.of(ev.ORDER_SETTLED)[0]["found"] is True
        assert len(posts(fake)) == 1 and len(at_fake(fake, "f1")) == 1
    finally:
        b.close()


def test_2_no_answer_times_out_unknown_and_is_never_sent_twice(fake):
    b = broker(fake, stream=False, timeout=STALL_TIMEOUT)
    try:
        m = _manager(b)
        fake.stall(path="/v2/orders", method="POST", takes_effect=True)
        started = time.monotonic()
        order = m.place(_intent())
        assert time.monotonic() - started < 10
        assert order.status is S.UNKNOWN
        assert "timed out" in m.sink.of(ev.ORDER_UNKNOWN)[-1]["error"]
        m.settle_unknown()
        assert m.order("f1").status is S.ACCEPTED
        assert m.place(_intent()).status is S.ACCEPTED  # placing again sends nothing
        assert len(posts(fake)) == 1 and len(at_fake(fake, "f1")) == 1
    finally:
        b.close()


def test_4_duplicate_client_id_is_treated_as_existing_and_reconciled(fake):
    b = broker(fake, stream=False)
    try:
        first = b.submit(_intent())  # e.g. sent before a crash, the journal lost the reply
        m = _manager(b)
        order = m.place(_intent())
        replies = m.sink.of(ev.BROKER_REPLY)
        assert replies[0]["outcome"] == "duplicate"
        assert "must be unique" in replies[0]["reason"]
        assert order.status is S.ACCEPTED and order.broker_order_id == first.broker_order_id
        assert len(at_fake(fake, "f1")) == 1 and len(posts(fake)) == 2
    finally:
        b.close()


class _Recording(RateLimiter):
    def __init__(self, clock: FakeTime) -> None:
        super().__init__(clock=clock.now, sleep=clock.sleep)
        self.stamps: list[float] = []

    def acquire(self) -> float:
        wait = super().acquire()
        self.stamps.append(self._clock())
        return wait


def test_3_limiter_paces_requests_and_a_429_storm_is_not_retried(fake):
    clock = FakeTime()
    limiter = _Recording(clock)
    seen = []
    b = broker(fake, stream=False, limiter=limiter, on_event=lambda n, f: seen.append(n))
    try:
        before = len(fake.requests)
        for _ in range(60):
            b.positions()
        assert len(fake.requests) - before == 60  # waits, never drops
        stamps = limiter.stamps
        # a token bucket of 180/min with a burst of 10: at most 10 + 3*T requests in any
        # T seconds (the minute-long window is checked without HTTP in the unit tests)
        for width in (1.0, 5.0, 10.0):
            most = max(sum(1 for t in stamps[i:] if t < s + width) for i, s in enumerate(stamps))
            assert most <= 10 + 3 * width + 1
        assert clock.t - 1000 >= (60 - 10) / 3 - 1  # it waited (fake time)
        assert "throttled" in seen

        before = len(fake.requests)
        fake.fail(429, times=5, retry_after=7, path="/v2/positions")
        for _ in range(5):
            paused_from = clock.t
            with pytest.raises(RateLimited) as e:
                b.positions()
            assert e.value.retry_after == 7
        assert len(fake.requests) - before == 5  # one request per call: no retry storm
        assert seen.count("rate_limited") == 5  # each is reported (alert)
        b.positions()  # the next request waited out the server's Retry-After
        assert clock.t >= paused_from + 7
    finally:
        b.close()


def test_23_second_stream_gets_406_backs_off_90s_alerts_and_does_not_loop(fake):
    first = broker(fake)
    gate, waits, alerts = threading.Event(), [], []

    def sleep(seconds):  # the injected backoff: recorded, held until the test releases it
        waits.append(seconds)
        gate.wait(10)

    second = None
    try:
        wait_for(lambda: first.connected, what="first stream connected")
        second = broker(fake, stream_sleep=sleep,
                        on_event=lambda n, f: alerts.append((n, f)) if n == "stream_slot_taken" else None)
        wait_for(lambda: waits, what="the 406 backoff")
        assert waits[0] >= 90
        assert alerts and alerts[0][1]["backoff_s"] >= 90 and "406" in alerts[0][1]["message"]
        assert not second.connected and first.connected
        time.sleep(1.5)  # alpaca-py alone would have reconnected within 1-2 s by now
        assert second.stream.attempts == 1 and len(waits) == 1

        first.close()  # the slot frees; after the backoff one new attempt connects
        gate.set()
        wait_for(lambda: second.connected, what="second stream connected after backoff")
        assert second.stream.attempts == 2
    finally:
        gate.set()
        first.close()
        if second is not None:
            second.close()


def test_23_refused_at_the_handshake_backs_off_too(fake):
    fake.hub.faults.trading.slot_taken(times=1, at="handshake")
    waits = []
    b = broker(fake, stream_sleep=waits.append)
    try:
        wait_for(lambda: b.connected, what="connected after one backoff")
        assert waits == [90.0] and b.stream.attempts == 2
        assert any(e[1] == "stream_slot_taken" for e in b.events)
    finally:
        b.close()


def test_2_no_answer_and_nothing_placed_settles_as_never_arrived_after_the_window(fake):
    b = broker(fake, stream=False, timeout=STALL_TIMEOUT)
    try:
        m = _manager(b)
        fake.stall(path="/v2/orders", method="POST", takes_effect=False)
        assert m.place(_intent()).status is S.UNKNOWN
        assert m.settle_unknown() == []  # not found, but the window has not passed
        assert m.order("f1").status is S.UNKNOWN
        m.clock.advance(b.ack_window)
        assert [o.status for o in m.settle_unknown()] == [S.REJECTED]
        assert at_fake(fake, "f1") == [] and len(posts(fake)) == 1
    finally:
        b.close()
