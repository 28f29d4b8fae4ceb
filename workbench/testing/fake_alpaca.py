"""A loopback fake of Alpaca's REST API, spoken the way alpaca-py speaks it.

    with FakeAlpaca(bars=long_df, key="k", secret="s", page_size=500) as fake:
        client = StockHistoricalDataClient("k", "s", url_override=fake.url)
        fake.fail(429)            # the next request gets a 429, later ones are normal
        fake.stall(30)            # the next request gets no answer for 30 s
        ...
        fake.requests             # every request: method, path, query, masked headers, status

The server is a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port), run by a
daemon thread. It stops when the ``with`` block exits, and by itself after
``idle_timeout`` seconds without a request, so it cannot outlive a test. A stalled
request is released when the server stops.

Each request goes through, in order: recording, the fault queue (see
:class:`~workbench.testing.fake_http.Fault`), the auth check (``APCA-API-KEY-ID`` /
``APCA-API-SECRET-KEY``, else 401) and the :class:`~workbench.testing.fake_http.Router`
(method + path pattern -> handler). The generic HTTP parts live in
:mod:`workbench.testing.fake_http`, the market-data routes in
:mod:`workbench.testing.fake_alpaca_data`; more route modules (trading) register the same
way. Errors are answered as Alpaca does: ``{"code": <8 digits>, "message": "..."}``.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Self

from workbench.testing import fake_alpaca_data
from workbench.testing.fake_http import (
    FakeRequest,
    Fault,
    LoopbackServer,
    RecordedRequest,
    Response,
    Router,
    error,
    masked,
    parse,
    send,
    send_head,
    write,
)

__all__ = ["FakeAlpaca"]


class FakeAlpaca:
    """The fake server (one use: start, stop). See the module docstring.

    ``bars``: long bars to serve (one DataFrame, or ``{"1Min": df, ...}``); ``key`` and
    ``secret``: the only credentials accepted; ``page_size``: most bars per page (below
    alpaca-py's 10,000 to make it paginate); ``feeds``: the feeds the "subscription"
    covers (others get 403).
    """

    def __init__(self, bars=None, *, key: str = "fake-key", secret: str = "fake-secret",
                 page_size: int = 10_000, feeds: tuple[str, ...] = ("iex", "sip"),
                 idle_timeout: float = 300.0) -> None:
        self.key, self._secret = key, secret
        self.idle_timeout = idle_timeout
        self.router = Router()
        self.data = fake_alpaca_data.BarBook(bars, page_size=page_size, feeds=feeds)
        fake_alpaca_data.register(self.router, self.data)
        self.requests: list[RecordedRequest] = []
        self.stopped_reason: str | None = None
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._last_activity = time.monotonic()
        self._server: LoopbackServer | None = None

    # -- life cycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running: use `with FakeAlpaca(...) as fake`")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._server = LoopbackServer(self)
        self._last_activity = time.monotonic()
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-alpaca", daemon=True).start()
        threading.Thread(target=self._watchdog, name="fake-alpaca-idle", daemon=True).start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Stop serving, release stalled requests and close open connections."""
        with self._lock:
            if self._stopping.is_set() or self._server is None:
                return
            self._stopping.set()
            self.stopped_reason = reason
        self._server.shutdown()
        self._server.cut_connections()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _watchdog(self) -> None:
        while not self._stopping.wait(min(1.0, self.idle_timeout / 4)):
            if time.monotonic() - self._last_activity > self.idle_timeout:
                self.stop(reason="idle timeout")

    # -- fault injection --------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used once, in order, by the next matching request."""
        with self._lock:
            self._faults.extend(faults)

    def fail(self, status: int, times: int = 1, message: str | None = None, path: str = "/") -> None:
        """The next ``times`` requests under ``path`` are answered with ``status``."""
        body = None if message is None else {"code": status * 100000, "message": message}
        self.inject(*[Fault(status=status, body=body, path=path) for _ in range(times)])

    def stall(self, seconds: float, path: str = "/", after_headers: bool = False) -> None:
        """The next request under ``path`` waits ``seconds`` before being served."""
        self.inject(Fault(delay=seconds, path=path, after_headers=after_headers))

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    self._faults.remove(fault)
                    return fault
        return None

    # -- serving ----------------------------------------------------------------------------
    def serve(self, http: BaseHTTPRequestHandler) -> None:
        """Answer one request (called by the server's handler threads)."""
        self._last_activity = time.monotonic()
        request = parse(http)
        record = RecordedRequest(request.method, request.path, dict(request.query),
                                 masked(request.headers))
        with self._lock:
            self.requests.append(record)
        fault = self._next_fault(request.path)
        if fault is not None and fault.after_headers:
            return self._stall_body(http, request, record, fault)
        if fault is not None and self._stopping.wait(fault.delay):
            return  # stopped while stalled: no answer
        response = fault.response() if fault is not None and fault.status else self._answer(request)
        record.status = response.status
        send(http, response)
        self._last_activity = time.monotonic()

    def _answer(self, request: FakeRequest) -> Response:
        if not self._authorized(request.headers):
            return error(401, 40110000, "request is not authorized")
        try:
            return self.router.route(request)
        except Exception as e:  # noqa: BLE001 - a handler bug is a 500, not a dead thread
            return error(500, 50000000, f"fake handler failed: {type(e).__name__}: {e}")

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = headers.get("apca-api-key-id", "")
        secret = headers.get("apca-api-secret-key", "")
        return hmac.compare_digest(key, self.key) and hmac.compare_digest(secret, self._secret)

    def _stall_body(self, http: BaseHTTPRequestHandler, request: FakeRequest,
                    record: RecordedRequest, fault: Fault) -> None:
        response = self._answer(request)
        record.status = response.status
        body = response.encode()
        send_head(http, response, len(body))
        if not self._stopping.wait(fault.delay):
            write(http, body)
