"""The supervisor with real processes and real kills: one session of a deployment at a
time (fault 9), a session (``workbench session --run``: the notebook's kernel) whose kernel
is SIGKILLed mid-order is alerted and restarted and reconciles, and
a run is marked failed when restarts run out (fault 18), a hung session's whole group dies,
grandchildren and a kernel-like process in its own session included, and a hung cell under
real papermill leaves no kernel alive (fault 19), and a graceful stop goes through the
control channel first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT
from workbench.brokers.sim import SimBroker
from workbench.clock import LiveClock
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.deploy.supervisor import (
    FAILED,
    INTERRUPTED,
    Supervisor,
    SupervisorLocked,
    SupervisorOptions,
    argv_command,
)
from workbench.errors import ConfigError
from workbench.journal import Journal, replay
from workbench.model import events as ev
from workbench.runs.records import OUTCOMES, RunRecord

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
WB = str(BIN / "workbench")
PY = sys.executable
FAST = {"heartbeat_timeout": 60.0, "start_timeout": 120.0, "grace": 2.0, "backoff": 0.05,
        "poll": 0.05}


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(4, 3, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


def _run(home: Path) -> Path:
    return RunRecord.create("session", "sma_cross", {}, "paper", None, LiveClock(),
                            root=home / "runs").path


def _notebook_run(speed: str | float = "max") -> Path:
    """A session run of the strategy notebook, prepared (what a deployment's launcher makes)."""
    from workbench.execution.run import prepare_run

    return prepare_run(NOTEBOOK, kind="session", mode="paper",
                       params={"replay_date": END, "timeframe": "1Min", "speed": speed}).path


# the run's notebook executed by papermill, its kernel the session; a restart resumes it
SESSION = [WB, "session", "--run", "{run_dir}", "--json"]


@pytest.fixture
def kernels(jupyter_env, monkeypatch) -> None:
    """The kernelspec for the sessions' kernels (the supervisor's children inherit it)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", jupyter_env["JUPYTER_DATA_DIR"])
    monkeypatch.setenv("JUPYTER_PATH", "")


def _events(run: Path, *types: str):
    return [e for e in replay(run).events if not types or e.type in types]


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _alive(pid: int) -> bool:
    """A thread of ``pid`` still runs (a zombie leader can have live threads)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            pass
    return any(s not in ("Z", "X") for s in states)


def _fake(mode: str, pids: Path) -> list[str]:
    return [PY, "-m", "tests.supervisor_procs", mode, "{run_dir}", str(pids)]


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_outcomes_the_supervisor_writes_are_record_outcomes():
    assert FAILED in OUTCOMES and INTERRUPTED in OUTCOMES
    with pytest.raises(ConfigError, match="heartbeat_timeout"):
        SupervisorOptions(heartbeat_timeout=0)
    assert argv_command(["x", "--run", "{run_dir}", "{attempt}"])(Path("/r"), 2) == [
        "x", "--run", "/r", "2"]


def test_fault_9_a_second_supervisor_of_the_deployment_is_refused_and_starts_nothing(
        home, tmp_path):
    run, lock, pids = _run(home), tmp_path / "deploy.lock", tmp_path / "pids"
    marker = tmp_path / "second-started"
    sup = [PY, "-m", "workbench.deploy.supervisor", str(run), "--lock", str(lock)]
    first = subprocess.Popen([*sup, "--stop-timeout", "1", "--grace", "1", "--",
                              *_fake("beat", pids)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _events(run, ev.HEARTBEAT))
        other = _run(home)  # even for another run: the deployment's lock decides
        second = subprocess.run([*sup[:3], str(other), "--lock", str(lock), "--", PY, "-c",
                                 f"open({str(marker)!r}, 'w')"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60, check=False)
        assert second.returncode == 5, second.stderr
        assert second.stderr.count("\n") == 1 and "not started" in second.stderr
        assert not marker.exists() and not (other / "session.log").exists()
        first.send_signal(signal.SIGTERM)  # graceful: the fake ignores the channel -> killed
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1 and "interrupted" in out, err
    assert not any(_alive(int(p)) for p in pids.read_text().split())
    # a session holding the run's journal outside any supervisor also refuses one
    with Journal.open(other, LiveClock()), pytest.raises(SupervisorLocked,
                                                         match="already has a session"):
        Supervisor(other, [PY, "-c", f"open({str(marker)!r}, 'w')"]).run()
    assert not marker.exists()


@pytest.mark.slow  # a notebook kernel
def test_fault_18_a_session_killed_mid_order_is_alerted_restarted_and_reconciles(home,
                                                                                 kernels):
    run = _notebook_run()

    def command(run_dir, attempt):  # the first attempt's kernel dies at its 3rd fill (SIGKILL)
        crash = ["env", "WORKBENCH_TEST_CRASH_AT=fill:3"] if attempt == 0 else []
        return [*crash, *argv_command(SESSION)(run_dir, attempt)]

    options = SupervisorOptions(**{**FAST, "start_timeout": 600.0})
    result = Supervisor(run, command, options=options).run()
    log = (run / "session.log").read_text()
    assert [a.returncode for a in result.attempts] == [1, 0], (result.summary(), log[-3000:])
    failure = "the session exited with code 1 without finishing its run"
    assert result.attempts[0].failure == failure and result.attempts[1].failure is None
    assert "kernel died; left running" in log  # what `workbench session` said of attempt 0
    assert result.ok and result.status == "finished" and result.error is None
    # the supervisor's one alert (the session's own, e.g. its drift report, may follow)
    alert = [e for e in _events(run, ev.ALERT) if e.payload.get("source") == "supervisor"]
    assert len(alert) == 1
    assert alert[0].payload["action"] == "restart" and alert[0].payload["message"] == failure
    after = [e for e in _events(run, ev.RECONCILE) if e.seq > alert[0].seq]
    assert after and all(e.payload["ok"] is True for e in after)
    assert [e.payload["restart"] for e in _events(run, ev.SESSION_START)] == [False, True]
    assert _events(run, ev.SESSION_END)
    # exactly one broker order per intent, positions as the broker's
    broker = SimBroker(run / "broker.sqlite")
    intents = {e.payload["client_order_id"] for e in _events(run, ev.INTENT)}
    assert sorted(intents) == sorted(o.client_order_id for o in broker.orders())
    assert "attempt 1" in log


def test_fault_18_the_run_is_marked_failed_when_restarts_run_out(home):
    run = _run(home)
    die = [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    result = Supervisor(run, die, options=SupervisorOptions(**{**FAST, "max_restarts": 2})).run()
    assert len(result.attempts) == 3 and not result.ok
    manifest = _manifest(run)
    assert manifest["status"] == "finished" and manifest["outcome"] == FAILED
    assert "SIGKILL" in manifest["error"] and "no restart left" in manifest["error"]
    actions = [e.payload["action"] for e in _events(run, ev.ALERT)]
    assert actions == ["restart", "restart", "gave up"]


def test_fault_19_a_hung_session_is_killed_whole_and_the_run_marked_failed(home, tmp_path):
    run, pids = _run(home), tmp_path / "pids"
    options = SupervisorOptions(**{**FAST, "heartbeat_timeout": 1.0, "grace": 0.5,
                                   "max_restarts": 0})
    started = time.monotonic()
    result = Supervisor(run, _fake("hang", pids), options=options).run()
    assert time.monotonic() - started < 30
    (attempt,) = result.attempts
    assert attempt.failure.startswith("hung") and attempt.killed and attempt.heartbeats == 1
    leader, grandchild, kernel = (int(p) for p in pids.read_text().split())
    assert leader == attempt.pid
    assert not any(_alive(p) for p in (leader, grandchild, kernel))  # the kernel too
    manifest = _manifest(run)
    assert manifest["outcome"] == FAILED and "hung" in manifest["error"]
    assert [e.payload["action"] for e in _events(run, ev.ALERT)] == ["gave up"]


@pytest.mark.slow  # a notebook kernel
def test_graceful_stop_goes_through_the_control_channel(home, kernels):
    run = _notebook_run(speed=600.0)
    sup = subprocess.Popen([PY, "-m", "workbench.deploy.supervisor", str(run),
                            "--stop-timeout", "60", "--start-timeout", "600", "--", *SESSION],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(_events(run, ev.BAR)) >= 5 or sup.poll() is not None,
                  timeout=600)
        assert sup.poll() is None, (run / "session.log").read_text()[-3000:]
        sup.send_signal(signal.SIGTERM)
        out, err = sup.communicate(timeout=120)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 0, err
    assert "finished/interrupted after 1 attempt(s)" in out
    assert _manifest(run)["outcome"] == INTERRUPTED
    (command,) = _events(run, ev.COMMAND)
    assert command.payload["command"] == "stop" and command.payload["operator"] == "supervisor"
    assert _events(run, ev.SESSION_END) and not _events(run, ev.ALERT)


def test_a_stop_the_session_ignores_kills_the_group_after_the_timeout(home, tmp_path):
    run, pids = _run(home), tmp_path / "pids"
    sup = Supervisor(run, _fake("beat", pids),
                     options=SupervisorOptions(**{**FAST, "stop_timeout": 0.5, "grace": 0.5}))
    threading.Thread(target=lambda: (_wait_for(lambda: pids.exists()), sup.stop("close")),
                     daemon=True).start()
    result = sup.run()
    assert result.stopped and len(result.attempts) == 1 and result.attempts[0].killed
    manifest = _manifest(run)
    assert manifest["outcome"] == INTERRUPTED and "no stop within 0.5s" in manifest["error"]
    assert not any(_alive(int(p)) for p in pids.read_text().split())
    assert [e.payload["action"] for e in _events(run, ev.ALERT)] == ["stopped"]
    assert list((run / "control" / "done").glob("*.json")) == [] and os.listdir(run / "control")


def _hanging_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "workbench", "display_name": "workbench",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('run_dir = ""\npids = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, time\n"
        "from workbench.clock import LiveClock\n"
        "from workbench.journal import Journal\n"
        "from workbench.model import events as ev\n"
        "journal = Journal.open(run_dir, LiveClock())\n"
        "open(pids, 'w').write(f'{os.getpid()} {os.getpgid(0)}\\n')\n"
        "journal.append(ev.HEARTBEAT, wall=LiveClock().now(), bars=0)\n"
        "time.sleep(600)  # a hung cell\n")]
    nbformat.write(nb, path)
    return path


def test_fault_19_a_hung_papermill_cell_leaves_no_kernel_alive(home, tmp_path):
    run, pids = _run(home), tmp_path / "pids"
    notebook = _hanging_notebook(tmp_path / "hang.ipynb")
    papermill = str(BIN / "papermill")
    command = [papermill, str(notebook), "{run_dir}/executed.ipynb", "-k", "workbench",
               "-p", "run_dir", "{run_dir}", "-p", "pids", str(pids), "--log-level", "ERROR"]
    options = SupervisorOptions(**{**FAST, "heartbeat_timeout": 2.0, "grace": 1.0,
                                   "max_restarts": 0})
    result = Supervisor(run, command, options=options).run()
    (attempt,) = result.attempts
    assert attempt.failure.startswith("hung") and attempt.heartbeats == 1
    kernel, kernel_group = (int(p) for p in pids.read_text().split())
    assert kernel_group != attempt.pid  # jupyter_client gave the kernel a session of its own
    assert not _alive(kernel) and not _alive(attempt.pid)
    assert _manifest(run)["outcome"] == FAILED


def test_a_run_its_runner_closed_after_the_kernel_died_is_alerted_not_restarted(home):
    run = _run(home)
    command = [PY, "-m", "tests.supervisor_procs", "closed", "{run_dir}"]
    result = Supervisor(run, command, options=SupervisorOptions(**FAST)).run()
    (attempt,) = result.attempts
    assert not result.ok and "no session_end" in attempt.failure
    assert "kernel died" in attempt.failure and result.outcome == FAILED
    (alert,) = _events(run, ev.ALERT)
    assert alert.payload["action"] == "gave up" and "kernel died" in alert.payload["message"]
