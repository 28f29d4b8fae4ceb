"""HTTP plumbing for the loopback fake servers: request and answer types, faults, a router.

Generic: nothing here knows Alpaca's routes. :mod:`workbench.testing.fake_alpaca` builds the
fake server on it; route modules (:mod:`workbench.testing.fake_alpaca_data`, later the
trading routes) register handlers on a :class:`Router`. A server owner implements
``serve(http_handler)``; the helpers here parse requests and send answers.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from workbench.secrets import MASK

__all__ = ["SECRET_HEADERS", "FakeRequest", "Fault", "LoopbackServer", "RecordedRequest",
           "Response", "Router", "error", "masked", "parse", "send", "send_head", "write"]

SECRET_HEADERS = frozenset({"apca-api-key-id", "apca-api-secret-key", "authorization"})


@dataclass(frozen=True)
class FakeRequest:
    """One parsed request, as a handler sees it (headers unmasked, names lower-case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from the path pattern

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class RecordedRequest:
    """What the fake saw, secrets masked; ``status`` is set once answered (None if not)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


@dataclass
class Response:
    """A handler's answer: a dict or list is sent as JSON, str or bytes as they are."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def error(status: int, code: int, message: str) -> Response:
    """An Alpaca-style error answer."""
    return Response(status, {"code": code, "message": message})


@dataclass(frozen=True)
class Fault:
    """A canned misbehaviour, used by the next request whose path starts with ``path``.

    ``delay`` seconds pass first (a stall; cut short when the server stops). Then, with
    ``status`` set, that status and ``body`` (default: an Alpaca error) are answered; with
    ``status=None`` the request is served normally. ``after_headers=True`` sends the
    normal status line and headers first and stalls before the body.
    """

    status: int | None = None
    delay: float = 0.0
    body: Any = None
    path: str = "/"
    after_headers: bool = False

    def response(self) -> Response:
        body = self.body if self.body is not None else {
            "code": self.status * 100000, "message": f"injected fault: HTTP {self.status}"}
        return Response(self.status or 500, body)


Handler = Callable[[FakeRequest], "Response | tuple[int, Any]"]


class Router:
    """Method + path pattern -> handler. Patterns name segments: ``/v2/orders/{order_id}``.

    A handler gets a :class:`FakeRequest` (``params`` filled from the pattern) and returns
    a :class:`Response` or a plain ``(status, body)`` tuple.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern))
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def route(self, request: FakeRequest) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            m = regex.match(request.path)
            if m and method == request.method:
                answer = handler(FakeRequest(**{**request.__dict__, "params": m.groupdict()}))
                return answer if isinstance(answer, Response) else Response(*answer)
            allowed = allowed or bool(m)
        if allowed:
            return error(405, 40500000, f"method {request.method} not allowed")
        return error(404, 40410000, "endpoint not found")


class _Owner(Protocol):
    def serve(self, http: BaseHTTPRequestHandler) -> None: ...


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 (free port) handing every request to
    ``owner.serve``; it remembers open connections so stopping can cut keep-alive ones."""

    daemon_threads = True

    def __init__(self, owner: _Owner) -> None:
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def get_request(self):
        sock, addr = super().get_request()
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    timeout = 30  # an idle keep-alive connection ends after this

    def _serve(self) -> None:
        self.server.owner.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def parse(http: BaseHTTPRequestHandler) -> FakeRequest:
    """The request ``http`` is handling, body read."""
    parts = urlsplit(http.path)
    length = int(http.headers.get("Content-Length") or 0)
    body = http.rfile.read(length) if length else b""
    headers = {k.lower(): v for k, v in http.headers.items()}
    return FakeRequest(http.command, parts.path, dict(parse_qsl(parts.query)), headers, body)


def masked(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with every credential value replaced by the mask."""
    return {k: (MASK if k in SECRET_HEADERS else v) for k, v in headers.items()}


def send_head(http: BaseHTTPRequestHandler, response: Response, length: int) -> None:
    """The status line and headers of ``response``, announcing ``length`` body bytes."""
    try:
        http.send_response(response.status)
        if response.body is not None and not isinstance(response.body, (str, bytes)):
            http.send_header("Content-Type", "application/json")
        for name, value in {**response.headers, "Content-Length": str(length)}.items():
            http.send_header(name, value)
        http.end_headers()
    except OSError:  # the client gave up (e.g. timed out)
        http.close_connection = True
    write(http, b"")


def send(http: BaseHTTPRequestHandler, response: Response) -> None:
    """The whole of ``response``."""
    body = response.encode()
    send_head(http, response, len(body))
    write(http, body)


def write(http: BaseHTTPRequestHandler, data: bytes) -> None:
    """Body bytes; a client that has gone away is not an error, the connection just ends."""
    if http.close_connection and not data:
        return
    try:
        http.wfile.write(data)
        http.wfile.flush()
    except OSError:
        http.close_connection = True
