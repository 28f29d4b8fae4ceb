"""A live session's settings: the market clock, the live refusals, the broker/feed
combinations and the restart identity (fast, no server)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import ROOT
from workbench.config import load_settings
from workbench.errors import ConfigError, DataError
from workbench.execution.paper import _source
from workbench.session.live import MarketClock, live_refusals, run_live_session

NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
T0 = pd.Timestamp("2025-12-29T14:29:00Z")


class Reads:
    """A market clock's answers and a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.server, self.mono, self.calls, self.fail = T0, 0.0, 0, False

    def read(self) -> pd.Timestamp:
        self.calls += 1
        if self.fail:
            raise DataError("the Alpaca market clock could not be read")
        return self.server


def test_the_market_clock_runs_at_speed_resyncs_each_market_minute_and_never_goes_back():
    r = Reads()
    clock = MarketClock(r.read, speed=60, mono=lambda: r.mono)
    assert clock.resync_s == 1.0 and clock.now() == T0
    r.mono = 0.5
    assert clock.now() == T0 + pd.Timedelta(seconds=30) and r.calls == 1
    r.server, r.mono = T0 + pd.Timedelta(minutes=10), 1.0  # the fake jumped (to the close)
    assert clock.now() == T0 + pd.Timedelta(minutes=10) and r.calls == 2
    r.fail, r.mono = True, 2.5  # a failed read: the local run goes on, counted
    assert clock.now() == T0 + pd.Timedelta(seconds=690) and clock.failures == 1
    r.fail, r.server, r.mono = False, T0, 4.0  # a server behind what was shown: no going back
    assert clock.now() == T0 + pd.Timedelta(seconds=690) and r.calls == 4


def test_live_is_refused_naming_every_missing_safety(workbench_home):
    paper = load_settings()
    assert live_refusals(live=False, broker="sim", settings=paper, capital=None) == []
    said = live_refusals(live=True, broker="sim", settings=paper, capital=None)
    assert len(said) == 3
    assert "--broker alpaca" in said[0] and "alpaca.paper is true" in said[1]
    assert "capital" in said[2]
    live = load_settings(alpaca={"paper": False})
    assert live_refusals(live=True, broker="alpaca", settings=live, capital=10_000) == []
    with pytest.raises(ConfigError, match="live trading refused: .*alpaca.paper is true"):
        run_live_session(lambda bars: None, broker="alpaca", live=True, capital=10_000,
                         settings=paper)


def test_a_live_session_refuses_what_it_cannot_do(workbench_home):
    with pytest.raises(ConfigError, match="broker='ib'"):
        run_live_session(lambda bars: None, broker="ib")
    with pytest.raises(ConfigError, match="unknown timeframe '7Sec'"):
        run_live_session(lambda bars: None, timeframe="7Sec")
    with pytest.raises(ConfigError, match="broker_path=.* the Alpaca account is the one of the keys"):
        run_live_session(lambda bars: None, broker="alpaca", broker_path="x.sqlite")


BASE = {"broker": "sim", "feed": "replay", "live": False, "replay_date": "2025-12-31",
        "speed": "max"}


@pytest.mark.parametrize("change, refusal", [
    ({"broker": "alpaca"}, "a replayed stored day trades on the simulated broker only"),
    ({"live": True}, "a replayed stored day trades on the simulated broker only"),
    ({"replay_date": None}, "mode 'paper' needs replay_date="),
    ({"feed": "alpaca"}, "with feed='alpaca': a live session trades the market's day"),
    ({"feed": "iex"}, "feed='iex'"),
    ({"live": "yes"}, "live='yes': True or False"),
])
def test_paper_mode_refuses_each_impossible_combination(change, refusal):
    with pytest.raises(ConfigError, match=refusal.replace("(", r"\(")):
        _source({**BASE, **change})


def test_paper_mode_feeds(capsys):
    assert _source(BASE) == "replay"
    assert _source({**BASE, "feed": "alpaca", "replay_date": None, "broker": "alpaca"}) == "alpaca"
    assert "the market clock runs at real time (speed 1)" in capsys.readouterr().out


def _cli(*args) -> tuple[int, str]:
    from click.testing import CliRunner

    from workbench.cli import cli

    result = CliRunner().invoke(cli, ["session", *map(str, args)])
    return result.exit_code, result.output


def test_a_restart_with_another_broker_or_feed_is_refused(workbench_home):
    from workbench.execution.run import prepare_run

    run = prepare_run(NOTEBOOK, kind="session", mode="paper",
                      params={"timeframe": "1Min", "broker": "alpaca", "feed": "alpaca"}).path
    code, out = _cli("--run", run, "--broker", "sim", "--feed", "replay")
    assert code == 2 and out.count("\n") == 1, out
    assert '--broker "sim" (the run has broker="alpaca")' in out
    assert '--feed "replay" (the run has feed="alpaca")' in out
    code, out = _cli("--run", run, "--live")
    assert code == 2 and "--live true (the run has live=false)" in out, out
    assert not (run / "events").exists()


def test_a_new_session_needs_a_day_or_the_live_feed(workbench_home):
    code, out = _cli(NOTEBOOK, "--timeframe", "1Min")
    assert code == 2 and "--replay DATE" in out and "--feed alpaca" in out


def test_the_broker_stream_and_the_feed_state_reach_the_kill_switches():
    """A session's risk context carries when the broker's stream and the feed went down and
    the recent latencies; the gateway's connectivity switch then blocks entries."""
    import collections
    from decimal import Decimal
    from types import SimpleNamespace

    from workbench.clock import SimClock
    from workbench.config import RiskSettings
    from workbench.risk.checks import RiskContext
    from workbench.risk.switches import KillSwitches
    from workbench.session.runner import _Session
    from workbench.session.trader import Trader

    clock = SimClock(T0)
    s = SimpleNamespace(broker=SimpleNamespace(connected=False), clock=clock,
                        broker_down_since=None, feed_down_since=T0,
                        recent_ms=collections.deque([12.0, 900.0]),
                        engine=SimpleNamespace(window=SimpleNamespace(timeframe=None)),
                        start_equity=Decimal(1000), last_prices={})
    s.trader = SimpleNamespace(context=lambda *a, **kw: Trader.context(
        SimpleNamespace(_open=dict, manager=SimpleNamespace(cash=Decimal(1000),
                                                            positions=dict),
                        order_times=[]), *a, **kw))
    _Session._connection(s)
    assert s.broker_down_since == T0
    clock.set(T0 + pd.Timedelta(seconds=31))
    ctx = _Session._context(s, T0)
    assert isinstance(ctx, RiskContext)
    assert ctx.broker_down_since == T0 and ctx.feed_down_since == T0
    assert ctx.latencies_ms == (12.0, 900.0)
    from workbench.risk.switches import SwitchView

    actions = KillSwitches(RiskSettings()).evaluate(ctx, SwitchView())
    said = " ".join(str(a) for a in actions)
    assert "broker disconnected for 31" in said and "feed disconnected for 31" in said
    s.broker.connected = True
    _Session._connection(s)
    assert s.broker_down_since is None


def test_a_trailing_stop_is_refused_on_the_live_feed_not_traded_fixed():
    from workbench.errors import ConfigError
    from workbench.session.live import run_live_session

    with pytest.raises(ConfigError, match="trailing stops are traded in replayed sessions only"):
        run_live_session(lambda bars: None, symbols=["AAPL"], sl_stop=0.02, sl_trail=True)
