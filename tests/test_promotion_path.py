"""Issue 9's path, end to end with real processes: the sma_cross notebook run by papermill as
a backtest, a walk-forward and a parity check, promoted to paper through every gate, then a
replayed paper session of the same notebook under the supervisor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT, wb_inline

SMA = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
BIN = Path(sys.executable).parent
PLOTLY = "application/vnd.plotly.v1+json"
REPLAY_DAY = "2025-12-31"

pytestmark = pytest.mark.slow



def _wb(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "workbench"), *args], env=env, capture_output=True,
                          text=True, timeout=900)


def test_sma_cross_from_backtest_through_the_gates_to_a_supervised_paper_session(
        jupyter_env, workbench_home, store, tmp_path, monkeypatch):
    from workbench.data.sources import synth_into_store
    from workbench.deploy.supervisor import Supervisor, argv_command
    from workbench.execution.run import prepare_run
    from workbench.journal.reader import replay
    from workbench.runs.records import load_manifest

    synth_into_store(store, 3, 3, "1Min", 11, REPLAY_DAY)
    # synthetic walk-forward results are noise: the thresholds are the operator's to set
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home),
           "WORKBENCH__GATES__MIN_OOS_SHARPE": "-100", "WORKBENCH__GATES__MAX_OOS_DRAWDOWN": "1"}

    # the refusals in this process (the same command, its errors and exit code: see
    # tests/conftest.wb_inline); the promotion that registers runs as a real process below
    gates = {k: v for k, v in env.items() if k.startswith("WORKBENCH__GATES__")}
    blocked = wb_inline("promote", str(SMA), "--to", "paper", env=gates)
    assert blocked.returncode == 1, blocked.stderr
    assert "promotion to paper blocked by 5 gate(s)" in blocked.stderr
    assert "FAIL  backtest" in blocked.stdout and "no backtest run of this code" in blocked.stdout

    # the three runs are independent (each its own record, reading the store): together
    evidence = {mode: subprocess.Popen([str(BIN / "workbench"), "run", str(SMA), "--mode", mode,
                                        "--json"], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
                for mode in ("backtest", "walk_forward", "parity")}
    try:
        for mode, proc in evidence.items():
            out, err = proc.communicate(timeout=900)
            assert proc.returncode == 0, (mode, out + err)
            assert json.loads(out)["outcome"] == "succeeded"
    finally:
        for proc in evidence.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    # the runs were of the notebook's defaults (fast=10): no evidence for promoting fast=5
    near = wb_inline("promote", str(SMA), "--to", "paper", "-p", "fast", "5", env=gates)
    assert near.returncode == 1, near.stdout + near.stderr
    assert "-p fast=5 over the notebook's defaults" in near.stdout
    assert "FAIL  backtest" in near.stdout and "fast=10 (promoted 5)" in near.stdout
    assert "blocked by 3 gate(s): backtest, parity, lookahead" in near.stderr
    assert "fast, slow chosen per fold from its grid" in near.stdout  # fast=5 is in the grid

    promoted = _wb(env, "promote", str(SMA), "--to", "paper", "--json")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    report = json.loads(promoted.stdout)
    assert report["passed"] and [g["gate"] for g in report["gates"]] == [
        "backtest", "oos_sharpe", "oos_drawdown", "parity", "lookahead"]
    assert all(g["passed"] for g in report["gates"])
    assert report["gates"][3]["value"] == 0 and report["gates"][4]["value"] is True
    deployment = report["deployment"]
    assert deployment["mode"] == "paper" and deployment["broker"] == "sim"
    assert deployment["notebook_hash"] == report["notebook_hash"]
    assert Path(report["report"]).is_file()
    listed = wb_inline("deployments", "--json")
    assert [d["id"] for d in json.loads(listed.stdout)] == [deployment["id"]]

    monkeypatch.setenv("JUPYTER_DATA_DIR", env["JUPYTER_DATA_DIR"])  # the child's kernel
    monkeypatch.setenv("JUPYTER_PATH", "")
    record = prepare_run(SMA, kind="session", mode="paper",
                         params={"timeframe": "1Min", "replay_date": REPLAY_DAY,
                                 "fast": 5, "slow": 20})
    supervisor = Supervisor(record.path, argv_command(
        [sys.executable, "-m", "workbench.execution.child", "{run_dir}"]))
    result = supervisor.run()
    assert result.ok, (result.summary(), (record.path / "session.log").read_text()[-3000:])
    manifest = load_manifest(record.path)
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"
    assert manifest["notebook"]["hash"] == report["notebook_hash"]
    executed = nbformat.read(record.path / "notebook.ipynb", as_version=4)
    last = [c for c in executed.cells if c.cell_type == "code" and "wb.run(" in c.source][-1]
    assert any(PLOTLY in o.get("data", {}) for o in last.get("outputs", []))  # the session's figure
    types = [e.type for e in replay(record.path).events]
    while types[-1] == "alert":  # the session's drift, measured after its end
        types.pop()
    assert "session_start" in types and types[-1] == "session_end"
    assert {"bar", "signal", "heartbeat"} <= set(types)
