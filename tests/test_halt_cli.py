"""`workbench halt` / `resume` write to a running session's control channel only: a record
that is not a running session (finished, a backtest, no record at all) is a one-line error,
exit non-zero, and nothing is written (a command no session will read must not look sent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import wb_inline
from workbench import paths
from workbench.fsutil import exclusive_lock


def _record(tmp_path, **manifest):
    run = paths.runs_dir() / "20261202-000000-x"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.mark.parametrize("command", ["halt", "resume"])
@pytest.mark.parametrize("manifest, says", [
    ({"kind": "session", "status": "finished"}, "a session that is finished"),
    ({"kind": "backtest", "status": "finished"}, "a backtest record"),
])
def test_a_record_that_is_not_a_running_session_is_refused(tmp_path, command, manifest, says):
    run = _record(tmp_path, **manifest)
    result = wb_inline(command, str(run))
    assert result.returncode != 0
    assert says in result.stderr and "nothing sent" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (run / "control").exists() and len(list(run.iterdir())) == 1


def test_a_folder_without_a_record_is_refused(tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = wb_inline("halt", str(folder))
    assert result.returncode != 0 and "no run record" in result.stderr
    assert list(folder.iterdir()) == []


def _live(run):
    """The run's journal writer lock held by this (live) process, its pid inside, as a
    session's journal holds it."""
    (run / "events").mkdir()
    fd = exclusive_lock(run / "events" / ".writer.lock", wait=False)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def test_a_running_session_gets_the_command(tmp_path):
    run = _record(tmp_path, kind="session", status="running")
    fd = _live(run)
    try:
        result = wb_inline("halt", str(run), "--reason", "test")
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    (sent,) = [p for p in run.rglob("*.json") if p.name != "manifest.json"]
    assert json.loads(sent.read_text())["command"] == "halt"


@pytest.mark.parametrize("command", ["halt", "resume"])
def test_a_running_record_whose_process_died_is_refused(tmp_path, command):
    """Killed before its first heartbeat, or by disk full: the manifest still says running,
    no process holds the run's locks (its journal's pid left in the lock file)."""
    run = _record(tmp_path, kind="session", status="running")
    (run / "events").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (run / "events" / ".writer.lock").write_text(dead + "\n")
    old = (run / "manifest.json").stat().st_mtime - 3600  # past a starting run's grace
    os.utime(run / "manifest.json", (old, old))
    for target in (str(run), run.name):  # by folder and by id
        result = wb_inline(command, target)
        assert result.returncode == 2 and "no process holds it" in result.stderr
        assert "the session died" in result.stderr and "nothing sent" in result.stderr
        assert result.stderr.count("\n") == 1 and not (run / "control").exists()


@pytest.mark.parametrize("command", ["halt", "resume"])
def test_a_path_outside_runs_is_never_written(tmp_path, command):
    """`resume /etc` once created /etc/control: a folder outside runs/ is refused even when
    it holds a running session's manifest and a live writer."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "manifest.json").write_text(json.dumps({"kind": "session", "status": "running"}))
    fd = _live(outside)
    try:
        result = wb_inline(command, str(outside))
    finally:
        os.close(fd)
    assert result.returncode == 2 and "not a run folder of" in result.stderr
    assert result.stderr.count("\n") == 1 and not (outside / "control").exists()
    for target in ("/etc", "/", str(paths.runs_dir() / ".." / ".." / "elsewhere"), ""):
        result = wb_inline(command, target)
        assert result.returncode == 2, (target, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not os.path.exists("/etc/control") and not (outside / "control").exists()


def test_halt_all_skips_a_running_record_whose_process_died(tmp_path):
    base = {"kind": "session", "status": "running", "mode": "replay"}
    runs = paths.runs_dir()
    for name in ("20261202-000001-live", "20261202-000002-dead"):
        (runs / name).mkdir(parents=True)
        (runs / name / "manifest.json").write_text(json.dumps({**base, "run_id": name}))
        old = (runs / name / "manifest.json").stat().st_mtime - 3600
        os.utime(runs / name / "manifest.json", (old, old))
    fd = _live(runs / "20261202-000001-live")
    try:
        result = wb_inline("halt", "--all")
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    assert "halt sent to" in result.stdout and "skipped: halt:" in result.stdout
    assert (runs / "20261202-000001-live" / "control").is_dir()
    assert not (runs / "20261202-000002-dead" / "control").exists()
