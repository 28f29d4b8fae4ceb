"""Part 2 of ``bench/alpaca_roundtrip.py``: bar close -> orders sent on the live feed (its
doc says what is measured). Run through that script."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

KEY, SECRET = "PKBENCHFEED1", "bench-feed-secret"
DAY = "2025-12-29"


def _flip(bars):
    """Every symbol in on even minutes, out on odd ones: one order per symbol a minute."""
    import numpy as np

    import workbench as wb

    even = (bars.index.minute % 2 == 0)
    frame = pd.DataFrame(np.repeat(even[:, None], len(bars.symbols), axis=1),
                         index=bars.index, columns=bars.symbols)
    return wb.Signals(entries=frame, exits=~frame)


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def live_feed(args) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-live-feed-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ["ALPACA_API_KEY"], os.environ["ALPACA_SECRET_KEY"] = KEY, SECRET

    from workbench.brokers.sim import SimBroker
    from workbench.config import load_settings
    from workbench.data import calendar
    from workbench.data.store import Store
    from workbench.data.synth import synthesize
    from workbench.feeds.options import FeedOptions
    from workbench.risk import RiskSettings
    from workbench.session.live import run_live_session
    from workbench.session.runner import run_session
    from workbench.testing.alpaca.hub import StreamHub
    from workbench.testing.alpaca.server import FakeAlpaca

    open_ = calendar.session_open(DAY)
    bars = synthesize(args.symbols, 2, "1Min", 5, DAY)
    day_start = pd.Timestamp(DAY).tz_localize(calendar.NY).tz_convert("UTC")
    bars = bars[(bars["ts"] < day_start) |
                (bars["ts"] < open_ + pd.Timedelta(minutes=args.minutes))]
    Store(home / "data").write(bars, "1Min", source="synth")
    loose = RiskSettings(max_orders=10**9, latency_budget_ms=1e9, stale_bar_intervals=1e9,
                         max_order_notional=10**12, max_symbol_exposure=10**12,
                         max_total_exposure=10**15, max_gross_leverage=1000,
                         price_band="0.99", daily_loss_reduce="0.98", daily_loss_halt="0.99",
                         position_loss_exit="0.99")
    sizing = {"cash": 10_000, "size": 0.5, "accounts": "per_symbol"}

    replayed = run_session(_flip, replay_date=DAY, risk=loose, **sizing)
    base = replayed.latency_ms

    published: dict[pd.Timestamp, float] = {}

    class TimedHub(StreamHub):
        def bars(self, rows):
            if rows:
                published.setdefault(pd.Timestamp(rows[0]["t"]), time.perf_counter())
            super().bars(rows)

    sent: dict[str, float] = defaultdict(float)
    submit = SimBroker.submit

    def timed_submit(self, intent):
        out = submit(self, intent)
        sent[intent.client_order_id.split("-")[-2]] = time.perf_counter()
        return out
    SimBroker.submit = timed_submit

    end = (open_ + pd.Timedelta(minutes=args.minutes)).tz_convert(calendar.NY).strftime("%H:%M")
    fake = FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=args.speed,
                      start="09:30", end=end, idle_timeout=600, lead=3,  # the session's
                      hub=TimedHub(key=KEY, secret=SECRET))                # start: 3 minutes
    options = FeedOptions()  # production's: a minute missing a symbol waits cutoff_s (5 s)
    with fake:
        settings = load_settings(alpaca={"trading_url": fake.url, "data_url": fake.url})
        live = run_live_session(_flip, broker="sim", speed=args.speed, risk=loose,
                                settings=settings, feed_options=options, **sizing)
    SimBroker.submit = submit
    window = bars[bars["ts"] >= open_]
    bars_per_minute = sorted(set(window.groupby("ts").size()))
    lat = []
    for minute, at in sorted(published.items()):
        key = minute.strftime("%Y%m%dT%H%M%S")
        if key in sent:
            lat.append(sent[key] - at)
    ms = 1000.0
    print(f"\nbar close -> orders sent, {args.symbols} symbols, {args.minutes} minutes at "
          f"{args.speed:g}x ({60 / args.speed:.1f} s a minute); live {live.outcome}, "
          f"{live.orders} orders; replay {replayed.orders} orders")
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50 / baseline':>15}")
    print(f"{'baseline: replay row -> sent':34} {base['p50']:8.1f} {base['p99']:8.1f} "
          f"{base['max']:8.1f} {1:14.2f}x")
    if lat:
        p50 = statistics.median(lat) * ms
        print(f"{'live: bar close -> orders sent':34} {p50:8.1f} {_pct(lat, 0.99) * ms:8.1f} "
              f"{max(lat) * ms:8.1f} {p50 / base['p50']:14.2f}x")
        lm = live.latency_ms
        print(f"{'live: row in hand -> sent':34} {lm['p50']:8.1f} {lm['p99']:8.1f} "
              f"{lm['max']:8.1f} {lm['p50'] / base['p50']:14.2f}x")
    print(f"minutes measured: {len(lat)}; symbols with a bar per minute: {bars_per_minute} "
          f"(a minute missing one is decided {options.cutoff_s:g} market s = "
          f"{options.cutoff_s / args.speed:g} s real after its close: the feed's cutoff)")
