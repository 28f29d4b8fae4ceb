"""Decision latency and replay throughput of the live engine, alone or in a session.

    .venv/bin/python bench/engine.py [--symbols 500] [--days 1] [--history-days 0] [--repeat 3]
    .venv/bin/python bench/engine.py --path session [--symbols 500] [--history-days 1]

Synthesizes SYMBOLS x (HISTORY_DAYS + DAYS) sessions of 1Min bars into a temporary store,
then replays the last DAYS sessions from the store through ``workbench.engine.Engine``
(HISTORY_DAYS earlier sessions preloaded into the window, as a session would) with an
SMA-cross + RSI strategy on TA-Lib. For every timestamp it measures the time from the
row's arrival (the ``ReplayFeed`` stamps it with ``time.perf_counter()`` as it hands it
over) to its signals being emitted: window update, the strategy on the window's last rows
(warmup + 1; the first evaluation on the whole window, SMA/RSI/crossing state carried from
then on), the last row turned into ``Signal`` objects. Orders come later in a session and
are not measured here. Prints p50/p99/max per timestamp (for all symbols at once), the
replay's wall time and throughput in bars/s, and whether issue 10's targets hold: p99 <=
20 ms per timestamp and a full day replayed in <= 10 s. ``--recompute`` runs the engine
as before issue 10 (the strategy recomputed on the whole window at every bar), for a
before/after in one process.

``--path session`` measures the acceptance's full path instead: the last day replayed by
``workbench.session.runner.run_session`` (speed "max", default accounts and risk settings,
HISTORY_DAYS earlier sessions preloaded, 1 by default as the session's) with the same
strategy, in a temporary WORKBENCH_HOME. Per timestamp, from the row's arrival to the end
of placing its orders: broker.on_bars, process_updates, the risk gateway's on_bar, the
engine's decision, intents, risk review, and the order manager's place (the durable
journal append, then the sim broker's submit); the session journals it per bar
(``equity`` event, ``latency_ms``) and returns p50/p99/max. Wall time is the whole
``run_session`` call (start, reconcile, load of the stored bars and the end included).
``--before REV`` runs git revision REV's ``workbench`` (exported with ``git archive``)
and this checkout's alternately, each run a fresh process on the same stored bars, and
prints before/after ratios, with each run's CPU time (user + system of the process during
``run_session``: on a shared machine steadier than latency or wall time) and in how many
pairs it was lower; ``--sections`` adds a run with each step of a bar timed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pandas as pd

import workbench as wb
from workbench.config import load_settings
from workbench.data import calendar
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.engine import Decision, Engine, ReplayFeed, load_sessions
from workbench.journal.reader import replay as read_journal
from workbench.session import runner
from workbench.session.runner import run_session

P99_TARGET_MS = 20.0
DAY_TARGET_S = 10.0


@wb.strategy(warmup=lambda p: max(p["slow"], p["rsi_period"] + 1))
def sma_rsi(bars, fast: int = 10, slow: int = 30, rsi_period: int = 14,
            rsi_max: float = 70.0, rsi_exit: float = 80.0):
    """Enter on a fast/slow SMA cross unless overbought; exit on the cross back or RSI > exit."""
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    rsi = wb.ta.RSI(bars.close, rsi_period)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma) & (rsi < rsi_max),
                      exits=wb.crossed_below(fast_ma, slow_ma) | (rsi > rsi_exit))


def replay(feed: ReplayFeed, window: int | None, incremental: bool = True) -> dict:
    """One replay of ``feed`` through a fresh engine: latency, wall time, throughput."""
    emitted = 0

    def count(decision: Decision) -> None:
        nonlocal emitted
        emitted += len(decision.signals)

    engine = Engine(sma_rsi, feed.symbols, on_decision=count, window=window, log_notices=False,
                    incremental=incremental)
    start = time.perf_counter()
    timestamps = engine.run(feed)
    wall = time.perf_counter() - start
    bars = int(feed.replayed.close.notna().to_numpy().sum())
    return {**engine.latency.summary(), "timestamps": timestamps, "bars": bars, "wall_s": wall,
            "bars_per_s": bars / wall, "signals": emitted,
            "window_rows": f"{len(engine.window)} stored, {engine.eval_rows or len(engine.window)} "
                           f"evaluated",
            "anchored": engine.window.anchored}


# the steps of a session's bar timed by --sections: (label, owner module, class, method)
SECTIONS = (
    ("broker.on_bars: fills due on the bar", "workbench.brokers.sim", "SimBroker", "on_bars"),
    ("manager.process_updates: fills and statuses journaled", "workbench.orders.manager",
     "OrderManager", "process_updates"),
    ("manager.settle_unknown", "workbench.orders.manager", "OrderManager", "settle_unknown"),
    ("risk.on_bar: kill switches", "workbench.risk.gateway", "RiskGateway", "on_bar"),
    ("trader.context: the risk snapshot", "workbench.session.trader", "Trader", "context"),
    ("engine.on_bars: the decision", "workbench.engine.engine", "Engine", "on_bars"),
    ("trader.from_signals: intents sized", "workbench.session.trader", "Trader", "from_signals"),
    ("risk.review: pre-trade checks, journaled", "workbench.risk.gateway", "RiskGateway",
     "review"),
    ("manager.stage: intents journaled, booked", "workbench.orders.manager", "OrderManager",
     "stage"),
    ("manager.commit: sync, send, replies journaled", "workbench.orders.manager",
     "OrderManager", "commit"),
    ("  of which journal.sync (fdatasync)", "workbench.journal.writer", "Journal", "sync"),
    ("  of which broker.submit_many / submit", "workbench.brokers.sim", "SimBroker",
     "submit_many"),
    ("  of which broker.submit (single intents)", "workbench.brokers.sim", "SimBroker",
     "submit"),
    ("journal.append, all events (inside the above too)", "workbench.journal.writer",
     "Journal", "append"),
)


@contextmanager
def sections(totals: dict):
    """Time the methods of SECTIONS (perf_counter around each call; inclusive: a section
    called inside another counts in both) into ``totals[label]`` as [seconds, calls]."""
    import importlib
    saved = []
    for label, module, cls, name in SECTIONS:
        owner = getattr(importlib.import_module(module), cls)
        original = owner.__dict__.get(name)
        totals[label] = [0.0, 0]
        if original is None:  # not in this tree's code (an older revision)
            continue

        def timed(*a, _f=original, _t=totals[label], **kw):
            t0 = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                _t[0] += time.perf_counter() - t0
                _t[1] += 1
        saved.append((owner, name, original))
        setattr(owner, name, timed)
    try:
        yield totals
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@contextmanager
def recomputing(on: bool):
    """The session's engine as before issue 10 (whole window, no carried state): bench only."""
    original = runner.Engine
    if on:
        runner.Engine = functools.partial(original, incremental=False)
    try:
        yield
    finally:
        runner.Engine = original


def session_replay(store: Store, root: Path, day, history_days: int, max_orders,
                   recompute: bool = False, timed: dict | None = None) -> dict:
    """One fresh ``run_session`` of ``day``: latency to orders sent, wall time, throughput."""
    bars = int(load_sessions(1, None, "1Min", end=day, store=store).close.notna().to_numpy().sum())
    cpu = _cpu_s()
    start = time.perf_counter()
    risk = load_settings().risk
    if max_orders is not None:  # the order-rate kill switch (default: halts at order 51)
        risk = risk.model_copy(update={"max_orders": max_orders})
    with recomputing(recompute), (sections(timed) if timed is not None else nullcontext()):
        result = run_session(sma_rsi, replay_date=day, speed="max", history_days=history_days,
                             store=store, runs_root=root / "runs", risk=risk)
    wall = time.perf_counter() - start
    cpu = _cpu_s() - cpu
    lat = result.latency_ms
    states = [e.payload for e in read_journal(result.path).events if e.type == "state"]
    halts = "".join(f" ({p.get('state')}: {p.get('reason')})" for p in states[-1:]
                    if p.get("state") != "active")  # active (a resume, a force exit): no halt
    return {"p50_ms": lat["p50"], "p99_ms": lat["p99"], "max_ms": lat["max"],
            "count": lat["count"], "timestamps": result.bars, "bars": bars, "wall_s": wall,
            "cpu_s": cpu,
            "bars_per_s": bars / wall, "signals": f"{result.orders} orders, {result.fills} fills",
            "window_rows": f"outcome {result.outcome}, state {result.state}{halts}",
            "anchored": False}


def _cpu_s() -> float:
    """This process's CPU time so far (user + system), seconds: on a shared machine the
    steadier figure to compare than wall time or latency (the other jobs' load moves
    those most)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


ROOT = Path(__file__).resolve().parent.parent


def _export(rev: str, into: Path) -> Path:
    """The ``workbench`` package of git revision ``rev`` under ``into`` (read from the
    repository with ``git archive``: nothing in it changes)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "workbench"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _worker_run(tree: Path, home: str, day, args, timed: bool = False) -> dict:
    """One ``session_replay`` in a fresh process with ``tree``'s ``workbench`` first on
    the path (this script's strategy and timing, that tree's session)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "WORKBENCH_HOME": home}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(day),
           "--history-days", str(args.history_days)]
    cmd += ["--max-orders", str(args.max_orders)] if args.max_orders is not None else []
    cmd += ["--sections"] if timed else []
    out = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"worker on {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker(args) -> None:
    """--worker DAY: one session run on $WORKBENCH_HOME/data, its figures as JSON."""
    import workbench
    home = Path(os.environ["WORKBENCH_HOME"])
    store = Store(home / "data")
    day = pd.Timestamp(args.worker).date()
    sma_rsi(load_sessions(1, None, "1Min", end=day, store=store).iloc(slice(0, 40)))  # warm
    timed: dict | None = {} if args.sections else None
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        r = session_replay(store, Path(tmp), day, args.history_days, args.max_orders,
                           timed=timed)
    r["workbench"] = str(Path(workbench.__file__).parent)
    if timed is not None:
        r["sections"] = timed
    print(json.dumps(r))


def compare_trees(store_home: str, day, args) -> None:
    """--before REV: that revision's session and this checkout's, alternating run by run
    in fresh processes on the same stored bars; before / after ratios of the best runs."""
    with tempfile.TemporaryDirectory(prefix="wb-engine-before-") as tmp:
        trees = {f"before ({args.before})": _export(args.before, Path(tmp) / "before"),
                 "after (this checkout)": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                r = _worker_run(tree, store_home, day, args)
                runs[name].append(r)
                print(f"{name}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max "
                      f"{r['max_ms']:.1f} ms; day in {r['wall_s']:.1f} s, CPU {r['cpu_s']:.2f} s; "
                      f"{r['signals']}; "
                      f"{r['window_rows']}  [{r['workbench']}]", flush=True)
    before, after = runs.values()
    for key in ("p50_ms", "p99_ms", "wall_s", "cpu_s"):
        best_b, best_a = min(r[key] for r in before), min(r[key] for r in after)
        print(f"best of {args.repeat}: {key} before {best_b:.1f}, after {best_a:.1f}: "
              f"before / after {best_b / best_a:.2f}x")
    worst_p99 = max(r["p99_ms"] for r in after)
    worst_day = max(r["wall_s"] for r in after)
    lower = sum(b["cpu_s"] > a["cpu_s"] for b, a in zip(before, after))
    pairs = ", ".join(f"{b['cpu_s']:.2f}/{a['cpu_s']:.2f}" for b, a in zip(before, after))
    print(f"CPU time of the run: after lower in {lower} of {len(after)} pairs; pairs (before / "
          f"after): {pairs}")
    print(f"targets (after): p99 <= {P99_TARGET_MS:.0f} ms: "
          f"{'met' if worst_p99 <= P99_TARGET_MS else 'MISSED'} (worst {worst_p99:.1f} ms, "
          f"best {min(r['p99_ms'] for r in after):.1f} ms); a day in <= {DAY_TARGET_S:.0f} s: "
          f"{'met' if worst_day <= DAY_TARGET_S else 'MISSED'} (worst {worst_day:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--days", type=int, default=1, help="sessions replayed")
    ap.add_argument("--path", choices=("engine", "session"), default="engine",
                    help="engine alone (to signals) or the whole session (to orders sent)")
    ap.add_argument("--max-orders", type=int, default=None,
                    help="session: the order-rate limit per window (default: the settings')")
    ap.add_argument("--history-days", type=int, default=None,
                    help="sessions preloaded before them (default: 0 engine, 1 session)")
    ap.add_argument("--window", type=int, default=None, help="engine window rows (default: engine's)")
    ap.add_argument("--recompute", action="store_true",
                    help="recompute the strategy on the whole window at every bar (before issue 10)")
    ap.add_argument("--compare", action="store_true",
                    help="alternate runs with and without --recompute; print the ratios")
    ap.add_argument("--sections", action="store_true",
                    help="session: one more run with the steps of a bar timed (not in the "
                         "figures above: the timers add their own cost)")
    ap.add_argument("--before", metavar="REV",
                    help="session: also run git revision REV's workbench, alternating with "
                         "this checkout's in fresh processes; print before/after ratios")
    ap.add_argument("--worker", metavar="DAY", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.history_days is None:
        args.history_days = 1 if args.path == "session" else 0
    if args.worker:
        return worker(args)
    if args.before and args.path != "session":
        ap.error("--before compares sessions: give --path session")
    if args.path == "session" and args.days != 1:
        ap.error("--path session replays one day (--days 1)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = tmp  # the session's runs and any default store
        store = Store(Path(tmp) / "data")
        began = time.perf_counter()
        total = args.days + args.history_days
        frame = synthesize(args.symbols, total, "1Min", args.seed, None)
        day = frame.ts.max().tz_convert(calendar.NY).date()
        store.write(frame, "1Min", source="synth")
        del frame
        print(f"setup: {args.symbols} symbols x {total} session(s) of 1Min bars stored in "
              f"{time.perf_counter() - began:.1f} s (not timed below)")
        feed = ReplayFeed.from_store(args.days, None, "1Min", history_days=args.history_days,
                                     store=store)
        sma_rsi(feed.replayed.iloc(slice(0, 40)))  # first TA-Lib calls and imports: not timed
        print(f"replay: {len(feed)} timestamps, {len(feed.history() or [])} history rows; "
              f"strategy {sma_rsi!r}")
        if args.before:
            print(f"session: run_session of {day}, {args.history_days} history day(s)")
            return compare_trees(tmp, day, args)
        if args.path == "session":
            print(f"session: run_session of {day}, {args.history_days} history day(s)")
            modes = [False, True] * args.repeat if args.compare else [args.recompute] * args.repeat
            runs = [session_replay(store, Path(tmp), day, args.history_days, args.max_orders, m)
                    for m in modes]
        else:
            modes = [False, True] * args.repeat if args.compare else [args.recompute] * args.repeat
            runs = [replay(feed, args.window, not m) for m in modes]
        for r, m in zip(runs, modes):
            r["mode"] = "recomputed (before)" if m else "carried (after)"
        if args.path == "session" and args.sections:
            timed: dict = {}
            r = session_replay(store, Path(tmp), day, args.history_days, args.max_orders,
                               args.recompute, timed)
            print(f"sections (one more run, timers on: p50 {r['p50_ms']:.1f} ms, p99 "
                  f"{r['p99_ms']:.1f} ms, {r['wall_s']:.1f} s), per bar over "
                  f"{r['timestamps']} bars:")
            for label, (secs, calls) in timed.items():
                print(f"  {label:<58} {secs / r['timestamps'] * 1e3:7.2f} ms  "
                      f"({calls:,} calls, {secs / max(calls, 1) * 1e6:,.0f} us each)")
    for i, r in enumerate(runs, 1):
        tail = (f"{r['signals']} signals; window {r['window_rows']} rows"
                f"{' (anchored)' if r['anchored'] else ''}" if args.path == "engine"
                else f"{r['signals']}; {r['window_rows']}")
        cpu = f", CPU {r['cpu_s']:.2f} s" if "cpu_s" in r else ""
        print(f"run {i}, {r['mode']}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
              f"per timestamp ({r['count']} decided); {r['timestamps']} timestamps in "
              f"{r['wall_s']:.1f} s{cpu} = {r['bars_per_s']:,.0f} bars/s; {tail}")
    if args.compare:
        after = [r for r, m in zip(runs, modes) if not m]
        before = [r for r, m in zip(runs, modes) if m]
        for key in ("p50_ms", "p99_ms", "wall_s"):
            ratio = min(b[key] for b in before) / min(a[key] for a in after)
            print(f"before / after, best of runs: {key} {ratio:.1f}x")
        runs = after
    worst_p99 = max(r["p99_ms"] for r in runs)
    worst_day = max(r["wall_s"] for r in runs) / args.days
    print(f"targets: p99 <= {P99_TARGET_MS:.0f} ms: {'met' if worst_p99 <= P99_TARGET_MS else 'MISSED'} "
          f"(worst {worst_p99:.1f} ms); a day in <= {DAY_TARGET_S:.0f} s: "
          f"{'met' if worst_day <= DAY_TARGET_S else 'MISSED'} (worst {worst_day:.1f} s per day)")


if __name__ == "__main__":
    main()
