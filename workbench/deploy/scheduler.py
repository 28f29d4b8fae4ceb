"""The scheduler: start each deployment's session when its window opens, once, never late.

    launcher = OutboxLauncher(path)                       # or the supervisor's launcher
    report = run_once(Registry(), LiveClock(), launcher)  # one pass (cron: every minute)
    run_forever(Registry(), LiveClock(), launcher, stop=event)   # a long-running service

A pass plans every active deployment's sessions (:func:`workbench.deploy.schedule.plan`)
from the day it was registered to a week ahead, sorts them at the clock's ``now``
(:func:`~workbench.deploy.schedule.due`) and, under the schedule's lock:

- starts each session whose window is open and that was never started: a record
  ``<deployments>/<id>/sessions/<date>.json`` is claimed first (written once, never
  replaced by another claim), then the launcher is called, then the record says
  ``started`` (or ``failed`` with the error). A session is started at most once: a second
  pass, a second scheduler or a restart after a crash mid-launch finds the record;
- records each session whose window passed without a start as ``missed``, and reports it
  once. A missed session is never started late: a missed day is not replayed into the
  live market;
- says when to look again (the next start or stop).

The launcher gets the deployment and the session (whose ``stop`` is when it must end); what
it returns (a mapping: the run id, the pid...) is kept in the session's record. The real
one is :class:`workbench.deploy.launcher.SessionLauncher` (a detached supervised notebook
run); :class:`OutboxLauncher` hands sessions to another process (an orchestrator) as JSON
lines, and records what it was asked to start.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from workbench.clock import Clock
from workbench.data import calendar
from workbench.deploy.registry import Deployment, Registry
from workbench.deploy.schedule import DEFAULT_LEAD, DEFAULT_TAIL, ScheduledSession, due, plan
from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_write, exclusive_lock, fsync_dir
from workbench.plain import plain
from workbench.times import ny_date, to_new_york, to_utc

__all__ = ["Launcher", "OutboxLauncher", "PassReport", "run_forever", "run_once",
           "session_records"]

AHEAD = pd.Timedelta(days=7)  # how far a pass looks for the next start
_LOCK = ".schedule.lock"
_BEGUN = ("starting", "started", "failed")


class Launcher(Protocol):
    """Starts one session of a deployment; returns once it is started (not finished), with
    what to record of it (a mapping of plain values) or None."""

    def launch(self, deployment: Deployment,
               session: ScheduledSession) -> Mapping[str, Any] | None: ...


class OutboxLauncher:
    """Appends each session to start as one JSON line to ``path`` (fsynced), for another
    process to run; ``requests`` lists them in memory too (``path=None``: memory only)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.requests: list[dict[str, Any]] = []

    def launch(self, deployment: Deployment, session: ScheduledSession) -> dict[str, Any]:
        request = {**session.to_dict(), "notebook": deployment.notebook,
                   "notebook_hash": deployment.notebook_hash, "mode": deployment.mode,
                   "broker": deployment.broker, "parameters": deployment.parameters,
                   "capital": deployment.capital.model_dump(mode="json")}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = (json.dumps(request, sort_keys=True) + "\n").encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        self.requests.append(request)
        return {"outbox": None if self.path is None else str(self.path)}


@dataclass(frozen=True)
class PassReport:
    """What one pass did at ``now``."""

    now: pd.Timestamp
    started: tuple[ScheduledSession, ...] = ()
    launched: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the launcher's
    late: dict[str, pd.Timedelta] = field(default_factory=dict)  # key -> after the open
    failed: tuple[tuple[ScheduledSession, str], ...] = ()
    missed: tuple[ScheduledSession, ...] = ()  # recorded by this pass; never started
    running: tuple[ScheduledSession, ...] = ()  # started before, window still open
    upcoming: tuple[ScheduledSession, ...] = ()
    next_event: pd.Timestamp | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(),
                "started": [{**_row(s, late=self.late.get(s.key)), **self.launched.get(s.key, {})}
                            for s in self.started],
                "failed": [{**_row(s), "error": e} for s, e in self.failed],
                "missed": [{**_row(s), "action": "not started: a missed session is never "
                            "started late"} for s in self.missed],
                "running": [_row(s) for s in self.running],
                "next": [_row(s) for s in self.upcoming[:5]],
                "next_event": None if self.next_event is None else self.next_event.isoformat()}

    def lines(self) -> list[str]:
        """The pass for people, one line per session."""
        out = [f"at {_ny(self.now)} New York ({self.now.strftime('%Y-%m-%d %H:%M')} UTC):"]
        for s in self.started:
            late = self.late.get(s.key)
            extra = f" (late: {_minutes(late)} after the open)" if late is not None else ""
            run = self.launched.get(s.key, {})
            if "run_id" in run:
                extra += f"; run {run['run_id']}, supervisor pid {run.get('pid')}"
            out.append(f"  started  {s.describe()}{extra}")
            if run.get("account"):
                out.append(f"           NOTE: {run['account']}")
        out += [f"  FAILED   {s.describe()}: {e}" for s, e in self.failed]
        out += _missed_lines(self.missed)
        out += [f"  running  {s.describe()}" for s in self.running]
        if not (self.started or self.failed or self.missed or self.running):
            out.append("  nothing to start")
        if self.upcoming:
            out.append(f"  next     {self.upcoming[0].describe()}")
        return out


def session_records(registry: Registry, deployment_id: str) -> dict[str, dict[str, Any]]:
    """The schedule's records of one deployment: session key -> record."""
    folder = _sessions_dir(registry, deployment_id)
    records = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        records[f"{deployment_id}/{path.stem}"] = record
    return records


def run_once(registry: Registry, clock: Clock, launcher: Launcher, *,
             lead: Any = DEFAULT_LEAD, tail: Any = DEFAULT_TAIL) -> PassReport:
    """One pass at ``clock.now()`` (see the module doc)."""
    now = to_utc(clock.now())
    registry.root.mkdir(parents=True, exist_ok=True)
    fd = exclusive_lock(registry.root / _LOCK, wait=True)
    try:
        deployments = {d.id: d for d in registry.list(status="active")}
        sessions = _sessions(deployments, now, lead, tail)
        records: dict[str, dict[str, Any]] = {}
        for dep_id in deployments:
            records.update(session_records(registry, dep_id))
        begun = {k for k, r in records.items() if r.get("state") in _BEGUN}
        sorted_now = due(sessions, now, started=begun)
        started, launched, late, failed = [], {}, {}, []
        for s in sorted_now.start:
            if not _claim(registry, s, now):
                continue  # claimed by another pass: it is that pass's to start
            try:
                info = plain(dict(launcher.launch(deployments[s.deployment], s) or {}))
            except Exception as e:  # noqa: BLE001 - recorded, reported, never retried
                error = str(e) if isinstance(e, WorkbenchError) else f"{type(e).__name__}: {e}"
                _record(registry, s, now, "failed", error=error)
                failed.append((s, error))
                continue
            _record(registry, s, now, "started", extra=info)
            started.append(s)
            launched[s.key] = info
            if now > s.open:
                late[s.key] = now - s.open
        missed = [s for s in sorted_now.missed if s.key not in records]
        for s in missed:
            _record(registry, s, now, "missed", overwrite=False)
        return PassReport(now=now, started=tuple(started), launched=launched, late=late,
                          failed=tuple(failed),
                          missed=tuple(missed), running=sorted_now.running,
                          upcoming=sorted_now.upcoming, next_event=sorted_now.next_event())
    finally:
        os.close(fd)


def run_forever(registry: Registry, clock: Clock, launcher: Launcher, *,
                stop: threading.Event | None = None,
                sleep: Callable[[float], Any] | None = None, max_sleep: float = 60.0,
                lead: Any = DEFAULT_LEAD, tail: Any = DEFAULT_TAIL,
                on_pass: Callable[[PassReport], Any] | None = None,
                on_error: Callable[[WorkbenchError], Any] | None = None) -> int:
    """Pass after pass until ``stop`` is set; returns the number of passes.

    Between passes it sleeps until the next start or stop, at most ``max_sleep`` seconds
    (new and retired deployments are seen within that). ``sleep(seconds)`` waits (default
    ``stop.wait``, so setting ``stop`` from a signal handler ends the wait at once); a
    test passes one that moves a :class:`~workbench.clock.SimClock`. A pass that fails on a
    :class:`WorkbenchError` (an unreadable deployment file) is reported to ``on_error`` and
    tried again after ``max_sleep``; any other error ends the loop.
    """
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    passes = 0
    while not stop.is_set():
        wait = max_sleep
        try:
            report = run_once(registry, clock, launcher, lead=lead, tail=tail)
        except WorkbenchError as e:
            if on_error is None:
                raise
            on_error(e)
        else:
            if on_pass is not None:
                on_pass(report)
            if report.next_event is not None:
                ahead = (report.next_event - to_utc(clock.now())).total_seconds()
                wait = min(max_sleep, max(ahead, 0.0))
        passes += 1
        if stop.is_set() or sleep(max(wait, 0.01)) is True:
            break
    return passes


def _sessions(deployments: dict[str, Deployment], now: pd.Timestamp, lead: Any,
              tail: Any) -> list[ScheduledSession]:
    """Each deployment's sessions from its registration to a week after ``now``; a
    session whose window closed before the deployment existed is not its own."""
    if not deployments:
        return []
    last = min(ny_date(now + AHEAD), pd.Timestamp(calendar.LAST_DATE))
    created = {d.id: to_utc(d.created_at) for d in deployments.values()}
    first = min(ny_date(c) for c in created.values())
    if first > last:
        return []
    return [s for s in plan(deployments.values(), first, last, lead=lead, tail=tail)
            if s.stop > created[s.deployment]]


def _sessions_dir(registry: Registry, deployment_id: str) -> Path:
    return registry.root / deployment_id / "sessions"


def _claim(registry: Registry, s: ScheduledSession, now: pd.Timestamp) -> bool:
    try:
        _record(registry, s, now, "starting", overwrite=False)
    except FileExistsError:
        return False
    return True


def _record(registry: Registry, s: ScheduledSession, now: pd.Timestamp, state: str, *,
            error: str | None = None, overwrite: bool = True,
            extra: Mapping[str, Any] | None = None) -> None:
    folder = _sessions_dir(registry, s.deployment)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        fsync_dir(folder.parent)
    record = {**s.to_dict(), **(extra or {}), "state": state, "at": now.isoformat(),
              "error": error}
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(folder / f"{s.date}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"),
                 overwrite=overwrite)


def _missed_lines(missed: tuple[ScheduledSession, ...]) -> list[str]:
    """Each missed session, or one line per deployment when it missed more than three."""
    why = "never started late (a missed day is not replayed into the live market)"
    by_dep: dict[str, list[ScheduledSession]] = {}
    for s in missed:
        by_dep.setdefault(s.deployment, []).append(s)
    out = []
    for dep, sessions in by_dep.items():
        if len(sessions) <= 3:
            out += [f"  missed   {s.describe()}: {why}" for s in sessions]
        else:
            out.append(f"  missed   {dep}  {len(sessions)} sessions, {sessions[0].date} .. "
                       f"{sessions[-1].date}: {why}")
    return out


def _row(s: ScheduledSession, late: pd.Timedelta | None = None) -> dict[str, Any]:
    row = s.to_dict()
    if late is not None:
        row["late_by_s"] = late.total_seconds()
    return row


def _ny(ts: pd.Timestamp) -> str:
    return to_new_york(ts).strftime("%Y-%m-%d %H:%M")


def _minutes(delta: pd.Timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"
