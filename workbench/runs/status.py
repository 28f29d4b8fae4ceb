"""``workbench status``: every session run as the catalog sees it (never the broker).

One row per session run: id, status and outcome (manifest), age of the last heartbeat
(its wall time against now), open positions, the last equity and P&L, the risk state
(the last ``state`` event; "active" when none).
"""

from __future__ import annotations

import json

import pandas as pd

from workbench.clock import LiveClock
from workbench.journal.catalog import catalog
from workbench.model import events as ev

__all__ = ["session_status"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_LAST = f"""
SELECT run_id, type, arg_max(payload, seq) AS payload
FROM events WHERE type IN ({", ".join(map(_quote, (ev.HEARTBEAT, ev.STATE, ev.EQUITY)))})
AND run_id IN ({{ids}})
GROUP BY run_id, type"""


def session_status(root=None, clock=None) -> list[dict]:
    """Session runs, newest first, as plain JSON-able dicts."""
    con = catalog(root)
    try:
        runs = con.execute("SELECT run_id, kind, status, outcome, started_at, ended_at "
                           "FROM runs WHERE kind = 'session' ORDER BY run_id DESC").fetchall()
        if not runs:
            return []
        ids = ", ".join(_quote(r[0]) for r in runs)
        last = {(r, t): json.loads(p) for r, t, p in con.execute(_LAST.format(ids=ids)).fetchall()}
        pos = con.execute(f"SELECT run_id, symbol, qty FROM positions WHERE qty <> 0 "
                          f"AND run_id IN ({ids}) ORDER BY symbol").fetchall()
    finally:
        con.close()
    now = (clock or LiveClock()).now()
    out = []
    for run_id, kind, status, outcome, started, ended in runs:
        beat = last.get((run_id, ev.HEARTBEAT), {})
        equity = last.get((run_id, ev.EQUITY), {})
        age = (now - pd.Timestamp(beat["wall"])).total_seconds() if beat.get("wall") else None
        out.append({
            "run_id": run_id, "kind": kind, "status": status, "outcome": outcome,
            "started_at": str(started) if started else None,
            "ended_at": str(ended) if ended else None, "heartbeat_age_s": age,
            "bars": beat.get("bars"), "equity": equity.get("equity"), "pnl": equity.get("pnl"),
            "risk_state": last.get((run_id, ev.STATE), {}).get("state", "active"),
            "positions": {s: str(q.normalize()) for r, s, q in pos if r == run_id},
        })
    return out
