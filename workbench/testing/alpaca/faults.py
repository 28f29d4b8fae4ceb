"""REST fault injection for the fake Alpaca server: canned misbehaviours per endpoint.

    fake.fail(503, path="/v2/orders", method="POST")          # the next POST under /v2/orders
    fake.fail(429, times=3, retry_after=2)                    # three 429s with Retry-After: 2
    fake.inject(Fault("accept_then", status=504, method="POST", path="/v2/orders"))
    fake.stall(path="/v2/orders")                             # no answer until stop

A fault matches a request by method (None: any) and path prefix; it is used by the first
matching request, once (``times`` copies queue up, used in order). Kinds:

* ``latency``: wait ``seconds``, then answer normally (the request takes effect).
* ``status``: answer ``status`` (an Alpaca error body unless ``body`` is given, ``bytes``
  sent as they are; a 429 carries
  ``Retry-After``); the request does NOT take effect.
* ``accept_then``: the request takes effect (the order IS placed), then ``status`` is
  answered instead of the real answer (504 by default).
* ``no_answer``: hold the request until the server stops or ``seconds`` pass, then close the
  connection without an answer; ``takes_effect=True`` processes it first (the order exists
  though the client never hears of it). ``after_headers=True`` sends the real status line
  and headers, then holds the body.
* ``drop_connection``: close the connection at once, nothing sent (``takes_effect`` as above).

Waits are cut short when the server stops, so a stalled request never outlives the fake.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError

__all__ = ["KINDS", "Fault", "FaultQueue"]

KINDS = ("latency", "status", "accept_then", "no_answer", "drop_connection")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for the next request matching ``method`` + ``path`` (a prefix).

    ``Fault(status=500)`` (no kind) means ``kind="status"``; ``Fault(delay=5)`` (no kind, no
    status) means ``latency``. See the module docstring for the kinds.
    """

    kind: str | None = None
    status: int | None = None
    seconds: float | None = None
    method: str | None = None
    path: str = "/"
    body: Any = None
    retry_after: float | None = None
    takes_effect: bool = False
    after_headers: bool = False
    delay: float | None = None  # the old name of ``seconds`` (latency)

    def __post_init__(self) -> None:
        kind = self.kind
        if kind is None:
            kind = "status" if self.status is not None else (
                "no_answer" if self.after_headers else "latency")
            object.__setattr__(self, "kind", kind)
        if kind not in KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if self.seconds is None and self.delay is not None:
            object.__setattr__(self, "seconds", float(self.delay))
        if kind == "accept_then" and self.status is None:
            object.__setattr__(self, "status", 504)
        if kind == "status" and self.status is None:
            raise ConfigError("a status fault needs a status")
        if kind == "latency" and self.seconds is None:
            raise ConfigError("a latency fault needs seconds")
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())
        if not self.path.startswith("/"):
            raise ConfigError(f"a fault's path is a prefix starting with '/', got {self.path!r}")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path)

    def error_body(self) -> Any:
        """The body answered by a ``status`` or ``accept_then`` fault."""
        if self.body is not None:
            return self.body
        return {"code": int(self.status) * 100000,
                "message": f"injected fault: HTTP {self.status}"}

    def headers(self) -> dict[str, str]:
        if self.status == 429:
            return {"Retry-After": f"{self.retry_after if self.retry_after is not None else 1:g}"}
        return {}


class FaultQueue:
    """Pending faults in the order they were queued; thread-safe."""

    def __init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching the request, removed; None if none."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
