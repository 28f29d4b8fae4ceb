"""Issue 12: a restart is the same session. A restarted run keeps its identity (any other
day, parameter, symbol list or size is refused, naming the difference, before anything is
journaled or sent) and decides exactly as the uncrashed run: kill -9 at a named crash
point and at random moments (the restarts killed too), then the broker's orders equal an
uncrashed reference run's, order by order. ``bench/chaos.py`` runs hundreds of trials."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests import chaos_procs as chaos
from workbench.errors import ConfigError
from workbench.journal import replay
from workbench.model import events as ev
from workbench.session.runner import run_session


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The chaos data and the uncrashed reference run (one for the module)."""
    home = tmp_path_factory.mktemp("chaos")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_HOME", str(home))
    mp.delenv("WORKBENCH_TEST_CRASH_AT", raising=False)
    chaos.make_store(home)
    orders, seconds = chaos.reference_run(home / "reference")
    yield home, orders, seconds, chaos._the_run(home / "reference")
    mp.undo()


@pytest.fixture
def home(world, monkeypatch) -> Path:
    """This test in the chaos home (over the conftest's fresh one)."""
    monkeypatch.setenv("WORKBENCH_HOME", str(world[0]))
    return world[0]


def test_a_restart_on_a_bar_that_does_not_price_a_pending_buy_trades_as_the_uncrashed_run(
        world, home):
    """The issue's ``fill:37``: a buy pending on a symbol with no bar on the resumed minute
    was valued at $0 in the cash budget after a restart and the next entries came ~12%
    larger. Killed right after such a bar's ``bar`` event, the restart now sizes every
    entry as the reference did."""
    _, reference, _, ref_run = world
    gaps = chaos.priced_gaps(ref_run)
    assert gaps, "the chaos data must hold the case (a pending buy without a bar)"
    t = chaos.trial(gaps[0], home / "gap", reference, crash_at=gaps[0])
    assert t.attempts == ["killed", "exit 0"], t
    assert t.problems == [], t.problems
    starts = [e.payload for e in replay(t.run).events if e.type == ev.SESSION_START]
    assert [s["restart"] for s in starts] == [False, True]


def test_random_kills_of_the_run_and_its_restart_leave_the_reference_orders(world, home):
    """A randomized trial (fixed seed): SIGKILL at a random moment, the restart killed at
    another, then a restart to the end: no duplicate, no unsettled intent, positions
    equal to the broker's, the reference's orders (``bench/chaos.py``: hundreds)."""
    _, reference, seconds, _ = world
    rng = random.Random(1212)
    share = rng.uniform(0.3, 0.7)  # of an uncrashed process's time; the load varies: a
    for attempt in range(4):       # run that ended before its kill is tried again sooner
        kills = [seconds * share / 2 ** attempt, rng.uniform(0.3, 0.7) * seconds]
        t = chaos.trial(f"random-{attempt}", home / f"random-{attempt}", reference,
                        kill_after=kills)
        assert t.problems == [], (kills, t.attempts, t.problems)  # the run succeeded too
        if t.attempts[0] == "killed":  # (the last may be too: after the run finished)
            break
    assert t.attempts[0] == "killed", t.attempts


@pytest.fixture(scope="module")
def crashed(world):
    """A run of the reference's identity killed at its 30th bar (left running)."""
    import os
    import signal

    home, *_ = world
    proc = chaos._start("sma", chaos.DAY, home / "crashed", None,
                        {**os.environ, "WORKBENCH_HOME": str(home),
                         "WORKBENCH_TEST_CRASH_AT": "bar:30"})
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.output()
    proc.output()
    return home, chaos._the_run(home / "crashed")


@pytest.mark.parametrize("change, said", [
    ({"replay_date": "2026-11-19"}, 'replay_date "2026-11-19" (the run has "2026-11-20")'),
    ({"params": {"fast": 5, "slow": 12}}, "params {"),
    ({"symbols": ["ARCE", "CUCF"]}, 'symbols ["ARCE", "CUCF"] (the run has ['),
    ({"size": 0.2}, "size 0.2 (the run has 0.1)"),
    # the warmup's history: an EMA's (RSI's, ATR's) value at a bar depends on it
    ({"history_days": 2}, "history_days 2 (the run has 1)"),
])
def test_a_restart_asked_for_another_identity_is_refused_naming_the_difference(
        crashed, home, change, said):
    """Every restart path (the CLI, the supervisor's child, ``wb.run(run_dir=...)``) ends
    in the session's own check: another day replayed 0 bars and ended "ok", other
    parameters traded the rest of the day on them (the issue)."""
    _, run = crashed
    before = replay(run).events
    kw = {"replay_date": chaos.DAY, "timeframe": "1Min", "accounts": "shared",
          "run_dir": run}
    strategy, params = chaos.chaos_strategy()
    if "params" in change:
        params = change["params"]
    kw.update({k: v for k, v in change.items() if k != "params"})
    with pytest.raises(ConfigError, match="was started otherwise") as e:
        run_session(strategy, params, **kw)
    assert said in str(e.value), str(e.value)
    assert len(replay(run).events) == len(before)  # nothing journaled, nothing sent


def test_a_restart_may_change_speed_and_risk_but_says_and_journals_it_and_alerts_once(
        world, home, capsys):
    """Speed and ``[risk]`` are not the identity (an operator tightens a cap before a
    restart): the restart says each ``old -> new`` in one NOTE line and journals them in its
    ``session_start``. A set cap the sizing reaches is said at every start (stderr) but
    alerted once per run, not again at each restart."""
    import os
    import signal

    from workbench.risk import RiskSettings

    cap = {"WORKBENCH__RISK__MAX_ORDER_NOTIONAL": "5000"}  # entries of 10,000 reach it
    proc = chaos._start("sma", chaos.DAY, home / "changed", None,
                        {**os.environ, "WORKBENCH_HOME": str(home), **cap,
                         "WORKBENCH_TEST_CRASH_AT": "bar:30"})
    proc.wait(timeout=300)
    said = proc.output()
    assert proc.returncode == -signal.SIGKILL, said
    assert "WARNING: [risk] max_order_notional = 5,000.00 (set) is reached" in said
    run = chaos._the_run(home / "changed")
    strategy, params = chaos.chaos_strategy()
    capsys.readouterr()
    result = run_session(strategy, params, replay_date=chaos.DAY, timeframe="1Min",
                         accounts="shared", run_dir=run, speed=100_000,
                         risk=RiskSettings(max_order_notional=5000, max_orders=40))
    assert result.outcome == "succeeded", result.message
    out, err = capsys.readouterr()
    [note] = [line for line in out.splitlines() if "restarts with other settings" in line]
    assert note.startswith(f"NOTE: run {result.run_id} restarts with other settings")
    assert "speed max -> 100000.0;" in note and "[risk] max_orders 50 -> 40" in note
    assert "max_order_notional" not in note  # unchanged: not named
    assert "WARNING: [risk] max_order_notional = 5,000.00 (set) is reached" in err
    events = replay(run).events
    starts = [e.payload for e in events if e.type == ev.SESSION_START]
    assert [s["restart"] for s in starts] == [False, True]
    assert "changed" not in starts[0]
    assert starts[1]["changed"] == {"speed": {"from": "max", "to": "100000.0"},
                                    "risk": {"max_orders": {"from": 50, "to": 40}}}
    alerts = [e.payload["message"] for e in events
              if e.type == ev.ALERT and e.payload.get("source") == "risk"]
    assert len(alerts) == 1 and alerts[0].startswith("[risk] max_order_notional = 5,000.00")


# -- reconciliation against the broker's history (issue 12, point 3) --------------------------


def _crash_with_an_open_order(home: Path, name: str) -> tuple[Path, str, str]:
    """A run killed on a bar whose previous bar placed an order (open at the broker):
    (run, a filled order's client id, the open order's client id)."""
    import os
    import signal

    from workbench.brokers.sim import SimBroker

    ref = chaos._the_run(home / "reference")
    bars, k = 0, None
    for e in replay(ref).events:
        if e.type == ev.BAR:
            bars += 1
        elif e.type == ev.INTENT and bars > 100:
            k = bars + 1
            break
    proc = chaos._start("sma", chaos.DAY, home / name, None,
                        {**os.environ, "WORKBENCH_HOME": str(home),
                         "WORKBENCH_TEST_CRASH_AT": f"bar:{k}"})
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.output()
    proc.output()
    run = chaos._the_run(home / name)
    broker = SimBroker(run / "broker.sqlite")
    orders = broker.orders()
    broker.close()
    filled = next(o.client_order_id for o in orders if o.filled_quantity > 0)
    open_ = next(o.client_order_id for o in orders if o.is_open)
    return run, filled, open_


def _restart(run: Path):
    strategy, params = chaos.chaos_strategy()
    return run_session(strategy, params, replay_date=chaos.DAY, timeframe="1Min",
                       accounts="shared", run_dir=run)


def _sql(run: Path, statement: str, *args) -> None:
    import sqlite3

    con = sqlite3.connect(run / "broker.sqlite")
    with con:
        assert con.execute(statement, args).rowcount >= 1
    con.close()


@pytest.mark.parametrize("tamper, said", [
    ("delete", "no such fill (deleted at the broker?)"),
    ("edit", "journal says buy"),
])
def test_a_filled_order_deleted_or_edited_at_the_broker_between_kill_and_restart_halts(
        home, tamper, said):
    """Open orders and positions alone did not see it: the restart exited 0."""
    run, filled, _ = _crash_with_an_open_order(home, f"tampered-{tamper}")
    if tamper == "delete":
        _sql(run, "DELETE FROM fills WHERE client_order_id = ?", filled)
        _sql(run, "DELETE FROM orders WHERE client_order_id = ?", filled)
    else:
        _sql(run, "UPDATE fills SET price = '0.01' WHERE client_order_id = ?", filled)
    result = _restart(run)
    assert result.outcome == "halted" and result.state == "halted", result.message
    assert said in result.message and filled in result.message, result.message
    rec = [e.payload for e in replay(run).events if e.type == ev.RECONCILE][-1]
    assert rec["ok"] is False and any(filled in d for d in rec["differences"])


def test_an_open_order_canceled_behind_the_sessions_back_is_adopted_journaled_and_said(
        home, capfd):
    from workbench.brokers.sim import SimBroker

    run, _, open_ = _crash_with_an_open_order(home, "canceled")
    broker = SimBroker(run / "broker.sqlite")
    broker.cancel(open_)
    broker.close()
    result = _restart(run)
    assert result.outcome == "succeeded", result.message
    events = replay(run).events
    rec = [e.payload for e in events if e.type == ev.RECONCILE][-1]
    assert rec["ok"] is True and open_ in rec["adopted_orders"]
    said = [e.payload["message"] for e in events if e.type == ev.ALERT
            and e.payload.get("source") == "reconcile"]
    assert len(said) == 1 and open_ in said[0] and "canceled at the broker" in said[0]
    assert f"warning: {said[0]}" in capfd.readouterr().err
    from workbench.cli.session import _reconcile_alerts

    assert _reconcile_alerts(run) == said  # what `workbench session --run` prints
    assert any(e.type == ev.ORDER_UPDATE and e.payload["client_order_id"] == open_
               and e.payload["status"] == "canceled" for e in events)



def test_the_order_rate_switch_counts_the_orders_before_the_restart(home, monkeypatch):
    """Risk counters: the order-rate kill switch (here: more than 40 orders in a day)
    trips on the same order after a restart as in the uncrashed run, not 40 orders later."""
    monkeypatch.setenv("WORKBENCH__RISK__MAX_ORDERS", "40")
    monkeypatch.setenv("WORKBENCH__RISK__ORDER_WINDOW_S", "86400")
    reference, _ = chaos.reference_run(home / "rate-reference", "burst")  # groups of six
    states = [e.payload["state"] for e in replay(chaos._the_run(home / "rate-reference")).events
              if e.type == ev.STATE]
    assert states[-1] == "halted" and len(reference) == 40  # the 41st tripped it
    t = chaos.trial("rate", home / "rate", reference, crash_at="bar:50",  # 18 orders in
                    strategy="burst")
    assert t.attempts == ["killed", "exit 0"] and t.problems == [], t


def test_the_identity_is_compared_as_the_journal_stores_it():
    """No false refusal from the encoding (Decimals, tuples, numpy numbers read back from
    JSON), a key the first start lacked is not compared, ``sl_trail`` absent is False."""
    from decimal import Decimal

    import numpy as np

    from workbench.session.identity import identity_of, refuse_other_identity

    values = {"replay_date": "2026-11-20", "symbols": ("A", "B"), "cash": Decimal("1e5"),
              "params": {"fast": np.int64(4), "slow": 12.0}, "size": 0.1}
    first = identity_of(values)
    refuse_other_identity("r1", first, values)  # the same values pass
    refuse_other_identity("r1", {k: v for k, v in first.items() if k != "size"},
                          {**values, "size": 0.5})  # an older run without the key
    refuse_other_identity("r1", first, {**values, "sl_trail": False})
    with pytest.raises(ConfigError) as e:
        refuse_other_identity("r1", first, {**values, "symbols": ["A"], "sl_trail": True})
    assert 'symbols ["A"] (the run has ["A", "B"])' in str(e.value)
    assert "sl_trail true (the run has false)" in str(e.value)
    refuse_other_identity("r1", None, values)  # a new run: nothing to compare
