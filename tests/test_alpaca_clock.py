"""The market clock's first read waits for a server that is not listening yet (the README
starts the fake Alpaca in the background and the session on the next line); later reads
and other errors never wait."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from workbench.config import Credentials, load_settings
from workbench.errors import DataError
from workbench.feeds import alpaca_clock

NOW = "2026-11-20T14:31:00-05:00"


class _Clock(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"timestamp": NOW, "is_open": True,
                           "next_open": NOW, "next_close": NOW}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reader(port: int):
    settings = load_settings()
    settings = settings.model_copy(update={"alpaca": settings.alpaca.model_copy(
        update={"trading_url": f"http://127.0.0.1:{port}", "request_timeout_s": 2.0})})
    return alpaca_clock.clock_reader(settings, Credentials(api_key="k", secret_key="s"))


def test_the_first_read_waits_for_a_server_that_starts_late(monkeypatch):
    monkeypatch.setattr(alpaca_clock, "START_WAIT_S", 20.0)
    port = _free_port()
    read = _reader(port)
    late: dict = {}

    def start_late():  # nothing listens on the port until then
        late["server"] = ThreadingHTTPServer(("127.0.0.1", port), _Clock)
        late["server"].serve_forever()

    starter = threading.Timer(0.6, start_late)
    starter.start()
    try:
        assert read() == pd.Timestamp(NOW).tz_convert("UTC")
    finally:
        starter.join(timeout=5)  # the timer thread runs the server: wait for it to exist
        if "server" in late:
            late["server"].shutdown()
            late["server"].server_close()
    # the server is gone: a later read fails at once, without the start's wait
    with pytest.raises(DataError) as e:
        read()
    assert "retried" not in str(e.value) and "ConnectionError" in str(e.value)


def test_a_server_that_never_listens_is_one_line_naming_the_wait(monkeypatch):
    monkeypatch.setattr(alpaca_clock, "START_WAIT_S", 0.5)
    read = _reader(_free_port())
    with pytest.raises(DataError) as e:
        read()
    message = str(e.value)
    assert "\n" not in message and "retried for 0.5 s" in message
