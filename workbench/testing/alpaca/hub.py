"""`StreamHub`: the fake Alpaca's two websockets, what they publish and what they served.

The hub owns every open stream connection of the fake server and is the one door through
which the rest of the fake (the replay clock, the order book) publishes:

    hub = StreamHub(key="KEY", secret="SECRET")
    app = Starlette(routes=hub.routes(), lifespan=...)   # the lifespan calls hub.bind(loop)
    hub.trade_update({"event": "fill", "timestamp": ..., "order": {...}, ...})  # any thread
    hub.bars([{"S": "AAPL", "t": pd.Timestamp(..., tz="UTC"), "o": ..., "n": ..., "vw": ...}])
    hub.faults.data.mute(seconds=5)     # faults per stream: see stream_faults.py
    hub.sent_bars                       # what each connection was actually sent
    hub.close()                         # every connection closed (server stop)

Publishing is thread-safe and never blocks: a message is checked and encoded on the
caller's thread (a bad bar or update raises there, loudly), handed to the bound event loop
with ``call_soon_threadsafe``, then to each connection's own queue, drained by that
connection's sender task, so a slow client never holds up the publisher or another client.

The record (``connections``, ``sent_bars``, ``sent_updates``) is what went out on the wire,
written after each successful send, and ``withheld`` what was published but not sent
(mute, no listener, a connection closed with it queued): a test proves "every minute bar
exactly once" against it. Records are snapshots, safe to read from any thread;
``wait_until`` waits for one to change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pandas as pd
from starlette.routing import BaseRoute, WebSocketRoute

from workbench.testing.alpaca import stream_faults, stream_messages, streams

T = TypeVar("T")
TRADING = "trading"
DATA = "data"
STREAMS = (TRADING, DATA)
_CALL_TIMEOUT = 10.0  # a fault or close waits this long for the server's loop


@dataclass(frozen=True)
class ConnectionInfo:
    """One websocket connection the fake accepted, as it stands (``closed_at`` None: open).

    ``refused`` says why it was refused (``"auth failed"``, ``"connection limit
    exceeded"``, ``"auth timeout"``); ``closed_by`` who ended it (``"client"``, ``"fault: drop"``,
    ``"hub"``, ``"refused"``); ``sent`` how many data messages (trade updates or bars) it
    was sent."""

    id: int
    stream: str                      # "trading" or "data"
    feed: str | None                 # "iex" or "sip" for data, None for trading
    peer: str
    opened_at: float                 # time.time()
    closed_at: float | None = None
    authorized: bool = False
    refused: str | None = None
    closed_by: str | None = None
    listening: tuple[str, ...] = ()  # trading: the streams acknowledged by listen
    subscriptions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # data: channel -> symbols
    sent: int = 0

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class SentBar:
    """A minute bar written to one data connection."""

    connection: int
    minute: pd.Timestamp             # the bar's start, UTC
    symbol: str


@dataclass(frozen=True)
class SentUpdate:
    """A trade update written to one trading connection (``data``: its ``data`` object as it
    went on the wire, JSON-decoded: timestamps are strings)."""

    connection: int
    event: str
    order_id: str
    execution_id: str | None
    data: dict


@dataclass(frozen=True)
class Withheld:
    """A message published but not sent: ``reason`` is ``"mute"`` (the connection was
    mute), ``"no listener"`` (no authorized trading listener) or ``"closed"`` (the
    connection ended with it still queued)."""

    stream: str
    connection: int | None
    reason: str
    message: dict


class Faults:
    """``hub.faults.trading`` and ``hub.faults.data``: one `stream_faults.StreamFaults` each."""

    def __init__(self, hub: StreamHub) -> None:
        self.trading = stream_faults.StreamFaults(hub, TRADING)
        self.data = stream_faults.StreamFaults(hub, DATA)

    def clear(self) -> None:
        """Every fault of both streams off (held trade updates are released in order)."""
        self.trading.clear()
        self.data.clear()


class StreamHub:
    """The trading stream (``/stream``, JSON) and the market-data stream (``/v2/{feed}``,
    msgpack) of the fake, for one account: ``key``/``secret`` are the credentials both
    streams accept. See the module docstring for the life cycle."""

    def __init__(self, *, key: str, secret: str, auth_timeout: float = 10.0) -> None:
        if not key or not secret:
            raise ValueError("StreamHub needs a non-empty key and secret")
        self.key = key
        self.secret = secret
        self.auth_timeout = auth_timeout  # data stream: Alpaca's 10 s to authenticate (404)
        self.faults = Faults(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._next_id = 0
        self._infos: dict[int, ConnectionInfo] = {}
        self._sent_bars: list[SentBar] = []
        self._sent_updates: list[SentUpdate] = []
        self._withheld: list[Withheld] = []
        # open connections by id; touched on the loop thread only
        self.live: dict[int, streams.Connection] = {}

    # -- life cycle ------------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the server's event loop (from the app's lifespan). Binding again is only
        allowed once the previous loop has stopped (a restarted server)."""
        if self._loop is not None and self._loop is not loop and self._loop.is_running():
            raise RuntimeError("StreamHub is already bound to another running event loop")
        self._loop = loop
        self._closed = False

    def routes(self) -> list[BaseRoute]:
        """``/stream`` (trading, JSON text frames) and ``/v2/{feed}`` (market data, msgpack
        binary frames; feed ``iex`` or ``sip``)."""
        return [WebSocketRoute("/stream", streams.trading_endpoint(self)),
                WebSocketRoute("/v2/{feed}", streams.data_endpoint(self))]

    def close(self) -> None:
        """Close every connection (code 1001) and refuse new ones; publishing afterwards
        raises. Waits for the closes when called off the server's loop."""
        self._closed = True
        if self._loop is not None and self._loop.is_running():
            self.call(lambda: self._close_all(1001, "hub"))

    @property
    def closed(self) -> bool:
        return self._closed

    def disconnect(self, stream: str | None = None) -> int:
        """Close the open connections of ``stream`` (both when None) with code 1001, as a
        server going away; returns how many. Not a fault: what a test does to end a client
        blocked in ``recv`` after asking it to stop."""
        _check_stream(stream)
        return self.call(lambda: self._close_all(1001, "hub", stream))

    # -- publishing (any thread) -----------------------------------------------------------
    def trade_update(self, data: dict) -> None:
        """Send one ``trade_updates`` message to the authorized listener. ``data`` is the
        message's ``data`` object: ``event``, ``timestamp``, ``order`` (the full order
        JSON) and, for fills, ``execution_id``, ``price``, ``qty``, ``position_qty``."""
        message = stream_messages.trade_update_message(data)
        self._post(lambda: streams.publish_update(self, message))

    def bars(self, bars: list[dict]) -> None:
        """Send minute bars to every data connection subscribed to their symbol (or ``*``).
        Each bar: ``S``, ``t`` (tz-aware timestamp of the bar's start), ``o``, ``h``,
        ``l``, ``c``, ``v``, ``n``, ``vw``; anything else, or anything missing, raises."""
        messages = [stream_messages.bar_message(bar) for bar in bars]
        if messages:
            self._post(lambda: streams.publish_bars(self, messages))

    # -- the record (any thread) -----------------------------------------------------------
    def connections(self, stream: str | None = None) -> list[ConnectionInfo]:
        """Every connection accepted so far, oldest first (``stream`` filters)."""
        _check_stream(stream)
        with self._cond:
            return [c for c in self._infos.values() if stream in (None, c.stream)]

    def open_connections(self, stream: str | None = None) -> list[ConnectionInfo]:
        return [c for c in self.connections(stream) if c.is_open]

    def connection_count(self, stream: str | None = None) -> int:
        return len(self.connections(stream))

    @property
    def sent_bars(self) -> list[SentBar]:
        with self._cond:
            return list(self._sent_bars)

    @property
    def sent_updates(self) -> list[SentUpdate]:
        with self._cond:
            return list(self._sent_updates)

    @property
    def withheld(self) -> list[Withheld]:
        with self._cond:
            return list(self._withheld)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0,
                   what: str = "condition") -> None:
        """Block until ``predicate()`` holds, re-checked whenever the record changes;
        ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"stream hub: {what} not reached in {timeout:g} s")
                self._cond.wait(min(left, 0.1))

    # -- used by streams (loop thread) -----------------------------------------------------
    def register(self, stream: str, feed: str | None, peer: str) -> int:
        with self._cond:
            self._next_id += 1
            cid = self._next_id
            self._infos[cid] = ConnectionInfo(cid, stream, feed, peer, time.time())
            self._cond.notify_all()
        return cid

    def update_info(self, cid: int, **changes: Any) -> None:
        with self._cond:
            self._infos[cid] = replace(self._infos[cid], **changes)
            self._cond.notify_all()

    def record_sent(self, cid: int, entries: list[SentBar | SentUpdate]) -> None:
        with self._cond:
            for entry in entries:
                (self._sent_bars if isinstance(entry, SentBar) else self._sent_updates).append(entry)
            info = self._infos[cid]
            self._infos[cid] = replace(info, sent=info.sent + len(entries))
            self._cond.notify_all()

    def record_withheld(self, entries: list[Withheld]) -> None:
        with self._cond:
            self._withheld.extend(entries)
            self._cond.notify_all()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop and return its result (directly when there is no
        running loop or when already on it): how faults change state without locks."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or _on_loop(loop):
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=_CALL_TIMEOUT)

    def _post(self, fn: Callable[[], None]) -> None:
        if self._closed:
            raise RuntimeError("StreamHub is closed: nothing can be published any more")
        if self._loop is None:
            raise RuntimeError("StreamHub is not bound to a loop (the app's lifespan calls "
                               "hub.bind): the message would go nowhere")
        self._loop.call_soon_threadsafe(fn)

    def _close_all(self, code: int, by: str, stream: str | None = None) -> int:
        victims = [c for c in self.live.values() if stream in (None, c.stream)]
        for conn in victims:
            conn.close(code, by)
        return len(victims)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _check_stream(stream: str | None) -> None:
    if stream is not None and stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}: one of {STREAMS}")
