"""The research and drift pages' queries on a large catalog: 100 runs, 1 million journal events.

    python bench/dashboard.py [--runs 100] [--events 1000000] [--repeat 5] [--browser]

A temporary home gets a synthetic daily store, ``--runs`` records: one in ten a backtest
(a real ``wb.backtest`` result written as its record would be), the others paper sessions
whose journals share ``--events`` events (lines in the journal's own format: bars,
signals, intents, order updates, fills, positions, equity, heartbeats). Measured, each the
median of ``--repeat`` fresh runs (a new page is a new kernel: nothing cached between):

* research, first render: the run list (the catalog's ``runs`` view) and the newest
  backtest's equity, stats, trades and a symbol's close (what the page draws first);
* research, refresh: the run list again (the "Reload list" button);
* drift, first render: one session's journal read whole (``RunJournal``) into its fills,
  equity and signals frames (the replay backtest is not a catalog query: reported apart);
* drift, refresh: a bar's worth of events appended, then read (only the new bytes);
* the baseline: the same session's fills through the catalog's ``fills`` view (every
  journal of the catalog scanned), to show what reading one run's journal saves.

Targets (issue 13): first render <= 3 s, refresh <= 0.5 s. ``--browser`` also times the
research page served by ``workbench dashboard`` in Chromium (load to the stats table): each
page load is a new kernel (Python, the page's imports, Voila's execution, plotly.js in the
browser), so this measures far more than the queries. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

FIRST, REFRESH = 3.0, 0.5
SYMBOLS = [f"S{i:02d}" for i in range(20)]
DAY = pd.Timestamp("2026-11-20 14:30", tz="UTC")


def _stamp(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def _summed(line: str) -> str:
    """The line with its checksum, as the journal writes it (the readers verify it)."""
    head = line[:-1]  # the event without its closing brace
    return f'{head},"sum":"{hashlib.sha256(head.encode()).hexdigest()[:8]}"}}'


def _bar_lines(seq: int, t: pd.Timestamp, i: int) -> list[str]:
    """One bar's events, as a session journals them (a fill every few bars)."""
    ts = _stamp(t + pd.Timedelta(minutes=1))
    bar = _stamp(t)
    sym = SYMBOLS[i % len(SYMBOLS)]
    cid = f"wb-bench-{sym}-{t:%Y%m%dT%H%M%S}-entry"
    side = "buy" if i % 2 == 0 else "sell"
    out = [
        f'{{"type":"bar","seq":{seq},"ts":"{ts}","payload":{{"bar_time":"{bar}","symbols":20,"volume":1000000.0}}}}',
        f'{{"type":"signal","seq":{seq + 1},"ts":"{ts}","payload":{{"_type":"Signal","strategy":"bench","symbol":"{sym}","bar_time":"{bar}","entry":{str(side == "buy").lower()},"exit":{str(side == "sell").lower()},"short_entry":false,"short_exit":false,"weight":null,"sl_stop":null,"tp_stop":null}}}}',
        f'{{"type":"intent","seq":{seq + 2},"ts":"{ts}","payload":{{"_type":"OrderIntent","client_order_id":"{cid}","symbol":"{sym}","side":"{side}","quantity":"100","order_type":"market","limit_price":null,"stop_price":null,"time_in_force":"day","bar_time":"{bar}","reason":"signal"}}}}',
        f'{{"type":"order_update","seq":{seq + 3},"ts":"{ts}","payload":{{"client_order_id":"{cid}","status":"filled","filled_quantity":"100","average_price":"20.01"}}}}',
        f'{{"type":"fill","seq":{seq + 4},"ts":"{ts}","payload":{{"_type":"Fill","execution_id":"x{seq}","client_order_id":"{cid}","symbol":"{sym}","side":"{side}","quantity":"100","price":"20.01","fee":"0.2","time":"{ts}","source":"stream"}}}}',
        f'{{"type":"position","seq":{seq + 5},"ts":"{ts}","payload":{{"_type":"Position","symbol":"{sym}","quantity":"100","average_price":"20.01"}}}}',
        f'{{"type":"equity","seq":{seq + 6},"ts":"{ts}","payload":{{"equity":"{100000 + i % 97}.5","cash":"90000.0","pnl":"{i % 97}.5","latency_ms":2.5}}}}',
        f'{{"type":"heartbeat","seq":{seq + 7},"ts":"{ts}","payload":{{"wall":"{ts}","bars":{i},"state":"active","orders":{i},"positions":3}}}}',
    ]
    return [_summed(line) for line in out]


PER_BAR = 8


def _session(root: Path, k: int, events: int, started: pd.Timestamp) -> Path:
    run_id = f"{started:%Y%m%dT%H%M%SZ}-session-bench-{k:06x}"
    path = root / run_id
    (path / "events").mkdir(parents=True)
    (path / "results").mkdir()
    manifest = {"schema_version": 1, "run_id": run_id, "kind": "session", "mode": "paper",
                "strategy": "bench", "params": {"fast": 5}, "status": "finished",
                "outcome": "succeeded", "started_at": started.isoformat(),
                "ended_at": (started + pd.Timedelta(hours=7)).isoformat(),
                "notebook": {"path": "bench.ipynb", "hash": "sha256:0"}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    start = (f'{{"type":"session_start","seq":1,"ts":"{_stamp(DAY)}","payload":{{"replay_date":'
             f'"2026-11-20","start_equity":"100000","symbols":{json.dumps(SYMBOLS)}}}}}')
    lines, seq, i = [_summed(start)], 2, 0
    t = DAY
    while seq + PER_BAR <= events + 1:
        lines += _bar_lines(seq, t, i)
        seq, i, t = seq + PER_BAR, i + 1, t + pd.Timedelta(minutes=1)
    (path / "events" / "000001.jsonl").write_text("\n".join(lines) + "\n")
    return path


def _backtest(root: Path, k: int, result, started: pd.Timestamp, settings: dict) -> Path:
    run_id = f"{started:%Y%m%dT%H%M%SZ}-backtest-bench-{k:06x}"
    path = root / run_id
    (path / "results").mkdir(parents=True)
    manifest = {"schema_version": 1, "run_id": run_id, "kind": "backtest", "mode": "backtest",
                "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "status": "finished",
                "outcome": "succeeded", "started_at": started.isoformat(),
                "ended_at": started.isoformat(), "notebook": {"path": "bench.ipynb", "hash": "0"}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "results" / "settings.json").write_text(json.dumps(settings))
    result.stats_table().to_parquet(path / "results" / "stats.parquet", index=False)
    result.trades().to_parquet(path / "results" / "trades.parquet", index=False)
    result.equity().to_parquet(path / "results" / "equity.parquet")
    return path


def build(home: Path, runs: int, events: int) -> tuple[Path, Path]:
    """The home: a daily store, backtests and sessions; (newest backtest, newest session)."""
    import workbench as wb
    from workbench.data.sources import synth_into_store
    from workbench.data.store import Store

    synth_into_store(Store(home / "data"), len(SYMBOLS), 500, "1Day", 7, "2026-11-20")
    bars = wb.data.load(None, "1Day")

    @wb.strategy(warmup=lambda p: p["slow"])
    def sma_cross(bars, fast: int = 10, slow: int = 30):
        fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
        return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                          exits=wb.crossed_below(fast_ma, slow_ma))

    result = wb.backtest(sma_cross, bars, fast=10, slow=30)
    settings = {"mode": "backtest", "data": {"timeframe": "1Day", "symbols": list(bars.symbols),
                                             "start": bars.index[0].isoformat(),
                                             "end": bars.index[-1].isoformat()}}
    root = home / "runs"
    sessions = runs - max(1, runs // 10)  # every tenth run a backtest, the newest one too
    each = events // max(1, sessions)
    base = pd.Timestamp("2026-11-01 12:00", tz="UTC")
    newest = {}
    for k in range(runs):
        started = base + pd.Timedelta(minutes=k)
        if k % 10 == 9 or (k == runs - 1 and "b" not in newest):
            newest["b"] = _backtest(root, k, result, started, settings)
        else:
            newest["s"] = _session(root, k, each, started)
    return newest["b"], newest["s"]


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def research_first(root: Path, backtest: Path) -> None:
    from workbench.dashboards.queries import RunList
    from workbench.dashboards.research import RunView

    runs = RunList(root)
    table = runs.table()
    assert backtest.name in set(table["run_id"])
    view = RunView(backtest)
    assert view.equity() is not None and len(view.stats()) > 5
    trades = view.trades()
    assert view.close(str(trades["symbol"].iloc[0])).size > 100
    runs.close()


def monitor_times(home: Path, repeat: int) -> tuple[float, float, tuple[int, int]]:
    """The monitor's state at its first render (the newest sessions followed, each journal
    read whole, statuses, recent orders, the deployments) and a refresh after each followed
    session's journal grew by a bar: what its 2-second task reads."""
    from workbench.dashboards.monitor_state import MonitorState

    def first():
        state = MonitorState(home / "runs", home / "deployments")
        state.refresh()
        now = pd.Timestamp.now(tz="UTC")
        for view in state.sessions():
            view.status(now, 60, 600), view.recent_orders()
        state.deployments()
        return state

    first()  # imports out of the figure
    state = first()
    followed = (len(state.sessions()), sum(v.last_seq for v in state.sessions()))
    took_first = _median(first, repeat)
    seq = {v.run_id: v.last_seq + 1 for v in state.sessions()}
    k = [0]

    def refresh():
        k[0] += 1
        for view in state.sessions():
            segment = max((view.path / "events").glob("*.jsonl"))
            with open(segment, "a") as f:
                f.write("\n".join(_bar_lines(seq[view.run_id], DAY + pd.Timedelta(days=1 + k[0]),
                                             seq[view.run_id])) + "\n")
            seq[view.run_id] += PER_BAR
        assert state.refresh()

    return took_first, _median(refresh, repeat), followed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--keep", help="build the home in this (new) folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.keep) if args.keep else Path(tmp) / "home"
        os.environ["WORKBENCH_HOME"] = str(home)
        t = time.perf_counter()
        backtest, session = build(home, args.runs, args.events)
        root = home / "runs"
        lines = sum(p.read_bytes().count(b"\n") for p in root.glob("*/events/*.jsonl"))
        size = sum(p.stat().st_size for p in root.glob("*/events/*.jsonl"))
        print(f"catalog: {len(list(root.iterdir()))} runs, {lines:,} journal events "
              f"({size / 1e6:,.0f} MB), built in {time.perf_counter() - t:.1f} s")
        from workbench.dashboards.queries import RunJournal, RunList

        research_first(root, backtest)  # imports and first compiles out of the figures
        first = _median(lambda: research_first(root, backtest), args.repeat)
        runs = RunList(root)
        refresh = _median(lambda: runs.table(), args.repeat)

        def drift_first():
            journal = RunJournal(session)
            journal.refresh()
            journal.fills(), journal.equity(), journal.signals()
            return journal

        journal = drift_first()
        events_one = journal.events
        d_first = _median(drift_first, args.repeat)
        segment = session / "events" / "000001.jsonl"
        seq = [events_one + 1]

        def drift_refresh():
            with open(segment, "a") as f:  # a bar's worth of events, then read
                f.write("\n".join(_bar_lines(seq[0], DAY + pd.Timedelta(days=1), seq[0])) + "\n")
            seq[0] += PER_BAR
            assert journal.refresh() == PER_BAR
            journal.fills(), journal.equity(), journal.signals()

        d_refresh = _median(drift_refresh, args.repeat)
        m_first, m_refresh, followed = monitor_times(home, args.repeat)
        from workbench.journal.catalog import catalog

        con = catalog(root)
        scan = _median(lambda: con.execute("SELECT * FROM fills WHERE run_id = ?",
                                           [session.name]).df(), args.repeat)
        rows = [("research first render (run list + newest backtest)", first, FIRST),
                ("research refresh (run list)", refresh, REFRESH),
                (f"drift first render (one session, {events_one:,} events)", d_first, FIRST),
                (f"drift refresh ({PER_BAR} new events)", d_refresh, REFRESH),
                (f"monitor first render ({followed[0]} sessions, {followed[1]:,} events)",
                 m_first, FIRST),
                (f"monitor refresh (a bar's {PER_BAR} events in each)", m_refresh, REFRESH)]
        if args.browser:
            rows.append(("research page in Chromium (served, preheated, to stats)",
                         browser_load(home), FIRST))
        for name, took, target in rows:
            verdict = "ok" if took <= target else "OVER"
            print(f"{name:<58} {took * 1000:9.1f} ms  target {target:.1f} s  "
                  f"{took / target:5.2f} of it  {verdict}")
        print(f"baseline: that session's fills alone through the catalog's view (every "
              f"journal scanned) {scan * 1000:.0f} ms; the drift page's first read (every "
              f"event of the run, three frames) is {d_first / scan:.2f}x of it, a refresh "
              f"{d_refresh / scan:.2f}x")
        if any(took > target for _, took, target in rows):
            sys.exit(1)


def browser_load(home: Path, loads: int = 5) -> float:
    """Seconds from opening the research page (served) to its stats table: the median of
    ``loads`` page loads, each finding a preheated kernel (as a served page does once the
    server has run its pages' notebooks; before that a page waits for its kernel)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.dashboard_pages import Dashboard, DashboardPage, chromium

    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    shots = home / "shots"
    shots.mkdir(exist_ok=True)
    with Dashboard.start(home, env) as server, chromium() as browser:
        t = time.perf_counter()
        server.preheated()
        print(f"the three pages' kernels preheated {time.perf_counter() - t:.1f} s after the "
              "server printed its URL")
        took, drawn = [], []
        for i in range(loads):
            server.preheated()  # the kernel the last page took replaced (a next visitor's)
            t = time.perf_counter()
            page = DashboardPage.open(browser, server.url("research.ipynb"), shots, f"r{i}")
            page.wait_for(".wb-stats")
            took.append(time.perf_counter() - t)
            page.wait_for(".js-plotly-plot")
            drawn.append(time.perf_counter() - t)
            assert page.problems() == [], page.problems()
            page.close()
    print(f"research page loads to the stats table: {', '.join(f'{s:.1f}' for s in took)} s; "
          f"to its first figure drawn: {', '.join(f'{s:.1f}' for s in drawn)} s")
    return statistics.median(took)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
