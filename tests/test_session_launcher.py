"""The schedule starts a deployment's session for real: its notebook run under a detached
supervisor that outlives the scheduler, on the deployment's own account; `workbench
supervise` runs one in the foreground; what cannot be the promoted session is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, wb_inline
from tests.gate_reports import passed_report
from workbench.clock import SimClock
from workbench.deploy.launcher import SessionLauncher, broker_path, speed_value
from workbench.deploy.registry import Registry, register
from workbench.deploy.scheduler import run_once, session_records
from workbench.errors import ConfigError

SMA = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
BIN = Path(sys.executable).parent
PARAMS = {"timeframe": "1Min", "fast": 5, "slow": 20}
DAY1, DAY2 = "2025-12-30", "2025-12-31"  # stored synthetic minute days (and 2025-12-29)


def deploy(notebook=SMA, parameters=None, at="2025-12-29 12:00"):
    parameters = PARAMS if parameters is None else parameters
    return register(notebook, mode="paper", capital={"cash": 50_000},
                    gates=passed_report(notebook, "paper", parameters), clock=SimClock(at))


def wb(env, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "workbench"), *args], check=False, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


def cli(*args) -> subprocess.CompletedProcess:
    """The command in this process (tests/conftest.wb_inline): the refusals below; `supervise`,
    `schedule` and `promote` run as real processes in the slow tests here and elsewhere."""
    return wb_inline(*args)


def _events(run_dir: Path) -> list:
    from workbench.journal.reader import replay

    return replay(run_dir).events


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.slow
def test_the_schedule_starts_one_detached_supervised_session_that_outlives_it(
        jupyter_env, workbench_home, store):
    from workbench.data.sources import synth_into_store
    from workbench.runs.records import load_manifest

    synth_into_store(store, 3, 3, "1Min", 11, DAY2)
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home)}
    dep = deploy()

    # the foreground session of the day before: what cron would run
    fg = wb(env, "supervise", dep.id, "--date", DAY1, "--speed", "max", "--json")
    assert fg.returncode == 0, fg.stdout + fg.stderr
    first = json.loads(fg.stdout)
    assert (first["status"], first["outcome"], first["attempts"]) == ("finished", "succeeded", 1)
    params = load_manifest(first["run_dir"])["params"]
    account = broker_path(Registry(), dep)
    assert params == {**PARAMS, "replay_date": DAY1, "broker_path": str(account),
                      "speed": "max", "capital": 50_000}
    start = next(e for e in _events(Path(first["run_dir"])) if e.type == "session_start")
    assert float(start.payload["start_equity"]) == 50_000  # the deployment's capital
    assert first["account"] == (f"account {account} opened with the deployment's capital "
                                "50,000.00; the capital is the session's whole cash, split over "
                                "its accounts; each entry is the notebook's `size` of its "
                                "account, as in the backtest")
    used = json.loads((Path(first["run_dir"]) / "results" / "settings.json").read_text())
    n = len(used["data"]["symbols"])
    assert used["settings"]["capital"] == 50_000
    assert used["settings"]["cash_per_account"] == used["sizing"]["cash"] == pytest.approx(50_000 / n)

    # one pass inside the window of DAY2: exactly one detached supervised session
    sched = subprocess.Popen([str(BIN / "workbench"), "schedule", "--once", "--now",
                              f"{DAY2} 14:26", "--speed", "max", "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    out, err = sched.communicate(timeout=120)
    assert sched.returncode == 0, err
    report = json.loads(out)
    assert [s["date"] for s in report["started"]] == [DAY2], report
    assert [s["date"] for s in report["missed"]] == ["2025-12-29", DAY1]
    started = report["started"][0]
    pid, run_dir = started["pid"], Path(started["run_dir"])
    # the scheduler has exited and its process group is empty: the session is not in it
    with pytest.raises(ProcessLookupError):
        os.killpg(sched.pid, signal.SIGKILL)
    assert not _gone(pid) and os.getsid(pid) == pid != sched.pid
    record = session_records(Registry(), dep.id)[f"{dep.id}/{DAY2}"]
    assert (record["state"], record["run_id"], record["pid"]) == ("started", run_dir.name, pid)
    assert 23_000 < record["stop_after_s"] < 24_000  # 14:26 .. 21:05 UTC
    assert record["account"].startswith(f"account {account} carried over") and \
        "the capital is the session's whole cash" in record["account"]

    again = wb(env, "schedule", "--once", "--now", f"{DAY2} 14:27")
    assert again.returncode == 0 and "started" not in again.stdout
    assert f"running  {dep.id}  {DAY2}" in again.stdout

    deadline = time.monotonic() + 400
    while load_manifest(run_dir).get("status") == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    manifest = load_manifest(run_dir)
    assert (manifest["status"], manifest["outcome"]) == ("finished", "succeeded"), \
        Path(started["log"]).read_text()[-3000:]
    assert manifest["params"]["replay_date"] == DAY2
    events = _events(run_dir)
    types = [e.type for e in events]
    assert "session_start" in types and types[-1] == "session_end" and "heartbeat" in types
    reconcile = json.dumps([e.payload for e in events if e.type == "reconcile"])
    assert first["run_id"] in reconcile  # the account carried over from the first session
    assert (run_dir / "notebook.ipynb").is_file()
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid)
    log = Path(started["log"]).read_text()
    assert f"supervising {dep.id} session {DAY2}" in log
    assert "succeeded after 1 attempt(s)" in log


@pytest.mark.slow
def test_the_window_stop_ends_the_session_gracefully(jupyter_env, workbench_home, store):
    """--stop-after (what the launcher gives: the time left in the window) stops the session
    through its control channel: it ends its run itself, interrupted, exit code 130."""
    from workbench.data.sources import synth_into_store
    from workbench.runs.records import load_manifest

    synth_into_store(store, 2, 2, "1Min", 11, DAY2)
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home)}
    dep = deploy()
    proc = wb(env, "supervise", dep.id, "--date", DAY2, "--speed", "max", "--stop-after", "0",
              "--json")
    assert proc.returncode == 130, proc.stdout + proc.stderr
    ended = json.loads(proc.stdout)
    assert (ended["outcome"], ended["attempts"], ended["stopped"]) == ("interrupted", 1, True)
    manifest = load_manifest(ended["run_dir"])
    assert manifest["outcome"] == "interrupted"
    types = [e.type for e in _events(Path(ended["run_dir"]))]
    assert types[-1] == "session_end" and types.count("bar") < 5 and "alert" not in types


def test_an_edited_notebook_is_refused_and_goes_back_through_the_gates(tmp_path, store):
    from workbench.data.sources import synth_into_store

    synth_into_store(store, 2, 2, "1Min", 11, DAY2)
    copy = tmp_path / "sma_cross.ipynb"
    shutil.copy(SMA, copy)
    dep = deploy(copy)
    nb = json.loads(copy.read_text())
    cell = next(c for c in nb["cells"] if "@wb.strategy" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]) + "\n# edited after the promotion\n"
    copy.write_text(json.dumps(nb))
    launcher = SessionLauncher(Registry(), speed="max", clock=SimClock(f"{DAY2} 14:26"))
    report = run_once(Registry(), SimClock(f"{DAY2} 14:26"), launcher)
    assert report.started == () and len(report.failed) == 1
    error = report.failed[0][1]
    assert "changed since it was promoted" in error and "must go back through the gates" in error
    assert "\n" not in error and error.endswith("not started")
    record = session_records(Registry(), dep.id)[f"{dep.id}/{DAY2}"]
    assert record["state"] == "failed" and record["error"] == error
    assert not (Path(os.environ["WORKBENCH_HOME"]) / "runs").exists()  # nothing prepared


def test_a_day_not_in_the_store_is_refused_before_anything_runs():
    dep = deploy()
    launcher = SessionLauncher(Registry(), clock=SimClock(f"{DAY2} 14:26"))
    report = run_once(Registry(), SimClock(f"{DAY2} 14:26"), launcher)
    error = report.failed[0][1]
    assert f"{dep.id}: no 1Min bars of {DAY2} in the store" in error
    assert "replays the stored day" in error and "live feed is issue 8" in error
    assert not broker_path(Registry(), dep).exists()


def test_the_schedule_sets_the_session_settings_a_deployment_may_not_hold():
    held = deploy(parameters={**PARAMS, "replay_date": DAY1})
    launcher = SessionLauncher(Registry(), clock=SimClock(f"{DAY2} 14:26"))
    error = run_once(Registry(), SimClock(f"{DAY2} 14:26"), launcher).failed[0][1]
    assert f"{held.id} holds replay_date: the schedule sets these" in error
    proc = cli("promote", str(SMA), "--to", "paper", "-p", "broker_path",
               "x.sqlite")
    assert proc.returncode == 2 and "-p broker_path: the schedule sets it" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--date", "2025-12-25"], "the market is closed that day"),
    (["--date", "someday"], "--date: cannot read 'someday'"),
    (["--speed", "fast"], "--speed must be 'max' or a number > 0"),
    (["--run", "/nope", "--date", DAY1], "--run is a prepared run"),
])
def test_supervise_usage_errors_are_one_line(args, message):
    dep = deploy()
    proc = cli("supervise", dep.id, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_supervise_an_unknown_deployment_and_schedule_options():
    proc = cli("supervise", "nope")
    assert proc.returncode == 2 and "no deployment 'nope'" in proc.stderr
    proc = cli("schedule", "--once", "--outbox", "o.jsonl", "--speed", "max")
    assert proc.returncode == 2 and "with --outbox nothing is started" in proc.stderr
    assert speed_value(None) == 1 and speed_value("MAX") == "max" and speed_value("2.5") == 2.5
    with pytest.raises(ConfigError):
        speed_value("0")
