"""``workbench deployments``, ``retire``, ``schedule`` and ``supervise``: promoted notebooks and
their sessions on the exchange calendar.

``deployments`` and ``retire`` read and update the registry (:mod:`workbench.deploy.registry`);
``schedule`` plans and starts sessions (:mod:`workbench.deploy.schedule`,
:mod:`workbench.deploy.scheduler`, :mod:`workbench.deploy.launcher`); ``supervise`` runs one
session of a deployment under the supervisor in the foreground. "Now" comes from the clock;
``--now`` sets it for tests and rehearsals.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click
import pandas as pd

from workbench.cli.output import echo, echo_json, echo_table
from workbench.errors import ConfigError

__all__ = ["deployments", "retire", "schedule", "supervise"]

_DRY_RUN_DAYS = 7


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Retired deployments too.")
@click.option("--json", "as_json", is_flag=True,
              help="Every field as JSON, the gate report included.")
def deployments(show_all, as_json) -> None:
    """Registered deployments (promoted notebooks): id, mode, broker, notebook, hash,
    status, created. Active ones only, unless --all.

    A deployment is registered by `workbench promote NOTEBOOK --to paper|live` when every
    gate passes; `workbench retire DEPLOYMENT` ends one.
    """
    from workbench.deploy.registry import list_deployments

    deps = list_deployments(None if show_all else "active")
    if as_json:
        echo_json([d.to_dict() for d in deps])
        return
    rows = [{"id": d.id, "mode": d.mode, "broker": d.broker, "notebook": d.notebook,
             "hash": d.short_hash, "status": d.status, "created": _utc(d.created_at),
             "gates": f"{len(d.gates)} passed"} for d in deps]
    echo_table(pd.DataFrame(rows), empty="(no deployments)" if show_all
               else "(no active deployments; --all shows retired ones)")


@click.command()
@click.argument("deployment")
@click.option("--reason", default="retired by the operator", show_default=True,
              help="Why, kept in the deployment's record.")
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="For tests: the time to record (default: the clock).")
@click.option("--json", "as_json", is_flag=True)
def retire(deployment, reason, now_text, as_json) -> None:
    """End a deployment: the schedule starts no more of its sessions.

    A session already running is not stopped by this (use `workbench halt RUN`).
    """
    from workbench.deploy.registry import retire as retire_one

    done = retire_one(deployment, reason, clock=_clock(now_text))
    if as_json:
        echo_json(done.to_dict())
        return
    echo(f"retired {done.id} at {_utc(done.retired_at)}: {done.retired_reason}")
    echo("the schedule starts no more of its sessions; a running session goes on until "
         "stopped (workbench halt RUN)")


_SCHEDULE_HELP = """Run deployments' sessions on the NYSE calendar.

Each active deployment gets one session per trading day, started LEAD (default 5min)
before the 09:30 New York open and stopped TAIL (default 5min) after the close: 16:00,
or 13:00 New York on early-close days. Holidays have no session; across daylight-saving
changes the open stays 09:30 New York (13:30 UTC in summer, 14:30 UTC in winter).
A session is started at most once (records in deployments/<id>/sessions/); one whose
window has passed is reported MISSED and never started late: a missed day is not
replayed into the live market. A window still open is started late, and said so.

\b
  workbench schedule --dry-run [--from DATE --to DATE]   print the plan, start nothing
  workbench schedule --once                              one pass: start what is due
  workbench schedule                                     pass after pass until stopped

\b
Each session started is the deployment's notebook run by papermill (kind session, its
parameters, replay_date = the day, its own simulated account in deployments/<id>/) under a
supervisor started as a detached process (`workbench supervise DEPLOYMENT --run RUN`, its
output in deployments/<id>/sessions/<date>.log): the schedule exiting does not end it; it
is stopped gracefully at the window's stop. The run id and pid are in the session's record.
A notebook edited since it was promoted is refused (it goes back through the gates). A
paper session replays the day's bars from the store on the simulated broker: fetch or
import the day first (a live feed is a later issue). --speed: real time (1) unless given.

\b
From cron, one pass a minute (passes take a lock, so they never overlap):
  * * * * *  cd /path/to/project && .venv/bin/workbench schedule --once >> schedule.log 2>&1
or one deployment's session a day in the foreground (exit code from its outcome; on a
machine set to New York time; a holiday is refused in one line):
  25 9 * * 1-5  cd /path/to/project && .venv/bin/workbench supervise DEPLOYMENT
\b
From systemd, a long-running service (SIGTERM stops it cleanly; KillMode=process keeps
the sessions it started running when the service stops: systemd would otherwise end
every process of the service's cgroup, detached or not):
  [Service]
  WorkingDirectory=/path/to/project
  ExecStart=/path/to/project/.venv/bin/workbench schedule
  KillMode=process
  Restart=on-failure
\b
From an existing orchestrator (Airflow, Dagster, Prefect...): run
`workbench schedule --once --json` as a task every minute and read what it started,
or take the plan from `workbench schedule --dry-run --json --from D --to D` and run
`workbench supervise DEPLOYMENT --date D` as a task in each session's window, or
`workbench schedule --outbox FILE` to have each session handed over as a JSON line in
FILE (nothing started here) for the orchestrator to run.
"""


@click.command(help=_SCHEDULE_HELP)
@click.option("--once", is_flag=True, help="One pass: start what is due now, then exit.")
@click.option("--dry-run", is_flag=True, help="Print the plan and what is due; start nothing.")
@click.option("--from", "start", default=None, metavar="DATE",
              help="--dry-run: first trading day (New York; default today).")
@click.option("--to", "end", default=None, metavar="DATE",
              help=f"--dry-run: last trading day (default {_DRY_RUN_DAYS} days after --from).")
@click.option("--lead", default="5min", show_default=True, help="Start this long before the open.")
@click.option("--tail", default="5min", show_default=True, help="Stop this long after the close.")
@click.option("--outbox", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start nothing: hand each session over as one JSON line in this file, "
                   "for another process to run.")
@click.option("--speed", default=None, metavar="S",
              help="Sessions replay at S x real time, or 'max' (default: real time).")
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="For tests and rehearsals: the time it is (ISO; UTC unless it carries an "
                   "offset). Default: the clock.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per pass).")
def schedule(once, dry_run, start, end, lead, tail, outbox, speed, now_text, as_json) -> None:
    from workbench.deploy.registry import Registry
    from workbench.deploy.schedule import window

    lead, tail = window(lead, "--lead"), window(tail, "--tail")
    if once and dry_run:
        raise ConfigError("--once and --dry-run: choose one")
    if (start or end) and not dry_run:
        raise ConfigError("--from/--to are for --dry-run (a pass plans from each "
                          "deployment's registration to a week ahead)")
    clock = _clock(now_text)
    registry = Registry()
    if dry_run:
        _dry_run(registry, clock.now(), start, end, lead, tail, as_json)
        return
    from workbench.deploy.launcher import SessionLauncher, speed_value
    from workbench.deploy.scheduler import OutboxLauncher, run_forever, run_once

    if outbox is not None and speed is not None:
        raise ConfigError("--speed is for sessions started here; with --outbox nothing is "
                          "started (the process reading the outbox chooses)")
    launcher = (OutboxLauncher(outbox) if outbox is not None
                else SessionLauncher(registry, speed=speed_value(speed), clock=clock))
    if once:
        _print_pass(run_once(registry, clock, launcher, lead=lead, tail=tail), as_json)
        return
    if now_text is not None:
        raise ConfigError("--now is for --once and --dry-run; a running schedule follows "
                          "the clock")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not as_json:
        where = (f"sessions handed over in {outbox}" if outbox is not None else
                 "sessions started as detached supervised notebook runs")
        echo(f"schedule: running until stopped (SIGTERM or Ctrl-C); {where}")

    def on_pass(report) -> None:
        if as_json or report.started or report.failed or report.missed:
            _print_pass(report, as_json)

    run_forever(registry, clock, launcher, stop=stop, lead=lead, tail=tail, on_pass=on_pass,
                on_error=lambda e: echo(f"error: {e} (trying again in a minute)", err=True))
    if not as_json:
        echo("schedule: stopped")


@click.command()
@click.argument("deployment")
@click.option("--date", default=None, metavar="DAY",
              help="The New York trading day (default today): its bars must be stored.")
@click.option("--speed", default=None, metavar="S",
              help="Replay at S x real time, or 'max' (default: real time).")
@click.option("--stop-after", type=float, default=None, metavar="SECONDS",
              help="Stop gracefully after this long (default: today's window stop, close + "
                   "5 min; none for another day).")
@click.option("--run", "run_dir", default=None, metavar="RUN_DIR",
              help="A run the scheduler prepared for this deployment (what it starts).")
@click.option("--json", "as_json", is_flag=True, help="Print how the run ended as JSON.")
def supervise(deployment, date, speed, stop_after, run_dir, as_json) -> None:
    """One session of DEPLOYMENT under the supervisor, in the foreground.

    The deployment's notebook (refused if edited since it was promoted) is run by papermill
    as a paper session of DAY on its own simulated account, with its parameters; a dead
    or hung kernel is restarted in the same run and reconciles first; SIGTERM or Ctrl-C
    stops it gracefully. The exit code is the outcome's: 0 succeeded, 1 failed,
    6 halted, 124 timeout, 130 interrupted. What `workbench schedule` starts, detached;
    what cron, systemd or an orchestrator would run.
    """
    from workbench.clock import LiveClock
    from workbench.deploy.launcher import REAL_TIME, session_date, session_of, speed_value
    from workbench.deploy.launcher import supervise as run_supervised
    from workbench.deploy.registry import Registry
    from workbench.execution.run import exit_code
    from workbench.runs.records import load_manifest

    registry = Registry()
    dep = registry.get(deployment)
    value = speed_value(speed) if speed is not None else REAL_TIME
    if run_dir is not None and (date is not None or speed is not None):
        raise ConfigError("--run is a prepared run: its date and speed are set already")
    clock = LiveClock()
    now, today = clock.now(), session_date(None, clock)
    day = session_date(date, clock)
    note = ""
    if stop_after is None and run_dir is None:
        if day == today:
            stop = session_of(dep, day).stop
            stop_after = (stop - now).total_seconds()
            if stop_after <= 0:
                raise ConfigError(f"the window of {dep.id} on {day} closed at {_utc(stop)}: a "
                                  "missed session is never started late")
            note = f", stopped at the window's end {_utc(stop)}"
        else:
            note = f"; {day} is not today: no window stop (SIGTERM stops it)"

    said = {"account": None}

    def on_start(sup, account: str) -> None:
        said["account"] = account or None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda n, _f: sup.stop(f"{signal.Signals(n).name} to "
                                                     "workbench supervise"))
        if not as_json:
            params = load_manifest(sup.run_dir).get("params") or {}
            echo(f"supervising {dep.id} session {params.get('replay_date')} (run "
                 f"{sup.run_dir.name}, speed {params.get('speed')}{note})")
            if account:
                echo(f"NOTE: {account}")

    result = run_supervised(registry, dep.id, run_dir=run_dir, date=day, speed=value,
                            stop_after=stop_after, on_start=on_start)
    if as_json:
        echo_json({"deployment": dep.id, "run_id": result.run_dir.name,
                   "run_dir": str(result.run_dir), "status": result.status,
                   "outcome": result.outcome, "error": result.error,
                   "attempts": len(result.attempts), "stopped": result.stopped,
                   "account": said["account"]})
    else:
        echo(result.summary())
    code = exit_code(result.outcome) if result.status == "finished" else 1
    if code:
        sys.exit(code)  # (a click Exit would be swallowed by the group's non-standalone main)


def _dry_run(registry, now, start, end, lead, tail, as_json) -> None:
    from workbench.cli.inputs import replay_day
    from workbench.deploy.schedule import closed_days, due, plan
    from workbench.deploy.scheduler import session_records
    from workbench.times import ny_date

    first = pd.Timestamp(replay_day(start, "--from")) if start else ny_date(now)
    last = pd.Timestamp(replay_day(end, "--to")) if end else first + pd.Timedelta(days=_DRY_RUN_DAYS)
    deps = registry.list(status="active")
    sessions = plan(deps, first, last, lead=lead, tail=tail)
    begun = set()
    for d in deps:
        begun |= {k for k, r in session_records(registry, d.id).items()
                  if r.get("state") in ("starting", "started", "failed")}
    at_now = due(sessions, now, started=begun)
    closed = [d.strftime("%Y-%m-%d") for d in closed_days(first, last)]
    if as_json:
        echo_json({"now": now, "from": first.strftime("%Y-%m-%d"),
                   "to": last.strftime("%Y-%m-%d"), "lead": str(lead), "tail": str(tail),
                   "deployments": [d.id for d in deps],
                   "sessions": [s.to_dict() for s in sessions], "closed": closed,
                   "would_start": [s.key for s in at_now.start],
                   "missed": [s.key for s in at_now.missed]})
        return
    echo(f"plan {first:%Y-%m-%d} .. {last:%Y-%m-%d} for {len(deps)} active deployment(s) "
         f"(dry run: nothing is started)")
    for s in sessions:
        echo(f"  {s.describe()}")
    for day in closed:
        echo(f"  {day} {pd.Timestamp(day):%a}: market closed (holiday), no session")
    if not sessions:
        echo("  (no sessions)")
    echo(f"at {_utc(now)}: would start {', '.join(s.key for s in at_now.start) or 'nothing'}")
    if at_now.missed:
        echo(f"missed (window passed, never started late): "
             f"{', '.join(s.key for s in at_now.missed)}")


def _print_pass(report, as_json: bool) -> None:
    if as_json:
        echo_json(report.to_dict())
    else:
        for line in report.lines():
            echo(line)


def _clock(now_text: str | None):
    from workbench.clock import LiveClock, SimClock

    if now_text is None:
        return LiveClock()
    from workbench.times import bound

    try:
        bound(now_text, "--now", error=ValueError)  # readable, and inside pandas' range
        return SimClock(pd.Timestamp(now_text))
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--now: cannot read {now_text!r} as a time") from None


def _utc(value) -> str:
    return "-" if value is None else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
