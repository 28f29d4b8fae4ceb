"""Shared set-up of the Alpaca broker tests: a fake on loopback, an adapter on it."""

from __future__ import annotations

import time
from decimal import Decimal

from workbench.brokers.alpaca import AlpacaBroker
from workbench.brokers.alpaca.transport import RateLimiter
from workbench.config import Credentials, Settings
from workbench.testing.alpaca.server import FakeAlpaca

KEY, SECRET = "PKTESTKEY000", "test-secret-000"
T0 = "2026-11-23T15:00:00Z"  # a Monday, 10:00 New York
BAR = {"o": 100.0, "h": 101.0, "l": 99.0, "c": 100.5, "v": 1000, "n": 10, "vw": 100.2}


def start_fake(**kw) -> FakeAlpaca:
    fake = FakeAlpaca(key=kw.pop("key", KEY), secret=SECRET, idle_timeout=60, **kw).start()
    fake.set_clock(T0)
    return fake


class FakeTime:
    """A monotonic clock that only ``sleep`` moves: a limiter on it paces in fake time."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def broker(fake: FakeAlpaca, mode: str = "paper", key: str = KEY, paper_setting: bool = True,
           **kw) -> AlpacaBroker:
    """An adapter on ``fake``. Its rate limiter paces in fake time (the account's real one,
    shared by the whole test process, would make every test wait at 3 requests/s); the
    pacing itself is tested in test_alpaca_broker_faults.py and the unit tests."""
    if "limiter" not in kw:
        clock = FakeTime()
        kw["limiter"] = RateLimiter(clock=clock.now, sleep=clock.sleep)
    settings = Settings(alpaca={"paper": paper_setting})
    return AlpacaBroker(mode, settings=settings, url=fake.url,
                        credentials=Credentials(api_key=key, secret_key=SECRET), **kw)


def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")


def apply_until(manager, predicate, timeout: float = 5.0, what: str = "condition"):
    """Apply the manager's pending updates until ``predicate()`` holds. (Waiting on
    ``manager.process_updates() or predicate()`` would stop at the first new fill, before
    the update the predicate waits for: a race that once failed CI.)"""
    def step():
        manager.process_updates()
        return predicate()
    return wait_for(step, timeout, what)


def drain_until(b: AlpacaBroker, predicate, timeout: float = 5.0) -> list:
    """Collect ``b.updates()`` until ``predicate(collected)`` holds."""
    got: list = []

    def step():
        got.extend(b.updates())
        return predicate(got)
    wait_for(step, timeout, "updates")
    return got


def publish(fake: FakeAlpaca, minute: str, symbol: str = "AAPL", **bar) -> None:
    fake.publish(minute, [{"S": symbol, **BAR, **bar}])


def posts(fake: FakeAlpaca) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v2/orders"]


def at_fake(fake: FakeAlpaca, cid: str) -> list[dict]:
    return [o for o in fake.orders if o["client_order_id"] == cid]


D = Decimal
