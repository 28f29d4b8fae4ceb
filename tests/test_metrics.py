"""A session's Prometheus endpoint (issue 14): valid Prometheus text parsed by
prometheus-client's own parser, one latency observation per bar, the session's figures,
its port in the run record; a taken port is refused naming the setting."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.notebook_strategies import strategy_of
from workbench.clock import SimClock
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.errors import ConfigError
from workbench.journal import Journal
from workbench.monitor import metrics as metrics_module
from workbench.monitor import monitored
from workbench.monitor.watch import targets_dir
from workbench.session.runner import run_session

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(3, 4, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


def _samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of a scrape, through prometheus-client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_endpoint_serves_the_session_while_it_runs(home, monkeypatch):
    scrapes, real_close = [], metrics_module.SessionMetrics.close

    def scrape_then_close(self):  # the endpoint's last moment: every bar decided
        (listed,) = targets_dir().glob("*.json")  # Prometheus's file_sd finds it there
        (target,) = json.loads(listed.read_text())[0]["targets"]
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as reply:
            scrapes.append((target, reply.read().decode()))
        real_close(self)

    monkeypatch.setattr(metrics_module.SessionMetrics, "close", scrape_then_close)
    result = run_session(strategy_of(NOTEBOOK), {}, replay_date=END)
    ((target, text),) = scrapes
    m = _samples(text)
    # one latency observation per bar, and as many bars processed
    assert m[("workbench_decision_latency_seconds_count", ())] == result.bars == 390
    assert m[("workbench_bars_processed_total", ())] == 390
    assert m[("workbench_decision_latency_seconds_bucket", (("le", "+Inf"),))] == 390
    assert m[("workbench_bars_late_total", ())] == 0
    # orders by their last status: every order of the day filled
    orders = {dict(k[1])["status"]: v for k, v in m.items() if k[0] == "workbench_orders"}
    assert sum(orders.values()) == result.orders and orders["filled"] == result.fills
    assert m[("workbench_feed_source", (("source", "replay"),))] == 1
    assert m[("workbench_feed_source", (("source", "stream"),))] == 0
    assert m[("workbench_equity_usd", ())] == pytest.approx(float(Decimal(result.equity)))
    assert m[("workbench_pnl_usd", ())] == pytest.approx(float(Decimal(result.pnl)))
    assert m[("workbench_exposure_usd", ())] == pytest.approx(
        float(Decimal(result.equity) - Decimal(result.cash)), abs=1e-6)
    assert m[("workbench_trading_state", (("workbench_trading_state", "active"),))] == 1
    assert 0 <= m[("workbench_heartbeat_age_seconds", ())] < 60
    info = [k for k in m if k[0] == "workbench_session_info"]
    assert dict(info[0][1])["run_id"] == result.run_id
    assert dict(info[0][1])["strategy"] == "sma_cross"
    # the docs' dashboard and tables name only metrics the endpoint serves
    families = list(text_string_to_metric_families(text))
    served = {k[0] for k in m} | {f.name for f in families}
    served |= {f"{f.name}_total" for f in families if f.type == "counter"}  # none counted yet
    for doc in ("grafana.json", "monitoring.md"):
        named = set(re.findall(r"workbench_[a-z_]+", (ROOT / "docs" / doc).read_text()))
        assert named and named <= served, (doc, sorted(named - served))
    # the port stays in the run record, the target is gone once the session ended
    entry = json.loads((Path(result.path) / "metrics.json").read_text())
    assert entry["run_id"] == result.run_id and entry["serving"] is False
    assert f"127.0.0.1:{entry['port']}" == target and not list(targets_dir().iterdir())
    with pytest.raises(OSError):
        urllib.request.urlopen(entry["url"], timeout=2)


def test_a_taken_metrics_port_is_refused_naming_the_setting(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("WORKBENCH__MONITOR__METRICS_PORT", str(port))
        run = tmp_path / "run"
        run.mkdir()
        journal = Journal.open(run, SimClock("2026-11-20T15:00Z"))
        with pytest.raises(ConfigError, match=f"monitor.metrics_port={port}"):
            monitored(journal, run)
        assert journal.closed  # nothing left open


def test_open_positions_and_orders_by_status_follow_the_events():
    """The counts kept as events arrive equal the counts over every symbol and order."""
    from workbench.monitor.metrics import SessionMetrics
    m = SessionMetrics("run")
    positions = [("AAA", "10"), ("BBB", "5"), ("AAA", "0"), ("AAA", "0"), ("CCC", "0"),
                 ("BBB", "-3"), ("AAA", "2.5"), ("BBB", "0"), ("DDD", "1"), ("DDD", "1")]
    held: dict[str, Decimal] = {}
    for symbol, quantity in positions:
        m.on("position", {"symbol": symbol, "quantity": quantity})
        held[symbol] = Decimal(quantity)
        assert m.positions._value.get() == sum(q != 0 for q in held.values())
    orders = [("intent", "a", None), ("broker_reply", "a", "accepted"),
              ("intent", "b", None), ("order_update", "a", "filled"),
              ("order_unknown", "b", None), ("order_update", "b", "accepted"),
              ("order_update", "b", "accepted"), ("order_update", "b", "canceled")]
    last: dict[str, str] = {}
    for kind, cid, status in orders:
        m.on(kind, {"client_order_id": cid, "status": status})
        last[cid] = {"intent": "new", "order_unknown": "unknown"}.get(kind, status)
        for s in ("new", "accepted", "filled", "unknown", "canceled"):
            assert m.orders.labels(s)._value.get() == sum(v == s for v in last.values()), s
    m.close()
