"""Processes for the session tests.

``python -m tests.session_procs reader OUT DONE_FILE``: a dashboard-like reader of the
catalog of the ``runs/`` under ``WORKBENCH_HOME``, every 100 ms while a real ``workbench
session`` writes; it stops after the round that follows the appearance of ``DONE_FILE``
(or after 600 s) and writes its report to ``OUT`` as JSON: rounds, rounds that saw events,
rounds that saw more than the last, errors, problems and what it saw last.

``python -m tests.session_procs session NOTEBOOK DAY [SL_STOP TP_STOP]``: ``run_session`` of
the notebook's strategy (``tests.notebook_strategies.strategy_of``) in this process, no
kernel, replaying DAY at 1Min (with those stops as broker-side orders); prints the ``SessionResult`` as JSON. What the crash-point tests kill
(``WORKBENCH_TEST_CRASH_AT`` in its environment) and restart in the same run.

``python -m tests.session_procs burst DAY``: the same with :func:`burst`, whose bars carry
many intents each (every symbol enters, then every symbol exits): the group-commit crash
points (a crash between a bar's one sync and its first, middle or last send).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from workbench.journal import read_events
from workbench.journal.catalog import catalog
from workbench.model import OrderStatus
from workbench.paths import runs_dir
from workbench.runs.status import session_status

STATUSES = {s.value for s in OrderStatus}
TYPE = re.compile(r"^[a-z_]+$")

# every whole line must be an event: a half-written one would show as an invalid line
_LINES = """SELECT run_id, count(*) AS lines, count(*) FILTER (WHERE NOT json_valid(line)) AS bad
            FROM _journal_lines GROUP BY run_id"""
_EVENTS = """SELECT run_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi,
             count(DISTINCT seq) AS distinct_seq,
             count(*) FILTER (WHERE seq IS NULL OR ts IS NULL OR type IS NULL
                              OR json_type(payload) IS DISTINCT FROM 'OBJECT') AS bad,
             list(DISTINCT type) AS types
             FROM events GROUP BY run_id"""
_NULLS = {
    "orders": "client_order_id IS NULL OR symbol IS NULL OR side IS NULL OR qty IS NULL "
              "OR status IS NULL",
    "fills": "execution_id IS NULL OR client_order_id IS NULL OR qty IS NULL "
             "OR price IS NULL OR time IS NULL",
    "positions": "symbol IS NULL OR qty IS NULL",
    "equity": "equity IS NULL OR cash IS NULL",
    "runs": "run_id IS NULL OR kind IS NULL OR status IS NULL",
}


def _events(con, last: dict[str, int]) -> tuple[list[str], int]:
    """Problems in the ``events`` view (seq gap-free from 1 per run, never going back,
    every row parsed) and the number of events seen."""
    problems, total = [], 0
    for run_id, lines, bad in con.execute(_LINES).fetchall():
        if bad:
            problems.append(f"{run_id}: {bad} of {lines} whole lines are not JSON")
    for run_id, n, lo, hi, distinct, bad, types in con.execute(_EVENTS).fetchall():
        total += n
        if bad or lo != 1 or hi != n or distinct != n:
            problems.append(f"{run_id}: {n} events, seq {lo}..{hi}, {bad} unparsed")
        if hi < last.get(run_id, 0):
            problems.append(f"{run_id}: seq went back from {last[run_id]} to {hi}")
        if not all(TYPE.match(t or "") for t in types):
            problems.append(f"{run_id}: odd event types {types}")
        last[run_id] = hi
    return problems, total


def _views(con) -> tuple[list[str], dict[str, int]]:
    """Problems in the other views (incomplete rows, unknown statuses) and their counts."""
    problems, counts = [], {}
    for view, nulls in _NULLS.items():
        n, bad = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {nulls}) "
                             f"FROM {view}").fetchone()
        counts[view] = n
        if bad:
            problems.append(f"{view}: {bad} of {n} rows incomplete")
    statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM orders").fetchall()}
    if not statuses <= STATUSES:
        problems.append(f"orders: unknown statuses {statuses - STATUSES}")
    return problems, counts


def _tail(root: Path, tails: dict[str, int]) -> list[str]:
    """Follow every journal with the Python reader too: each event the next seq."""
    problems = []
    for events in root.glob("*/events"):
        run = events.parent.name
        for event in read_events(events.parent, after_seq=tails.get(run), warn=False):
            if event.seq != tails.get(run, 0) + 1 or not isinstance(event.payload, dict):
                problems.append(f"{run}: seq {event.seq} after {tails.get(run, 0)}")
            tails[run] = event.seq
    return problems


def reader(out: str, done_file: str) -> None:
    """Every 100 ms: every view, ``workbench status``'s query and the journal tails; a new
    catalog connection every 10th round."""
    root = runs_dir()
    rounds, with_data, grew, previous, errors, problems = 0, 0, 0, 0, [], []
    last, tails, counts, status = {}, {}, {}, []
    con, deadline = catalog(), time.monotonic() + 600
    while time.monotonic() < deadline:
        finished = os.path.exists(done_file)
        try:
            if rounds % 10 == 9:
                con.close()
                con = catalog()
            found, seen = _events(con, last)
            more, counts = _views(con)
            status = session_status()
            problems += found + more + _tail(root, tails)
            rounds += 1
            with_data += seen > 0
            grew += seen > previous
            previous = seen
        except Exception as e:  # noqa: BLE001 - the test reports every error
            errors.append(f"{type(e).__name__}: {e}")
        if finished:
            break
        time.sleep(0.1)
    report = {"rounds": rounds, "with_data": with_data, "grew": grew, "errors": errors,
              "problems": problems[:20], "seen": last, "tails": tails, "counts": counts,
              "status": status}
    Path(out).write_text(json.dumps(report, default=str))


def session(notebook: str, day: str, sl_stop: str = "", tp_stop: str = "") -> None:
    from tests.notebook_strategies import strategy_of
    from workbench.session.runner import run_session

    stops = {k: float(v) for k, v in (("sl_stop", sl_stop), ("tp_stop", tp_stop)) if v}
    result = run_session(strategy_of(notebook), {}, replay_date=day, timeframe="1Min", **stops)
    print(json.dumps(result.to_dict()))


def burst(bars, every: int = 30, hold: int = 10):
    """Every symbol enters on the minutes divisible by ``every`` and exits ``hold`` minutes
    later: bars with one intent per symbol, all in one group."""
    import numpy as np
    import pandas as pd

    import workbench as wb

    minute = np.asarray(bars.close.index.minute)
    def at(m):
        return pd.DataFrame(np.repeat((minute % every == m)[:, None], bars.close.shape[1], 1),
                            index=bars.close.index, columns=bars.close.columns)
    return wb.Signals(entries=at(0), exits=at(hold))


def burst_session(day: str) -> None:
    from workbench.session.runner import run_session

    result = run_session(burst, {}, replay_date=day, timeframe="1Min")
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    {"reader": reader, "session": session, "burst": burst_session}[sys.argv[1]](*sys.argv[2:])
