"""Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a daemon thread.

    with ServedApp(streams_app(hub)) as served:
        TradingStream(key, secret, url_override=served.ws_url("/stream"))

`streams_app` is the smallest app around a `StreamHub` (its routes, and a lifespan that
binds the hub to the server's loop and closes it on shutdown). `ServedApp.stop` closes the
listening socket, waits for uvicorn to finish (open websockets get close code 1012) and
raises if the thread outlives ``timeout``: a test never leaves a server behind.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import uvicorn
from starlette.applications import Starlette

if TYPE_CHECKING:
    from workbench.testing.alpaca.hub import StreamHub

HOST = "127.0.0.1"


def streams_app(hub: StreamHub) -> Starlette:
    """A Starlette app serving only ``hub``'s two websockets."""
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        try:
            yield
        finally:
            hub.close()
    return Starlette(routes=hub.routes(), lifespan=lifespan)


class ServedApp:
    """``app`` served on ``127.0.0.1:port`` until `stop` (or the ``with`` block ends)."""

    def __init__(self, app: Any, *, start_timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                ws="websockets-sansio", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {HOST}:{self.port}")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"uvicorn on {HOST}:{self.port} did not stop in {timeout} s")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
