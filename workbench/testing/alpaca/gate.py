"""The ASGI layer in front of the fake's routes: activity, recording, REST faults, auth.

Every HTTP request is recorded (credentials masked), takes the first matching fault of the
queue (:mod:`.faults`), is checked for Alpaca's key headers (else 401), then reaches the
routes. A dropped connection is closed through uvicorn's transport, so the client sees the
socket close with nothing (or nothing more) sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from workbench.secrets import MASK
from workbench.testing.alpaca.answers import Json, error
from workbench.testing.alpaca.faults import Fault

if TYPE_CHECKING:
    from workbench.testing.alpaca.server import FakeAlpaca

__all__ = ["SECRET_HEADERS", "Gate", "RecordedRequest"]

SECRET_HEADERS = frozenset({"apca-api-key-id", "apca-api-secret-key", "authorization"})


@dataclass
class RecordedRequest:
    """What the fake saw, secrets masked; ``status`` is set once answered (None if not)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


class Gate:
    """The ASGI layer in front of the routes: activity, recording, faults, auth."""

    def __init__(self, fake: FakeAlpaca, app) -> None:
        self.fake, self.app = fake, app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            self.fake.touch()
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        fake = self.fake
        fake.touch()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(scope["method"], scope["path"],
                                 dict(parse_qsl(scope["query_string"].decode("latin-1"))),
                                 {k: (MASK if k in SECRET_HEADERS else v) for k, v in headers.items()})
        fake.record(record)

        async def recording_send(message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        fault = fake.faults.take(scope["method"], scope["path"])
        try:
            if fault is None:
                await self._serve(scope, receive, recording_send, headers)
            else:
                await self._fault(fault, scope, receive, send, recording_send, headers)
        finally:
            fake.touch()

    async def _serve(self, scope, receive, send, headers) -> None:
        if not self.fake.authorized(headers):
            await error(401, 40110000, "request is not authorized")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _captured(self, scope, receive, headers) -> list[dict]:
        """Serve the request for its effect; the messages it would have sent."""
        messages: list[dict] = []

        async def keep(message) -> None:
            messages.append(message)

        await self._serve(scope, receive, keep, headers)
        return messages

    async def _fault(self, fault: Fault, scope, receive, send, recording_send, headers) -> None:
        fake, kind = self.fake, fault.kind
        if kind == "latency":
            if await fake.hold(fault.seconds):
                return await _drop(send)
            return await self._serve(scope, receive, recording_send, headers)
        if kind == "status":
            answer = Json(fault.error_body(), status_code=fault.status, headers=fault.headers())
            return await answer(scope, receive, recording_send)
        if kind == "accept_then":
            await self._captured(scope, receive, headers)
            answer = Json(fault.error_body(), status_code=fault.status, headers=fault.headers())
            return await answer(scope, receive, recording_send)
        if kind == "drop_connection":
            if fault.takes_effect:
                await self._captured(scope, receive, headers)
            return await _drop(send)
        # no_answer
        if fault.after_headers:
            messages = await self._captured(scope, receive, headers)
            await recording_send(messages[0])
        elif fault.takes_effect:
            await self._captured(scope, receive, headers)
        await fake.hold(fault.seconds)
        await _drop(send)


async def _drop(send) -> None:
    """Close the request's connection without (another) byte; uvicorn then sends nothing."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # not uvicorn's own send: the best left is an incomplete answer
        raise ConnectionAbortedError("fake-alpaca: connection dropped")
    transport.close()
    await asyncio.sleep(0.02)  # let connection_lost mark the cycle disconnected
