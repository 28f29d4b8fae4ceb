"""Shared set-up of the Alpaca broker tests: a fake on loopback, an adapter on it."""

from __future__ import annotations

import time
from decimal import Decimal

from workbench.brokers.alpaca import AlpacaBroker
from workbench.config import Credentials, Settings
from workbench.testing.alpaca.server import FakeAlpaca

KEY, SECRET = "PKTESTKEY000", "test-secret-000"
T0 = "2026-11-23T15:00:00Z"  # a Monday, 10:00 New York
BAR = {"o": 100.0, "h": 101.0, "l": 99.0, "c": 100.5, "v": 1000, "n": 10, "vw": 100.2}


def start_fake(**kw) -> FakeAlpaca:
    fake = FakeAlpaca(key=kw.pop("key", KEY), secret=SECRET, idle_timeout=60, **kw).start()
    fake.set_clock(T0)
    return fake


def broker(fake: FakeAlpaca, mode: str = "paper", key: str = KEY, paper_setting: bool = True,
           **kw) -> AlpacaBroker:
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
