"""What the monitor shows, kept up to date by reading only what changed.

    state = MonitorState()            # runs/ and deployments/ of the project (WORKBENCH_HOME)
    changed = state.refresh()         # the run ids whose view changed since the last call
    for view in state.sessions(): view.status, view.heartbeat_age(now), view.pnl, ...

Each session run is followed by a :class:`~workbench.journal.tail.JournalTail`: a refresh
reads the journal from the byte offset where the last one stopped, whole lines only (a
half-written event is never seen), and takes no lock (the session writing is never
blocked: fault 16). Manifests are re-read only when their modification time changes; new
run folders are found by listing ``runs/`` (names only); a run that is not a session is
remembered and never opened again. The newest ``limit`` sessions are followed.

Statuses shown: ``running``; ``halted`` (running, its risk state halted); ``stale``
(running, no heartbeat for ``stale_after`` seconds: red); ``died`` (running in its manifest
but no heartbeat for ``died_after`` seconds: the process is gone or hung); ``failed``
(ended with outcome failed, or an error event); else the manifest's outcome
(``succeeded``, ``interrupted``, ...).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import paths
from workbench.journal.events import JournalCorrupt
from workbench.journal.tail import JournalTail
from workbench.model import events as ev

__all__ = ["MonitorState", "SessionView"]

RECENT = 20  # rows kept of fills, alerts, kill-switch events and commands


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _ts(value: Any) -> pd.Timestamp | None:
    try:
        return None if value is None else pd.Timestamp(value)
    except (ValueError, TypeError):
        return None


@dataclass
class SessionView:
    """One session run as the monitor shows it, folded from its journal's events."""

    run_id: str
    path: Path
    manifest: dict = field(default_factory=dict)
    manifest_mtime: float = -1.0
    beat_wall: pd.Timestamp | None = None
    bars: int = 0
    risk_state: str = "active"
    risk_reason: str = ""
    start_equity: Decimal | None = None
    equity: Decimal | None = None
    pnl: Decimal | None = None
    cash: Decimal | None = None
    curve: list[tuple[pd.Timestamp, float]] = field(default_factory=list)  # (time, P&L)
    positions: dict[str, tuple[Decimal, Decimal | None]] = field(default_factory=dict)
    orders: dict[str, dict] = field(default_factory=dict)
    fills: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    fill_count: int = 0
    alerts: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    switches: deque = field(default_factory=lambda: deque(maxlen=RECENT))  # state changes
    commands: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    errors: int = 0
    last_seq: int = 0
    problem: str = ""  # a journal the monitor cannot read (said, never hidden)

    # -- the manifest's words
    @property
    def manifest_status(self) -> str:
        return str(self.manifest.get("status") or "unknown")

    @property
    def outcome(self) -> str | None:
        return self.manifest.get("outcome")

    @property
    def strategy(self) -> str:
        return str(self.manifest.get("strategy") or "")

    @property
    def running(self) -> bool:
        return self.manifest_status == "running"

    def heartbeat_age(self, now: pd.Timestamp) -> float | None:
        """Seconds since the last heartbeat's wall time (None before the first)."""
        if self.beat_wall is None:
            return None
        return max(0.0, (now - self.beat_wall).total_seconds())

    def status(self, now: pd.Timestamp, stale_after: float, died_after: float) -> str:
        if self.running:
            age = self.heartbeat_age(now)
            started = _ts(self.manifest.get("started_at"))
            since = age if age is not None else (
                (now - started).total_seconds() if started is not None else 0.0)
            if since > died_after:
                return "died"
            if since > stale_after:
                return "stale"
            return "halted" if self.risk_state == "halted" else "running"
        if self.outcome == "failed" or (self.outcome is None and self.errors):
            return "failed"
        return str(self.outcome or self.manifest_status)

    # -- folding the journal
    def apply(self, e) -> None:
        p, kind = e.payload, ev.canonical_type(e.type)
        self.last_seq = max(self.last_seq, e.seq)
        ts = _ts(e.ts)
        if kind == ev.HEARTBEAT:
            self.beat_wall = _ts(p.get("wall")) or self.beat_wall
            self.bars = int(p.get("bars") or self.bars)
            self.risk_state = str(p.get("state") or self.risk_state)
        elif kind == ev.STATE:
            self.risk_state = str(p.get("state") or self.risk_state)
            self.risk_reason = str(p.get("reason") or "")
            self.switches.append({"time": ts, "state": self.risk_state,
                                  "previous": p.get("previous"), "reason": self.risk_reason})
        elif kind == ev.EQUITY:
            self.equity, self.cash = _dec(p.get("equity")), _dec(p.get("cash"))
            self.pnl = _dec(p.get("pnl"))
            if self.pnl is None and self.equity is not None and self.start_equity is not None:
                self.pnl = self.equity - self.start_equity
            if self.pnl is not None and ts is not None:
                self.curve.append((ts, float(self.pnl)))
        elif kind == ev.SESSION_START:
            self.start_equity = _dec(p.get("start_equity")) or self.start_equity
        elif kind == ev.FILL:
            self.fill_count += 1
            self.fills.append({"time": _ts(p.get("time")) or ts, "symbol": p.get("symbol"),
                               "side": p.get("side"), "qty": _dec(p.get("quantity")),
                               "price": _dec(p.get("price"))})
        elif kind == ev.INTENT:
            cid = p.get("client_order_id")
            if cid:
                self.orders[cid] = {"time": ts, "symbol": p.get("symbol"), "side": p.get("side"),
                                    "qty": _dec(p.get("quantity")), "type": p.get("order_type"),
                                    "status": "new", "seq": e.seq}
        elif kind in (ev.ORDER_UPDATE, ev.BROKER_REPLY, ev.ORDER_SETTLED, ev.ORDER_UNKNOWN):
            order = self.orders.get(p.get("client_order_id"))
            if order is not None:
                status = p.get("status") or ("unknown" if kind == ev.ORDER_UNKNOWN else None)
                if status:
                    order["status"], order["seq"] = str(status), e.seq
        elif kind == ev.POSITION:
            qty = _dec(p.get("quantity"))
            if qty is None or qty == 0:
                self.positions.pop(p.get("symbol"), None)
            else:
                self.positions[p.get("symbol")] = (qty, _dec(p.get("average_price")))
        elif kind in (ev.ALERT, ev.ERROR):
            self.errors += kind == ev.ERROR
            self.alerts.append({"time": ts, "source": p.get("source", "session"),
                                "level": p.get("level", "error" if kind == ev.ERROR else ""),
                                "message": p.get("message") or p.get("error") or ""})
        elif kind == ev.COMMAND:
            self.commands.append({"time": ts, "command": p.get("command"),
                                  "operator": p.get("operator"), "reason": p.get("reason")})

    def recent_orders(self, n: int = 15) -> list[dict]:
        rows = sorted(self.orders.items(), key=lambda kv: kv[1]["seq"], reverse=True)[:n]
        return [{"client_order_id": cid, **row} for cid, row in rows]


class MonitorState:
    """The sessions under ``runs/`` and the deployments, refreshed incrementally."""

    def __init__(self, runs: str | Path | None = None, deployments: str | Path | None = None,
                 limit: int = 20) -> None:
        self.runs = Path(runs) if runs is not None else paths.runs_dir()
        self.deployments_dir = (Path(deployments) if deployments is not None
                                else paths.deployments_dir())
        self.limit = limit
        self._views: dict[str, SessionView] = {}
        self._tails: dict[str, JournalTail] = {}
        self._other: set[str] = set()  # run folders that are not sessions
        self._deployments: dict[Path, tuple[float, dict]] = {}
        self.bytes_read = 0  # journal bytes read by the refreshes (for the benchmark)

    def sessions(self) -> list[SessionView]:
        """Followed sessions, newest first."""
        return [self._views[k] for k in sorted(self._views, reverse=True)]

    def get(self, run_id: str) -> SessionView | None:
        return self._views.get(run_id)

    def refresh(self) -> set[str]:
        """Read what changed; the run ids whose view changed."""
        changed = set()
        wanted = self._newest_sessions()
        for name in [n for n in self._views if n not in wanted]:  # fell out of the newest
            del self._views[name], self._tails[name]
            changed.add(name)
        for name in [n for n in wanted if n not in self._views]:
            self._views[name] = SessionView(name, self.runs / name)
            self._tails[name] = JournalTail(self.runs / name)
            changed.add(name)
        for name, view in self._views.items():
            if self._read_manifest(view):
                changed.add(name)
            if view.problem:
                continue
            tail = self._tails[name]
            before = tail.bytes_read
            try:
                events = tail.read()
            except (JournalCorrupt, OSError) as e:
                view.problem = f"journal unreadable: {e}"
                changed.add(name)
                continue
            self.bytes_read += tail.bytes_read - before
            for event in events:
                view.apply(event)
            if events:
                changed.add(name)
        return changed

    def _newest_sessions(self) -> list[str]:
        """The newest ``limit`` session runs (run ids start with their UTC start time)."""
        try:
            names = sorted((p.name for p in self.runs.iterdir() if p.is_dir()), reverse=True)
        except FileNotFoundError:
            return []
        new = []
        for name in names:
            if len(new) >= self.limit:
                break
            if name in self._views:
                new.append(name)
                continue
            if name in self._other:
                continue
            manifest = self.runs / name / "manifest.json"
            try:
                kind = json.loads(manifest.read_text()).get("kind")
            except FileNotFoundError:
                continue  # being created: looked at again next time
            except (OSError, ValueError):
                continue  # a manifest being replaced or damaged: next time
            if kind == "session":
                new.append(name)
            else:
                self._other.add(name)
        return new

    @staticmethod
    def _read_manifest(view: SessionView) -> bool:
        path = view.path / "manifest.json"
        try:
            mtime = path.stat().st_mtime
            if mtime == view.manifest_mtime:
                return False
            view.manifest = json.loads(path.read_text())
            view.manifest_mtime = mtime
            return True
        except (OSError, ValueError):
            return False  # replaced right now (written to a temp name, renamed): next time

    def deployments(self) -> list[dict]:
        """Registered deployments (their JSON files), re-read only when changed."""
        try:
            files = sorted(self.deployments_dir.glob("*.json"))
        except OSError:
            return []
        out = []
        for path in files:
            try:
                mtime = path.stat().st_mtime
                cached = self._deployments.get(path)
                if cached is None or cached[0] != mtime:
                    cached = (mtime, json.loads(path.read_text()))
                    self._deployments[path] = cached
                out.append(cached[1])
            except (OSError, ValueError):
                continue
        return out
