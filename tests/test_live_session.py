"""Live sessions against the replaying fake Alpaca, through the real alpaca-py clients.

The store holds a synthetic prior day (the strategy's warmup) and a 20-minute window of
the session day; the fake replays that window at SPEED x real time on its scaled clock and
the session measures that clock (``GET /v2/clock``). At SPEED 120 a market minute lasts
0.5 s real; the session decides a minute in a few milliseconds (under 2% of it, ~1 fake
second), far inside the feed's cutoff (20 fake s) and stale window (45 fake s). Each
session is compared with ``run_session`` replaying the same stored window on the
simulated broker: the same orders and fills.

The replay waits for the session (``paused``, played once the session's data stream has
subscribed: :func:`live_session`): a session's start (alpaca-py's first import, the
strategy, the warmup, the record) takes 0.2 s on a quiet machine but seconds under load,
which at SPEED 120 is minutes of the fake's clock; started after the open, the session
rightly decides only the minutes from then on (the earlier ones read from REST, said in
an alert), and the comparison with the whole replayed window would not hold.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.notebook_strategies import strategy_of
from workbench.config import load_settings
from workbench.data import calendar
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.feeds.options import FeedOptions
from workbench.journal.reader import replay
from workbench.model import events as ev
from workbench.risk import RiskSettings
from workbench.session.live import FEED_EVENT, run_live_session
from workbench.session.runner import run_session
from workbench.testing import FakeAlpaca

KEY, SECRET = "PKLIVETEST01", "live-secret-7f3a9c"
DAY = "2025-12-29"
SYMBOLS = 3
MINUTES = 20
SPEED = 120.0
OPEN = calendar.session_open(DAY)
M = pd.Timedelta(minutes=1)
OPTIONS = FeedOptions(cutoff_s=20, stale_s=45, poll_delay_s=2, poll_retry_s=5,
                      empty_after_s=40, reconnect_min_s=2, reconnect_max_s=16)
PARAMS = {"fast": 2, "slow": 5}
LOOSE = RiskSettings(
    daily_loss_reduce="0.98", daily_loss_halt="0.99", position_loss_exit="0.99",
    max_orders=1_000_000, latency_budget_ms=1e9, stale_bar_intervals=1e9,
    max_order_notional=10**12, max_symbol_exposure=10**12, max_total_exposure=10**12,
    max_gross_leverage=1000, price_band="0.99", max_exceptions=1000)
SIZING = {"cash": 50_000, "size": 0.5, "accounts": "per_symbol"}


@pytest.fixture
def day(workbench_home, monkeypatch) -> pd.DataFrame:
    """The stored bars (prior day whole, the session day's window) = what the fake serves."""
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    bars = synthesize(SYMBOLS, 2, "1Min", 17, DAY)
    bars = bars[(bars["ts"] < pd.Timestamp(DAY).tz_localize(calendar.NY).tz_convert("UTC"))
                | (bars["ts"] < OPEN + MINUTES * M)]
    Store(workbench_home / "data").write(bars, "1Min", source="synth")
    return bars


def fake_for(bars, **kw) -> FakeAlpaca:
    end = (OPEN + MINUTES * M).tz_convert(calendar.NY).strftime("%H:%M")
    return FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="09:30",
                      end=end, idle_timeout=60, **kw)


@contextlib.contextmanager
def played_when_listening(fake):
    """Play the paused ``fake``'s replay once a session listens (its feed made, its first
    minute fixed, its stream subscribed to bars). Until then the session's clock reads the
    fake's stopped one (the replay's lead before the open), so the session starts before
    the open however long its start takes."""
    over = threading.Event()  # the session ended (or failed) before it listened

    def play_when_listening():
        try:
            fake.hub.wait_until(lambda: over.is_set() or any(
                c.subscriptions.get("bars") for c in fake.hub.open_connections("data")),
                timeout=120, what="the session's bar subscription")
        except TimeoutError:
            pass  # played anyway: the session's own checks say what went wrong
        if not over.is_set():
            fake.play()
    player = threading.Thread(target=play_when_listening, daemon=True)
    player.start()
    try:
        yield
    finally:
        over.set()
        player.join(5)


def live_session(fake, **kw):
    """A sim-broker session on the paused ``fake``, its replay played once the session
    listens (:func:`played_when_listening`)."""
    with played_when_listening(fake):
        return run_live_session(strategy(), PARAMS, broker="sim", speed=SPEED, risk=LOOSE,
                                settings=settings_for(fake), **{"feed_options": OPTIONS,
                                                                **SIZING, **kw})


def settings_for(fake):
    return load_settings(alpaca={"trading_url": fake.url, "data_url": fake.url,
                                 "request_timeout_s": 5})


def strategy():
    return strategy_of(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb")


def replayed(tmp_path):
    """The same stored window replayed on the simulated broker: orders and fills."""
    result = run_session(strategy(), PARAMS, replay_date=DAY, risk=LOOSE,
                         broker_path=tmp_path / "replay.sqlite", **SIZING)
    assert result.outcome == "succeeded", result.message
    return trades_of(result.path)


def _cid(cid: str) -> str:
    return cid.split("-", 2)[2]  # without "wb-<run>-": the symbol, the bar, the purpose


def trades_of(run_path) -> tuple[list, list]:
    """Every intent (id, side, symbol) and every fill (id, quantity, price) of a run."""
    events = replay(run_path).events
    intents = sorted((_cid(e.payload["client_order_id"]), e.payload["side"],
                      e.payload["symbol"]) for e in events if e.type == ev.INTENT)
    fills = sorted((_cid(e.payload["client_order_id"]), float(e.payload["quantity"]),
                    float(e.payload["price"])) for e in events if e.type == ev.FILL)
    return intents, fills


@pytest.mark.slow
def test_sim_broker_on_the_alpaca_feed_trades_like_the_replay(day, tmp_path):
    want = replayed(tmp_path)
    assert want[1], "the window must trade for the comparison to mean anything"
    with fake_for(day, paused=True) as fake:
        result = live_session(fake)
    assert result.outcome == "succeeded", result.message
    assert not late_start(result.path)
    assert result.bars == MINUTES
    assert not decided_without(result.path)
    assert not outages(result.path, OPEN + MINUTES * M)
    assert trades_of(result.path) == want
    start = next(e for e in replay(result.path).events if e.type == ev.SESSION_START)
    assert start.payload["broker_kind"] == "sim" and start.payload["feed"] == "alpaca"


@pytest.mark.slow
def test_a_minute_whose_market_data_is_late_is_decided_on_its_bars_like_the_replay(day, tmp_path):
    """Minute 7's bars come out (REST and stream) 30 fake s after its close, past the
    feed's cutoff (20 s), before its stale window (45 s) and empty_after_s (40 s): the
    poll at the cutoff finds nothing. The minute is polled again, not skipped as empty,
    and decided on its bars, as the replay of the stored day is (before: 19 bars, minute
    7's late, other trades)."""
    want = replayed(tmp_path)
    with fake_for(day, paused=True) as fake:
        fake.late_minute(OPEN + 7 * M, 30)
        result = live_session(fake)
    assert result.outcome == "succeeded", result.message
    assert not late_start(result.path)
    assert _bar_times(result.path) == [OPEN + m * M for m in range(MINUTES)]
    assert not decided_without(result.path)
    end = OPEN + MINUTES * M  # after the window the fake has no bar: minutes empty, stale
    feed = [e.payload for e in replay(result.path).events if e.type == FEED_EVENT]
    assert not [p for p in feed if p["kind"] == "minute_empty" and pd.Timestamp(p["time"]) < end]
    assert not outages(result.path, end)  # the stream stayed the source
    assert trades_of(result.path) == want


@pytest.mark.slow
def test_a_minute_decided_before_its_late_bars_came_is_said_at_the_end(day, tmp_path):
    """Minute 7's bars come out 35 fake s after its close, past empty_after_s (25 s here):
    the minute is decided empty before they come. That decision differs from the replay's:
    each late bar is a ``bar_late`` event (an alert where alert channels are set), and the
    session's end message says which minutes were decided without which symbols (it said
    only 'the trading day is over': without channels a journal event was all)."""
    options = FeedOptions(**{**OPTIONS.__dict__, "empty_after_s": 25})
    with fake_for(day, paused=True) as fake:
        fake.late_minute(OPEN + 7 * M, 35)
        result = live_session(fake, feed_options=options)
    assert result.outcome == "succeeded" and result.bars == MINUTES - 1, result.message
    late = sorted(decided_without(result.path))
    assert late == [(s, (OPEN + 7 * M).isoformat()) for s in sorted(day["symbol"].unique())]
    said = (f"1 minute(s) decided without a bar that came after (bar_late: a backtest on "
            f"the stored bars decides them with it): {(OPEN + 7 * M).isoformat()} without "
            f"{', '.join(s for s, _ in late)}")
    assert result.message == f"the trading day is over; {said}"
    (end,) = [e for e in replay(result.path).events if e.type == ev.SESSION_END]
    assert end.payload["message"] == result.message


STOPS = {"sl_stop": 0.002, "tp_stop": 0.002}  # near: the protections fill inside the window


def alpaca_session(url: str, run_dir=None):
    """A paper session on the fake at ``url`` through AlpacaBroker, with broker-side stops."""
    settings = load_settings(alpaca={"trading_url": url, "data_url": url,
                                     "request_timeout_s": 5})
    return run_live_session(strategy(), PARAMS, broker="alpaca", speed=SPEED, risk=LOOSE,
                            settings=settings, feed_options=OPTIONS, run_dir=run_dir,
                            **SIZING, **STOPS)


def late_start(run_path) -> list[str]:
    """The session's "started after the open" alerts (minutes it did not decide)."""
    return [e.payload["message"] for e in replay(run_path).events
            if e.type == ev.ALERT and "after the open" in e.payload["message"]]


def decided_without(run_path) -> list[tuple]:
    """Bars that came after their minute was decided (the feed's cutoff, 20 fake s = 0.17 s
    real at SPEED 120): a row without them, hence trades the replay would not make."""
    return [(e.payload["symbol"], e.payload["time"]) for e in replay(run_path).events
            if e.type == FEED_EVENT and e.payload["kind"] == "bar_late"]


def outages(run_path, end) -> list[dict]:
    """The feed's switches to REST polling while the window played (before ``end`` on
    the session's clock; after it the fake's clock jumps to the close and the stream has
    nothing left: stale, whatever minute is still to decide). The stale window is 45
    fake s = 0.375 s real: a stream that late on a loaded machine is an outage, and the
    feed-disconnected switch (30 s) may block entries, a trade the replay makes."""
    return [e.payload for e in replay(run_path).events if e.type == FEED_EVENT
            and e.payload["kind"] == "feed_source" and e.payload["source"] == "polling"
            and pd.Timestamp(e.payload["at"]) < end]


def _bar_times(run_path) -> list[pd.Timestamp]:
    return [pd.Timestamp(e.payload["bar_time"]) for e in replay(run_path).events
            if e.type == ev.BAR]


@pytest.mark.slow
def test_paper_session_on_alpaca_killed_and_restarted_sends_each_order_once(day, workbench_home):
    """--broker alpaca: market entries and oco protections placed and filled at the fake; a
    SIGKILL right after the first order was accepted, then a restart in the same run: the
    journal is reconciled with the account (the accepted order adopted, not sent again)."""
    import os
    import signal

    with fake_for(day, lead=10) as fake:  # 10 fake minutes (5 s) before the open: the
        env = {**os.environ, "WORKBENCH_TEST_CRASH_AT": "broker_accepted:1"}  # start waits
        crashed = subprocess.run([sys.executable, "-m", "tests.live_session_procs", fake.url],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                                 check=False)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        (run_path,) = (workbench_home / "runs").iterdir()
        assert len(fake.orders) == 1  # the order the session died on
        result = alpaca_session(fake.url, run_dir=run_path)
        orders = fake.orders
    assert result.outcome == "succeeded", result.message
    events = replay(run_path).events
    reconcile = [e for e in events if e.type == ev.RECONCILE]
    assert reconcile and reconcile[-1].payload["ok"], reconcile
    ids = [o["client_order_id"] for o in orders
           if not o["client_order_id"].endswith((".sl", ".tp"))]  # an oco's stop leg
    assert len(ids) == len(set(ids))  # no order sent twice
    intents = {e.payload["client_order_id"] for e in events if e.type == ev.INTENT}
    assert set(ids) == intents
    filled = [o for o in orders if o["status"] == "filled"]
    assert any(o["type"] == "market" and o["order_class"] in ("simple", "") for o in filled)
    ocos = [o for o in orders if o["order_class"] == "oco"]
    assert ocos and any(o["status"] == "filled" or any(leg["status"] == "filled"
                                                          for leg in o.get("legs") or [])
                        for o in ocos)
    assert result.fills == len([e for e in events if e.type == ev.FILL])
    assert any(e.type == ev.ALERT and "restart:" in e.payload["message"] for e in events)
    # the adapter's own events (from its stream's thread) are journaled by the session
    assert any(e.type == ev.ALERT and e.payload.get("source") == "broker"
               and e.payload["message"] == "stream_connected" for e in events)
    # the canary (tests/test_secrets.py's rule for a live run): the keys, given only in the
    # environment, are in no file of the home (run record, journal, broker lock/owner files)
    # nor in the crashed process's output
    files = [p for p in workbench_home.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    leaks = [str(p) for p in files for value in (KEY, SECRET) if value.encode() in p.read_bytes()]
    assert not leaks
    assert SECRET not in crashed.stdout + crashed.stderr and KEY not in crashed.stderr


@pytest.mark.slow
def test_a_mute_data_stream_mid_window_loses_no_minute_and_trades_like_the_replay(day, tmp_path):
    """The data stream goes mute after minute 6: the feed polls, backfills, reconnects; the
    session decides every minute the fake served exactly once and trades as the replay."""
    want = replayed(tmp_path)
    with fake_for(day, paused=True) as fake:
        def mute_mid_window():
            fake.hub.wait_until(lambda: len({m for m, _ in fake.served}) >= 6, timeout=120)
            fake.hub.faults.data.mute()
        killer = threading.Thread(target=mute_mid_window, daemon=True)
        killer.start()
        result = live_session(fake)
        killer.join(5)
        served = {(pd.Timestamp(m), s) for m, s in fake.served}
        withheld = [w for w in fake.hub.withheld if w.reason == "mute"]
    assert result.outcome == "succeeded", result.message
    assert not late_start(result.path)
    assert withheld  # the fault bit: bars were kept from the session's stream
    window = day[day["ts"] >= OPEN]
    assert served == {(t, s) for t, s in zip(window["ts"], window["symbol"])}
    assert _bar_times(result.path) == [OPEN + m * M for m in range(MINUTES)]  # each once
    kinds = [(e.payload["kind"], e.payload.get("source")) for e in replay(result.path).events
             if e.type == FEED_EVENT]
    assert ("feed_source", "polling") in kinds and ("feed_source", "stream") in kinds
    assert not decided_without(result.path)
    assert trades_of(result.path) == want
