"""The order path's journal syncs: one fdatasync per intent (before) against one per bar
(group commit, now), on the real journal and the simulated broker.

    python bench/group_commit.py [--intents 50] [--bars 40] [--dir DIR]

A temporary run (under ``--dir``, default the system's temporary folder: the disk a
session's ``runs/`` would be on matters, fdatasync is what is measured) gets an order
manager on a :class:`~workbench.journal.Journal` and a :class:`~workbench.brokers.SimBroker`.
Each bar ``--intents`` buy intents (one per symbol) are placed twice, alternating bar by
bar so both see the same machine: each by ``manager.place`` (the baseline: intent durable,
then sent, per intent) and all by ``manager.place_all`` (staged, one sync, then sent). The
broker fills them between bars, outside the timing. Printed per way: fdatasync calls per
bar (counted at ``os.fdatasync``), milliseconds per bar (first intent journaled to last
order sent: p50, p99, max), milliseconds inside fdatasync per bar; and the ratios
baseline / group commit from this one run.
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


def main() -> None:
    from workbench.brokers import SimBroker
    from workbench.clock import SimClock
    from workbench.journal import Journal
    from workbench.model import OrderIntent, Side
    from workbench.orders import OrderManager

    parser = argparse.ArgumentParser()
    parser.add_argument("--intents", type=int, default=50, help="intents per bar")
    parser.add_argument("--bars", type=int, default=40, help="bars per way")
    parser.add_argument("--dir", default=None, help="where the temporary run goes")
    args = parser.parse_args()
    if args.intents < 1 or args.bars < 2:
        parser.error("--intents must be at least 1 and --bars at least 2")
    symbols = [f"S{i:03d}" for i in range(args.intents)]
    t0 = pd.Timestamp("2026-11-20 14:30", tz="UTC")
    syncs = _Syncs()
    os.fdatasync = syncs
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
            os.fdatasync = syncs._real
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


if __name__ == "__main__":
    main()
