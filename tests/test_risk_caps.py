"""The money caps a session starts with (``workbench.risk.caps``): the ones the user did not
set derived from the session's sizing (x2 headroom), the ones the user set kept and, when
the sizing already reaches them at the start, said loudly and recorded.

The shipped notebooks backtest with accounts of 100,000 and ``size=1.0``: with the fixed
defaults (100,000 per order and per symbol, 500,000 in all) a paper session of them had
entries refused as soon as an account had made a cent, and the book cap bit with more than
five symbols. Now such a session trades as it does with no cap at all (the backtest's
trades: ``tests/test_session_parity.py``), and a cap the user set still refuses.
"""

from __future__ import annotations

import collections
from decimal import Decimal
from pathlib import Path

import pytest

from tests.notebook_strategies import strategy_of
from workbench.config import load_settings
from workbench.journal.reader import replay
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.risk import RiskSettings
from workbench.risk.caps import CAPS, HEADROOM, fit_caps, sizing_reach
from workbench.session.risk_caps import session_caps
from workbench.session.runner import run_session
from workbench.session.trader import Sizing

D = Decimal
DAY = "2025-12-31"
CAP_CHECKS = ("notional_cap", "symbol_exposure_cap", "total_exposure_cap")
# no cap binds: what the session trades when nothing but its sizing limits it
UNCAPPED = RiskSettings(max_order_notional=10**12, max_symbol_exposure=10**12,
                        max_total_exposure=10**12)


# -- the rule ---------------------------------------------------------------------------

def test_caps_not_set_are_derived_from_the_sizing_with_headroom():
    reach = sizing_reach(accounts="per_symbol", cash=D(100_000), size=1.0, symbols=20)
    assert (reach.order, reach.symbol, reach.total) == (D(100_000), D(100_000), D(2_000_000))
    fitted = fit_caps(RiskSettings(), reach)
    assert fitted.derived == CAPS and fitted.reached == () and HEADROOM == 2
    s = fitted.settings
    assert (s.max_order_notional, s.max_symbol_exposure, s.max_total_exposure) == (
        D(200_000), D(200_000), D(4_000_000))
    assert s.daily_loss_halt == RiskSettings().daily_loss_halt  # only the money caps move
    line = fitted.line()
    assert "\n" not in line and "20 account(s) of 100,000.00, size 1" in line
    assert "max_order_notional 200,000.00" in line and "max_total_exposure 4,000,000.00" in line
    caps = fitted.record()["caps"]
    assert caps["max_symbol_exposure"] == {"value": "200000.00", "source": "derived",
                                           "reach": "100000.00"}
    # a small sizing gets caps to its own scale: a 10x order is still a fat finger
    small = fit_caps(RiskSettings(), sizing_reach(accounts="per_symbol", cash=D(50_000),
                                                  size=0.1, symbols=3)).settings
    assert (small.max_order_notional, small.max_total_exposure) == (D(10_000), D(30_000))


def test_a_shared_account_book_is_its_value():
    reach = sizing_reach(accounts="shared", cash=D(100_000), size=0.25, symbols=8)
    assert (reach.order, reach.symbol, reach.total) == (D(25_000), D(25_000), D(100_000))
    one = sizing_reach(accounts="shared", cash=D(100_000), size=0.25, symbols=2)
    assert one.total == D(50_000)
    # a shared account's reach is its value at the first start (kept by a restart)
    sizing = Sizing(size=0.5, accounts="shared", cash=D(1))
    fitted = session_caps(RiskSettings(), sizing, 4, start_equity=D(80_000))
    assert fitted.settings.max_order_notional == D(80_000)  # 2 x 0.5 x 80,000
    assert fitted.settings.max_total_exposure == D(160_000)


def test_caps_the_user_set_are_kept_and_named_when_the_sizing_reaches_them():
    reach = sizing_reach(accounts="per_symbol", cash=D(100_000), size=1.0, symbols=3)
    settings = RiskSettings(max_order_notional=50_000, max_total_exposure=1_000_000)
    fitted = fit_caps(settings, reach)
    assert fitted.derived == ("max_symbol_exposure",)
    assert fitted.reached == ("max_order_notional",)  # 1,000,000 > the book's 300,000
    assert fitted.settings.max_order_notional == D(50_000)
    assert fitted.settings.max_total_exposure == D(1_000_000)
    assert fitted.settings.max_symbol_exposure == D(200_000)
    [warning] = fitted.warnings()
    assert warning.startswith("[risk] max_order_notional = 50,000.00 (set) is reached")
    assert "100,000.00" in warning and "raise max_order_notional" in warning
    record = fitted.record()
    assert record["caps"]["max_order_notional"] == {
        "value": "50000", "source": "set", "reach": "100000.00", "reached": True}
    assert record["warnings"] == [warning] and record["note"] == fitted.line()
    # set to exactly the default value is still set: never changed
    same = fit_caps(RiskSettings(max_order_notional=100_000), reach)
    assert same.settings.max_order_notional == D(100_000) and same.reached == (
        "max_order_notional",)
    # all three set: nothing derived, no note
    every = fit_caps(RiskSettings(**{c: 10**9 for c in CAPS}), reach)
    assert every.derived == every.reached == () and every.line() is None


def test_set_means_given_by_the_file_or_the_environment(workbench_home, monkeypatch):
    (workbench_home / "workbench.toml").write_text("[risk]\nmax_symbol_exposure = 20000\n")
    monkeypatch.setenv("WORKBENCH__RISK__MAX_TOTAL_EXPOSURE", "70000")
    reach = sizing_reach(accounts="per_symbol", cash=D(100_000), size=0.1, symbols=5)
    fitted = fit_caps(load_settings().risk, reach)
    assert fitted.derived == ("max_order_notional",)
    assert fitted.settings.max_symbol_exposure == D(20_000)
    assert fitted.settings.max_total_exposure == D(70_000)
    assert fitted.reached == ()  # 10,000 per symbol, 50,000 in all: below both


# -- sessions ----------------------------------------------------------------------------

@pytest.fixture
def day(store):
    from workbench.data.sources import synth_into_store

    synth_into_store(store, 8, 3, "1Min", 11, DAY)
    return DAY


def _session(risk=None, **kw):
    """The shipped sma_cross notebook's paper session: its backtest's accounts of 100,000,
    size 1.0 and costs, one account per symbol (what ``wb.run(mode="paper")`` passes)."""
    return run_session(strategy_of("sma_cross"), {"fast": 5, "slow": 20}, replay_date=DAY,
                       cash=100_000, size=1.0, accounts="per_symbol", risk=risk,
                       costs=CostModel(fees_bps=1.0, slippage_bps=2.0), **kw)


def _refusals(run) -> collections.Counter:
    return collections.Counter(e.payload.get("check") for e in replay(run.path).events
                               if e.type == ev.RISK_DECISION and not e.payload["approved"])


def _fills(run) -> list:
    """Each fill without its run: the client id's symbol, bar and leg; shares; price."""
    return [(e.payload["client_order_id"].split("-", 2)[2], e.payload["quantity"],
             e.payload["price"]) for e in replay(run.path).events if e.type == ev.FILL]


def test_the_shipped_notebook_trades_as_with_no_cap_when_none_is_set(day, capsys):
    run = _session()  # [risk] of the (empty) settings: no cap set
    out = capsys.readouterr().out
    assert run.outcome == "succeeded", run.message
    assert not any(_refusals(run)[c] for c in CAP_CHECKS), _refusals(run)
    uncapped = _session(UNCAPPED)
    assert _fills(run) == _fills(uncapped) and len(_fills(run)) >= 20
    assert run.pnl == uncapped.pnl
    events = replay(run.path).events
    [start] = [e.payload for e in events if e.type == ev.SESSION_START]
    caps = start["risk_caps"]
    assert {c: v["source"] for c, v in caps["caps"].items()} == dict.fromkeys(CAPS, "derived")
    assert caps["caps"]["max_order_notional"]["value"] == "200000.00"
    assert caps["caps"]["max_total_exposure"]["value"] == "1600000.00"  # 8 accounts
    [config] = [e.payload for e in events if e.type == ev.CONFIG]
    assert config["risk"]["max_order_notional"] == "200000.00"  # what the gateway used
    assert out.count("NOTE: risk caps not set in [risk]") == 1
    assert not [e for e in events if e.type == ev.ALERT and e.payload.get("source") == "risk"]


def test_a_cap_the_user_set_is_said_at_the_start_and_refuses(day, monkeypatch, capsys):
    from workbench.cli.session import _caps_said, _journal

    monkeypatch.setenv("WORKBENCH__RISK__MAX_ORDER_NOTIONAL", "60000")
    run = _session()
    err = capsys.readouterr().err
    said = "[risk] max_order_notional = 60,000.00 (set) is reached at the start"
    assert f"WARNING: {said}" in err
    events = replay(run.path).events
    alerts = [e.payload for e in events if e.type == ev.ALERT
              and e.payload.get("source") == "risk"]
    assert [a["level"] for a in alerts] == ["warning"] and alerts[0]["message"].startswith(said)
    said_at = [i for i, e in enumerate(events) if e.type == ev.ALERT
               and e.payload.get("source") == "risk"]
    assert said_at[0] < next(i for i, e in enumerate(events) if e.type == ev.BAR)  # at start
    [start] = [e.payload for e in events if e.type == ev.SESSION_START]
    assert start["risk_caps"]["caps"]["max_order_notional"]["source"] == "set"
    assert start["risk_caps"]["caps"]["max_order_notional"]["reached"] is True
    assert start["risk_caps"]["caps"]["max_symbol_exposure"]["source"] == "derived"
    refused = _refusals(run)
    assert refused["notional_cap"] >= 5 and not refused["total_exposure_cap"]
    lines = _caps_said(_journal(Path(run.path)))  # what `workbench session` prints at the end
    assert lines[0].startswith("note: risk caps not set in [risk]")
    assert lines[1] == f"warning: {alerts[0]['message']}"


def test_workbench_config_says_which_caps_sessions_derive(monkeypatch):
    import json

    from click.testing import CliRunner

    from workbench.cli.config_cmd import config

    monkeypatch.setenv("WORKBENCH__RISK__MAX_TOTAL_EXPOSURE", "70000")
    out = CliRunner().invoke(config, ["--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["risk_caps_from_sizing"] == [
        "max_order_notional", "max_symbol_exposure"]
    text = CliRunner().invoke(config, []).output
    assert ("note: [risk] max_order_notional, max_symbol_exposure not set: each session "
            "derives them from its sizing") in text
