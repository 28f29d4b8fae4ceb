"""Structured logs (issue 14): a session's log lines are JSON with the UTC timestamp, level,
component, event and run id, in runs/<id>/logs/ and on stderr, rotated; no secret reaches
them (canary: broker keys and an alert channel's token, logged by mistake too)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.notebook_strategies import strategy_of
from workbench import log
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.monitor import watch
from workbench.session.runner import run_session

END = "2026-11-20"
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
KEY, SECRET = "PKCANARY0123456789AB", "canary-secret-0123456789abcdefghijklmnop"
TOKEN = "CanaryToken-9f8e7d6c5b4a"


@pytest.fixture
def debug_logs():
    log.configure("DEBUG")  # stderr shows everything: the canary must still not appear
    yield
    log.configure("WARNING")


def test_session_logs_are_json_with_the_run_id_and_no_secret(workbench_home, monkeypatch,
                                                              capfd, debug_logs):
    Store(workbench_home / "data").write(synthesize(3, 4, "1Min", 7, END), "1Min", source="synth")
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    url = f"json://127.0.0.1:9/hook/{TOKEN}"  # nothing listens: every delivery fails
    monkeypatch.setenv("WORKBENCH__MONITOR__ALERT_URLS", json.dumps([url]))
    monkeypatch.setenv("WORKBENCH__MONITOR__DRAIN_S", "0.5")
    real = watch.Monitor.observe
    leaked = []

    def careless(self, event):  # a component that logs what it should not, once
        if not leaked:
            leaked.append(event)
            log.get_logger("careless").warning("oops", key=os.environ["ALPACA_API_KEY"],
                                               nested={"secret": SECRET}, url=url)
            logging.getLogger("careless.stdlib").error("sent to %s with %s", url, SECRET)
        real(self, event)

    monkeypatch.setattr(watch.Monitor, "observe", careless)
    result = run_session(strategy_of(NOTEBOOK), {}, replay_date=END)
    err = capfd.readouterr().err
    path = Path(result.path) / "logs" / "session.jsonl"
    text = path.read_text()
    for secret in (KEY, SECRET, TOKEN, url):
        assert secret not in text and secret not in err
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all(line["run_id"] == result.run_id for line in lines)
    for line in lines:
        assert {"timestamp", "level", "component", "event"} <= line.keys()
        assert line["timestamp"].endswith("Z")
    events = {line["event"] for line in lines}
    assert {"metrics_served", "alert", "alert_not_delivered", "oops"} <= events
    oops = next(line for line in lines if line["event"] == "oops")
    assert oops["key"] == "**********" and oops["nested"] == {"secret": "**********"}
    # stderr carries the same JSON lines (at its level: DEBUG here)
    on_stderr = [json.loads(s) for s in err.splitlines() if s.startswith("{")]
    assert any(s.get("event") == "oops" and s.get("run_id") == result.run_id
               for s in on_stderr)
    assert any(s.get("component") == "careless.stdlib" for s in on_stderr)


def test_a_run_log_rotates_and_keeps_its_backups(tmp_path):
    run = log.open_run_log(tmp_path, "run-1", "INFO", max_bytes=4096, backups=2)
    try:
        for i in range(300):
            log.get_logger("test").info("line", i=i, pad="x" * 40)
        log.get_logger("test").debug("below the run's level")
    finally:
        run.close()
    log.get_logger("test").info("after the run: not in its file")
    files = sorted((tmp_path / "logs").iterdir())
    assert [f.name for f in files] == ["session.jsonl", "session.jsonl.1", "session.jsonl.2"]
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert all(line["run_id"] == "run-1" and line["event"] == "line" for line in lines)
    assert all(f.stat().st_size <= 4096 for f in files)
    assert max(line["i"] for line in lines) == 299  # the newest kept, the oldest rotated out
