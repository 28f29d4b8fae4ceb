"""Acceptance: a dashboard-like reader process queries the catalog every 100 ms while a
real ``workbench session`` process (the notebook in mode paper, its kernel the session)
replays a day. The reader never errors and never sees
a half-written event; the session never sees a lock error; the catalog agrees with the
journal at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.journal import replay
from workbench.journal.catalog import catalog
from workbench.model import events as ev

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
# 390 minute bars at 6000 x real time: at least 3.9 s of replay, whatever the machine
SPEED = "6000"


def _session(tmp_path: Path, env: dict) -> subprocess.Popen:
    cmd = [str(BIN / "workbench"), "session", str(NOTEBOOK), "--broker", "sim", "--replay", END,
           "--timeframe", "1Min", "--speed", SPEED, "--json"]
    return subprocess.Popen(cmd, stdout=open(tmp_path / "session.out", "w"),
                            stderr=open(tmp_path / "session.err", "w"), cwd=ROOT, env=env)


def _final_counts(run_path: Path) -> dict[str, int]:
    """What the journal itself says: order intents, fills, events."""
    events = replay(run_path).events
    return {"orders": len({e.payload["client_order_id"] for e in events
                           if e.type == ev.INTENT}),
            "fills": len({e.payload["execution_id"] for e in events if e.type == ev.FILL}),
            "events": len(events)}


@pytest.mark.slow  # a notebook kernel
def test_a_dashboard_reads_the_catalog_while_a_replay_session_runs(workbench_home, tmp_path,
                                                                   jupyter_env):
    Store(workbench_home / "data").write(synthesize(6, 2, "1Min", 7, END), "1Min",
                                         source="synth")
    out, done = tmp_path / "reader.json", tmp_path / "session.done"
    reader = subprocess.Popen([sys.executable, "-m", "tests.session_procs", "reader",
                               str(out), str(done)], cwd=ROOT)
    session = _session(tmp_path, {**jupyter_env, "WORKBENCH_HOME": str(workbench_home)})
    try:
        code = session.wait(timeout=600)
    finally:
        done.touch()
        assert reader.wait(timeout=60) == 0
    err = (tmp_path / "session.err").read_text()
    assert code == 0, err
    assert "lock" not in err.lower(), err
    doc = json.loads((tmp_path / "session.out").read_text())
    result = {**doc["session"], "run_id": doc["run_id"], "path": doc["path"]}
    report = json.loads(out.read_text())

    assert report["errors"] == [] and report["problems"] == [], report
    assert report["with_data"] >= 10 and report["grew"] >= 5, report
    run_path = Path(result["path"])
    journal = _final_counts(run_path)
    assert result["outcome"] == "succeeded" and result["bars"] == 390 and result["orders"] > 4
    assert report["seen"] == {result["run_id"]: journal["events"]}, report
    assert report["tails"] == report["seen"], report
    assert report["status"][0]["run_id"] == result["run_id"], report["status"]

    con = catalog()
    orders, fills, events = con.execute(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM fills), "
        "(SELECT count(*) FROM events)").fetchone()
    assert (orders, fills, events) == (journal["orders"], journal["fills"], journal["events"])
    assert (orders, fills) == (result["orders"], result["fills"])
