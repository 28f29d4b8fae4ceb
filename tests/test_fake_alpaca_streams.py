"""The fake Alpaca's websockets against the real alpaca-py clients: `TradingStream` and
`StockDataStream` pointed at a `StreamHub` on loopback, each fault seen by the client.

Every client runs `run()` (its own ``asyncio.run``) in a thread; the ``clients`` fixture
stops them all, wakes those blocked in ``recv`` by closing their sockets, and checks every
thread ended. The server stops at the end of each test and must stop.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import warnings

import msgpack
import pandas as pd
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame
from websockets.sync.client import connect
from websockets.uri import parse_uri

with warnings.catch_warnings():  # alpaca-py imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.data.enums import DataFeed
    from alpaca.data.live.stock import StockDataStream
    from alpaca.trading.stream import TradingStream

from workbench.testing.alpaca.hub import StreamHub
from workbench.testing.alpaca.serve import ServedApp, streams_app

KEY, SECRET = "PKTESTKEY", "test-secret"
T0 = pd.Timestamp("2024-03-04 14:31", tz="UTC")


@pytest.fixture
def hub():
    hub = StreamHub(key=KEY, secret=SECRET)
    served = ServedApp(streams_app(hub))
    hub.served = served
    yield hub
    served.stop()


class Clients:
    """alpaca-py stream clients running in threads, each with what its handler received."""

    def __init__(self, hub: StreamHub, ws_url) -> None:
        self.hub, self.ws_url = hub, ws_url
        self.running: list[tuple[object, threading.Thread]] = []

    def trading(self, secret: str = SECRET) -> tuple[TradingStream, list]:
        got: list = []
        client = TradingStream(KEY, secret, url_override=self.ws_url("/stream"))

        async def on_update(update):
            got.append((time.monotonic(), update))
        client.subscribe_trade_updates(on_update)
        return self._run(client), got

    def data(self, *symbols: str, feed: str = "iex", **kwargs) -> tuple[StockDataStream, list]:
        got: list = []
        client = StockDataStream(KEY, SECRET, url_override=self.ws_url(f"/v2/{feed}"),
                                 feed=DataFeed(feed), **kwargs)

        async def on_bar(bar):
            got.append(bar)
        client.subscribe_bars(on_bar, *symbols)
        return self._run(client), got

    def _run(self, client):
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        self.running.append((client, thread))
        return client

    def stop_all(self) -> None:
        for client, _ in self.running:
            deadline = time.monotonic() + 5
            while getattr(client, "_loop", None) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            client.stop()
        self.hub.disconnect()  # wakes the clients waiting in recv (up to 5 s otherwise)
        for _, thread in self.running:
            thread.join(10)
        assert not [t for _, t in self.running if t.is_alive()], "a client thread survived"
        self.running.clear()


@pytest.fixture
def clients(hub):
    clients = Clients(hub, hub.served.ws_url)
    yield clients
    clients.stop_all()


def listening(hub: StreamHub, n: int = 1) -> None:
    hub.wait_until(lambda: len([c for c in hub.open_connections("trading") if c.listening]) >= n,
                   what=f"{n} trading listener(s)")


def subscribed(hub: StreamHub, symbol: str, feed: str = "iex") -> None:
    hub.wait_until(lambda: any(symbol in c.subscriptions.get("bars", ())
                               for c in hub.open_connections("data") if c.feed == feed),
                   what=f"a {feed} subscription to {symbol}")


def order(n: int, status: str = "new") -> dict:
    oid = f"00000000-0000-4000-8000-{n:012d}"
    return {"id": oid, "client_order_id": f"wb-{n}", "created_at": "2024-03-04T14:31:00Z",
            "updated_at": "2024-03-04T14:31:00Z", "submitted_at": "2024-03-04T14:31:00Z",
            "time_in_force": "day", "status": status, "extended_hours": False,
            "symbol": "AAPL", "qty": "2", "filled_qty": "0", "side": "buy", "type": "market",
            "order_class": "simple"}


def fill(n: int, price: str = "187.25") -> dict:
    return {"event": "fill", "timestamp": T0 + pd.Timedelta(seconds=n), "order": order(n, "filled"),
            "execution_id": f"11111111-0000-4000-8000-{n:012d}", "price": price, "qty": "2",
            "position_qty": str(2 * n)}


def bar(symbol: str, minute: int, close: float = 100.0) -> dict:
    return {"S": symbol, "t": T0 + pd.Timedelta(minutes=minute), "o": close - 1, "h": close + 1,
            "l": close - 2, "c": close, "v": 1000 + minute, "n": 10 + minute, "vw": close - 0.5}


def wait_for(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


# -- the protocol, as the real clients see it -----------------------------------------------
def test_trading_stream_delivers_published_trade_updates(hub, clients):
    hub.trade_update(fill(9))                       # nobody listens yet: recorded, not sent
    hub.wait_until(lambda: hub.withheld, what="the unheard update")
    assert [(w.connection, w.reason) for w in hub.withheld] == [(None, "no listener")]
    _, got = clients.trading()
    listening(hub)
    new = {"event": "new", "timestamp": "2024-03-04T14:31:00Z", "order": order(1)}
    hub.trade_update(new)
    hub.trade_update(fill(1))
    wait_for(lambda: len(got) == 2, "two trade updates")
    first, second = (update for _, update in got)
    assert (first.event, str(first.order.id), first.execution_id) == ("new", order(1)["id"], None)
    assert second.event == "fill" and str(second.execution_id) == fill(1)["execution_id"]
    assert (second.price, second.qty, second.position_qty) == (187.25, 2.0, 2.0)
    assert second.timestamp == (T0 + pd.Timedelta(seconds=1)).to_pydatetime()
    assert second.order.status == "filled" and second.order.client_order_id == "wb-1"
    sent = hub.sent_updates
    assert [(s.event, s.execution_id) for s in sent] == [("new", None),
                                                        ("fill", fill(1)["execution_id"])]
    assert {s.connection for s in sent} == {hub.connections("trading")[0].id}


def test_data_stream_delivers_subscribed_bars_with_their_values(hub, clients):
    _, got = clients.data("AAPL", "MSFT")
    subscribed(hub, "MSFT")
    hub.bars([bar("AAPL", 0, 187.5), bar("MSFT", 0, 410.0), bar("TSLA", 0, 180.0)])
    hub.bars([bar("AAPL", 1, 188.0)])
    wait_for(lambda: len(got) == 3, "three bars")
    assert [(b.symbol, b.timestamp) for b in got] == [
        ("AAPL", T0.to_pydatetime()), ("MSFT", T0.to_pydatetime()),
        ("AAPL", (T0 + pd.Timedelta(minutes=1)).to_pydatetime())]
    aapl = got[0]
    assert (aapl.open, aapl.high, aapl.low, aapl.close) == (186.5, 188.5, 185.5, 187.5)
    assert (aapl.volume, aapl.trade_count, aapl.vwap) == (1000, 10, 187.0)
    conn = hub.connections("data")[0]
    assert [(s.connection, s.minute, s.symbol) for s in hub.sent_bars] == [
        (conn.id, T0, "AAPL"), (conn.id, T0, "MSFT"), (conn.id, T0 + pd.Timedelta(minutes=1), "AAPL")]
    assert conn.subscriptions["bars"] == ("AAPL", "MSFT") and conn.sent == 3


def test_wire_shapes_of_both_streams():
    """The frames alpaca-py parses, byte for byte: the replies it reads in its handshake,
    the acks, and the errors Alpaca documents."""
    hub = StreamHub(key=KEY, secret=SECRET)
    with ServedApp(streams_app(hub)) as served:
        with connect(served.ws_url("/stream")) as ws:
            ws.send('{"action":"listen","data":{"streams":["trade_updates"]}}')
            assert ws.recv() == ('{"stream": "authorization", "data": {"status": '
                                 '"unauthorized", "action": "listen"}}')
            ws.send(json.dumps({"action": "authenticate",
                                "data": {"key_id": KEY, "secret_key": SECRET}}))
            assert ws.recv() == ('{"stream": "authorization", "data": {"status": '
                                 '"authorized", "action": "authenticate"}}')
            ws.send('{"action":"listen","data":{"streams":["trade_updates","nope"]}}')
            assert ws.recv() == '{"stream": "listening", "data": {"streams": ["trade_updates"]}}'
        with connect(served.ws_url("/v2/sip")) as ws:
            def reply(message=None):
                if message is not None:
                    ws.send(msgpack.packb(message))
                return msgpack.unpackb(ws.recv())
            assert reply() == [{"T": "success", "msg": "connected"}]
            assert reply({"action": "subscribe", "bars": ["AAPL"]}) == [
                {"T": "error", "code": 401, "msg": "not authenticated"}]
            assert reply({"action": "auth", "key": KEY, "secret": SECRET}) == [
                {"T": "success", "msg": "authenticated"}]
            ack = reply({"action": "subscribe", "bars": ["AAPL", "MSFT"], "trades": ["AAPL"],
                         "quotes": [], "dailyBars": ["AAPL"]})
            assert ack[0] == {"T": "error", "code": 400,
                              "msg": "invalid syntax: the fake serves ['trades', 'quotes', "
                                     "'bars', 'updatedBars'], not ['dailyBars']"}
            assert ack[1]["T"] == "subscription" and ack[1]["bars"] == ["AAPL", "MSFT"]
            assert ack[1]["trades"] == ["AAPL"] and ack[1]["dailyBars"] == []
            assert reply({"action": "unsubscribe", "bars": ["AAPL"]})[0]["bars"] == ["MSFT"]
            hub.bars([bar("MSFT", 0, 410.0)])
            frame = ws.recv()
            [message] = msgpack.unpackb(frame, timestamp=3)
            assert message["T"] == "b" and message["t"] == T0
            assert message == {"T": "b", "S": "MSFT", "o": 409.0, "h": 411.0, "l": 408.0,
                               "c": 410.0, "v": 1000, "n": 10, "vw": 409.5, "t": T0}
            assert reply({"action": "auth", "key": KEY, "secret": SECRET}) == [
                {"T": "error", "code": 403, "msg": "already authenticated"}]
        with pytest.raises(InvalidStatus) as refused:
            connect(served.ws_url("/v2/test"))
        assert refused.value.response.status_code == 404


# -- one connection per account: 406 ---------------------------------------------------------
LIMIT = "connection limit exceeded"


def test_a_second_trading_connection_is_refused_with_406(hub, clients, caplog):
    caplog.set_level(logging.INFO)
    _, first = clients.trading()
    listening(hub)
    _, second = clients.trading()
    hub.wait_until(lambda: any(c.refused == LIMIT for c in hub.connections("trading")),
                   what="a refused second connection")
    wait_for(lambda: "failed to authenticate" in caplog.text, "the second client's error")
    hub.trade_update(fill(1))
    wait_for(lambda: len(first) == 1, "the update at the first client")
    assert second == []
    holder, *refused = hub.connections("trading")
    assert holder.is_open and holder.authorized and holder.sent == 1
    assert refused and all(not c.authorized and c.closed_by == "refused" for c in refused)


def test_a_second_data_connection_on_a_feed_is_refused_with_406(hub, clients, caplog):
    caplog.set_level(logging.INFO)
    _, first = clients.data("AAPL")
    subscribed(hub, "AAPL")
    _, second = clients.data("AAPL")
    wait_for(lambda: "error during websocket communication: connection limit exceeded"
             in caplog.text, "the second client's 406")
    _, sip = clients.data("AAPL", feed="sip")      # Alpaca limits per endpoint: sip is free
    subscribed(hub, "AAPL", feed="sip")
    hub.bars([bar("AAPL", 0)])
    wait_for(lambda: len(first) == 1 and len(sip) == 1, "the bar on iex and on sip")
    assert second == []
    iex = [c for c in hub.connections("data") if c.feed == "iex"]
    assert iex[0].authorized and all(c.refused == LIMIT for c in iex[1:]) and iex[1:]


# -- faults, each seen by the real client ------------------------------------------------------
@pytest.mark.parametrize("stream", ["trading", "data"])
@pytest.mark.parametrize("fault,refused,logged", [
    ("auth_failure", "auth failed", {"trading": "failed to authenticate", "data": "auth failed"}),
    ("slot_taken", LIMIT, {"trading": "failed to authenticate", "data": LIMIT}),
    ("slot_taken_at_handshake", LIMIT, {"trading": "HTTP 406", "data": "HTTP 406"}),
])
def test_a_refused_connection_is_an_error_then_a_reconnect(hub, clients, caplog, stream, fault,
                                                           refused, logged):
    caplog.set_level(logging.INFO)
    faults = getattr(hub.faults, stream)
    if fault == "auth_failure":
        faults.auth_failure(times=1)
    else:
        faults.slot_taken(times=1, at="handshake" if fault.endswith("handshake") else "auth")
    if stream == "trading":
        _, got = clients.trading()
        listening(hub)
        hub.trade_update(fill(1))
    else:
        _, got = clients.data("AAPL")
        subscribed(hub, "AAPL")
        hub.bars([bar("AAPL", 0)])
    wait_for(lambda: len(got) == 1, "data after the reconnect")
    assert logged[stream] in caplog.text
    first, second = hub.connections(stream)
    assert (first.refused, first.authorized, first.closed_by) == (refused, False, "refused")
    assert second.authorized and second.is_open


def test_drop_makes_the_trading_client_reconnect(hub, clients):
    _, got = clients.trading()
    listening(hub)
    hub.trade_update(fill(1))
    wait_for(lambda: len(got) == 1, "the first update")
    assert hub.faults.trading.drop() == 1
    hub.wait_until(lambda: len(hub.connections("trading")) == 2, what="a reconnect")
    listening(hub)
    hub.trade_update(fill(2))
    wait_for(lambda: len(got) == 2, "the update after the reconnect")
    first, second = hub.connections("trading")
    assert first.closed_by == "fault: drop" and second.is_open
    assert [(s.connection, s.execution_id) for s in hub.sent_updates] == [
        (first.id, fill(1)["execution_id"]), (second.id, fill(2)["execution_id"])]


def test_drop_after_n_bars_and_the_record_shows_each_bar_once(hub, clients):
    _, got = clients.data("AAPL")
    subscribed(hub, "AAPL")
    hub.faults.data.drop(after=2)
    hub.bars([bar("AAPL", 0), bar("AAPL", 1), bar("AAPL", 2)])
    hub.wait_until(lambda: len(hub.connections("data")) == 2, what="a reconnect")
    subscribed(hub, "AAPL")
    hub.bars([bar("AAPL", 3)])
    wait_for(lambda: len(got) == 3, "bars 0, 1 and 3")
    minutes = [T0 + pd.Timedelta(minutes=m) for m in range(4)]
    assert [b.timestamp for b in got] == [minutes[i].to_pydatetime() for i in (0, 1, 3)]
    first, second = hub.connections("data")
    assert first.closed_by == "fault: drop" and first.sent == 2
    assert [(s.connection, s.minute) for s in hub.sent_bars] == [
        (first.id, minutes[0]), (first.id, minutes[1]), (second.id, minutes[3])]
    [lost] = hub.withheld
    assert (lost.connection, lost.reason, lost.message["t"]) == (first.id, "closed", minutes[2])


def test_a_mute_data_stream_sends_nothing_until_the_client_gives_up_on_it(hub, clients):
    _, got = clients.data("AAPL", data_timeout=1.5)
    subscribed(hub, "AAPL")
    hub.bars([bar("AAPL", 0)])
    wait_for(lambda: len(got) == 1, "the bar before the mute")
    assert hub.faults.data.mute() == 1
    hub.bars([bar("AAPL", 1)])
    hub.wait_until(lambda: len(hub.withheld) == 1, what="the muted bar")  # on the open socket
    # alpaca-py's data_timeout notices the silence, closes and reconnects; the new one talks
    hub.wait_until(lambda: len(hub.connections("data")) == 2, what="a reconnect")
    subscribed(hub, "AAPL")
    hub.bars([bar("AAPL", 2)])
    wait_for(lambda: len(got) == 2, "the bar after the reconnect")
    assert [b.timestamp for b in got] == [(T0 + pd.Timedelta(minutes=m)).to_pydatetime()
                                          for m in (0, 2)]
    first, _ = hub.connections("data")
    assert first.closed_by == "client"
    assert [(w.connection, w.reason, w.message["t"]) for w in hub.withheld] == [
        (first.id, "mute", T0 + pd.Timedelta(minutes=1))]


def test_a_mute_socket_still_answers_pings_and_a_silent_one_is_timed_out():
    hub = StreamHub(key=KEY, secret=SECRET, auth_timeout=0.3)
    with ServedApp(streams_app(hub)) as served:
        with connect(served.ws_url("/v2/iex")) as ws:
            ws.recv()
            ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            ws.recv()
            hub.faults.data.mute()
            assert ws.ping().wait(timeout=5)        # the pong of a connected, mute socket
        with connect(served.ws_url("/v2/iex")) as ws:   # connects, never authenticates
            ws.recv()
            assert msgpack.unpackb(ws.recv(timeout=5)) == [
                {"T": "error", "code": 404, "msg": "auth timeout"}]
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
        assert hub.connections("data")[1].refused == "auth timeout"


def test_mute_then_unmute_and_a_mute_that_survives_a_reconnect(hub, clients):
    _, got = clients.trading()
    listening(hub)
    hub.faults.trading.mute()
    hub.trade_update(fill(1))
    hub.faults.trading.unmute()
    hub.trade_update(fill(2))
    wait_for(lambda: len(got) == 1, "the update after unmute")
    assert str(got[0][1].execution_id) == fill(2)["execution_id"]
    hub.faults.trading.mute(survives_reconnect=True)
    hub.faults.trading.drop()
    hub.wait_until(lambda: len(hub.connections("trading")) == 2, what="a reconnect")
    listening(hub)
    hub.trade_update(fill(3))
    hub.wait_until(lambda: len(hub.withheld) == 2, what="the update withheld after reconnect")
    second = hub.connections("trading")[1]
    assert [(w.connection, w.reason) for w in hub.withheld] == [
        (hub.connections("trading")[0].id, "mute"), (second.id, "mute")]
    hub.faults.trading.clear()
    hub.trade_update(fill(4))
    wait_for(lambda: len(got) == 2, "the update after clear")
    assert str(got[1][1].execution_id) == fill(4)["execution_id"]


def test_delay_holds_each_message_back_in_order(hub, clients):
    _, got = clients.trading()
    listening(hub)
    hub.faults.trading.delay(0.4)
    published = time.monotonic()
    hub.trade_update(fill(1))
    hub.trade_update(fill(2))
    wait_for(lambda: len(got) == 2, "both delayed updates")
    assert all(at - published >= 0.4 for at, _ in got)
    assert [str(u.execution_id) for _, u in got] == [fill(1)["execution_id"],
                                                     fill(2)["execution_id"]]


def test_duplicated_and_reordered_trade_updates_arrive_as_injected(hub, clients):
    _, got = clients.trading()
    listening(hub)
    hub.faults.trading.duplicate(2)
    for n in (1, 2, 3):
        hub.trade_update(fill(n))
    hub.faults.trading.reorder(3)
    for n in (4, 5, 6):
        hub.trade_update(fill(n))
    hub.faults.trading.reorder(2)
    hub.trade_update(fill(7))
    hub.faults.trading.clear()                      # a partial batch is released in order
    wait_for(lambda: len(got) == 9, "nine updates")
    order_of = [int(str(u.execution_id)[-3:]) for _, u in got]
    assert order_of == [1, 1, 2, 2, 3, 6, 5, 4, 7]
    assert [int(s.execution_id[-3:]) for s in hub.sent_updates] == order_of


# -- the hub's own contract --------------------------------------------------------------------
def test_bad_messages_and_misplaced_faults_raise_at_the_caller():
    hub = StreamHub(key=KEY, secret=SECRET)
    good = bar("AAPL", 0)
    for broken, why in [({**good, "t": pd.Timestamp("2024-03-04 14:31")}, "tz-aware"),
                        ({**good, "t": T0 + pd.Timedelta(seconds=5)}, "start of a minute"),
                        ({k: v for k, v in good.items() if k != "vw"}, "missing \\['vw'\\]"),
                        ({**good, "extra": 1}, "unknown \\['extra'\\]"),
                        ({**good, "c": "100"}, "c must be a number")]:
        with pytest.raises(ValueError, match=why):
            hub.bars([broken])
    with pytest.raises(ValueError, match="execution_id"):
        hub.trade_update({k: v for k, v in fill(1).items() if k != "execution_id"})
    with pytest.raises(ValueError, match="naive datetime"):
        hub.trade_update({**fill(1), "timestamp": pd.Timestamp("2024-03-04 14:31").to_pydatetime()})
    with pytest.raises(RuntimeError, match="not bound"):
        hub.bars([good])
    with pytest.raises(RuntimeError, match="no open data connection"):
        hub.faults.data.drop()
    with pytest.raises(ValueError, match="hub.faults.trading"):
        hub.faults.data.duplicate(1)
    with pytest.raises(ValueError, match="n >= 2"):
        hub.faults.trading.reorder(1)


def test_close_ends_every_connection_and_refuses_new_ones():
    hub = StreamHub(key=KEY, secret=SECRET)
    served = ServedApp(streams_app(hub))
    try:
        with connect(served.ws_url("/v2/iex")) as ws:
            assert msgpack.unpackb(ws.recv()) == [{"T": "success", "msg": "connected"}]
            hub.close()
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
            assert ws.close_code == 1001
        hub.wait_until(lambda: not hub.open_connections(), what="no open connection")
        with pytest.raises(InvalidStatus):
            connect(served.ws_url("/stream"))
        with pytest.raises(RuntimeError, match="closed"):
            hub.trade_update(fill(1))
    finally:
        served.stop()
    assert not any(t.name == f"uvicorn-{served.port}" for t in threading.enumerate())


def stalled_data_client(hub: StreamHub) -> socket.socket:
    """A data client that authenticates, subscribes to every bar, then never reads again
    (a 4 KiB receive buffer, so the fake's writes to it soon block)."""
    sock = socket.create_connection(("127.0.0.1", hub.served.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    proto = ClientProtocol(parse_uri(hub.served.ws_url("/v2/iex")))
    proto.send_request(proto.connect())

    def exchange(message: dict | None) -> None:
        if message is not None:
            proto.send_binary(msgpack.packb(message))
        sock.sendall(b"".join(proto.data_to_send()))
        while not [e for e in proto.events_received() if isinstance(e, Frame)]:
            proto.receive_data(sock.recv(65536))
    exchange(None)                                                   # connected
    exchange({"action": "auth", "key": KEY, "secret": SECRET})
    exchange({"action": "subscribe", "bars": ["*"]})
    return sock


def test_a_client_that_stops_reading_holds_up_nobody(hub, clients):
    stalled = stalled_data_client(hub)
    _, got = clients.data("AAPL", feed="sip")
    subscribed(hub, "AAPL", feed="sip")
    batch = [{**bar("AAPL", 0), "S": f"Z{i:04d}".ljust(200, "Z")} for i in range(1000)]
    for _ in range(40):                  # ~11 MB: far more than the stalled socket buffers
        hub.bars(batch)
    hub.bars([bar("AAPL", 1)])
    # the hub counts a message as sent after the send returns, so the client may see it first
    wait_for(lambda: len(got) == 1 and hub.connections("data")[1].sent == 1,
             "the bar behind 40 000 others, on the other connection")
    sip = hub.connections("data")[1]
    assert sip.feed == "sip" and sip.sent == 1
    stuck = hub.connections("data")[0]
    assert stuck.is_open and stuck.sent < 40_001
    stalled.close()
    hub.wait_until(lambda: not hub.connections("data")[0].is_open, what="the stalled one gone")
    stuck = hub.connections("data")[0]
    withheld = [w for w in hub.withheld if w.connection == stuck.id]
    assert stuck.sent + len(withheld) == 40_001   # every bar it was due: sent, or withheld
    assert {w.reason for w in withheld} == {"closed"}


def test_a_data_stream_killed_mid_replay_the_record_names_the_gap():
    """On the whole fake: a replayed day, the data stream dropped after two minutes. What
    the client received is exactly ``hub.sent_bars`` (each bar once, in order), and what
    the fake served minus that is the gap a live feed must backfill over REST."""
    from workbench.data.synth import synthesize
    from workbench.testing import FakeAlpaca

    day = "2026-11-23"
    bars = synthesize(["AAPL", "SPY"], 2, "1Min", seed=3, end=day)
    with FakeAlpaca(bars, key=KEY, secret=SECRET, replay=day, speed=600, start="11:00",
                    end="11:30", paused=True) as fake:
        clients = Clients(fake.hub, lambda path: fake.data_stream_url("iex").replace("/v2/iex", path))
        try:
            _, got = clients.data("AAPL", "SPY")
            subscribed(fake.hub, "SPY")
            fake.hub.faults.data.drop(after=4)
            fake.play()
            fake.wait_until_done(20)
            last = fake.served[-1]
            wait_for(lambda: got and (pd.Timestamp(got[-1].timestamp), got[-1].symbol) == last,
                     "the last minute, after the reconnect")
        finally:
            clients.stop_all()
    received = [(pd.Timestamp(b.timestamp), b.symbol) for b in got]
    sent = [(s.minute, s.symbol) for s in fake.hub.sent_bars]
    assert received == sent and len(set(sent)) == len(sent)
    first, second, *_ = fake.hub.connections("data")
    assert first.closed_by == "fault: drop" and first.sent == 4 and second.authorized
    gap = [bar for bar in fake.served if bar not in set(sent)]
    assert gap and sent == [bar for bar in fake.served if bar not in set(gap)]
    assert gap[0] == fake.served[4]                 # the gap starts where the drop cut in
