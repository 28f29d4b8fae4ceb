"""The schedule: sessions on the NYSE calendar (holidays, early closes, DST), started once in
their window and never late, in-process and as the `workbench schedule` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import wb_inline
from tests.gate_reports import passed_report
from workbench.clock import SimClock
from workbench.deploy.registry import Registry, register, retire
from workbench.deploy.schedule import closed_days, due, plan, window
from workbench.deploy.scheduler import OutboxLauncher, run_forever, run_once, session_records
from workbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMA = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
RSI = ROOT / "notebooks" / "strategies" / "rsi_reversion.ipynb"

# 2026-10-29 .. 2026-11-30: DST ends Sunday 2026-11-01, Thanksgiving 2026-11-26 (closed),
# 2026-11-27 closes at 13:00 New York. (date, start NY, stop NY, start UTC, stop UTC)
FALL = [("2026-10-29", "09:25", "16:05", "13:25", "20:05"),
        ("2026-10-30", "09:25", "16:05", "13:25", "20:05")] + [
    (d, "09:25", "16:05", "14:25", "21:05") for d in
    ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-09",
     "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-16", "2026-11-17",
     "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]] + [
    ("2026-11-27", "09:25", "13:05", "14:25", "18:05"),
    ("2026-11-30", "09:25", "16:05", "14:25", "21:05")]


def deploy(notebook=SMA, at="2026-10-01 12:00", **kw):
    report = passed_report(notebook, "paper", kw.pop("parameters", {}))
    return register(notebook, mode="paper", capital={"cash": 100_000}, gates=report,
                    clock=SimClock(at), **kw)


def rows(sessions):
    return [(s.date, s.start_ny.strftime("%H:%M"), s.stop_ny.strftime("%H:%M"),
             s.start.strftime("%H:%M"), s.stop.strftime("%H:%M")) for s in sessions]


def test_plan_over_a_holiday_an_early_close_and_the_end_of_dst():
    dep = deploy()
    sessions = plan([dep], "2026-10-29", "2026-11-30")
    assert rows(sessions) == FALL
    assert {s.deployment for s in sessions} == {dep.id}
    notes = {s.date: s.notes for s in sessions if s.notes}
    assert notes == {"2026-11-02": ("DST ended: 09:30 New York is 14:30 UTC (was 13:30)",),
                     "2026-11-27": ("early close 13:00 New York",)}
    assert closed_days("2026-10-29", "2026-11-30") == [pd.Timestamp("2026-11-26")]


def test_plan_in_spring_and_with_other_margins():
    dep = deploy()
    sessions = plan([dep], "2026-03-06", "2026-03-09", lead="30min", tail=0)
    assert rows(sessions) == [("2026-03-06", "09:00", "16:00", "14:00", "21:00"),
                              ("2026-03-09", "09:00", "16:00", "13:00", "20:00")]
    assert sessions[1].notes == ("DST began: 09:30 New York is 13:30 UTC (was 14:30)",)
    for bad in ("-5min", "soon", "7h"):
        with pytest.raises(ConfigError, match="lead"):
            window(bad, "lead")


def test_retired_deployments_get_no_sessions_and_several_are_ordered():
    a, b = deploy(), deploy(RSI)
    retire(a.id, "done")
    active = Registry().list()
    sessions = plan(active, "2026-11-24", "2026-11-25")
    assert [(s.deployment, s.date) for s in sessions] == [(b.id, "2026-11-24"),
                                                          (b.id, "2026-11-25")]
    both = plan([b, deploy(SMA, parameters={"fast": 3})], "2026-11-24", "2026-11-24")
    assert len(both) == 2 and both == sorted(both, key=lambda s: (s.start, s.deployment))


def test_due_sorts_a_plan_at_an_instant():
    dep = deploy()
    sessions = plan([dep], "2026-11-24", "2026-11-27")
    at = due(sessions, "2026-11-25 15:00", started={f"{dep.id}/2026-11-24"})
    assert [s.date for s in at.done] == ["2026-11-24"]
    assert [s.date for s in at.start] == ["2026-11-25"]
    assert [s.date for s in at.upcoming] == ["2026-11-27"]
    assert at.next_event() == pd.Timestamp("2026-11-25 21:05", tz="UTC")
    later = due(sessions, "2026-11-25 21:05")
    assert [s.date for s in later.missed] == ["2026-11-24", "2026-11-25"]  # stop is exclusive
    assert later.next_event() == pd.Timestamp("2026-11-27 14:25", tz="UTC")


def test_a_pass_starts_a_session_once_in_its_window(workbench_home):
    dep = deploy(at="2026-11-27 12:00")
    launcher = OutboxLauncher(workbench_home / "outbox.jsonl")
    first = run_once(Registry(), SimClock("2026-11-27 14:25"), launcher)
    assert [s.key for s in first.started] == [f"{dep.id}/2026-11-27"] and not first.late
    assert first.started[0].stop == pd.Timestamp("2026-11-27 18:05", tz="UTC")
    second = run_once(Registry(), SimClock("2026-11-27 15:00"), launcher)
    assert second.started == () and [s.key for s in second.running] == [first.started[0].key]
    assert len(launcher.requests) == 1
    lines = (workbench_home / "outbox.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["stop_ny"] == "13:05"
    assert json.loads(lines[0])["notebook_hash"] == dep.notebook_hash
    record = session_records(Registry(), dep.id)[f"{dep.id}/2026-11-27"]
    assert record["state"] == "started" and record["at"] == "2026-11-27T14:25:00+00:00"
    assert second.next_event == pd.Timestamp("2026-11-27 18:05", tz="UTC")


def test_a_late_pass_starts_an_open_window_and_says_it_is_late():
    deploy(at="2026-11-27 12:00")
    report = run_once(Registry(), SimClock("2026-11-27 16:00"), OutboxLauncher())
    assert len(report.started) == 1
    assert report.late[report.started[0].key] == pd.Timedelta(minutes=90)
    assert "late: 90 min after the open" in "\n".join(report.lines())


def test_a_passed_window_is_missed_reported_once_and_never_started(workbench_home):
    dep = deploy(at="2026-11-24 12:00")
    launcher = OutboxLauncher()
    report = run_once(Registry(), SimClock("2026-11-25 12:00"), launcher)
    assert [s.key for s in report.missed] == [f"{dep.id}/2026-11-24"] and report.started == ()
    assert "not replayed into the live market" in "\n".join(report.lines())
    assert report.to_dict()["missed"][0]["action"].startswith("not started")
    again = run_once(Registry(), SimClock("2026-11-25 13:00"), launcher)
    assert again.missed == () and again.started == ()
    assert launcher.requests == []
    assert session_records(Registry(), dep.id)[f"{dep.id}/2026-11-24"]["state"] == "missed"


def test_sessions_before_a_deployment_existed_are_not_missed():
    deploy(at="2026-11-25 22:00")
    report = run_once(Registry(), SimClock("2026-11-26 12:00"), OutboxLauncher())
    assert report.missed == () and report.started == ()
    assert report.next_event == pd.Timestamp("2026-11-27 14:25", tz="UTC")


class BrokenLauncher:
    def __init__(self) -> None:
        self.calls = 0

    def launch(self, deployment, session) -> None:
        self.calls += 1
        raise OSError("supervisor not reachable")


def test_a_failed_launch_is_recorded_and_not_retried():
    dep = deploy(at="2026-11-27 12:00")
    launcher = BrokenLauncher()
    report = run_once(Registry(), SimClock("2026-11-27 14:30"), launcher)
    assert report.failed[0][1] == "OSError: supervisor not reachable"
    assert "FAILED" in "\n".join(report.lines())
    run_once(Registry(), SimClock("2026-11-27 14:31"), launcher)
    assert launcher.calls == 1
    record = session_records(Registry(), dep.id)[f"{dep.id}/2026-11-27"]
    assert (record["state"], record["error"]) == ("failed", "OSError: supervisor not reachable")


def test_run_forever_sleeps_until_each_start_and_stops_when_told():
    dep = deploy(at="2026-11-25 20:00")
    clock = SimClock("2026-11-25 20:00")
    stop = threading.Event()
    launcher = OutboxLauncher()

    def sleep(seconds):
        clock.advance(pd.Timedelta(seconds=seconds))
        if clock.now() >= pd.Timestamp("2026-11-30 16:00", tz="UTC"):
            stop.set()

    passes = run_forever(Registry(), clock, launcher, stop=stop, sleep=sleep, max_sleep=3600)
    assert [(r["date"], r["start"]) for r in launcher.requests] == [
        ("2026-11-25", "2026-11-25T14:25:00+00:00"),  # its window was still open: started
        ("2026-11-27", "2026-11-27T14:25:00+00:00"),
        ("2026-11-30", "2026-11-30T14:25:00+00:00")]
    records = session_records(Registry(), dep.id)
    assert {k: r["at"] for k, r in records.items()} == {
        f"{dep.id}/2026-11-25": "2026-11-25T20:00:00+00:00",
        f"{dep.id}/2026-11-27": "2026-11-27T14:25:00+00:00",  # woken exactly at the start
        f"{dep.id}/2026-11-30": "2026-11-30T14:25:00+00:00"}
    assert 100 < passes < 150  # an hour at most between passes, no busy loop


def test_run_forever_returns_when_stopped_from_another_thread():
    deploy()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    passes = run_forever(Registry(), SimClock("2026-11-26 12:00"), OutboxLauncher(), stop=stop,
                         max_sleep=60)
    assert passes == 1


# ---- the command: each subcommand once as a real process, the rest in this process ----------

def cli(workbench_cmd, *args, check=True):
    """``workbench_cmd`` the installed command as a real process; ``None`` the same command in
    this process (tests/conftest.wb_inline: same parsing, errors and exit codes)."""
    if workbench_cmd is None:
        proc = wb_inline(*args)
    else:
        proc = subprocess.run([*workbench_cmd, *args], check=False, capture_output=True,
                              text=True, env=dict(os.environ), timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
    return proc


def test_dry_run_over_a_holiday_an_early_close_and_dst(workbench_cmd):
    dep = deploy()
    gone = deploy(RSI)
    retire(gone.id, "replaced")
    out = cli(workbench_cmd, "schedule", "--dry-run", "--from", "2026-10-29", "--to",
              "2026-11-30", "--now", "2026-10-28 12:00", "--json").stdout
    plan_ = json.loads(out)
    assert [(s["date"], s["start_ny"], s["stop_ny"], s["start"][11:16], s["stop"][11:16])
            for s in plan_["sessions"]] == FALL
    assert {s["deployment"] for s in plan_["sessions"]} == {dep.id}
    assert plan_["closed"] == ["2026-11-26"] and plan_["would_start"] == []
    assert plan_["deployments"] == [dep.id]
    text = cli(None, "schedule", "--dry-run", "--from", "2026-10-29", "--to",
               "2026-11-30", "--now", "2026-11-27 15:00").stdout
    assert f"{dep.id}  2026-11-27 Fri  09:25-13:05 New York (14:25-18:05 UTC)  " \
           "[early close 13:00 New York]" in text
    assert "2026-11-02 Mon  09:25-16:05 New York (14:25-21:05 UTC)  [DST ended" in text
    assert "2026-11-26 Thu: market closed (holiday), no session" in text
    assert f"would start {dep.id}/2026-11-27" in text and "nothing is started" in text
    assert not (Path(os.environ["WORKBENCH_HOME"]) / "deployments" / dep.id).exists()


def test_once_starts_a_due_session_once_and_reports_a_missed_one(workbench_cmd,
                                                                workbench_home):
    dep = deploy(at="2026-11-24 12:00")
    outbox = workbench_home / "deployments" / "outbox.jsonl"
    first = json.loads(cli(workbench_cmd, "schedule", "--once", "--now", "2026-11-25 14:26",
                           "--outbox", str(outbox), "--json").stdout)
    assert [(s["deployment"], s["date"], s["start_ny"]) for s in first["started"]] == \
        [(dep.id, "2026-11-25", "09:25")]
    assert [s["date"] for s in first["missed"]] == ["2026-11-24"]
    second = cli(None, "schedule", "--once", "--now", "2026-11-25 14:27",
                 "--outbox", str(outbox)).stdout
    assert "started" not in second and f"running  {dep.id}  2026-11-25" in second
    assert len(outbox.read_text().splitlines()) == 1
    third = json.loads(cli(None, "schedule", "--once", "--now", "2026-11-27 19:00",
                           "--outbox", str(outbox), "--json").stdout)
    assert third["started"] == [] and [s["date"] for s in third["missed"]] == ["2026-11-27"]
    assert len(outbox.read_text().splitlines()) == 1


def test_deployments_and_retire_commands(workbench_cmd):
    dep = deploy()
    table = cli(workbench_cmd, "deployments").stdout
    assert dep.id in table and dep.short_hash in table and "notebooks/strategies/sma_cross" \
        in table and "active" in table
    rows_ = json.loads(cli(None, "deployments", "--json").stdout)
    assert rows_[0]["id"] == dep.id and rows_[0]["gates"] == [
        r.to_dict() for r in passed_report(SMA).results]
    bad = cli(None, "retire", dep.id + "x", check=False)
    assert bad.returncode == 2 and f"closest: {dep.id}" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    out = cli(workbench_cmd, "retire", dep.id, "--reason", "drift").stdout
    assert f"retired {dep.id}" in out and "drift" in out
    assert "no active deployments" in cli(None, "deployments").stdout
    assert "retired" in cli(None, "deployments", "--all").stdout


@pytest.mark.parametrize("args, message", [
    (["--once", "--dry-run"], "choose one"),
    (["--once", "--from", "2026-11-02"], "--from/--to are for --dry-run"),
    (["--dry-run", "--lead", "-1min"], "--lead must be between"),
    (["--once", "--now", "yesterday-ish"], "--now: cannot read"),
])
def test_schedule_usage_errors(args, message):
    proc = cli(None, "schedule", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_the_help_explains_cron_systemd_and_orchestrators():
    text = cli(None, "schedule", "--help").stdout
    for needle in ("workbench schedule --once", "ExecStart=", "orchestrator", "--dry-run",
                   "never started late", "early-close", "13:30 UTC", "workbench supervise",
                   "detached", "--outbox FILE"):
        assert needle in text


def test_the_long_running_schedule_stops_cleanly_on_sigterm(workbench_cmd):
    deploy()
    proc = subprocess.Popen([*workbench_cmd, "schedule"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert "running until stopped" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "schedule: stopped" in out
