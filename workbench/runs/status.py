"""``workbench status``: every session run as the catalog sees it (never the broker).

One row per session run: id, status and outcome, the last heartbeat (its wall time and
age against now), open positions, the last equity and P&L, the risk state (the last
``state`` event; "active" when none), and the damage of its journal.

Liveness comes from the run's locks, not from the manifest: a manifest says "running"
from the start until the session closes its record, and keeps saying so when the process
died without closing it (killed, disk full, refused before it began). A run is alive while
a process holds one of its locks (:data:`RUN_LOCKS`: the journal's writer, ``workbench
session``'s runner, a supervisor), asked with :func:`workbench.fsutil.lock_held`. A run
whose manifest says running and that no process holds is ``"died"`` (with its last
heartbeat), unless its manifest or executed notebook was written after its journal and
less than :data:`START_GRACE_S` ago: then it is ``"starting"`` (a kernel starting, outside
``workbench session`` and a supervisor, before it opens the journal).
``recorded_status`` keeps what the manifest says.

Damage: the catalog's ``damage`` view (a line that is not a valid event, a checksum that
does not match, missing events or segments). A damaged run's figures are partial: its row
says so (``damaged``, ``damage``), and ``workbench status`` warns and exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from workbench.clock import LiveClock
from workbench.fsutil import lock_held
from workbench.journal.catalog import catalog
from workbench.journal.reader import EVENTS_DIR, segments
from workbench.journal.writer import LOCK_FILE
from workbench.model import events as ev

__all__ = ["RUN_LOCKS", "START_GRACE_S", "describe_damage", "liveness", "session_status"]

#: the locks a live run's processes hold, relative to its folder: the journal's writer (the
#: session), the runner of ``workbench session`` (its kernel starting), a supervisor
#: (between attempts)
RUN_LOCKS = (f"{EVENTS_DIR}/{LOCK_FILE}", "runner.lock", "supervisor.lock")
#: seconds a run no process holds is taken as starting, after its last record write
START_GRACE_S = 30.0
_RECENT_FILES = ("manifest.json", "notebook.ipynb")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_LAST = f"""
SELECT run_id, type, arg_max(payload, seq) AS payload
FROM events WHERE type IN ({", ".join(map(_quote, (ev.HEARTBEAT, ev.STATE, ev.EQUITY)))})
AND run_id IN ({{ids}})
GROUP BY run_id, type"""


def liveness(path: Path, recorded: str | None, now: pd.Timestamp) -> str:
    """The status to show for the run in ``path`` whose manifest says ``recorded``:
    "running" while a process holds one of its :data:`RUN_LOCKS`, else "starting" when its
    record was written after its journal and less than :data:`START_GRACE_S` ago, else
    "died"; an ended run's own status ("finished"). (A deployment's supervisor holds its
    lock elsewhere: between two attempts its run shows died until the next one starts.)"""
    if recorded != "running":
        return str(recorded)
    if any(lock_held(path / name) for name in RUN_LOCKS):
        return "running"
    written = _newest(path / n for n in _RECENT_FILES)
    journaled = _newest(segments(path / EVENTS_DIR))
    if written is None or (journaled is not None and journaled >= written):
        return "died"  # its journal was written after its record: it was past starting
    age = (now - pd.Timestamp(written, unit="s", tz="UTC")).total_seconds()
    return "starting" if age < START_GRACE_S else "died"


def _newest(files) -> float | None:
    """The latest modification time of ``files`` that exist (None: none does)."""
    times = []
    for path in files:
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:
            pass
    return max(times, default=None)


def session_status(root=None, clock=None) -> list[dict]:
    """Session runs, newest first, as plain JSON-able dicts (see the module doc)."""
    con = catalog(root)
    try:
        runs = con.execute("SELECT run_id, kind, status, outcome, started_at, ended_at, path "
                           "FROM runs WHERE kind = 'session' ORDER BY run_id DESC").fetchall()
        if not runs:
            return []
        ids = ", ".join(_quote(r[0]) for r in runs)
        last = {(r, t): json.loads(p) for r, t, p in con.execute(_LAST.format(ids=ids)).fetchall()}
        pos = con.execute(f"SELECT run_id, symbol, qty FROM positions WHERE qty <> 0 "
                          f"AND run_id IN ({ids}) ORDER BY symbol").fetchall()
        damage = con.execute(f"SELECT run_id, segment, line, reason FROM damage "
                             f"WHERE run_id IN ({ids})").fetchall()
    finally:
        con.close()
    now = pd.Timestamp((clock or LiveClock()).now())
    out = []
    for run_id, kind, status, outcome, started, ended, path in runs:
        beat = last.get((run_id, ev.HEARTBEAT), {})
        equity = last.get((run_id, ev.EQUITY), {})
        age = (now - pd.Timestamp(beat["wall"])).total_seconds() if beat.get("wall") else None
        hurt = [{"segment": s, "line": n, "reason": why} for r, s, n, why in damage
                if r == run_id]
        out.append({
            "run_id": run_id, "kind": kind,
            "status": liveness(Path(path), status, now), "recorded_status": status,
            "outcome": outcome, "started_at": str(started) if started else None,
            "ended_at": str(ended) if ended else None, "last_heartbeat": beat.get("wall"),
            "heartbeat_age_s": age, "bars": beat.get("bars"), "equity": equity.get("equity"),
            "pnl": equity.get("pnl"),
            "risk_state": last.get((run_id, ev.STATE), {}).get("state", "active"),
            "positions": {s: str(q.normalize()) for r, s, q in pos if r == run_id},
            "damaged": bool(hurt), "damage": hurt, "path": path,
        })
    return out


def describe_damage(row: dict, limit: int = 3) -> str:
    """One line saying what is wrong with a damaged run's journal."""
    items = [f"{d['segment']}" + (f" line {d['line']}" if d["line"] is not None else "")
             + f": {d['reason']}" for d in row["damage"]]
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return (f"run {row['run_id']}: its journal is damaged ({'; '.join(items[:limit])}{more}): "
            f"its figures are partial (the damage view of the catalog lists it all)")
