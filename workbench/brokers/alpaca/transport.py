"""The HTTP transport under alpaca-py's ``TradingClient``: timeout, rate limit, no blind retry.

alpaca-py (0.44, ``alpaca/common/rest.py``) sends every request through its client's
``requests.Session`` and retries any method, order submission included, when the response
status is 429 or 504 (three times, ``time.sleep(3)`` apart). It also passes no timeout, so
a silent server blocks the caller forever. Both are fixed here at one seam, the
**transport adapter** mounted on that session (:class:`GuardedAdapter`):

* ``requests.Session.mount`` and ``HTTPAdapter.send`` are requests' documented extension
  points; alpaca-py's retry decision is made on the response ``Session.request`` returns.
  The adapter answers a 429 or 5xx itself by raising :class:`RefusedStatus` (a
  ``requests.RequestException``), so the SDK never sees a retryable response and never
  resends; the adapter keeps no copy to resend either. A 504 on ``POST /v2/orders``
  therefore reaches the broker adapter once, as an unknown outcome.
* No alpaca-py attribute is set. The constructor arguments that would configure the retry
  (``RESTClient(retry_attempts=, retry_exception_codes=)``) are not forwarded by
  ``TradingClient.__init__``, and ``retry_attempts=0`` would mean "default" there anyway;
  setting ``_retry`` after construction is what the task forbids. The one private name
  read is the client's ``_session`` (to mount the adapter), as
  :mod:`workbench.data.alpaca_history` does.
* Every request, of every method, waits for a token of the account's :class:`RateLimiter`
  before it is sent (and a 429 pauses that limiter for the server's ``Retry-After``).
* Every request gets ``(timeout, timeout)`` seconds (connect, each read) unless the caller
  gave one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter

__all__ = ["GuardedAdapter", "RateLimiter", "RefusedStatus", "limiter_for"]

#: Alpaca allows 200 requests per minute per account. With ``per_minute=180`` and a burst
#: of 10, any 60 s window holds at most 10 + 180 = 190 requests sent by this process.
DEFAULT_PER_MINUTE = 180.0
DEFAULT_BURST = 10


class RateLimiter:
    """A token bucket shared by every request of one account: ``per_minute`` tokens a
    minute, at most ``burst`` saved up. :meth:`acquire` waits for a token (never drops a
    request); the requests sent in any window of ``T`` seconds are at most
    ``burst + per_minute * T / 60``. Thread-safe; ``clock``/``sleep`` are injectable so a
    test can run minutes of traffic instantly. ``on_throttle(wait_s)`` is called for each
    request that had to wait (the broker adapter logs and reports it)."""

    def __init__(self, per_minute: float = DEFAULT_PER_MINUTE, burst: int = DEFAULT_BURST, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < per_minute < 200:
            raise ValueError(f"per_minute must be in (0, 200): Alpaca's limit is 200/min, "
                             f"got {per_minute}")
        if burst < 1 or burst + per_minute >= 200:
            raise ValueError(f"burst {burst} + per_minute {per_minute} must stay under 200")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self.on_throttle: list[Callable[[float], None]] = []
        self.sent = 0
        self.throttled = 0

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0  # a reservation: negative tokens are requests queued ahead
            wait = max(-self._tokens / self.rate, self._paused_until - now, 0.0)
            self.sent += 1
            if wait > 0:
                self.throttled += 1
        if wait > 0:
            for callback in list(self.on_throttle):
                callback(wait)
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (the server said 429, Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(api_key: str) -> RateLimiter:
    """The process-wide limiter of the account whose key is ``api_key`` (looked up by a
    hash of the key: the key itself is never held here)."""
    name = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    with _LIMITERS_LOCK:
        if name not in _LIMITERS:
            _LIMITERS[name] = RateLimiter()
        return _LIMITERS[name]


class RefusedStatus(requests.RequestException):
    """The server answered 429 or 5xx; raised by the transport so alpaca-py cannot retry.
    ``status``, ``retry_after`` (seconds, from the header, else None) and ``text`` (the
    body, for the message) are kept; the response itself is closed."""

    def __init__(self, status: int, text: str, retry_after: float | None, method: str,
                 path: str) -> None:
        super().__init__(f"HTTP {status} on {method} {path}")
        self.status, self.text, self.retry_after = status, text, retry_after
        self.method, self.path = method, path


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter: rate limit, default timeout, 429/5xx raised (see the
    module doc). Mount it on the alpaca-py client's session for ``http://`` and
    ``https://``."""

    def __init__(self, timeout_s: float, limiter: RateLimiter) -> None:
        super().__init__(max_retries=0)  # requests' own retries stay off (the default)
        self.timeout_s = timeout_s
        self.limiter = limiter

    def send(self, request, **kwargs):  # type: ignore[override]
        self.limiter.acquire()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self.timeout_s, self.timeout_s)
        response = super().send(request, **kwargs)
        status = response.status_code
        if status == 429 or status >= 500:
            text = response.text  # read whole, so the connection goes back to the pool
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if status == 429:
                self.limiter.pause(retry_after if retry_after is not None else 1.0)
            response.close()
            path = requests.utils.urlparse(request.url).path
            raise RefusedStatus(status, text, retry_after, request.method, path)
        return response
