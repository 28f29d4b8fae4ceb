"""Trade updates from alpaca-py's ``TradingStream``, on a thread of their own.

    stream = TradeUpdates(key, secret, paper=True, url=None, on_event=callback)
    stream.start()          # a daemon thread; TradingStream.run() makes its own event loop
    stream.drain()          # the raw trade-update dicts received since (non-blocking)
    stream.connected        # authorized and listening right now
    stream.close()

**Thread and loop.** ``TradingStream.run()`` calls ``asyncio.run``, which refuses to run
inside a running loop (a Jupyter kernel's). It runs here on its own daemon thread, so it
has its own loop whatever the caller's thread is doing. Messages cross to the caller's
thread through a ``queue.Queue``; nothing else is shared but flags.

**De-duplication.** A ``fill``/``partial_fill`` is kept once per ``execution_id`` (a
duplicated message is counted in ``duplicates`` and dropped); other events once per
(event, order id, order ``updated_at``, timestamp). Order is not restored: the order
manager applies updates through its state table whatever their order.

**Watching the socket.** alpaca-py's public ``websocket_params`` are passed to
``websockets``' legacy ``connect``, whose public ``create_protocol`` argument is given
:class:`_WatchedProtocol`: a ``WebSocketClientProtocol`` that sees each handshake, each
received frame and the end of the connection. From them come ``connected`` (set on the
``authorized`` reply, cleared when the socket goes) and the detection of a **taken slot**:
Alpaca allows one trade-updates connection per account and refuses another with a 406
(an HTTP 406 at the handshake, or an error message with code 406 / "connection limit
exceeded"). alpaca-py would treat either as an ordinary failure and reconnect within
1-30 s, forever. Here a taken slot stops that ``TradingStream`` (its public ``stop_ws``
coroutine), reports a ``stream_slot_taken`` event (alert-worthy: another process holds
this account's stream, or a dead connection of ours has not yet been reaped, which takes
Alpaca about 90 s) and waits ``slot_backoff`` seconds (>= 90, doubling on each further
406, at most ``max_backoff``) before **one** new attempt. ``sleep`` is injectable for
tests. Other disconnections are left to alpaca-py's own reconnect (1 s doubling to 30 s,
jittered); ``connected`` is False meanwhile, for the session's broker-disconnected switch.
"""

from __future__ import annotations

import asyncio
import functools
import json
import queue
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.stream import TradingStream
    from websockets.exceptions import ConnectionClosed
    from websockets.legacy.client import WebSocketClientProtocol
    from websockets.legacy.exceptions import InvalidStatusCode

__all__ = ["MIN_SLOT_BACKOFF_S", "TradeUpdates"]

MIN_SLOT_BACKOFF_S = 90.0
_FAILED_PAUSE_S = 30.0  # after TradingStream.run() itself raised
_FILLS = ("fill", "partial_fill")


def _mentions_406(value: Any) -> bool:
    """Whether a decoded message says "connection limit exceeded" / code 406."""
    if isinstance(value, dict):
        if value.get("code") in (406, "406"):
            return True
        return any(_mentions_406(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_406(v) for v in value)
    if isinstance(value, str):
        text = value.lower()
        return "connection limit" in text or text.startswith("406")
    return False


class _WatchedProtocol(WebSocketClientProtocol):
    """The legacy client protocol, reporting to a :class:`TradeUpdates` (see module doc)."""

    def __init__(self, *args, watcher: TradeUpdates, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._watcher = watcher
        watcher._loop = asyncio.get_running_loop()

    async def handshake(self, *args, **kwargs):  # type: ignore[override]
        self._watcher.attempts += 1
        try:
            return await super().handshake(*args, **kwargs)
        except InvalidStatusCode as e:
            if e.status_code == 406:
                await self._watcher._slot_taken("HTTP 406 at the handshake")
            raise

    async def recv(self):  # type: ignore[override]
        try:
            frame = await super().recv()
        except ConnectionClosed as e:
            reason = f"{getattr(e.rcvd, 'code', '')} {getattr(e.rcvd, 'reason', '')}"
            if _mentions_406(reason) or " 406" in f" {reason}":
                await self._watcher._slot_taken(f"connection closed: {reason.strip()}")
            raise
        await self._watcher._on_frame(frame)
        return frame

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self._watcher._set_connected(False)


class TradeUpdates:
    """The account's trade-updates stream on its own thread (see the module doc).

    ``on_event(name, fields)`` is called (from the stream's thread) for ``stream_connected``,
    ``stream_disconnected``, ``stream_closed`` (on :meth:`close`), ``stream_slot_taken``
    and ``stream_failed`` (``TradingStream.run`` raised: retried after 30 s); it must be
    thread-safe and quick."""

    def __init__(self, api_key: str, secret_key: str, *, paper: bool, url: str | None = None,
                 on_event: Callable[[str, dict], None] | None = None,
                 slot_backoff: float = MIN_SLOT_BACKOFF_S, max_backoff: float = 900.0,
                 sleep: Callable[[float], Any] | None = None) -> None:
        if slot_backoff < MIN_SLOT_BACKOFF_S:
            raise ValueError(f"slot_backoff must be at least {MIN_SLOT_BACKOFF_S:g} s "
                             f"(Alpaca reaps a dead connection after about 90 s)")
        self._key, self._secret, self._paper, self._url = api_key, secret_key, paper, url
        self._on_event = on_event or (lambda name, fields: None)
        self.slot_backoff, self.max_backoff = slot_backoff, max_backoff
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._queue: queue.Queue[dict] = queue.Queue()
        self._seen: set = set()
        self._thread: threading.Thread | None = None
        self._stream: TradingStream | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._slot_was_taken = False
        self.attempts = 0  # websocket handshakes started
        self.duplicates = 0  # messages dropped as already seen
        self.slot_refusals = 0  # 406s met
        self.backoffs: list[float] = []  # waits after a 406, in order

    # -- state ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Authorized and listening right now."""
        return self._connected

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _set_connected(self, value: bool) -> None:
        if value != self._connected:
            self._connected = value
            closing = self._stop.is_set()
            self._on_event("stream_connected" if value else
                           "stream_closed" if closing else "stream_disconnected", {})

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="alpaca-trade-updates",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the stream and its thread (waits up to ``timeout`` s for it)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            loop, stream = self._loop, self._stream
            if loop is not None and stream is not None and loop.is_running():
                try:
                    asyncio.run_coroutine_threadsafe(self._shutdown(stream), loop).result(
                        max(deadline - time.monotonic(), 0.01))
                except Exception:  # noqa: BLE001, S110 - the loop ended meanwhile: nothing to stop
                    pass
            thread.join(0.05)
        self._set_connected(False)

    @staticmethod
    async def _shutdown(stream: TradingStream) -> None:
        await stream.stop_ws()  # alpaca-py's public coroutine: no reconnect after this
        await stream.close()  # wakes its recv at once (else it notices within 5 s)

    def _main(self) -> None:
        while not self._stop.is_set():
            self._slot_was_taken = False
            self._loop = None
            params = {"ping_interval": 10, "ping_timeout": 180, "max_queue": 1024,
                      "create_protocol": functools.partial(_WatchedProtocol, watcher=self)}
            stream = TradingStream(self._key, self._secret, paper=self._paper, raw_data=True,
                                   url_override=self._url, websocket_params=params)
            stream.subscribe_trade_updates(self._on_message)
            self._stream = stream
            try:
                stream.run()  # returns once stop_ws ran: on close() or on a taken slot
            except Exception as e:  # noqa: BLE001 - reported; one new attempt after a pause
                self._set_connected(False)
                self._on_event("stream_failed", {"error": f"{type(e).__name__}: {e}",
                                                 "retry_in_s": _FAILED_PAUSE_S})
                self._sleep(_FAILED_PAUSE_S)
                continue
            self._set_connected(False)
            if self._stop.is_set() or not self._slot_was_taken:
                return
            wait = min(self.slot_backoff * 2 ** (self.slot_refusals - 1), self.max_backoff)
            self.backoffs.append(wait)
            self._on_event("stream_slot_taken", {
                "backoff_s": wait, "refusals": self.slot_refusals,
                "message": (f"Alpaca refused the trade-updates stream (406: another connection "
                            f"holds this account's only slot); next attempt in {wait:g} s, "
                            f"no updates until then (fills are found by lookup)")})
            self._sleep(wait)

    # -- inside the stream's loop ---------------------------------------------------------
    async def _slot_taken(self, why: str) -> None:
        if not self._slot_was_taken:
            self._slot_was_taken = True
            self.slot_refusals += 1
        if self._stream is not None:
            await self._stream.stop_ws()

    async def _on_frame(self, frame) -> None:
        try:
            msg = json.loads(frame)
        except (TypeError, ValueError):
            return
        data = msg.get("data") if isinstance(msg, dict) else None
        if isinstance(msg, dict) and msg.get("stream") == "authorization" and isinstance(data, dict):
            if data.get("status") == "authorized":
                self._set_connected(True)
            elif _mentions_406(data):
                await self._slot_taken("406 in the authorization reply")
        elif (isinstance(msg, dict) and msg.get("stream") != "trade_updates"
              and _mentions_406(msg)) or (isinstance(msg, list) and _mentions_406(msg)):
            await self._slot_taken("406 error message")

    async def _on_message(self, msg: dict) -> None:
        data = msg.get("data") or {}
        order = data.get("order") or {}
        if data.get("event") in _FILLS:
            key = ("x", data.get("execution_id"))
        else:
            key = (data.get("event"), order.get("id"), order.get("updated_at"),
                   data.get("timestamp"))
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        self._queue.put(data)

    # -- the caller's side ----------------------------------------------------------------
    def drain(self) -> list[dict]:
        """Every trade update received since the last call (non-blocking)."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
