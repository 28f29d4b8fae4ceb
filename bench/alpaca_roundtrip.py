"""Alpaca order round trip through the real alpaca-py client against the loopback fake:
submit -> accepted -> filled, p50/p99 over N orders, against a bare HTTP POST.

    python bench/alpaca_roundtrip.py [--orders 500] [--symbols 500] [--minutes 6] [--speed 10]
    python bench/alpaca_roundtrip.py --part 2          # only the live feed's part

Part 1: submit -> accepted -> filled. Two fakes (``workbench.testing.alpaca.FakeAlpaca``) on 127.0.0.1, same
process. Per order, alternating so both see the same machine load:

* **baseline**: a bare ``requests.Session().post`` of the same order JSON to the second
  fake's ``/v2/orders`` (no alpaca-py, no adapter): the HTTP round trip of the fake itself;
* **adapter**: ``AlpacaBroker.submit`` of a market order (alpaca-py request model, the
  guarded transport, translation of the reply) until it returns accepted, then the fake's
  clock moves a minute and its next bar is published (``fake.publish``: the order fills
  there) and ``updates()`` is polled (every 0.5 ms) until the fill arrives through the
  trade-updates stream.

Printed: p50/p99/max in ms of the baseline POST, of ``submit`` (to accepted), of accepted
-> fill seen (publish to the fill out of ``updates()``), and of the whole round trip; and
the ratios to the baseline's p50.

The fake sets ``TCP_NODELAY`` on its socket (without it each answer waited ~40 ms for
the client's delayed ACK). The account's rate limiter is replaced by a no-op here:
at 180 requests a minute 500 orders would take minutes and measure the limiter's pacing,
not the path (its own cost, one lock and a clock read per request, is printed apart).

Part 2: **bar close -> orders sent** for ``--symbols`` symbols on the live feed. A fake
replays ``--minutes`` minutes of synthetic bars at ``--speed`` x real time (a scaled minute
of 6 s at 10x: long against the ~0.5-1 s a bar of 500 orders takes); a live session
(:func:`workbench.session.live.run_live_session`, ``--broker sim --feed alpaca``: the feed
through alpaca-py's ``StockDataStream``, the engine, the risk gateway, the order manager
with its group commit, the simulated broker) runs a strategy that enters every symbol on
even minutes and exits on odd ones, so every minute sends one order per symbol. Measured
per minute: from the fake's hub publishing the minute's bars (its close on the fake's
clock) to the session's last ``submit`` of that minute (``perf_counter`` in this process),
and the session's own row in hand -> orders sent. The feed's options are production's: a
minute that lacks a symbol's bar (no trade) is decided ``cutoff_s`` (5 market seconds)
after its close, which the first figure includes.
The baseline, in the same process: the same bars replayed by ``run_session`` on stored
bars, its per-bar latency (the row in hand -> its orders sent): the decision path without
the feed; the ratio is what the live feed adds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal

import pandas as pd
import requests

KEY, SECRET = "PKBENCH0001", "bench-secret"
T0 = pd.Timestamp("2026-11-23T14:31:00Z")
BAR = {"S": "AAPL", "o": 100.0, "h": 101.0, "l": 99.0, "c": 100.5, "v": 1000, "n": 10,
       "vw": 100.2}


_HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def _body(cid: str) -> dict:
    return {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day",
            "client_order_id": cid}


class _NoLimit:
    """The limiter's interface without the pacing (see the module doc)."""

    def __init__(self) -> None:
        self.on_throttle: list = []

    def acquire(self) -> float:
        return 0.0

    def pause(self, seconds: float) -> None:
        pass


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=6)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--part", type=int, choices=(1, 2), default=None)
    args = parser.parse_args()
    if args.part in (None, 1):
        roundtrip(args)
    if args.part in (None, 2):
        from bench_live_feed import live_feed  # bench/bench_live_feed.py, beside this script

        live_feed(args)


def roundtrip(args) -> None:
    from workbench.brokers.alpaca import AlpacaBroker
    from workbench.brokers.alpaca.transport import RateLimiter
    from workbench.config import Credentials, Settings
    from workbench.model import OrderIntent, Side
    from workbench.testing.alpaca.server import FakeAlpaca

    fake = FakeAlpaca(key=KEY, secret=SECRET, idle_timeout=600)
    base = FakeAlpaca(key=KEY, secret=SECRET, idle_timeout=600)
    for f in (fake, base):
        f.start()
    fake.set_clock(T0)
    broker = AlpacaBroker("paper", settings=Settings(), url=fake.url, limiter=_NoLimit(),
                          credentials=Credentials(api_key=KEY, secret_key=SECRET))
    session = requests.Session()
    deadline = time.monotonic() + 10
    while not broker.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    if not broker.connected:
        raise SystemExit("the trade-updates stream did not connect")

    post, submit, fill, total = [], [], [], []
    try:
        for i in range(args.orders):
            t = time.perf_counter()
            session.post(base.url + "/v2/orders", json=_body(f"base-{i}"),
                         headers=_HEADERS).raise_for_status()
            post.append(time.perf_counter() - t)

            cid = f"bench-{i}"
            t0 = time.perf_counter()
            order = broker.submit(OrderIntent(cid, "AAPL", Side.BUY, Decimal(1)))
            t1 = time.perf_counter()
            assert order.status.value == "accepted", order
            fake.set_clock(T0 + pd.Timedelta(minutes=i))
            fake.publish(T0 + pd.Timedelta(minutes=i + 1), [BAR])
            seen = False
            while not seen:
                seen = any(u.fill is not None and u.order.client_order_id == cid
                           for u in broker.updates())
                if not seen:
                    time.sleep(0.0005)
            t2 = time.perf_counter()
            submit.append(t1 - t0)
            fill.append(t2 - t1)
            total.append(t2 - t0)
    finally:
        broker.close()
        fake.stop()
        base.stop()

    limiter = RateLimiter(per_minute=180, burst=10)
    t = time.perf_counter()
    for _ in range(10):
        limiter.acquire()
    per_acquire = (time.perf_counter() - t) / 10

    ms = 1000.0
    ref = statistics.median(post)
    print(f"{args.orders} orders, loopback fake, alpaca-py {_version()}")
    print(f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50 / baseline':>15}")
    for name, xs in (("baseline: bare POST", post), ("submit -> accepted", submit),
                     ("accepted -> fill (stream)", fill), ("submit -> filled", total)):
        print(f"{name:28} {statistics.median(xs) * ms:8.2f} {_pct(xs, 0.99) * ms:8.2f} "
              f"{max(xs) * ms:8.2f} {statistics.median(xs) / ref:14.2f}x")
    print(f"rate limiter acquire (a token in hand): {per_acquire * 1e6:.1f} us")


def _version() -> str:
    from importlib.metadata import version

    return version("alpaca-py")


if __name__ == "__main__":
    main()
