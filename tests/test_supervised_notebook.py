"""A notebook session under the supervisor whose kernel is killed mid-session (fault 18 with
the execution child): the run is left running, alerted, resumed in the same folder, and the
resumed session reconciles with the broker before it trades on to the end of the day."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SMA = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
REPLAY_DAY = "2025-12-31"

pytestmark = pytest.mark.slow


def test_a_killed_kernel_is_resumed_and_reconciles(jupyter_env, workbench_home, store,
                                                   monkeypatch):
    from workbench.data.sources import synth_into_store
    from workbench.deploy.supervisor import Supervisor, SupervisorOptions
    from workbench.execution.run import prepare_run
    from workbench.journal.reader import replay
    from workbench.runs.records import load_manifest

    synth_into_store(store, 3, 3, "1Min", 11, REPLAY_DAY)
    monkeypatch.setenv("JUPYTER_DATA_DIR", jupyter_env["JUPYTER_DATA_DIR"])
    monkeypatch.setenv("JUPYTER_PATH", "")
    record = prepare_run(SMA, kind="session", mode="paper",
                         params={"timeframe": "1Min", "replay_date": REPLAY_DAY,
                                 "fast": 5, "slow": 20})

    def command(run_dir: Path, attempt: int) -> list[str]:
        crash = ["env", "WORKBENCH_TEST_CRASH_AT=fill:3"] if attempt == 0 else []
        return [*crash, sys.executable, "-m", "workbench.execution.child", "--resumable",
                str(run_dir)]

    result = Supervisor(record.path, command,
                        options=SupervisorOptions(backoff=0.1, max_restarts=2)).run()
    log = (record.path / "session.log").read_text()
    assert result.ok and len(result.attempts) == 2, (result.summary(), log[-3000:])
    assert "kernel died; left running for its supervisor to resume" in log
    manifest = load_manifest(record.path)
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"
    events = replay(record.path).events
    types = [e.type for e in events]
    alert = types.index("alert")
    end = types.index("session_end")  # then only its drift's alerts (workbench.monitor.drift)
    assert types.count("fill") >= 3 and all(
        e.type == "alert" and e.payload["source"] == "drift" for e in events[end + 1:])
    reconciles = [e for e in events[alert:] if e.type == "reconcile"]
    assert reconciles and reconciles[0].payload.get("ok") is True
    intents = [e.payload["client_order_id"] for e in events if e.type == "intent"]
    assert len(intents) == len(set(intents))  # nothing placed twice across the kill
    # the notebook's sizing (accounts of 100,000, size 1.0) and no cap set in [risk]: the
    # caps are derived from it at each start, and none refuses a trade of the backtest's
    caps = [e.payload["risk_caps"]["caps"] for e in events if e.type == "session_start"]
    assert len(caps) == 2 and caps[0] == caps[1]  # the restart derives the same
    assert {c["source"] for c in caps[0].values()} == {"derived"}
    assert not [e for e in events if e.type == "risk_decision" and not e.payload["approved"]
                and e.payload["check"] in ("notional_cap", "symbol_exposure_cap",
                                           "total_exposure_cap")]
