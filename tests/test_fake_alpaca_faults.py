"""REST faults of the fake Alpaca server, seen through alpaca-py and plain HTTP."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
import warnings

import pandas as pd
import pytest
from fake_alpaca_hub import RecordingHub

from workbench.errors import ConfigError
from workbench.testing import FakeAlpaca, Fault

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import requests
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

KEY, SECRET = "PKFAKEFAULTS01", "fake-faults-secret"
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
ORDER = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day"}


@pytest.fixture
def fake():
    with FakeAlpaca(key=KEY, secret=SECRET, hub=RecordingHub(), idle_timeout=60) as fake:
        fake.set_clock("2026-11-23 15:00")
        yield fake


@pytest.fixture
def client(fake):
    return TradingClient(KEY, SECRET, url_override=fake.url)


def call(fake, method: str, path: str, body=None, timeout: float = 5):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{fake.url}{path}", data, AUTH, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read() or b"null")


def order_request(cid: str) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                              time_in_force=TimeInForce.DAY, client_order_id=cid)


def test_status_faults_match_method_and_path_and_are_used_in_order(fake, client):
    fake.fail(503, path="/v2/orders", method="POST")
    fake.fail(500, times=2, path="/v2/account", message="boom")
    assert client.get_clock().is_open  # neither fault matches
    with pytest.raises(APIError) as info:
        client.get_account()
    assert (info.value.status_code, info.value.message) == (500, "boom")
    assert call(fake, "GET", "/v2/orders")[0] == 200  # a GET is not the POST's fault
    status, _, body = call(fake, "POST", "/v2/orders", ORDER)
    assert status == 503 and body["code"] == 50300000 and fake.orders == []  # nothing placed
    assert call(fake, "GET", "/v2/account")[0] == 500  # the second 500
    assert call(fake, "GET", "/v2/account")[0] == 200 and fake.faults.pending() == []
    assert [r.status for r in fake.requests] == [200, 500, 200, 503, 500, 200]


def test_429_carries_retry_after(fake):
    fake.fail(429, retry_after=7)
    status, headers, body = call(fake, "GET", "/v2/account")
    assert status == 429 and headers["retry-after"] == "7" and len(str(body["code"])) == 8


def test_latency_answers_late(fake, client):
    fake.delay(0.4, path="/v2/clock")
    began = time.monotonic()
    assert client.get_clock().is_open
    assert time.monotonic() - began >= 0.4


def test_accept_then_504_places_the_order_and_the_sdk_retry_meets_a_duplicate(fake, client):
    """Failure mode 1 as alpaca-py meets it: the retry after the 504 is refused as a duplicate
    (the client must settle the order by its client id); the broker holds exactly one."""
    fake.accept_then(504)
    client._retry_wait = 0  # the SDK's 3 s pause between retries; the test does not wait
    with pytest.raises(APIError) as info:
        client.submit_order(order_request("once"))
    assert info.value.status_code == 422 and info.value.message == "client_order_id must be unique"
    assert [r.status for r in fake.requests] == [504, 422]
    assert [o["client_order_id"] for o in fake.orders] == ["once"]
    assert client.get_order_by_client_id("once").status == "new"


@pytest.mark.parametrize("takes_effect", [False, True])
def test_no_answer_holds_until_the_client_gives_up(fake, takes_effect):
    fake.stall(path="/v2/orders", method="POST", takes_effect=takes_effect)
    session = requests.Session()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(f"{fake.url}/v2/orders", json={**ORDER, "client_order_id": "silent"},
                     headers=AUTH, timeout=0.5)
    assert len(fake.orders) == (1 if takes_effect else 0)
    assert fake.requests[-1].status is None  # never answered
    assert call(fake, "GET", "/v2/account")[0] == 200  # the server itself is fine


def test_no_answer_for_n_seconds_then_the_connection_closes(fake):
    fake.stall(0.3, path="/v2/account")
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        call(fake, "GET", "/v2/account")


def test_stall_after_headers_sends_the_status_then_holds_the_body(fake):
    fake.stall(path="/v2/account", after_headers=True)
    response = requests.get(f"{fake.url}/v2/account", headers=AUTH, timeout=0.5, stream=True)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):  # the body read times out
        _ = response.content


def test_dropped_connection(fake, client):
    fake.drop_connection(path="/v2/orders", method="POST", takes_effect=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.submit_order(order_request("dropped"))
    assert [o["client_order_id"] for o in fake.orders] == ["dropped"]
    fake.drop_connection(path="/v2/account")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get_account()
    assert client.get_account().status == "ACTIVE"


def test_stop_releases_stalled_requests_at_once():
    fake = FakeAlpaca(key=KEY, secret=SECRET, hub=RecordingHub()).start()
    fake.stall(path="/v2/account")
    outcome = []

    def ask():
        try:
            call(fake, "GET", "/v2/account", timeout=30)
        except Exception as e:  # noqa: BLE001 - whatever the client sees, it returns
            outcome.append(type(e).__name__)

    import threading

    asker = threading.Thread(target=ask)
    asker.start()
    while not fake.requests:
        time.sleep(0.01)
    began = time.monotonic()
    fake.stop()
    asker.join(5)
    assert not asker.is_alive() and outcome and time.monotonic() - began < 3
    assert fake.stopped_reason == "stopped"


def test_bad_faults_are_refused():
    with pytest.raises(ConfigError, match="unknown fault kind"):
        Fault("explode")
    with pytest.raises(ConfigError, match="prefix"):
        Fault(status=500, path="v2/orders")
    with pytest.raises(ConfigError, match="needs a status"):
        Fault("status")


def test_idle_timeout_stops_the_fake():
    with FakeAlpaca(key=KEY, secret=SECRET, hub=RecordingHub(), idle_timeout=0.2) as fake:
        url = fake.url
        deadline = time.monotonic() + 5
        while fake.stopped_reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.stopped_reason == "idle timeout"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/v2/clock", timeout=2)


def test_clock_of_a_static_fake_is_the_wall_clock_unless_set():
    with FakeAlpaca(key=KEY, secret=SECRET, hub=RecordingHub()) as fake:
        now = pd.Timestamp.now(tz="UTC")
        shown = pd.Timestamp(call(fake, "GET", "/v2/clock")[2]["timestamp"])
        assert abs(shown - now) < pd.Timedelta(seconds=5)
