"""The replayed paper session: records agree with the broker, one session per run,
the control channel and SIGTERM stop it cleanly, reconciliation fails closed, and a
SIGKILL at each crash point leaves exactly one broker order per intent after restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BIN, ROOT
from workbench.brokers.sim import SimBroker
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.journal import replay
from workbench.journal.catalog import catalog
from workbench.model import OrderIntent, Side
from workbench.model import events as ev
from workbench.session.control import send
from workbench.session.runner import run_session
from workbench.strategy.notebook import load_notebook_strategy

END = "2026-11-20"
DAYS = ("2026-11-18", "2026-11-19", "2026-11-20")
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
WB = str(BIN / "workbench")


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(4, 3, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


@pytest.fixture(scope="module")
def strategy():
    return load_notebook_strategy(NOTEBOOK, None)[0]


def _events(path, *types):
    return [e for e in replay(path).events if not types or e.type in types]


def _assert_agrees_with_broker(run_path: Path, broker: SimBroker) -> None:
    run_id = Path(run_path).name
    con = catalog()
    fills = con.execute("SELECT execution_id FROM fills WHERE run_id = ?", [run_id]).fetchall()
    assert sorted(f for (f,) in fills) == sorted(f.execution_id for f in broker.fills())
    pos = dict(con.execute("SELECT symbol, qty FROM positions WHERE run_id = ? AND qty <> 0",
                           [run_id]).fetchall())
    assert {s: Decimal(q) for s, q in pos.items()} == {
        s: p.quantity for s, p in broker.positions().items()}
    intents = {e.payload["client_order_id"] for e in _events(run_path, ev.INTENT)}
    assert intents == {o.client_order_id for o in broker.orders()}  # one order per intent


def test_a_replayed_day_completes_and_journal_manifest_catalog_agree(home, strategy):
    result = run_session(strategy, {}, replay_date=END, heartbeat_every=50)
    assert result.outcome == "succeeded" and result.bars == 390 and result.orders > 4
    manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    assert manifest["kind"] == "session" and manifest["mode"] == "paper"
    assert manifest["outcome"] == "succeeded" and manifest["extra"]["pnl"] == result.pnl
    types = {e.type for e in _events(result.path)}
    assert {ev.SESSION_START, ev.RECONCILE, ev.BAR, ev.SIGNAL, ev.RISK_DECISION, ev.INTENT,
            ev.FILL, ev.EQUITY, ev.HEARTBEAT, ev.SESSION_END} <= types
    assert "order_intent" not in types  # the old spelling is no longer written
    assert len(_events(result.path, ev.EQUITY)) == 390
    broker = SimBroker(result.broker_path)
    _assert_agrees_with_broker(Path(result.path), broker)
    assert Decimal(result.cash) == broker.account().cash


def test_a_halt_waiting_in_the_control_channel_stops_new_orders_from_the_next_bar(
        home, strategy, monkeypatch):
    from workbench.runs import records

    made = []
    real = records.RunRecord.create.__func__

    def create(cls, *a, **kw):
        record = real(cls, *a, **kw)
        send(record.path, "halt", reason="test halt", operator="tester")
        made.append(record)
        return record

    monkeypatch.setattr(records.RunRecord, "create", classmethod(create))
    result = run_session(strategy, {}, replay_date=END)
    assert result.state == "halted" and result.orders == 0
    assert _events(result.path, ev.COMMAND)[0].payload["command"] == "halt"
    assert not _events(result.path, ev.INTENT)
    assert any(e.payload["approved"] is False for e in _events(result.path, ev.RISK_DECISION))


def _wb(*args, env=None, **kw):
    env = {**os.environ, **(env or {})}
    return subprocess.Popen([WB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def _one_run(home: Path) -> Path:
    runs = [p for p in (home / "runs").glob("*-session-*") if (p / "manifest.json").exists()]
    return runs[0] if len(runs) == 1 and (runs[0] / "events").is_dir() else None


def test_real_processes_second_session_refused_halt_then_sigterm(home):
    first = _wb("session", str(NOTEBOOK), "--broker", "sim", "--replay", END, "--speed", "600",
                "--json")
    try:
        run = _wait_for(lambda: _one_run(home))
        _wait_for(lambda: len(_events(run, ev.BAR)) >= 3)
        second = subprocess.run([WB, "session", str(NOTEBOOK), "--replay", END, "--run",
                                 str(run)], capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode != 0 and "already" in second.stderr
        halt = subprocess.run([WB, "halt", str(run)], capture_output=True, text=True, timeout=60, check=False)
        assert halt.returncode == 0, halt.stderr
        command = _wait_for(lambda: _events(run, ev.COMMAND))[0]
        _wait_for(lambda: [e for e in _events(run, ev.BAR) if e.seq > command.seq][1:])
        status = subprocess.run([WB, "status", "--json"], capture_output=True, text=True,
                                timeout=60, check=False)
        row = json.loads(status.stdout)[0]
        assert row["status"] == "running" and row["risk_state"] == "halted"
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert json.loads(out)["outcome"] == "interrupted"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted" and manifest["status"] == "finished"
    assert _events(run, ev.SESSION_END)
    later = [e for e in _events(run, ev.INTENT) if e.seq > command.seq]
    assert later == []  # no new orders once halted


def test_a_position_changed_behind_the_sessions_back_halts_the_next_run(home, strategy):
    broker_path = home / "deploy" / "broker.sqlite"
    one = run_session(strategy, {}, replay_date=DAYS[0], broker_path=broker_path)
    two = run_session(strategy, {}, replay_date=DAYS[1], broker_path=broker_path)
    assert one.outcome == "succeeded" and two.outcome == "succeeded"  # no false alarm
    broker = SimBroker(broker_path)
    at = pd.Timestamp(f"{DAYS[2]} 09:30", tz="America/New_York").tz_convert("UTC")
    broker.submit(OrderIntent("manual-1", "AAA" if "AAA" in two.positions else
                              min(Store().ls()["symbol"]), Side.BUY, Decimal(7)))
    broker.on_bars(at, {s: (10.0, 10.0, 10.0, 10.0, 100.0) for s in Store().ls()["symbol"]})
    broker.close()
    three = run_session(strategy, {}, replay_date=DAYS[2], broker_path=broker_path)
    assert three.outcome == "halted" and three.state == "halted" and three.orders == 0
    assert "reconciliation failed" in three.message and "position" in three.message
    rec = _events(three.path, ev.RECONCILE)[0].payload
    assert rec["ok"] is False and rec["differences"]
    assert _events(three.path, ev.STATE)[-1].payload["state"] == "halted"
    assert not _events(three.path, ev.INTENT)


@pytest.mark.parametrize("point", ["intent_journaled", "broker_accepted", "before_reply", "fill"])
def test_sigkill_at_each_crash_point_then_restart_leaves_one_order_per_intent(home, point):
    crashed = subprocess.run([WB, "session", str(NOTEBOOK), "--replay", END, "--json"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "WORKBENCH_TEST_CRASH_AT": f"{point}:3"},
                             check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run = _one_run(home)
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    again = subprocess.run([WB, "session", str(NOTEBOOK), "--replay", END, "--run", str(run),
                            "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["outcome"] == "succeeded" and result["state"] == "active"
    assert _events(run, ev.RECONCILE)[-1].payload["ok"] is True
    _assert_agrees_with_broker(run, SimBroker(run / "broker.sqlite"))


def test_risk_settings_come_from_the_configuration(home, strategy, monkeypatch):
    """Kill-switch thresholds are the configured ones (env over workbench.toml), journaled."""
    monkeypatch.setenv("WORKBENCH__RISK__DAILY_LOSS_REDUCE", "0.02")
    monkeypatch.setenv("WORKBENCH__RISK__MAX_ORDERS", "2")
    monkeypatch.setenv("WORKBENCH__RISK__ORDER_WINDOW_S", "86400")
    result = run_session(strategy, {}, replay_date=END, heartbeat_every=50)
    config = _events(result.path, ev.CONFIG)[-1].payload["risk"]
    assert config["daily_loss_reduce"] == "0.02" and config["max_orders"] == 2
    states = [e.payload for e in _events(result.path, ev.STATE)]
    assert states and states[-1]["state"] == "halted", states  # the third order trips the rate switch
    assert len(_events(result.path, ev.INTENT)) <= 3
