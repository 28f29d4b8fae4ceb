"""The fake Alpaca's two websocket endpoints, as alpaca-py 0.44 speaks them.

Trading stream, ``/stream``, JSON text frames (``TradingStream``): the client authenticates
(``{"action": "authenticate", ...}``) and is answered exactly one ``authorization`` frame,
listens (``{"action": "listen", ...}``) and is answered a ``listening`` frame, then receives
``trade_updates`` messages. Market-data stream, ``/v2/iex`` and ``/v2/sip``, msgpack binary
frames (``StockDataStream``): ``connected`` on open, ``auth``, ``subscribe``/``unsubscribe``
(bars served; trades and quotes acknowledged, never sent), then bar frames whose ``t`` is a
msgpack Timestamp. Shapes are Alpaca's documented ones (``../shared/reference/
alpaca-protocol.md`` §5; data errors: 400 invalid syntax, 401 not authenticated, 402 auth
failed, 403 already authenticated, 404 auth timeout, 406 connection limit exceeded).

One connection per account: a second authorized trading connection, or a second data
connection with the same key on the same feed (Alpaca limits per endpoint), is refused
with 406 "connection limit exceeded" and closed. Alpaca documents that shape for the data
stream only; the trading stream gets it in its own framing, an ``authorization`` frame
``{"status": "unauthorized", "code": 406, "message": "connection limit exceeded"}``, which
alpaca-py turns into ``ValueError("failed to authenticate")``, logged, then a reconnect with
backoff. ``faults.trading.slot_taken(at="handshake")`` refuses instead with HTTP 406 at the
upgrade, which alpaca-py logs as "server rejected WebSocket connection: HTTP 406".

Everything here runs on the server's event loop: publishing arrives through
``call_soon_threadsafe`` (`hub.StreamHub`), faults through ``hub.call`` (`stream_faults`),
messages already checked and encoded (`stream_messages`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import msgpack
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from workbench.testing.alpaca import hub as hub_module
from workbench.testing.alpaca.stream_messages import BarMessage, UpdateMessage

if TYPE_CHECKING:
    from workbench.testing.alpaca.hub import StreamHub

log = logging.getLogger(__name__)
TRADING = "trading"
DATA = "data"
FEEDS = ("iex", "sip")
SERVED = ("trades", "quotes", "bars", "updatedBars")  # channels acknowledged (only bars carry
# data: the fake never re-sends a corrected bar, so "updatedBars" stays quiet)
LIMIT = "connection limit exceeded"
AUTH_FAILED = "auth failed"


class Connection:
    """One accepted websocket: its protocol state, its queue and the task that drains it.
    Queue items are ``(due, kind, payload)``: ``"control"`` frames, ``"data"`` lists of
    messages (sent at ``due``, a ``time.monotonic()`` instant) and ``"close"``."""

    def __init__(self, hub: StreamHub, websocket: WebSocket, cid: int, stream: str,
                 feed: str | None) -> None:
        self.hub, self.ws, self.id, self.stream, self.feed = hub, websocket, cid, stream, feed
        self.authorized = False
        self.listening = False
        self.subs: dict[str, dict[str, None]] = {ch: {} for ch in SERVED}
        self.muted_until: float | None = None
        self.drop_after: int | None = None
        self.closing = False
        self.closed_by: str | None = None
        self.queue: asyncio.Queue[tuple[float, str, Any]] = asyncio.Queue()
        self.pending: list | None = None    # data taken off the queue, not yet on the wire
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())

    def control(self, payload: Any) -> None:
        self.queue.put_nowait((0.0, "control", payload))

    def data(self, messages: list, due: float) -> None:
        self.queue.put_nowait((due, "data", messages))

    def close_after_queue(self, code: int, by: str) -> None:
        """Close once what is queued before has been sent (a refusal after its reply)."""
        self.queue.put_nowait((0.0, "close", (code, by)))

    def close(self, code: int, by: str) -> None:
        """Close now: what is still queued is withheld."""
        if self.closing:
            return
        self.closing, self.closed_by = True, by
        self.sender.cancel()
        self._withhold_pending()
        asyncio.get_running_loop().create_task(self._close(code))

    def subscribed(self, symbol: str) -> bool:
        return symbol in self.subs["bars"] or "*" in self.subs["bars"]

    async def _close(self, code: int) -> None:
        with contextlib.suppress(OSError, WebSocketDisconnect, WebSocketDisconnected):
            await self.ws.close(code)  # unless the client went first

    async def _send_loop(self) -> None:
        try:
            while True:
                due, kind, payload = await self.queue.get()
                if kind == "close":
                    self.close(*payload)
                    return
                if kind == "control":
                    await self._write(payload)
                    continue
                self.pending = payload
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                done = await self._send_data(payload)
                self.pending = None
                if not done:
                    return
        except BaseException as exc:  # cancelled, the socket gone, or a bug said out loud
            self._withhold_pending()
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, OSError | WebSocketDisconnect | WebSocketDisconnected):
                self.closing = True
            else:
                log.exception("fake alpaca %s stream: sending failed", self.stream)
                self.close(1011, f"server error: {exc!r}")

    async def _send_data(self, messages: list) -> bool:
        now = messages if self.drop_after is None else messages[:self.drop_after]
        if now:
            await self._write([m.wire for m in now] if self.stream == DATA else now[0].text)
            self.hub.record_sent(self.id, [_sent(self.id, m) for m in now])
        if self.drop_after is None:
            return True
        self.drop_after -= len(now)
        if self.drop_after > 0:
            return True
        self.pending = None
        self.withhold(messages[len(now):], "closed")  # the rest of this frame
        self.close(1011, "fault: drop")
        return False

    async def _write(self, payload: Any) -> None:
        if self.stream == DATA:
            await self.ws.send_bytes(msgpack.packb(payload))
        else:
            await self.ws.send_text(payload if isinstance(payload, str) else json.dumps(payload))

    def finish(self) -> None:
        """The socket ended: stop the sender, and record what it never sent."""
        self.closing = True
        self.sender.cancel()
        self._withhold_pending()
        while not self.queue.empty():
            _, kind, payload = self.queue.get_nowait()
            if kind == "data":
                self.withhold(payload, "closed")

    def _withhold_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending:
            self.withhold(pending, "closed")

    def withhold(self, messages: list, reason: str) -> None:
        self.hub.record_withheld([_withheld(self.stream, self.id, reason, m) for m in messages])


def _sent(cid: int, m: Any) -> hub_module.SentBar | hub_module.SentUpdate:
    if isinstance(m, UpdateMessage):
        return hub_module.SentUpdate(cid, m.event, m.order_id, m.execution_id, m.data)
    return hub_module.SentBar(cid, m.minute, m.symbol)


def _withheld(stream: str, cid: int | None, reason: str, m: Any) -> hub_module.Withheld:
    message = m.data if isinstance(m, UpdateMessage) else {**m.wire, "t": m.minute}
    return hub_module.Withheld(stream, cid, reason, message)


# -- publishing (loop thread) -------------------------------------------------------------
def publish_update(hub: StreamHub, message: UpdateMessage) -> None:
    for m in hub.faults.trading.shape(message):
        deliver_update(hub, m)


def deliver_update(hub: StreamHub, message: UpdateMessage) -> None:
    faults = hub.faults.trading
    listeners = [c for c in hub.live.values()
                 if c.stream == TRADING and c.listening and not c.closing]
    if not listeners:
        hub.record_withheld([_withheld(TRADING, None, "no listener", message)])
    for conn in listeners:
        if faults.muted(conn):
            conn.withhold([message], "mute")
        else:
            conn.data([message], time.monotonic() + faults.latency)


def publish_bars(hub: StreamHub, messages: list[BarMessage]) -> None:
    faults = hub.faults.data
    for conn in [c for c in hub.live.values()
                 if c.stream == DATA and c.authorized and not c.closing]:
        mine = [m for m in messages if conn.subscribed(m.symbol)]
        if not mine:
            continue
        if faults.muted(conn):
            conn.withhold(mine, "mute")
        else:
            conn.data(mine, time.monotonic() + faults.latency)


# -- the endpoints ------------------------------------------------------------------------
def trading_endpoint(hub: StreamHub):
    async def endpoint(websocket: WebSocket) -> None:
        await _serve(hub, websocket, TRADING, None)
    return endpoint


def data_endpoint(hub: StreamHub):
    async def endpoint(websocket: WebSocket) -> None:
        feed = websocket.path_params["feed"]
        if feed not in FEEDS:
            await websocket.send_denial_response(
                JSONResponse({"code": 40410000, "message": f"unknown feed {feed!r}"}, 404))
            return
        await _serve(hub, websocket, DATA, feed)
    return endpoint


async def _serve(hub: StreamHub, websocket: WebSocket, stream: str, feed: str | None) -> None:
    faults = hub.faults.trading if stream == TRADING else hub.faults.data
    client = websocket.client
    peer = f"{client.host}:{client.port}" if client else "?"
    if hub.closed:
        await websocket.close(1013)
        return
    if faults.take_slot("handshake"):
        cid = hub.register(stream, feed, peer)
        hub.update_info(cid, refused=LIMIT, closed_by="refused", closed_at=time.time())
        await websocket.send_denial_response(JSONResponse({"code": 406, "message": LIMIT}, 406))
        return
    await websocket.accept()
    cid = hub.register(stream, feed, peer)
    conn = hub.live[cid] = Connection(hub, websocket, cid, stream, feed)
    handle = _on_trading if stream == TRADING else _on_data
    if stream == DATA:
        conn.control([{"T": "success", "msg": "connected"}])
    deadline = time.monotonic() + hub.auth_timeout if stream == DATA else None
    try:
        while True:
            if conn.authorized:
                deadline = None
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(websocket.receive(), timeout)
            except TimeoutError:
                conn.control([{"T": "error", "code": 404, "msg": "auth timeout"}])
                hub.update_info(cid, refused="auth timeout")
                conn.close_after_queue(1008, "refused")
                deadline = None  # no second timeout while the close goes out
                continue
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            if not conn.closing and raw is not None:
                handle(hub, conn, raw)
    finally:
        hub.live.pop(cid, None)
        conn.finish()
        hub.update_info(cid, closed_at=time.time(), closed_by=conn.closed_by or "client")


def _refusal(hub: StreamHub, conn: Connection, key: Any, secret: Any) -> str | None:
    faults = hub.faults.trading if conn.stream == TRADING else hub.faults.data
    if faults.take_auth_failure() or key != hub.key or secret != hub.secret:
        return AUTH_FAILED
    if faults.take_slot("auth"):
        return LIMIT
    rivals = [c for c in hub.live.values() if c is not conn and c.stream == conn.stream
              and c.feed == conn.feed and c.authorized and not c.closing]
    return LIMIT if rivals else None


def _authorize(hub: StreamHub, conn: Connection, refusal: str | None) -> None:
    if refusal is None:
        conn.authorized = True
        hub.update_info(conn.id, authorized=True)
    else:
        hub.update_info(conn.id, refused=refusal)
        conn.close_after_queue(1008, "refused")


def _on_trading(hub: StreamHub, conn: Connection, raw: str | bytes) -> None:
    try:
        msg = json.loads(raw)
        action, data = msg["action"], msg.get("data") or {}
    except (ValueError, TypeError, KeyError):
        conn.control({"stream": "error", "data": {"code": 400, "message": "invalid syntax"}})
        return
    if action == "authenticate":
        if conn.authorized:
            conn.control(_authorization("authorized", action))
            return
        refusal = _refusal(hub, conn, data.get("key_id"), data.get("secret_key"))
        reply = _authorization("authorized" if refusal is None else "unauthorized", action)
        if refusal == LIMIT:
            reply["data"].update(code=406, message=LIMIT)
        conn.control(reply)
        _authorize(hub, conn, refusal)
    elif action == "listen":
        if not conn.authorized:
            conn.control(_authorization("unauthorized", action))
            return
        wanted = data.get("streams")
        if not isinstance(wanted, list):
            conn.control({"stream": "error", "data": {"code": 400, "message": "invalid syntax"}})
            return
        conn.listening = "trade_updates" in wanted
        streams = ["trade_updates"] if conn.listening else []
        hub.update_info(conn.id, listening=tuple(streams))
        conn.control({"stream": "listening", "data": {"streams": streams}})
    else:
        conn.control({"stream": "error", "data": {"code": 400, "message": "invalid syntax"}})


def _authorization(status: str, action: str) -> dict:
    return {"stream": "authorization", "data": {"status": status, "action": action}}


def _on_data(hub: StreamHub, conn: Connection, raw: str | bytes) -> None:
    try:
        msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
        action = msg["action"]
    except Exception:  # noqa: BLE001 - any undecodable frame is Alpaca's 400
        conn.control([_error(400, "invalid syntax")])
        return
    if action == "auth":
        if conn.authorized:
            conn.control([_error(403, "already authenticated")])
            return
        refusal = _refusal(hub, conn, msg.get("key"), msg.get("secret"))
        if refusal is None:
            conn.control([{"T": "success", "msg": "authenticated"}])
        else:
            conn.control([_error(402 if refusal == AUTH_FAILED else 406, refusal)])
        _authorize(hub, conn, refusal)
    elif action in ("subscribe", "unsubscribe"):
        if not conn.authorized:
            conn.control([_error(401, "not authenticated")])
            return
        _subscribe(hub, conn, msg, action == "subscribe")
    else:
        conn.control([_error(400, "invalid syntax")])


def _subscribe(hub: StreamHub, conn: Connection, msg: dict, add: bool) -> None:
    channels = {k: v for k, v in msg.items() if k != "action"}
    bad = [k for k, v in channels.items()
           if not isinstance(v, list) or not all(isinstance(s, str) for s in v)]
    if bad:
        conn.control([_error(400, f"invalid syntax: {bad} must be lists of symbols")])
        return
    frames = []
    unserved = sorted(k for k, v in channels.items() if k not in SERVED and v)
    if unserved:  # said out loud: the fake never sends these, and does not pretend to
        frames.append(_error(400, f"invalid syntax: the fake serves {list(SERVED)}, "
                                  f"not {unserved}"))
    for channel in SERVED:
        for symbol in channels.get(channel) or []:
            if add:
                conn.subs[channel][symbol] = None
            else:
                conn.subs[channel].pop(symbol, None)
    lists = {ch: list(conn.subs[ch]) for ch in SERVED}
    frames.append({"T": "subscription", **lists, "updatedBars": [], "dailyBars": [],
                   "statuses": [], "lulds": [], "corrections": lists["trades"],
                   "cancelErrors": lists["trades"]})
    hub.update_info(conn.id, subscriptions={ch: tuple(v) for ch, v in lists.items()})
    conn.control(frames)


def _error(code: int, msg: str) -> dict:
    return {"T": "error", "code": code, "msg": msg}
