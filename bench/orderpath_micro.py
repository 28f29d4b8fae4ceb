"""CPU per operation of the order path's pieces, this checkout against a git revision.

    .venv/bin/python bench/orderpath_micro.py --before orderpath2 [--pairs 3]

Each piece runs in a tight loop and is timed in process CPU time (min of 5 repeats), so a
shared, loaded machine moves it far less than a session's latency: the simulated broker
(25 market orders a bar as one group, filled at the next bar, both updates read: per
order), the session metrics (a fill's three events with 300 positions held: per fill), the
risk context's once-a-bar sums (equity and total exposure, 300 positions held: per bar),
the engine's last row of a decision (entries and exits, 31 rows x 500 symbols: per bar).
``--before REV`` exports REV's ``workbench`` (``git archive``: nothing in the repository
changes) and runs each tree in a fresh process, alternating, PAIRS times; ratios of the
best runs (before / after: above 1, this checkout is cheaper).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _best(fn, reps: int = 5) -> float:
    """Microseconds of CPU per operation, the best of ``reps`` runs of ``fn`` (-> count)."""
    out = []
    for _ in range(reps):
        t = time.process_time()
        n = fn()
        out.append((time.process_time() - t) / n)
    return min(out) * 1e6


def measure() -> dict:
    import numpy as np
    import pandas as pd

    from workbench.brokers.sim import SimBroker
    from workbench.model import OrderIntent, Position, Side
    from workbench.monitor.metrics import SessionMetrics
    from workbench.risk import RiskContext, total_exposure
    from workbench.strategy.signals import Signals

    res = {}
    syms = [f"S{i:03d}" for i in range(500)]
    with tempfile.TemporaryDirectory() as d:
        broker = SimBroker(Path(d) / "b.sqlite", cash=10**9, checkpoint="manual")
        bar = {s: {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5} for s in syms}
        k = [0]

        def broker_bars() -> int:
            for _ in range(20):
                k[0] += 1
                t0 = broker._now()
                broker.submit_many([OrderIntent(f"c{k[0]}-{j}", syms[j],
                                                Side.BUY if k[0] % 2 else Side.SELL, D(3))
                                    for j in range(25)])
                list(broker.updates())
                broker.on_bars(t0 + pd.Timedelta(minutes=1), bar)
                list(broker.updates())
                broker.checkpoint(16)
            return 20 * 25
        res["sim broker, per order: submitted, filled, 2 updates read"] = _best(broker_bars)
        broker.close()

    metrics = SessionMetrics("bench")
    for s in syms[:300]:
        metrics.on("position", {"symbol": s, "quantity": "5"})

    def fill_events() -> int:
        for i in range(2000):
            metrics.on("fill", {"client_order_id": f"x{i}"})
            metrics.on("order_update", {"client_order_id": f"x{i}", "status": "filled"})
            metrics.on("position", {"symbol": syms[i % 300], "quantity": "5" if i % 2 else "0"})
        return 2000
    res["metrics, per fill: 3 events, 300 positions"] = _best(fill_events)
    metrics.close()

    positions = {s: Position(s, D(5 + i % 7), D("99.5")) for i, s in enumerate(syms[:300])}
    prices = {s: D("100.25") for s in syms}
    now = pd.Timestamp("2026-11-20 15:00", tz="UTC")

    def sums() -> int:
        for _ in range(200):
            ctx = RiskContext(now=now, cash=D(100_000), start_equity=D(100_000),
                              positions=positions, last_prices=prices,
                              pending_buys={s: D(3) for s in syms[300:325]})
            ctx.current_equity()
            total_exposure(ctx)
        return 200
    res["risk, per bar: equity + total exposure, 300 positions"] = _best(sums)

    index = pd.date_range("2026-11-20 14:30", periods=31, freq="min", tz="UTC")
    rng = np.random.default_rng(7)
    signals = Signals(entries=pd.DataFrame(rng.random((31, 500)) > 0.9, index, syms),
                      exits=pd.DataFrame(rng.random((31, 500)) > 0.9, index, syms))

    def last_rows() -> int:
        for _ in range(500):
            [np.asarray(v, dtype=bool) for v in signals.last_row().values()]
        return 500
    res["engine, per bar: a decision's last row"] = _best(last_rows)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="REV", help="compare with git revision REV's workbench")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker or not args.before:
        print(json.dumps(measure()))
        return
    with tempfile.TemporaryDirectory(prefix="wb-micro-before-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "workbench"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(args.pairs):
            for name, tree in (("before", before), ("after", ROOT)):
                out = subprocess.run([sys.executable, __file__, "--worker"], check=True,
                                     capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": str(tree)})
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'piece':<58} {'before':>9} {'after':>9}  before/after")
    for key in runs["after"][0]:
        b, a = (min(r[key] for r in runs[n]) for n in ("before", "after"))
        print(f"{key:<58} {b:7.1f}us {a:7.1f}us  {b / a:5.2f}x")
    print(f"(best of {args.pairs} fresh processes each, alternating; load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
