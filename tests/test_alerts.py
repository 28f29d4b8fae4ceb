"""Alerts (issue 14): a replayed session with injected faults (a rejected order, a kill
switch, a feed outage) delivers exactly the expected alerts, each once, to a local webhook
(apprise's ``json://`` to a tiny http.server on 127.0.0.1); with the channel down or slow
the session trades on and every alert is in the journal; the throttle sends an incident
once; the supervisor's alerts reach the channel."""

from __future__ import annotations

import collections
import http.server
import json
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.notebook_strategies import strategy_of
from workbench.brokers.sim import SimBroker
from workbench.brokers.sim_rules import SimFaults
from workbench.clock import SimClock
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.journal import Journal, replay
from workbench.model import events as ev
from workbench.monitor import monitored
from workbench.monitor.alerts import Alert
from workbench.monitor.throttle import Throttle
from workbench.risk import RiskSettings
from workbench.session import runner

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
# the feed is out from 11:30 to 11:44 New York: no bar of any symbol
OUTAGE = ("2026-11-20 16:30Z", "2026-11-20 16:45Z")
# no alert that depends on the machine's load (the latency switch) in these replays
CALM = {"latency_budget_ms": 60_000.0}


class Receiver:
    """A webhook on 127.0.0.1 collecting JSON bodies; ``delay``: seconds before answering."""

    def __init__(self, delay: float = 0.0) -> None:
        self.payloads: list[dict] = []
        self.delay = delay
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.payloads.append(json.loads(body))  # on arrival: a slow answer
                time.sleep(outer.delay)  # must not decide whether it was received
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def strategy():
    return strategy_of(NOTEBOOK)


@pytest.fixture
def home(workbench_home) -> Path:
    bars = synthesize(4, 4, "1Min", 7, END)
    out = (bars.ts >= OUTAGE[0]) & (bars.ts < OUTAGE[1])
    Store(workbench_home / "data").write(bars[~out], "1Min", source="synth")
    return workbench_home


class RejectingBroker(SimBroker):
    """The simulated broker whose first order is rejected (its fault injection)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, faults=SimFaults().reject("insufficient buying power"), **kw)


def _events(path, kind):
    return [e for e in replay(path).events if e.type == kind]


def _channels(monkeypatch, *urls, **settings):
    monkeypatch.setenv("WORKBENCH__MONITOR__ALERT_URLS", json.dumps(list(urls)))
    for name, value in settings.items():
        monkeypatch.setenv(f"WORKBENCH__MONITOR__{name.upper()}", str(value))


def test_injected_faults_reach_the_webhook_once_each_readable(home, strategy, receiver,
                                                              monkeypatch):
    _channels(monkeypatch, receiver.url)
    monkeypatch.setattr(runner, "SimBroker", RejectingBroker)
    risk = RiskSettings(max_orders=6, order_window_s=3600, **CALM)  # the 7th order halts
    result = runner.run_session(strategy, {}, replay_date=END, risk=risk)
    assert result.outcome == "succeeded" and result.state == "halted"
    got = receiver.payloads
    titles = collections.Counter(p["title"] for p in got)
    assert all(n == 1 for n in titles.values()), titles  # each once
    by_title = {p["title"]: p for p in got}
    # the rejected order: the session's first intent, with the broker's reason
    first = _events(result.path, ev.INTENT)[0].payload
    rejected = by_title[f"[error] order rejected: {first['symbol']}"]
    assert rejected["type"] == "failure"
    assert first["client_order_id"] in rejected["message"]
    assert "rejected by the broker: insufficient buying power" in rejected["message"]
    # the kill switch: the order-rate halt, said once
    halt = by_title["[critical] kill switch order_rate: critical"]
    assert "halted until an operator resumes" in halt["message"]
    # the feed outage: the minutes without bars named in New York time
    outage = by_title["[warning] feed outage: bars missing"]
    assert "no bars after 11:29 until 11:45 New York" in outage["message"]
    # a trade alert per fill, and the day's summary
    fills = _events(result.path, ev.FILL)
    trades = [p for p in got if p["title"].startswith(("[info] entry:", "[info] exit:"))]
    assert len(trades) == len(fills) == 5
    assert any("@ " in t["message"] and "position 0 -> " in t["message"] for t in trades)
    summary = by_title["[warning] daily summary: sma_cross succeeded"]
    assert "state halted" in summary["message"] and f"{result.orders} orders" in summary["message"]
    # exactly these, nothing else
    assert len(got) == 1 + 1 + 1 + len(fills) + 1, sorted(titles)
    # every alert is in the journal (the session's own kill-switch alert included)
    alerts = _events(result.path, ev.ALERT)
    ours = [e.payload for e in alerts if e.payload.get("source") == "monitor"]
    assert len(ours) == len(got) - 1 and all(a["delivery"] == "send" for a in ours)
    assert any(e.payload.get("switch") == "order_rate" for e in alerts)


def test_a_dead_or_slow_channel_never_stops_the_session(home, strategy, monkeypatch):
    baseline = runner.run_session(strategy, {}, replay_date=END, risk=RiskSettings(**CALM))
    slow = Receiver(delay=2.0)  # each alert answered after 2 s: the queue backs up
    try:
        for url in (f"json://127.0.0.1:{_closed_port()}/hook", slow.url):
            _channels(monkeypatch, url, drain_s=0.2, alert_timeout_s=1)
            result = runner.run_session(strategy, {}, replay_date=END, risk=RiskSettings(**CALM))
            # traded on: the same day as without any channel
            assert (result.outcome, result.orders, result.fills, result.pnl) == (
                baseline.outcome, baseline.orders, baseline.fills, baseline.pnl)
            ours = [e.payload for e in _events(result.path, ev.ALERT)
                    if e.payload.get("source") == "monitor"]
            assert len(ours) == result.fills + 2  # trades, the feed outage, the summary
            assert ours[-1]["title"] == "daily summary: sma_cross succeeded"
    finally:
        slow.close()
    assert 1 <= len(slow.payloads) < len(ours)  # most were never delivered: still journaled


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alert(key="switch:x", severity="warning", kind="kill_switch"):
    return Alert(severity, kind, "t", "text", key, "2026-11-20T15:00:00+00:00")


def test_an_incident_sends_one_alert_not_a_hundred():
    t = Throttle(dedupe_s=900, max_per_minute=5)
    decisions = [t.admit(_alert(), 1000.0 + i)[0] for i in range(100)]
    assert decisions.count("send") == 1 and decisions.count("duplicate") == 99
    again = t.admit(_alert(), 1000.0 + 900)  # the window passed: sent, with the count held
    assert again[0] == "send" and "(99 more like it held back)" in again[1].text
    # many different alerts at once: the limit, then one alert saying what was held back
    burst = [t.admit(_alert(f"k{i}", "error", "order"), 5000.0)[0] for i in range(12)]
    assert burst.count("send") == 5 and burst.count("rate_limited") == 7
    held = t.overflow("end")
    assert held.severity == "error" and held.text.startswith("7 alert(s) held back")
    assert t.overflow("end") is None
    assert t.admit(_alert("low", "info"), 9000.0)[0] == "send"
    assert Throttle(level="warning").admit(_alert("low", "info"), 0.0)[0] == "below_level"


def test_a_supervisor_alert_reaches_the_channel(tmp_path, receiver, monkeypatch):
    _channels(monkeypatch, receiver.url)
    run = tmp_path / "run"
    run.mkdir()
    journal = Journal.open(run, SimClock("2026-11-20T15:00Z"))
    with monitored(journal, run, metrics=False, logs=False) as j:
        j.append(ev.ALERT, source="supervisor", action="restart", attempt=1, pid=123,
                 message="hung: 31.0s since the last heartbeat (limit 30s); process group "
                         "killed")
    (got,) = receiver.payloads
    assert got["title"] == "[error] supervisor: session restart"
    assert "since the last heartbeat" in got["message"] and got["type"] == "failure"
    assert len(_events(run, ev.ALERT)) == 1  # journaled once, by the supervisor


def test_the_live_feed_leaving_its_stream_is_an_outage_and_its_return_is_said():
    from workbench.monitor.alerts import AlertRules

    rules, at = AlertRules(), "2026-11-20T15:00:00+00:00"
    rules.on(ev.SESSION_START, {"strategy": "s", "timeframe": "1Min"}, at)
    (down,) = rules.on("feed", {"kind": "feed_source", "source": "polling",
                                "reason": "no stream bar for 20 s after bars were due"}, at)
    assert (down.severity, down.title) == ("warning", "feed outage: on REST polling")
    assert "no stream bar for 20 s" in down.text
    (back,) = rules.on("feed", {"kind": "feed_source", "source": "stream",
                                "reason": "stream bars flow again"}, at)
    assert back.severity == "info" and back.key != down.key
    (failed,) = rules.on("feed", {"kind": "poll_failed", "first": "a", "last": "b",
                                  "error": "ReadTimeout: slow"}, at)
    assert failed.severity == "error" and "ReadTimeout" in failed.text
    # a minute decided without a symbol's bar: the decision differs from a backtest's
    (late,) = rules.on("feed", {"kind": "bar_late", "symbol": "A", "source": "poll",
                                "time": "2026-11-20T14:59:00+00:00"}, at)
    assert late.severity == "warning" and late.title == "feed: late bar for A"
    assert "decided without it" in late.text and late.key == "feed:late:2026-11-20T14:59:00+00:00"


def test_alert_channels_are_refused_in_a_file_or_unreadable(tmp_path, monkeypatch):
    from workbench.config import load_settings
    from workbench.errors import ConfigError

    config = tmp_path / "workbench.toml"
    config.write_text('[monitor]\nalert_urls = ["tgram://123:TOKEN/456"]\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    with pytest.raises(ConfigError, match="alert_urls can hold tokens") as e:
        load_settings()
    assert "TOKEN" not in str(e.value)
    monkeypatch.delenv("WORKBENCH_CONFIG")
    _channels(monkeypatch, "nosuchscheme://secretpart/x")
    run = tmp_path / "run"
    run.mkdir()
    journal = Journal.open(run, SimClock("2026-11-20T15:00Z"))
    with pytest.raises(ConfigError, match=r"monitor.alert_urls\[0\]") as e:
        monitored(journal, run, metrics=False, logs=False)
    assert "secretpart" not in str(e.value) and journal.closed


def test_stops_errors_and_reconciliation_are_told_apart():
    from workbench.monitor.alerts import AlertRules

    rules, at = AlertRules(), "2026-11-20T15:00:00+00:00"
    rules.on(ev.INTENT, {"client_order_id": "e1", "symbol": "A", "side": "buy",
                         "quantity": "10", "reason": "signal"}, at)
    rules.on(ev.INTENT, {"client_order_id": "p1", "symbol": "A", "side": "sell",
                         "quantity": "10", "reason": "stop_loss"}, at)
    fill = {"execution_id": "x1", "client_order_id": "e1", "symbol": "A", "side": "buy",
            "quantity": "10", "price": "100.123456"}
    (entry,) = rules.on(ev.FILL, fill, at)
    assert entry.title == "entry: A" and "BUY 10 A @ 100.1235" in entry.text
    (stop,) = rules.on(ev.FILL, {**fill, "execution_id": "x2", "client_order_id": "p1",
                                 "side": "sell", "price": "95"}, at)
    assert stop.title == "stop loss hit: A" and "position 10 -> 0" in stop.text
    (tp,) = rules.on(ev.FILL, {**fill, "execution_id": "x3", "client_order_id": "p1.tp",
                               "side": "sell"}, at)
    assert tp.title == "take profit hit: A"
    (err,) = rules.on(ev.ERROR, {"error": "RuntimeError: boom\nmore"}, at)
    assert (err.severity, err.key) == ("error", "error:RuntimeError: boom")
    assert rules.on(ev.RECONCILE, {"ok": True, "differences": []}, at) == []
    (rec,) = rules.on(ev.RECONCILE, {"ok": False, "message": "2 differences",
                                     "differences": ["AAPL: journal 10, broker 0"]}, at)
    assert rec.severity == "critical" and "AAPL: journal 10, broker 0" in rec.text
    (halted,) = rules.on(ev.SESSION_END, {"outcome": "halted", "state": "halted",
                                          "pnl": "-1234.5", "positions": {}}, at)
    assert halted.severity == "critical" and "P&L -1,234.50" in halted.text


def test_the_supervisor_journals_its_alert_even_with_a_broken_channel(tmp_path, monkeypatch):
    _channels(monkeypatch, "nosuchscheme://x/y")
    run = tmp_path / "run"
    run.mkdir()
    with monitored(Journal.open(run, SimClock("2026-11-20T15:00Z")), run, metrics=False,
                   logs=False, strict=False) as j:
        j.append(ev.ALERT, source="supervisor", action="gave up", message="dead")
    assert [e.payload["action"] for e in _events(run, ev.ALERT)] == ["gave up"]


def test_a_dead_channel_is_tried_again_only_after_a_wait():
    """A channel that refuses at once is not hammered for every alert (the worker would
    compete with the decisions for the GIL)."""
    from workbench.monitor.delivery import BACKOFF_S, Delivery

    tried = []
    delivery = Delivery([f"json://127.0.0.1:{_closed_port()}/hook"], timeout_s=1,
                        on_result=lambda alert, ok: tried.append(ok))
    for i in range(50):
        delivery.send(_alert(f"k{i}"))
    deadline = time.monotonic() + 30
    while not tried and time.monotonic() < deadline:  # the first attempt, refused
        time.sleep(0.05)
    time.sleep(BACKOFF_S * 1.5)  # then one wait of BACKOFF_S: at most one more attempt
    assert tried and not any(tried) and len(tried) <= 3, tried  # not 50
    delivery.close(drain_s=0.5)
