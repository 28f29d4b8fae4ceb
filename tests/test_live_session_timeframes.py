"""Issue 10: live sessions above the minute, against the replaying fake Alpaca.

The feed's minutes are built into the timeframe's bars by the store's rule
(:mod:`workbench.feeds.timeframes`): a 5Min live session makes the replayed 5Min session's
orders and fills on the same minutes (and the replayed one makes ``wb.backtest``'s trades:
tests/test_session_timeframes.py), with the stale-bar switch on its default of 2 bar
intervals, which a 1Min interval would trip; a 1Day session decides on the day before's
bar at its start and fills at the day's open, as the replayed one; a session killed and restarted mid-bar rebuilds
the bar in progress from REST and the live minutes, each minute once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.test_live_session import KEY, LOOSE, OPEN, OPTIONS, SECRET, SPEED, M, late_start, \
    outages, played_when_listening, strategy, trades_of
from workbench.config import load_settings
from workbench.data import calendar
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.errors import ConfigError
from workbench.journal.reader import replay
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.session.live import run_live_session
from workbench.session.runner import run_session
from workbench.testing import FakeAlpaca

DAY = "2025-12-29"
PARAMS = {"fast": 2, "slow": 5}
SIZING = {"cash": 50_000, "size": 0.5, "accounts": "per_symbol"}
RISK = LOOSE.model_copy(update={"stale_bar_intervals": 2.0})  # the default's limit
MIDNIGHT = pd.Timestamp(DAY).tz_localize(calendar.NY).tz_convert("UTC")


def store_day(home, minutes: int, days: int = 2, symbols: int = 6) -> pd.DataFrame:
    """Stored minutes: ``days - 1`` whole sessions before the day, ``minutes`` of it."""
    bars = synthesize(symbols, days, "1Min", 17, DAY)
    bars = bars[(bars["ts"] < MIDNIGHT) | (bars["ts"] < OPEN + minutes * M)]
    Store(home / "data").write(bars, "1Min", source="synth")
    return bars


def fake_for(bars, minutes: int, **kw) -> FakeAlpaca:
    end = (OPEN + minutes * M).tz_convert(calendar.NY).strftime("%H:%M")
    return FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="09:30",
                      end=end, idle_timeout=60, **kw)


def live(url: str, timeframe: str, run_dir=None, params=PARAMS, **kw):
    settings = load_settings(alpaca={"trading_url": url, "data_url": url,
                                     "request_timeout_s": 5})
    return run_live_session(strategy(), params, broker="sim", speed=SPEED, risk=RISK,
                            settings=settings, feed_options=OPTIONS, timeframe=timeframe,
                            run_dir=run_dir, **SIZING, **kw)


def bar_events(run_path) -> list:
    return [e for e in replay(run_path).events if e.type == ev.BAR]


def stored_volumes(bars: pd.DataFrame, timeframe: str) -> dict[pd.Timestamp, float]:
    """Each ``timeframe`` bar's volume over every symbol, by the store's rule."""
    day = bars[bars["ts"] >= MIDNIGHT]
    agg = aggregate_bars(Bars.from_long(day, "1Min"), timeframe)
    return {t: float(v) for t, v in agg.volume.sum(axis=1).items()}


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)


@pytest.mark.slow
def test_a_5min_live_session_trades_like_the_replayed_5min_session(keys, workbench_home,
                                                                   tmp_path):
    minutes = 40
    bars = store_day(workbench_home, minutes)
    replayed = run_session(strategy(), PARAMS, replay_date=DAY, risk=RISK, timeframe="5Min",
                           broker_path=tmp_path / "replay.sqlite", **SIZING)
    assert replayed.outcome == "succeeded" and replayed.bars == 8, replayed.message
    want = trades_of(replayed.path)
    assert len(want[0]) >= 5 and len(want[1]) >= 3  # entries and exits, filled
    # paused until the session listens: a start after 09:35 (seconds under load, the
    # fake's lead is 0.5 s) would not decide the first bar, and trade unlike the replay
    with fake_for(bars, minutes, paused=True) as fake, played_when_listening(fake):
        result = live(fake.url, "5Min")
    assert result.outcome == "succeeded", result.message
    assert not late_start(result.path)
    assert not outages(result.path, OPEN + minutes * M)
    assert trades_of(result.path) == want
    events = bar_events(result.path)
    volumes = stored_volumes(bars, "5Min")
    assert [pd.Timestamp(e.payload["bar_time"]) for e in events] == list(volumes)
    assert [e.payload["volume"] for e in events] == pytest.approx(list(volumes.values()))
    # each bar decided at its close: its journal time just after its last minute's close
    # (but the last: the fake's window ends with it, its clock jumps to the close)
    for e in events[:-1]:
        close = pd.Timestamp(e.payload["bar_time"]) + 5 * M
        assert close <= e.ts <= close + pd.Timedelta(seconds=OPTIONS.cutoff_s + 5), e
    start = next(e for e in replay(result.path).events if e.type == ev.SESSION_START)
    assert start.payload["timeframe"] == "5Min"
    assert start.payload["bars_from"].startswith("live Alpaca 1Min (iex) aggregated to 5Min")
    # the stale-bar switch measures 2 bars of 5Min (600 s): quiet through the window, and
    # only the last bar, decided when the fake's clock jumped to the close, was stale
    stale = [e for e in replay(result.path).events
             if e.type == ev.ALERT and "old (limit" in e.payload["message"]]
    assert all("(limit 600 s)" in e.payload["message"] and e.ts >= events[-1].ts
               for e in stale), stale


@pytest.mark.slow
def test_a_1day_live_session_fills_at_the_open_like_the_replayed_one(keys, workbench_home,
                                                                     tmp_path):
    """The session of the day decides on the day before's bar at its start (the fake's
    window starts at the open: said when after it), its orders fill at the day's open: the fills (and the replayed
    session's) are at the opens of the day's bar built from the live minutes, and after
    the close the day's bar (a 10-minute window, then the fake's clock at the close) is
    filled on and marked, never decided (session.daily). Before, the session decided on the
    day's bar after the close and its DAY orders expired unfilled."""
    minutes, days = 10, 9
    bars = store_day(workbench_home, minutes, days=days, symbols=4)
    daily = aggregate_bars(Bars.from_long(bars, "1Min"), "1Day").to_long()
    Store(workbench_home / "data").write(daily, "1Day", source="synth")
    params = {"fast": 3, "slow": 4}  # an entry on the day before's bar
    replayed = run_session(strategy(), params, replay_date=DAY, risk=RISK, timeframe="1Day",
                           history_days=days - 1, broker_path=tmp_path / "replay.sqlite",
                           **SIZING)
    assert replayed.outcome == "succeeded" and replayed.bars == 2, replayed.message
    with fake_for(bars, minutes) as fake:
        result = live(fake.url, "1Day", history_days=days - 1, params=params)
    assert result.outcome == "succeeded" and result.bars == 2, result.message
    decision, fill = bar_events(result.path)
    before = calendar.last_sessions(2, pd.Timestamp(DAY))[0]
    assert decision.payload["role"] == "decision" and decision.ts < fill.ts
    # the fake's window starts at the open: a decision after it is said
    late = [e for e in replay(result.path).events if e.type == ev.ALERT
            and "after the open" in e.payload["message"]]
    assert bool(late) == (decision.ts > calendar.session_open(DAY)), late
    assert pd.Timestamp(decision.payload["bar_time"]) == before.tz_localize(
        calendar.NY).tz_convert("UTC")
    assert fill.payload["role"] == "fill" and pd.Timestamp(fill.payload["bar_time"]) == MIDNIGHT
    assert fill.ts >= calendar.session_close(DAY)
    assert fill.payload["volume"] == pytest.approx(stored_volumes(bars, "1Day")[MIDNIGHT])

    def signals(path):
        return sorted((e.payload["symbol"], e.payload["entry"], e.payload["exit"])
                      for e in replay(path).events if e.type == ev.SIGNAL)
    assert signals(result.path) == signals(replayed.path)
    want = trades_of(replayed.path)
    assert want[1], "no fill: the test shows nothing"
    assert trades_of(result.path) == want
    opens = aggregate_bars(Bars.from_long(bars[bars["ts"] >= MIDNIGHT], "1Min"), "1Day").open
    fills = [e.payload for e in replay(result.path).events if e.type == ev.FILL]
    assert [float(f["price"]) for f in fills] == pytest.approx(
        [CostModel().fill_price(f["side"], opens[f["symbol"]].iloc[0]) for f in fills])
    start = next(e for e in replay(result.path).events if e.type == ev.SESSION_START)
    assert start.payload["bars_from"].endswith("history: stored 1Day")


def timeframe_session(url: str, timeframe: str):
    """The session tests.live_session_procs runs for the restart test (a child process)."""
    return live(url, timeframe)


@pytest.mark.slow
def test_a_15min_session_killed_and_restarted_mid_bar_counts_each_minute_once(
        keys, workbench_home):
    """SIGKILL right after the first 15Min bar's ``bar`` event (09:45 New York), a restart
    in the same run once the fake is two minutes into the next bar: the bar in progress is
    its REST minutes and the live ones after them, each once (its volume is the stored
    minutes'), and the restart says so."""
    minutes = 35
    bars = store_day(workbench_home, minutes, symbols=3)
    with fake_for(bars, minutes, lead=20) as fake:  # 10 s real for the child to start
        env = {**os.environ, "WORKBENCH_TEST_CRASH_AT": "bar:1"}
        crashed = subprocess.run([sys.executable, "-m", "tests.live_session_procs", fake.url,
                                  "15Min"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=90, check=False)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        (run_path,) = (workbench_home / "runs").iterdir()
        fake.hub.wait_until(lambda: len({m for m, _ in fake.served}) >= 17, timeout=30)
        with pytest.raises(ConfigError, match=r'timeframe "5Min" \(the run has "15Min"\)'):
            live(fake.url, "5Min", run_dir=run_path)  # the timeframe is the run's identity
        result = live(fake.url, "15Min", run_dir=run_path)
    assert result.outcome == "succeeded", result.message
    events = replay(run_path).events
    (said,) = [e.payload["message"] for e in events
               if e.type == ev.ALERT and e.payload["message"].startswith("restart:")]
    read = int(said.split("started after the open: ")[1].split(" ")[0])
    assert 17 <= read < 30, said  # the feed's first live minute is inside the 09:45 bar
    assert "the 15Min bar of " in said and "0 15Min bar(s) after the last decided one" in said
    assert said in result.message  # the end says it too, not only a mid-run alert
    volumes = stored_volumes(bars, "15Min")
    decided = [(pd.Timestamp(e.payload["bar_time"]), e.payload["volume"])
               for e in events if e.type == ev.BAR]
    assert [t for t, _ in decided] == list(volumes)  # 09:30 (before the kill), 09:45, 10:00
    assert [v for _, v in decided] == pytest.approx(list(volumes.values()))
