"""The order path's journal syncs: one fdatasync per intent (before) against one per bar
(group commit, now), on the real journal and the simulated broker.

    python bench/group_commit.py [--intents 50] [--bars 40] [--dir DIR] [--part manager|session|all]

A temporary run (under ``--dir``, default the system's temporary folder: the disk a
session's ``runs/`` would be on matters, fdatasync is what is measured) gets an order
manager on a :class:`~workbench.journal.Journal` and a :class:`~workbench.brokers.SimBroker`.
Each bar ``--intents`` buy intents (one per symbol) are placed twice, alternating bar by
bar so both see the same machine: each by ``manager.place`` (the baseline: intent durable,
then sent, per intent) and all by ``manager.place_all`` (staged, one sync, then sent). The
broker fills them between bars, outside the timing. Printed per way: fdatasync calls per
bar (counted at ``os.fdatasync``), milliseconds per bar (first intent journaled to last
order sent: p50, p99, max), milliseconds inside fdatasync per bar; and the ratios
baseline / group commit from this one run; and what an event's encoding costs with the
environment's secrets found again per event (as before) and remembered until it changes.

``--part session`` (in ``all``): a replayed day of ``--intents`` synthetic symbols through
``run_session`` (temporary WORKBENCH_HOME) with a strategy whose bars carry one intent per
symbol (every symbol enters every 30 minutes and exits 10 minutes later), twice: with the
runner's group commit, and with ``OrderManager.stage`` patched to ``place`` (the per-intent
path as it was: each intent durable, then sent, before the next is decided). Printed per way:
fdatasync calls in the whole session (start and end included), the bars with orders, and
those bars' latency (the session's own ``latency_ms``: row arrival to its orders sent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd


class _Syncs:
    """Counts and times ``os.fdatasync`` (the journal's only sync)."""

    def __init__(self) -> None:
        self.calls, self.seconds, self._real = 0, 0.0, os.fdatasync

    def __call__(self, fd: int) -> None:
        started = time.perf_counter()
        self._real(fd)
        self.seconds += time.perf_counter() - started
        self.calls += 1

    def reading(self) -> tuple[int, float]:
        return self.calls, self.seconds


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _encoding(events: int = 2000) -> tuple[float, float]:
    """Microseconds per encoded event: the environment scanned for secrets each time (the
    old way, :func:`secret_values` per event), and remembered until it changes (now)."""
    from workbench.journal import events as jev
    from workbench.secrets import secret_values

    payload = {"client_order_id": "run-strategy-AAPL-202611201430-entry", "symbol": "AAPL",
               "side": "buy", "quantity": "12.5", "time": "2026-11-20T14:30:00+00:00"}
    ts = pd.Timestamp("2026-11-20 14:30", tz="UTC")
    out = []
    for lookup in (secret_values, jev._secrets):
        remembered, jev._secrets = jev._secrets, lookup
        try:
            started = time.perf_counter()
            for i in range(events):
                jev.encode_event(i + 1, ts, "intent", payload)
            out.append((time.perf_counter() - started) / events * 1e6)
        finally:
            jev._secrets = remembered
    return out[0], out[1]


def burst(bars, every: int = 30, hold: int = 10):
    """Every symbol enters on the minutes divisible by ``every``, exits ``hold`` later."""
    import numpy as np

    import workbench as wb

    minute = np.asarray(bars.close.index.minute)

    def at(m):
        return pd.DataFrame(np.repeat((minute % every == m)[:, None], bars.close.shape[1], 1),
                            index=bars.close.index, columns=bars.close.columns)
    return wb.Signals(entries=at(0), exits=at(hold))


def _session_way(day, syncs: _Syncs, per_intent: bool) -> dict:
    from workbench.journal.reader import replay
    from workbench.model import events as ev
    from workbench.orders import OrderManager
    from workbench.session.runner import run_session

    stage, commit = OrderManager.stage, OrderManager.commit
    if per_intent:  # the path before group commit: each intent durable, then sent, at once
        OrderManager.stage = lambda self, intent: self.place(intent)
        OrderManager.commit = lambda self: []
    try:
        before = syncs.calls
        result = run_session(burst, {}, replay_date=day, speed="max")
        calls = syncs.calls - before
    finally:
        OrderManager.stage, OrderManager.commit = stage, commit
    if result.outcome != "succeeded":
        raise SystemExit(f"the session did not succeed: {result.message}")
    laps, intents = [], 0
    for e in replay(result.path).events:
        if e.type == ev.BAR:
            intents = 0
        elif e.type == ev.INTENT:
            intents += 1
        elif e.type == ev.EQUITY and intents:
            laps.append(float(e.payload["latency_ms"]))
    return {"syncs": calls, "orders": result.orders, "bars": len(laps),
            "p50": statistics.median(laps), "p99": _pct(laps, 0.99), "max": max(laps),
            "all_p99": result.latency_ms["p99"]}


def session_part(args, syncs: _Syncs) -> None:
    from workbench.data import calendar
    from workbench.data.store import Store
    from workbench.data.synth import synthesize

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        frame = synthesize(args.intents, 2, "1Min", 7, None)
        day = frame.ts.max().tz_convert(calendar.NY).date()
        Store(Path(tmp) / "data").write(frame, "1Min", source="synth")
        rows = {"per intent": _session_way(day, syncs, True),
                "group commit": _session_way(day, syncs, False)}
    print(f"\nsession: run_session of {day}, {args.intents} symbols, 1 history day")
    print(f"{'':14} {'fdatasyncs':>10} {'orders':>7} {'bars w/ orders':>15} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'p99 all bars':>13}")
    for way, r in rows.items():
        print(f"{way:14} {r['syncs']:>10d} {r['orders']:>7d} {r['bars']:>15d} {r['p50']:>8.2f} "
              f"{r['p99']:>8.2f} {r['max']:>8.2f} {r['all_p99']:>13.2f}")
    base, group = rows["per intent"], rows["group commit"]
    if base["orders"] != group["orders"]:
        raise SystemExit("the two ways placed different orders: not comparable")
    print(f"ratio per intent / group commit (bars with orders): syncs "
          f"{base['syncs'] / group['syncs']:.1f}x, p50 {base['p50'] / group['p50']:.2f}x, "
          f"p99 {base['p99'] / group['p99']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--intents", type=int, default=50, help="intents per bar (symbols)")
    parser.add_argument("--bars", type=int, default=40, help="bars per way (manager part)")
    parser.add_argument("--dir", default=None, help="where the temporary runs go")
    parser.add_argument("--part", choices=("manager", "session", "all"), default="all")
    args = parser.parse_args()
    if args.intents < 1 or args.bars < 2:
        parser.error("--intents must be at least 1 and --bars at least 2")
    syncs = _Syncs()
    os.fdatasync = syncs
    try:
        if args.part in ("manager", "all"):
            manager_part(args, syncs)
        if args.part in ("session", "all"):
            session_part(args, syncs)
    finally:
        os.fdatasync = syncs._real


def manager_part(args, syncs: _Syncs) -> None:
    from workbench.brokers import SimBroker
    from workbench.clock import SimClock
    from workbench.journal import Journal
    from workbench.model import OrderIntent, Side
    from workbench.orders import OrderManager

    symbols = [f"S{i:03d}" for i in range(args.intents)]
    t0 = pd.Timestamp("2026-11-20 14:30", tz="UTC")
    ways = {"per intent": ([], [], []), "group commit": ([], [], [])}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        print(f"run folder: {run} ({os.statvfs(tmp).f_bsize}-byte blocks); "
              f"{args.intents} intents a bar, {args.bars} bars each way")
        clock = SimClock(t0)
        broker = SimBroker(Path(tmp) / "broker.sqlite", cash=10**12, clock=clock)
        journal = Journal.open(run, clock)
        try:
            manager = OrderManager(broker, journal, clock)
            manager.start()
            for i in range(2 * args.bars):
                way = "per intent" if i % 2 == 0 else "group commit"
                bar_time = t0 + pd.Timedelta(minutes=i)
                clock.set(bar_time)
                intents = [OrderIntent(f"b{i}-{s}", s, Side.BUY, Decimal(1), bar_time=bar_time)
                           for s in symbols]
                calls, spent = syncs.reading()
                started = time.perf_counter()
                if way == "per intent":
                    for intent in intents:
                        manager.place(intent)
                else:
                    manager.place_all(intents)
                elapsed = time.perf_counter() - started
                after_calls, after_spent = syncs.reading()
                laps, counts, in_sync = ways[way]
                laps.append(elapsed * 1e3)
                counts.append(after_calls - calls)
                in_sync.append((after_spent - spent) * 1e3)
                clock.set(bar_time + pd.Timedelta(seconds=30))
                broker.on_bars(clock.now(), {s: dict.fromkeys(("open", "high", "low", "close"),
                                                               100.0) for s in symbols})
                manager.process_updates()
            bad = [o for o in manager.orders.values() if o.status.value != "filled"]
            if bad or len(broker.orders()) != 2 * args.bars * args.intents:
                raise SystemExit(f"not every intent became one filled broker order: {bad[:3]}")
        finally:
            journal.close()
            broker.close()
    rows = {}
    for way, (laps, counts, in_sync) in ways.items():
        rows[way] = {"syncs": statistics.mean(counts), "p50": statistics.median(laps),
                     "p99": _pct(laps, 0.99), "max": max(laps),
                     "sync_ms": statistics.mean(in_sync)}
    print(f"{'':14} {'syncs/bar':>10} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
          f"{'in fdatasync ms/bar':>20}")
    for way, r in rows.items():
        print(f"{way:14} {r['syncs']:>10.1f} {r['p50']:>9.2f} {r['p99']:>9.2f} "
              f"{r['max']:>9.2f} {r['sync_ms']:>20.2f}")
    base, group = rows["per intent"], rows["group commit"]
    print(f"ratio per intent / group commit: syncs {base['syncs'] / group['syncs']:.1f}x, "
          f"p50 {base['p50'] / group['p50']:.2f}x, p99 {base['p99'] / group['p99']:.2f}x, "
          f"time in fdatasync {base['sync_ms'] / max(group['sync_ms'], 1e-9):.1f}x")
    scanned, remembered = _encoding()
    print(f"an event's encoding: {scanned:.1f} us with the environment scanned for secrets "
          f"each time, {remembered:.1f} us remembered until it changes "
          f"({scanned / remembered:.1f}x; {len(os.environ)} variables)")


if __name__ == "__main__":
    main()
