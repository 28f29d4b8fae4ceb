"""Runs that died, and damage, as ``workbench status`` shows them (issue 12, points 4 and 5):
liveness from the run's locks (a record saying "running" that no process holds is shown
died, with its last heartbeat: after a kill before the first heartbeat, a refused second
session, disk full), a damaged journal warned about with a non-zero exit, disk full mid-run
ending the session with a plain message and a restart that reconciles (fault test 14, on a
real full tmpfs), and a damaged number named by file and line when the run restarts."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, wb_inline
from tests.notebook_strategies import strategy_of
from workbench.brokers.sim import SimBroker
from workbench.clock import SimClock
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.fsutil import exclusive_lock, lock_held
from workbench.journal import Journal, JournalCorrupt, replay
from workbench.journal.events import SUM_SUFFIX
from workbench.model import events as ev
from workbench.runs.records import RunRecord
from workbench.runs.status import session_status
from workbench.session.runner import run_session
from workbench.session.start import SessionLocked

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
T0 = pd.Timestamp("2026-03-02 14:30", tz="UTC")

# a session's process, as far as liveness goes: its record, its journal held, a session_start
# (and a heartbeat with "beat"), then it waits to be killed
HOLDER = """
import sys, time
from workbench.clock import LiveClock
from workbench.journal import Journal
from workbench.model import events as ev
from workbench.runs.records import RunRecord
record = RunRecord.create("session", "sma_cross", {}, "paper", None, LiveClock())
journal = Journal.open(record.path, LiveClock())
journal.append(ev.SESSION_START, replay_date="2026-11-20")
if sys.argv[1] == "beat":
    journal.append(ev.HEARTBEAT, wall=LiveClock().now(), bars=1)
print(record.path, flush=True)
time.sleep(300)
"""


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(4, 4, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


def _row(run: Path, **kw) -> dict:
    return next(r for r in session_status(**kw) if r["run_id"] == Path(run).name)


def test_asking_whether_a_lock_is_held_never_refuses_a_writer(tmp_path):
    """``lock_held`` takes a shared lock for an instant; a writer taking the lock at that
    instant tries again for a moment instead of believing another writer has it."""
    path = tmp_path / "run.lock"
    assert not lock_held(path) and not path.exists()  # asked, never created
    path.touch()
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a probe caught holding it
    threading.Timer(0.05, os.close, [fd]).start()
    writer = exclusive_lock(path, wait=False)
    assert lock_held(path)
    os.close(writer)
    assert not lock_held(path)


@pytest.mark.parametrize("beat", [False, True])
def test_a_session_killed_is_shown_died_with_its_last_heartbeat(workbench_home, beat):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, "beat" if beat else "start"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        run = Path(proc.stdout.readline().strip())
        row = _row(run)
        assert (row["status"], row["recorded_status"]) == ("running", "running")
        shown = wb_inline("status")
        assert shown.returncode == 0 and f"{run.name}  running/None" in shown.stdout
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    row = _row(run)
    assert (row["status"], row["recorded_status"]) == ("died", "running")
    beats = [e.payload["wall"] for e in replay(run).events if e.type == ev.HEARTBEAT]
    assert row["last_heartbeat"] == (beats[-1] if beat else None) and len(beats) == int(beat)
    shown = wb_inline("status")
    assert shown.returncode == 0 and f"{run.name}  died/None" in shown.stdout
    said = f"last heartbeat {beats[-1]}" if beat else "no heartbeat"
    assert f"died: no process holds the run ({said})" in shown.stderr
    assert f"workbench session --run {run}" in shown.stderr


def test_a_refused_second_session_is_not_left_running(home):
    broker_path = home / "account.sqlite"
    held = exclusive_lock(f"{broker_path}.lock", wait=False)  # another session's broker lock
    try:
        with pytest.raises(SessionLocked, match="is in use by another session"):
            run_session(strategy_of(NOTEBOOK), {}, replay_date=END, broker_path=broker_path)
    finally:
        os.close(held)
    (run,) = (home / "runs").glob("*-session-*")
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    row = _row(run)
    assert row["status"] == "died" and row["last_heartbeat"] is None


def test_a_damaged_journal_is_a_warning_and_a_non_zero_exit(workbench_home):
    root = workbench_home / "runs"
    clean, damaged = (RunRecord.create("session", "x", {}, "paper", None, SimClock(T0),
                                       root=root) for _ in range(2))
    for record in (clean, damaged):
        with Journal.open(record.path, SimClock(T0), segment_bytes=1024) as journal:
            for i in range(13):
                journal.append(ev.POSITION, symbol=f"S{i:02d}", quantity="5", average_price="1")
            for i in range(10):
                journal.append(ev.BAR, i=i)
            journal.append(ev.EQUITY, equity="100000", cash="99000", pnl="0")
        record.finish("succeeded")
    assert wb_inline("status").returncode == 0
    segments = sorted((damaged.path / "events").glob("*.jsonl"))
    assert len(segments) >= 3
    data = bytearray(segments[-1].read_bytes())
    data[data.index(b'"cash"') + 2] = 0xFF  # not UTF-8: the whole segment was skipped before
    segments[-1].write_bytes(bytes(data))
    row = _row(damaged.path)
    assert row["damaged"] and len(row["positions"]) == 13  # what the run holds
    assert [(d["segment"], d["reason"]) for d in row["damage"]] == [
        (segments[-1].name, "not UTF-8 (a damaged byte)")]
    assert not _row(clean.path)["damaged"]
    shown = wb_inline("status")
    assert shown.returncode == 3
    assert "P&L None (partial: journal damaged)" in shown.stdout
    assert (f"warning: run {damaged.run_id}: its journal is damaged ({segments[-1].name} line "
            in shown.stderr)
    assert f"error: 1 session run(s) with a damaged journal: {damaged.run_id}" in shown.stderr
    segments[1].unlink()  # a middle segment deleted: partial counts, said
    shown = wb_inline("status", "--json")
    assert shown.returncode == 3
    (row,) = [r for r in json.loads(shown.stdout) if r["run_id"] == damaged.run_id]
    assert {"segment": segments[1].name, "line": None, "reason": "segment missing"} in row[
        "damage"]


def test_restarting_a_run_with_a_damaged_number_names_the_file_and_line(home):
    crashed = subprocess.run([sys.executable, "-m", "tests.session_procs", "session",
                              str(NOTEBOOK), END], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "WORKBENCH_TEST_CRASH_AT": "fill:3"},
                             cwd=ROOT, check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    (run,) = (home / "runs").glob("*-session-*")
    segment = run / "events" / "000001.jsonl"
    lines = segment.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines, 1) if line.startswith(b'{"type":"fill"'))
    price = lines[number - 1].split(b'"price":"')[1].split(b'"')[0]
    lines[number - 1] = lines[number - 1].replace(b'"price":"' + price,
                                                  b'"price":"' + price[:1] + b"x" + price[2:])
    segment.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=rf"{segment} line {number}: not a valid event: "
                                             "checksum mismatch"):
        run_session(strategy_of(NOTEBOOK), {}, replay_date=END, run_dir=run)
    # the same damage in a journal written before checksums: named where it is found
    segment.write_bytes(b"\n".join(line[:-SUM_SUFFIX] + b"}"
                                   if line[-SUM_SUFFIX:-10] == b',"sum":"' else line
                                   for line in segment.read_bytes().split(b"\n")))
    with pytest.raises(JournalCorrupt, match=rf"{segment} line {number}: a fill event that "
                                             r"cannot be read \(.*ConversionSyntax"):
        run_session(strategy_of(NOTEBOOK), {}, replay_date=END, run_dir=run)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a real full disk needs a tmpfs mount (root): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs: a session's journal of the day does not fit (about 360 KB)."""
    path = tmp_path / "small"
    _mount_tmpfs(path, "256k")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


DISK_FULL = """
import sys
from tests.notebook_strategies import strategy_of
from workbench.session.runner import run_session
run_session(strategy_of(sys.argv[1]), {}, replay_date=sys.argv[2], runs_root=sys.argv[3],
            broker_path=sys.argv[4])
"""


def test_disk_full_mid_run_stops_trading_plainly_and_a_restart_reconciles(home, small_disk):
    """Fault test 14 on a real full filesystem (the runs folder on a tiny tmpfs; the sim
    broker's file elsewhere, as a real broker's account is)."""
    broker_path = home / "account.sqlite"
    full = subprocess.run([sys.executable, "-c", DISK_FULL, str(NOTEBOOK), END, str(small_disk),
                           str(broker_path)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, check=False)
    assert full.returncode == 1
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("workbench.journal.events.JournalDiskFull: disk full: the journal "
                           "of run "), full.stderr[-2000:]
    assert "no space left on device" in last and "Free space, then restart the run" in last
    (run,) = small_disk.glob("*-session-*")
    before = replay(run)  # the committed record is whole: every line an event, none torn
    assert before.report.clean and before.events[-1].type != ev.SESSION_END
    bars = [e for e in before.events if e.type == ev.BAR]
    assert 30 < len(bars) < 390  # mid-day
    row = _row(run, root=small_disk)
    assert row["status"] == "died" and row["last_heartbeat"] is not None
    assert not row["damaged"]
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    result = run_session(strategy_of(NOTEBOOK), {}, replay_date=END, run_dir=run,
                         broker_path=broker_path)
    assert result.outcome == "succeeded"
    events = replay(run).events
    assert [e.payload["ok"] for e in events if e.type == ev.RECONCILE] == [True, True]
    broker = SimBroker(broker_path)
    positions = {s: Decimal(q) for s, q in result.positions.items()}
    assert positions == {s: p.quantity for s, p in broker.positions().items()}
    intents = {e.payload["client_order_id"] for e in events if e.type == ev.INTENT}
    assert intents == {o.client_order_id for o in broker.orders()}  # one order per intent
    assert _row(run, root=small_disk)["status"] == "finished"
