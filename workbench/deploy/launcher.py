"""A deployment's session started for real: its notebook run under the supervisor.

    launcher = SessionLauncher(registry, speed="max")   # what `workbench schedule` uses
    run_once(registry, clock, launcher)                 # each due session: a detached supervisor
    supervise(registry, "sma_cross-paper-3f9a1c", date="2026-11-20")   # one, in the foreground

Before anything runs (:func:`prepare_session`), one line refuses a session that cannot be
the promoted one: a retired deployment; a live one (live sessions need the Alpaca broker
and a live market feed, issue 8); a notebook whose code no longer has the hash the gates
measured (an edited notebook must go back through the gates: ``workbench promote``); a day
the market is closed; a day whose bars are not in the store. A paper session *replays the
stored day* on the simulated broker: its bars (the deployment's ``timeframe``) must have
been fetched or imported first; a live feed is issue 8.

The session is the notebook run papermill executes (:func:`workbench.execution.run.
prepare_run`, kind ``session``, the deployment's mode) with the deployment's parameters and
the session's settings, which the schedule sets and a deployment may not hold:

* ``replay_date``: the session's New York date;
* ``broker_path``: the deployment's own simulated account, ``deployments/<id>/broker.sqlite``,
  so its cash and positions carry from one session to the next (the first session opens
  it with the deployment's capital, ``capital.cash``);
* ``capital``: ``capital.cash``, the session's whole cash, split over its per-symbol accounts
  (each entry the notebook's ``size`` of its account, as in the backtest);
* ``speed``: real time (1) unless configured (``workbench schedule --speed``, ``workbench
  supervise --speed``; "max" replays as fast as it can).

:func:`supervise` runs it under :class:`~workbench.deploy.supervisor.Supervisor` (the
execution child, ``--resumable``; one session of a deployment at a time: the lock
``deployments/<id>/supervisor.lock``), stopped gracefully after ``stop_after`` seconds (the
window's stop); a session whose drift reached "halt" then retires the deployment
(:mod:`workbench.deploy.drift_halt`). :class:`SessionLauncher` prepares the run in the scheduler's process, then
starts ``workbench supervise ID --run RUN_DIR --stop-after S`` as a detached process (a new
session and process group, stdin closed, output in ``deployments/<id>/sessions/<date>.log``):
the scheduler may exit or be killed, the session goes on. It returns the run id, the run
folder, the pid and the log, which the scheduler records in its session record.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.clock import Clock, LiveClock
from workbench.deploy.drift_halt import halt_on_drift
from workbench.deploy.registry import Deployment, Registry
from workbench.deploy.schedule import ScheduledSession, plan
from workbench.deploy.supervisor import SupervisedRun, Supervisor, SupervisorOptions
from workbench.errors import ConfigError, DataError, WorkbenchError
from workbench.paths import project_root
from workbench.runs.records import RunRecord, load_manifest
from workbench.times import ny_date

__all__ = ["REAL_TIME", "SCHEDULE_SETS", "SessionLauncher", "broker_path", "check_run",
           "child_command", "notebook_path", "prepare_session", "session_date", "session_of",
           "session_parameters", "speed_value", "supervise"]

#: the settings the schedule gives each session; a deployment holding one is refused
SCHEDULE_SETS = ("replay_date", "broker_path", "speed", "capital")
REAL_TIME = 1


def speed_value(text: Any) -> str | float | int:
    """``"max"`` or a number > 0 (times real time), from an option's text; None: real time."""
    from workbench.session.pacing import parse_speed

    return REAL_TIME if text is None else parse_speed(text)


def notebook_path(dep: Deployment) -> Path:
    """The deployment's notebook (a path relative to the project root, or absolute)."""
    path = Path(dep.notebook)
    return path if path.is_absolute() else project_root() / path


def broker_path(registry: Registry, dep: Deployment) -> Path:
    """The deployment's own simulated account: one file across its sessions."""
    return registry.root / dep.id / "broker.sqlite"


def session_parameters(registry: Registry, dep: Deployment, date: str,
                       speed: Any = REAL_TIME) -> dict[str, Any]:
    """The deployment's parameters and the session's settings (see the module doc)."""
    held = [k for k in SCHEDULE_SETS if k in dep.parameters]
    if held:
        raise ConfigError(f"{dep.id} holds {', '.join(held)}: the schedule sets these for "
                          "each session; promote it without them")
    return {**dep.parameters, "replay_date": date, "broker_path": str(broker_path(registry, dep)),
            "speed": speed, "capital": dep.capital.cash}


def _check_deployment(dep: Deployment) -> Path:
    if dep.status != "active":
        raise ConfigError(f"{dep.id} is retired ({dep.retired_reason}): no session")
    if dep.mode != "paper" or dep.broker != "sim":
        raise ConfigError(f"{dep.id} is a {dep.mode} deployment on {dep.broker}: sessions run on "
                          "the simulated broker only; live sessions need the Alpaca broker and "
                          "a live market feed (issue 8); not started")
    from workbench.execution.hashing import notebook_hash

    path = notebook_path(dep)
    if not path.is_file():
        raise ConfigError(f"{dep.id}: its notebook {dep.notebook} is gone; not started")
    current = notebook_hash(path)
    if current != dep.notebook_hash:
        raise ConfigError(f"{dep.id}: {dep.notebook} changed since it was promoted "
                          f"({dep.short_hash} -> {current.split(':', 1)[-1][:12]}): it must go "
                          f"back through the gates (workbench promote {dep.notebook}); "
                          "not started")
    return path


def session_of(dep: Deployment, date: str) -> ScheduledSession:
    """The deployment's session on ``date`` (its window); a closed market is refused."""
    sessions = plan([dep], date, date)
    if not sessions:
        raise ConfigError(f"no session of {dep.id} on {date}: the market is closed that day")
    return sessions[0]


def _check_bars(notebook: Path, dep: Deployment, date: str) -> None:
    """The day's bars are stored: a paper session replays them (no live feed: issue 8)."""
    from workbench.data.store import Store
    from workbench.execution.params import notebook_parameters

    values = {**notebook_parameters(notebook), **dep.parameters}
    timeframe, symbols = values.get("timeframe"), values.get("symbols")
    try:
        Store().load(symbols, timeframe, start=date, end=date)
    except (DataError, ValueError) as e:
        raise DataError(f"{dep.id}: no {timeframe} bars of {date} in the store ({e}); a paper "
                        "session replays the stored day on the simulated broker (a live feed "
                        "is issue 8): fetch or import the day first; not started") from None


def _open_account(registry: Registry, dep: Deployment) -> str:
    """The deployment's account, opened once with its capital (later sessions find it);
    says which, and that sizing is the notebook's."""
    from workbench.brokers.sim import SimBroker
    from workbench.session.start import lock_broker

    path = broker_path(registry, dep)
    sizing = ("the capital is the session's whole cash, split over its accounts; each entry "
              "is the notebook's `size` of its account, as in the backtest")
    if path.exists():
        return f"account {path} carried over from the deployment's earlier sessions; {sizing}"
    lock = lock_broker(path)
    try:
        SimBroker(path, cash=dep.capital.cash).close()
    finally:
        os.close(lock)
    return f"account {path} opened with the deployment's capital {dep.capital.cash:,.2f}; {sizing}"


def prepare_session(registry: Registry, deployment_id: str, date: str | None = None, *,
                    speed: Any = REAL_TIME,
                    clock: Clock | None = None) -> tuple[RunRecord, str]:
    """Every check (see the module doc), the account opened, the run prepared ("running");
    with a line about the account."""
    dep = registry.get(deployment_id)
    notebook = _check_deployment(dep)
    clock = clock or LiveClock()
    day = session_date(date, clock)
    session_of(dep, day)
    params = session_parameters(registry, dep, day, speed)
    _check_bars(notebook, dep, day)
    account = _open_account(registry, dep)
    from workbench.execution.run import prepare_run

    return prepare_run(notebook, kind="session", mode=dep.mode, params=params), account


def session_date(date: str | None, clock: Clock) -> str:
    """``date`` as YYYY-MM-DD, or today in New York by ``clock``."""
    if date is None:
        return ny_date(clock.now()).strftime("%Y-%m-%d")
    try:
        return pd.Timestamp(date).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        raise ConfigError(f"--date: cannot read {date!r} as a day (YYYY-MM-DD)") from None


def child_command(run_dir: Path, attempt: int) -> list[str]:
    """What the supervisor runs: the execution child, resumable (a dead kernel resumes)."""
    return [sys.executable, "-m", "workbench.execution.child", "--resumable", str(run_dir)]


def check_run(registry: Registry, deployment_id: str, run_dir: str | Path) -> Path:
    """``run_dir`` is a prepared, still running session of this deployment's code and
    account (what :class:`SessionLauncher` hands to ``workbench supervise --run``)."""
    dep = registry.get(deployment_id)
    run = Path(run_dir)
    m = load_manifest(run)
    params = m.get("params") or {}
    if (m.get("kind") != "session" or (m.get("notebook") or {}).get("hash") != dep.notebook_hash
            or params.get("broker_path") != str(broker_path(registry, dep))):
        raise ConfigError(f"run {m.get('run_id')} is not a session of {dep.id} (its code and "
                          "account); not started")
    return run


def supervise(registry: Registry, deployment_id: str, *, run_dir: str | Path | None = None,
              date: str | None = None, speed: Any = REAL_TIME, stop_after: float | None = None,
              options: SupervisorOptions | None = None,
              on_start: Callable[[Supervisor, str], Any] | None = None) -> SupervisedRun:
    """One session of the deployment under the supervisor, in this process (blocks): the
    run ``run_dir`` (prepared by the launcher) or a new one for ``date``; stopped
    gracefully after ``stop_after`` seconds. ``on_start(supervisor, account line)`` before
    it runs (to wire signals, to say what runs)."""
    account = ""
    if run_dir is not None:
        run = check_run(registry, deployment_id, run_dir)
    else:
        record, account = prepare_session(registry, deployment_id, date, speed=speed)
        run = record.path
    sup = Supervisor(run, child_command,
                     lock_path=registry.root / deployment_id / "supervisor.lock",
                     options=options)
    timer = None
    if stop_after is not None:
        timer = threading.Timer(max(float(stop_after), 0.0), sup.stop,
                                args=("the session's window closed",))
        timer.daemon = True
        timer.start()
    try:
        if on_start is not None:
            on_start(sup, account)
        result = sup.run()
    finally:
        if timer is not None:
            timer.cancel()
    halt_on_drift(registry, deployment_id, run)  # the session's drift at "halt": retired
    return result


def _workbench() -> list[str]:
    """The ``workbench`` command next to this interpreter, else through it."""
    script = Path(sys.executable).parent / "workbench"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("workbench")
    return [found] if found else [sys.executable, "-c",
                                  "from workbench.cli import main; main()"]


class SessionLauncher:
    """The scheduler's launcher: each session prepared here, then supervised by a detached
    ``workbench supervise`` (see the module doc). ``speed``: "max" or N x real time."""

    def __init__(self, registry: Registry, *, speed: Any = REAL_TIME,
                 clock: Clock | None = None, env: Mapping[str, str] | None = None) -> None:
        self.registry, self.speed, self.env = registry, speed, env
        self.clock = clock or LiveClock()

    def launch(self, deployment: Deployment, session: ScheduledSession) -> dict[str, Any]:
        record, account = prepare_session(self.registry, deployment.id, session.date,
                                          speed=self.speed, clock=self.clock)
        left = (session.stop - pd.Timestamp(self.clock.now())).total_seconds()
        log = self.registry.root / deployment.id / "sessions" / f"{session.date}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [*_workbench(), "supervise", deployment.id, "--run", str(record.path),
                "--stop-after", f"{max(left, 0.0):.0f}"]
        try:
            with open(log, "ab") as out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        close_fds=True,
                                        env=None if self.env is None else dict(self.env))
        except OSError as e:
            record.finish("failed", error=f"the supervisor did not start: {e}")
            raise WorkbenchError(f"cannot start the supervisor: {e}") from None
        _forget(proc)
        return {"run_id": record.run_id, "run_dir": str(record.path), "pid": proc.pid,
                "log": str(log), "stop_after_s": round(max(left, 0.0)), "account": account}


def _forget(proc: subprocess.Popen) -> None:
    """The detached supervisor is not this process's to wait for: a long-running scheduler
    reaps it when it exits (no zombie), a scheduler that exits first leaves it to init."""
    def reap() -> None:
        proc.wait()

    threading.Thread(target=reap, daemon=True, name=f"reap-{proc.pid}").start()
