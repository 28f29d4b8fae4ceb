"""The replayed paper session: records agree with the broker, one session per run,
the control channel and SIGTERM stop it cleanly, reconciliation fails closed, and a
SIGKILL at each crash point leaves exactly one broker order per intent after restart.

The engine's meanings run ``run_session`` in-process (or in a plain child process for the
crash points, no kernel); ``workbench session`` (papermill, the notebook in mode "paper")
runs for what only the command does: one session per run, halt / status / SIGTERM, a kernel
killed mid-session and restarted with ``--run``, and its refusals (before any kernel)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BIN, ROOT, wb_inline
from tests.notebook_strategies import strategy_of
from workbench.brokers.sim import SimBroker
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.journal import replay
from workbench.journal.catalog import catalog
from workbench.model import OrderIntent, Side
from workbench.model import events as ev
from workbench.session.control import send
from workbench.session.runner import run_session

END = "2026-11-20"
DAYS = ("2026-11-18", "2026-11-19", "2026-11-20")  # the store holds 2026-11-17 too: history
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
WB = str(BIN / "workbench")


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(4, 4, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


@pytest.fixture(scope="module")
def strategy():
    return strategy_of(NOTEBOOK)


@pytest.fixture
def kernel_env(jupyter_env, home) -> dict:
    """The environment of a `workbench session` process: the kernelspec, this test's home."""
    return {**jupyter_env, "WORKBENCH_HOME": str(home)}


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
    # one order per intent (a protection's take-profit leg is part of its order)
    assert intents == {o.client_order_id for o in broker.orders() if o.parent_id is None}
    legs = {e.payload["client_order_id"] for e in _events(run_path, ev.ORDER_LEG)}
    assert legs == {o.client_order_id for o in broker.orders() if o.parent_id is not None}


def test_a_replayed_day_completes_and_journal_manifest_catalog_agree(home, strategy):
    result = run_session(strategy, {}, replay_date=END)
    assert result.outcome == "succeeded" and result.bars == 390 and result.orders > 4
    manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    assert manifest["kind"] == "session" and manifest["mode"] == "paper"
    assert manifest["outcome"] == "succeeded" and manifest["extra"]["pnl"] == result.pnl
    # the session's figures in its record (what `workbench session` prints)
    figures = json.loads((Path(result.path) / "results" / "session.json").read_text())
    assert figures == {k: v for k, v in result.to_dict().items() if k not in ("run_id", "path")}
    # a heartbeat every bar by default (what a supervisor watches), and one at the end
    assert len(_events(result.path, ev.HEARTBEAT)) == 391
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
    return subprocess.Popen([WB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def _wait_for(predicate, timeout=300.0):
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


@pytest.mark.slow  # a notebook kernel
def test_real_processes_second_session_refused_halt_then_sigterm(home, kernel_env):
    first = _wb("session", str(NOTEBOOK), "--broker", "sim", "--replay", END, "--timeframe",
                "1Min", "--speed", "600", "--json", env=kernel_env)
    try:
        run = _wait_for(lambda: _one_run(home))
        _wait_for(lambda: len(_events(run, ev.BAR)) >= 3 or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        second = subprocess.run([WB, "session", str(NOTEBOOK), "--replay", END, "--run",
                                 str(run)], capture_output=True, text=True, timeout=60,
                                check=False, env=kernel_env)
        assert second.returncode == 5 and "already has a session" in second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        halt = subprocess.run([WB, "halt", str(run)], capture_output=True, text=True,
                              timeout=60, check=False, env=kernel_env)
        assert halt.returncode == 0, halt.stderr
        command = _wait_for(lambda: _events(run, ev.COMMAND))[0]
        _wait_for(lambda: [e for e in _events(run, ev.BAR) if e.seq > command.seq][1:])
        status = subprocess.run([WB, "status", "--json"], capture_output=True, text=True,
                                timeout=60, check=False, env=kernel_env)
        row = json.loads(status.stdout)[0]
        assert row["status"] == "running" and row["risk_state"] == "halted"
        first.send_signal(signal.SIGTERM)  # a stop through the control channel
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    doc = json.loads(out)
    assert doc["outcome"] == "interrupted" and doc["session"]["outcome"] == "interrupted"
    assert doc["session"]["state"] == "halted"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted" and manifest["status"] == "finished"
    assert _events(run, ev.SESSION_END)
    late = wb_inline("halt", str(run), env=kernel_env)  # the session is gone: an error
    assert late.returncode != 0 and "not a running session; nothing sent" in late.stderr
    assert late.stderr.count("\n") == 1, late.stderr
    stop = _events(run, ev.COMMAND)[-1].payload
    assert stop["command"] == "stop" and "SIGTERM" in stop["reason"]
    later = [e for e in _events(run, ev.INTENT) if e.seq > command.seq]
    assert later == []  # no new orders once halted


POINTS = ["intent_journaled", "broker_accepted", "before_reply", "fill"]
STOPS = (0.003, 0.004)  # sl_stop, tp_stop: protections placed, filled and canceled this day


@pytest.mark.parametrize(("point", "stops"), [(p, False) for p in POINTS]
                         + [(p, True) for p in POINTS])
def test_sigkill_at_each_crash_point_then_restart_leaves_one_order_per_intent(home, strategy,
                                                                             point, stops):
    """With stops the kill hits the second protection order (``-stops`` in its client id)
    at the point: its intent, its acceptance, its reply, or a fill of a stop or take profit."""
    spec, args, kw = f"{point}:3", [], {}
    if stops:
        spec, args = f"{point}:2:-stops", [str(x) for x in STOPS]
        kw = dict(zip(("sl_stop", "tp_stop"), STOPS, strict=True))
    crashed = subprocess.run([sys.executable, "-m", "tests.session_procs", "session",
                              str(NOTEBOOK), END, *args], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "WORKBENCH_TEST_CRASH_AT": spec},
                             cwd=ROOT, check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run = _one_run(home)
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    result = run_session(strategy, {}, replay_date=END, run_dir=run, **kw)
    assert result.outcome == "succeeded" and result.state == "active"
    assert _events(run, ev.RECONCILE)[-1].payload["ok"] is True
    assert [e.payload["restart"] for e in _events(run, ev.SESSION_START)] == [False, True]
    _assert_agrees_with_broker(run, SimBroker(run / "broker.sqlite"))
    if stops:  # protections were placed, and stop exits happened, on both sides of the kill
        events = _events(run)
        restart = next(e.seq for e in events if e.type == ev.SESSION_START
                       and e.payload["restart"])
        placed = [e.seq for e in events if e.type == ev.INTENT
                  and e.payload["client_order_id"].endswith("-stops")]
        assert min(placed) < restart < max(placed)
        assert any("-stops" in e.payload["client_order_id"] for e in events
                   if e.type == ev.FILL)


BURST = 6  # symbols: every burst bar is a group of six intents


@pytest.fixture
def burst_home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(BURST, 3, "1Min", 7, END), "1Min",
                                         source="synth")
    return workbench_home


def _groups(events) -> list[list]:
    """Each bar's intents and, after them, the submits of that bar (group commit: all of a
    bar's intents come before its first request)."""
    groups, current = [], None
    for e in events:
        if e.type == ev.BAR:
            current = {"intents": [], "submits": [], "late_intents": 0}
            groups.append(current)
        elif current is not None and e.type == ev.INTENT:
            current["late_intents" if current["submits"] else "intents"].append(
                e.payload["client_order_id"])
        elif current is not None and e.type == ev.BROKER_REQUEST \
                and e.payload["action"] == "submit":
            current["submits"].append(e.payload["client_order_id"])
    return [g for g in groups if g["intents"]]


@pytest.mark.parametrize("point, sent", [("group_synced", 0), ("send_first", 0),
                                         ("send_middle", BURST // 2 - 1),
                                         ("send_last", BURST - 1)])
def test_sigkill_between_a_bars_one_sync_and_its_sends_leaves_one_order_per_intent(
        burst_home, point, sent):
    """Group commit: a bar's six intents are durable before the first is sent; a kill -9
    after the sync and before the first / middle / last send (the broker's group call split
    there: the sends before it made) leaves the others unsent, and
    the restart settles them by client id (found, or sent once): one broker order each."""
    from tests.session_procs import burst

    crashed = subprocess.run([sys.executable, "-m", "tests.session_procs", "burst", END],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "WORKBENCH_TEST_CRASH_AT": f"{point}:1"},
                             cwd=ROOT, check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run = _one_run(burst_home)
    *done, last = _groups(_events(run))
    assert all(len(g["intents"]) == len(g["submits"]) and not g["late_intents"] for g in done)
    assert len(last["intents"]) == BURST and not last["late_intents"]  # all durable first
    # the simulated broker takes a group in one call (submit_many), every request journaled
    # before it; the crash point splits the call: the sends before the point were made
    assert last["submits"] == ([] if point == "group_synced" else last["intents"])
    broker = SimBroker(run / "broker.sqlite")
    at_broker = {o.client_order_id for o in broker.orders()} & set(last["intents"])
    broker.close()
    assert at_broker == set(last["intents"][:sent])
    result = run_session(burst, {}, replay_date=END, run_dir=run)
    assert result.outcome == "succeeded" and result.state == "active", result.message
    assert _events(run, ev.RECONCILE)[-1].payload["ok"] is True
    assert [e.payload["restart"] for e in _events(run, ev.SESSION_START)] == [False, True]
    _assert_agrees_with_broker(run, SimBroker(run / "broker.sqlite"))
    assert len(_groups(_events(run))) > 2  # the day went on, a group per burst bar


@pytest.mark.slow  # a notebook kernel
def test_a_kernel_killed_mid_session_is_restarted_with_run_in_the_same_record(home, kernel_env):
    """kill -9 of the kernel (a crash point, inherited through the environment): the run is
    left running; `workbench session --run DIR` resumes it, reconciled, no order twice, and
    prints the figures the session recorded."""
    crashed = subprocess.run([WB, "session", str(NOTEBOOK), "--replay", END, "--timeframe",
                              "1Min", "--json"], capture_output=True, text=True, timeout=600,
                             env={**kernel_env, "WORKBENCH_TEST_CRASH_AT": "broker_accepted:3"},
                             check=False)
    assert crashed.returncode == 1, crashed.stderr
    assert "kernel died" in crashed.stdout and f"--run {_one_run(home)}" in crashed.stderr
    assert json.loads(crashed.stdout)["session"] is None
    run = _one_run(home)
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    again = subprocess.run([WB, "session", "--run", str(run), "--json"], capture_output=True,
                           text=True, timeout=600, env=kernel_env, check=False)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["outcome"] == "succeeded" and doc["path"] == str(run)
    assert doc["session"] == json.loads((run / "results" / "session.json").read_text())
    assert doc["session"]["state"] == "active" and doc["session"]["bars"] > 0
    assert (run / "notebook.attempt-1.ipynb").exists() and (run / "notebook.ipynb").exists()
    assert _events(run, ev.RECONCILE)[-1].payload["ok"] is True
    assert [e.payload["restart"] for e in _events(run, ev.SESSION_START)] == [False, True]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"
    _assert_agrees_with_broker(run, SimBroker(run / "broker.sqlite"))


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


def test_risk_settings_come_from_the_configuration(home, strategy, monkeypatch):
    """Kill-switch thresholds are the configured ones (env over workbench.toml), journaled."""
    monkeypatch.setenv("WORKBENCH__RISK__DAILY_LOSS_REDUCE", "0.02")
    monkeypatch.setenv("WORKBENCH__RISK__MAX_ORDERS", "2")
    monkeypatch.setenv("WORKBENCH__RISK__ORDER_WINDOW_S", "86400")
    result = run_session(strategy, {}, replay_date=END)
    config = _events(result.path, ev.CONFIG)[-1].payload["risk"]
    assert config["daily_loss_reduce"] == "0.02" and config["max_orders"] == 2
    states = [e.payload for e in _events(result.path, ev.STATE)]
    assert states and states[-1]["state"] == "halted", states  # the third order trips the rate switch
    assert len(_events(result.path, ev.INTENT)) <= 3


# -- `workbench session` refusals: one line, before any kernel --------------------------------


def _cli(*args) -> tuple[int, str]:
    from click.testing import CliRunner

    from workbench.cli import cli

    result = CliRunner().invoke(cli, ["session", *map(str, args)])
    return result.exit_code, result.output


def _prepared(notebook=NOTEBOOK, **params) -> Path:
    from workbench.execution.run import prepare_run

    return prepare_run(notebook, kind="session", mode="paper",
                       params={"replay_date": END, "timeframe": "1Min", **params}).path


def test_a_restart_refuses_every_change_of_identity(home):
    run = _prepared(fast=10)
    code, out = _cli("--run", run, "--replay", DAYS[1], "-p", "fast", "5", "--symbols", "2",
                     "--accounts", "shared")
    assert code == 2 and out.count("\n") == 1, out
    for said in ('--replay "2026-11-19" (the run has replay_date="2026-11-20")',
                 "-p fast 5 (the run has fast=10)", "--symbols [", "(the run has symbols=null)",
                 '--accounts "shared" (the run has accounts="per_symbol")'):
        assert said in out, out
    code, out = _cli(ROOT / "notebooks" / "strategies" / "rsi_reversion.ipynb", "--run", run)
    assert code == 2 and "NOTEBOOK" in out and "sma_cross.ipynb" in out
    code, out = _cli("--run", run, "-p", "fsat", "3")
    assert code == 2 and "unknown parameter 'fsat'" in out
    assert not (run / "events").exists() and not (run / "notebook.ipynb").exists()
    # the recorded values (and the notebook's defaults the run kept) pass the check
    from workbench.cli.session import _restart

    options = {"--replay": END, "--speed": "max", "--accounts": "per-symbol", "--symbols": None,
               "--timeframe": "1Min", "--broker-path": None}
    assert _restart(str(run), NOTEBOOK, options, [("fast", "10")]) == (run, [])


def test_a_restart_refuses_an_edited_notebook_a_finished_run_and_a_busy_one(home, tmp_path):
    from workbench.clock import LiveClock
    from workbench.journal import Journal
    from workbench.runs.records import RunRecord

    copy = tmp_path / "sma_copy.ipynb"
    shutil.copy(NOTEBOOK, copy)
    run = _prepared(copy)
    text = copy.read_text().replace("fast = 10 ", "fast = 12 ")
    copy.write_text(text)
    code, out = _cli("--run", run)
    assert code == 2 and "was edited since run" in out, out
    busy = _prepared()
    with Journal.open(busy, LiveClock()):
        code, out = _cli("--run", busy)
    assert code == 5 and "already has a session" in out, out
    RunRecord.open(busy, LiveClock()).finish("failed", error="test")
    code, out = _cli("--run", busy)
    assert code == 2 and "has ended (failed)" in out and "start a new one" in out, out
    other = RunRecord.create("session", "sma_cross", {}, "paper", None, LiveClock()).path
    code, out = _cli("--run", other)
    assert code == 2 and "not a notebook's paper session" in out, out


def test_a_new_session_refuses_before_any_kernel(home, tmp_path):
    runs = home / "runs"
    code, out = _cli(NOTEBOOK, "--replay", END, "-p", "replay_date", END)
    assert code == 2 and "--replay and -p replay_date both set replay_date" in out
    code, out = _cli(NOTEBOOK, "--timeframe", "1Min")
    assert code == 2 and "--replay DATE" in out
    code, out = _cli(NOTEBOOK, "--replay", END, "--symbols", "9", "--timeframe", "1Min")
    assert code == 2 and "holds 4 1Min symbol(s)" in out
    code, out = _cli(NOTEBOOK, "--replay", "someday")
    assert code == 2 and "--replay: a day" in out
    code, out = _cli(NOTEBOOK, "--replay", END, "--size", "0.5")
    assert code == 2 and "No such option" in out
    code, out = _cli(NOTEBOOK, "--replay", END, "-p", "grid", "{}")
    assert code == 2 and "a setting of mode sweep" in out, out
    lacking = tmp_path / "no_broker_path.ipynb"
    lacking.write_text(NOTEBOOK.read_text().replace("broker_path = None", "broker_file = None"))
    code, out = _cli(lacking, "--replay", END, "--broker-path", tmp_path / "b.sqlite")
    assert code == 2 and "no_broker_path.ipynb has no parameter 'broker_path'" in out, out
    code, out = _cli("--replay", END)
    assert code == 2 and "give a NOTEBOOK" in out
    assert not runs.exists() or not list(runs.iterdir())  # nothing prepared
