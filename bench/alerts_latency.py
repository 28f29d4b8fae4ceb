"""Decision latency with alert channels down or slow, against no channel (issue 14).

    python bench/alerts_latency.py [--rounds 3] [--symbols 8]

A temporary WORKBENCH_HOME holds a synthetic day; the same replayed session
(``run_session``, sma_cross, every alert rule busy: a trade alert per fill and the daily
summary) runs in rounds, each round once per way, so all ways see the same machine:

* **baseline**: no alert channel (metrics and the run's log on, as by default);
* **dead**: one ``json://`` channel on a port where nothing listens (each delivery fails
  at once);
* **slow**: one ``json://`` channel to a local webhook answering after 2 s (the queue
  backs up for the whole day; ``drain_s`` 0.2 at the end);
* **again**: the baseline once more, last in each round: the machine's own noise.

Per way: the bars' decision latency (the session's own ``latency_ms``, row in hand to
orders sent, from every ``equity`` event of every round) p50/p99/max, and the ratios of
p50 and p99 to the baseline's; the session's outcome must be the same every time (same
orders, fills, P&L). Ratios near 1 (within the machine's noise) say delivery is off the
decision path.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def _slow_receiver(delay: float):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--symbols", type=int, default=8)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-bench-alerts-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))  # run as `python bench/alerts_latency.py` from anywhere
    from tests.notebook_strategies import strategy_of
    from workbench.data.store import Store
    from workbench.data.synth import synthesize
    from workbench.journal import replay
    from workbench.risk import RiskSettings
    from workbench.session.runner import run_session

    day = "2026-11-20"
    Store(home / "data").write(synthesize(args.symbols, 4, "1Min", 7, day), "1Min",
                               source="synth")
    strategy = strategy_of(root / "notebooks" / "strategies" / "sma_cross.ipynb")
    slow = _slow_receiver(2.0)
    ways = {"baseline": None, "dead": f"json://127.0.0.1:{_closed_port()}/hook",
            "slow": f"json://127.0.0.1:{slow.server_port}/hook", "again": None}
    latency = {w: [] for w in ways}
    outcomes = set()
    for _ in range(args.rounds):
        for way, url in ways.items():
            os.environ.pop("WORKBENCH__MONITOR__ALERT_URLS", None)
            if url:
                os.environ["WORKBENCH__MONITOR__ALERT_URLS"] = json.dumps([url])
                os.environ["WORKBENCH__MONITOR__DRAIN_S"] = "0.2"
            r = run_session(strategy, {}, replay_date=day,
                            risk=RiskSettings(latency_budget_ms=60_000.0))
            outcomes.add((r.outcome, r.orders, r.fills, r.pnl))
            latency[way] += [float(e.payload["latency_ms"]) for e in replay(r.path).events
                             if e.type == "equity"]
    slow.shutdown()
    base = latency["baseline"]
    print(f"{args.rounds} round(s), {args.symbols} symbols, {len(base)} bars per way; "
          f"outcomes identical: {len(outcomes) == 1} {min(outcomes)[:3]}")
    for way, ms in latency.items():
        p50, p99 = statistics.median(ms), _pct(ms, 0.99)
        print(f"{way:9s} p50 {p50:7.3f} ms  p99 {p99:8.3f} ms  max {max(ms):8.3f} ms  "
              f"ratio p50 {p50 / statistics.median(base):5.2f}  p99 {p99 / _pct(base, 0.99):5.2f}")


if __name__ == "__main__":
    main()
