"""The loopback fake Alpaca server: Starlette routes served by uvicorn on 127.0.0.1.

    with FakeAlpaca(bars=df, key="k", secret="s") as fake:          # static bars, wall clock
        client = TradingClient("k", "s", url_override=fake.url)
    with FakeAlpaca(replay="2026-11-23", speed=60, store=Store(), symbols=["AAPL"],
                    start="10:00", end="10:15") as fake:            # a stored day, replayed
        fake.stream_url, fake.data_stream_url("iex")                 # the two websockets
        fake.wait_until_done(30); fake.served                       # what was published

One server holds trading REST (:mod:`.trading` over the order book of :mod:`.book`),
market-data REST (:mod:`.market`) and the hub's two websockets (``hub.py``/``streams.py``).
uvicorn runs in a daemon thread on a socket bound here (127.0.0.1, a free port), so the URL is
known before it starts; ``start()`` returns once it serves. It stops on ``stop()`` (or the end
of the ``with`` block) and by itself after ``idle_timeout`` seconds without a request or a
websocket connection; stopping releases stalled requests and closes the websockets.

Every HTTP request passes, in order: recording (``fake.requests``, credentials masked), the
fault queue (:mod:`.faults`), the auth check (``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``,
else 401) and the routes. Errors are Alpaca's ``{"code": <8 digits>, "message": ...}``.

The clock (``/v2/clock``, order times) is the wall clock, one set by ``set_clock``, or during a
replay the replay's scaled clock (:mod:`.replay`). Operator methods change the broker behind
the client's back: ``set_position``, ``manual_order``; ``orders`` and ``positions`` show what
the broker holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import threading
import time
from typing import Any, Self

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from workbench.errors import ConfigError
from workbench.model import Position
from workbench.model.costs import CostModel
from workbench.testing.alpaca import activities, market, trading
from workbench.testing.alpaca.answers import ApiError, error
from workbench.testing.alpaca.book import Book
from workbench.testing.alpaca.faults import Fault, FaultQueue
from workbench.testing.alpaca.gate import Gate, RecordedRequest
from workbench.testing.alpaca.replay import FakeClock, Replay, load_day

__all__ = ["FakeAlpaca", "RecordedRequest"]

def _default_hub(key: str, secret: str):
    from workbench.testing.alpaca.hub import StreamHub

    return StreamHub(key=key, secret=secret)


class FakeAlpaca:
    """The fake server (one use: start, stop). See the module docstring.

    ``bars``: bars to serve over REST (a long DataFrame, or ``{"1Min": df, ...}``); ``key``
    and ``secret``: the only credentials accepted; ``page_size``: most bars per page;
    ``feeds``: the feeds the "subscription" covers (others get 403); ``idle_timeout``: seconds
    without a request after which the fake stops itself.

    Replay: ``replay`` (a session date) with ``speed`` (x real time), the day's 1-minute bars
    from ``bars`` or ``store`` (a :class:`~workbench.data.store.Store`) for ``symbols`` (None:
    all), cut to ``start``..``end`` (``HH:MM`` New York); ``lead``: fake minutes between the
    clock's start and the first bar's start; ``paused=True``: the replay (and its clock) waits
    for :meth:`play` (a test connects its stream clients first). REST serves the given bars,
    or the store's last ``history_days`` sessions before the day and the day itself, never a
    minute not yet closed on the replay's clock.

    ``costs`` (default: no slippage, no fees) and ``cash`` set the order book; ``paper=False``
    makes the account a live one (its number without ``PA``); ``hub`` replaces the stream
    hub (tests); ``port``: 0 for a free one.
    """

    def __init__(self, bars=None, *, key: str = "fake-key", secret: str = "fake-secret",
                 page_size: int = 10_000, feeds: tuple[str, ...] = ("iex", "sip"),
                 idle_timeout: float = 300.0, replay=None, speed: float = 1.0, store=None,
                 symbols=None, start: str | None = None, end: str | None = None,
                 lead: float = 1.0, paused: bool = False, costs: CostModel | None = None,
                 cash=100_000, hub=None, port: int = 0, history_days: int = 5,
                 paper: bool = True) -> None:
        self.key, self._secret = key, secret
        self.idle_timeout = float(idle_timeout)
        self.clock = FakeClock()
        self.hub = hub if hub is not None else _default_hub(key, secret)
        self.book = Book(now=self.clock.now, emit=self.hub.trade_update, cash=cash, costs=costs)
        self.book.paper = paper
        self.faults = FaultQueue()
        self.requests: list[RecordedRequest] = []
        self.served: list[tuple[pd.Timestamp, str]] = []
        self.stopped_reason: str | None = None
        self._replay: Replay | None = None
        self._published = -(2**63)  # a replay's REST horizon (ns); static bars have none
        self._paused = paused
        if replay is not None:
            rest_bars, day_bars, close = load_day(replay, bars, store, symbols, start, end,
                                                 history_days)
            self._replay = Replay(day_bars, clock=self.clock, speed=speed, close=close,
                                  publish=self.publish, finish=self.book.expire_day,
                                  lead=pd.Timedelta(minutes=lead))
            self.clock.set(self._replay.first - self._replay.lead)  # until the replay runs
            self._published = self._replay.first.value - 1  # ns: the last bar start shown
            horizon = lambda: self._published
            self.market = market.BarBook(rest_bars, page_size=page_size, feeds=feeds,
                                         horizon=horizon)
        elif any(v is not None for v in (store, symbols, start, end)):
            raise ConfigError("store, symbols, start and end belong to a replay: pass replay=DATE")
        else:
            self.market = market.BarBook(bars, page_size=page_size, feeds=feeds)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._last_activity = time.monotonic()
        self.port = int(port)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None

    # -- addresses -------------------------------------------------------------------------
    def _address(self) -> tuple[str, int]:
        if self._sock is None:
            raise RuntimeError("the fake is not running: use `with FakeAlpaca(...) as fake`")
        return self._sock.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self._address()
        return f"http://{host}:{port}"

    @property
    def stream_url(self) -> str:
        """The trading stream (``TradingStream(url_override=...)``)."""
        host, port = self._address()
        return f"ws://{host}:{port}/stream"

    def data_stream_url(self, feed: str = "iex") -> str:
        """The market-data stream of ``feed`` (``StockDataStream(url_override=...)``)."""
        if feed not in ("iex", "sip"):
            raise ConfigError(f"alpaca-py streams the iex or sip feed, not {feed!r}")
        host, port = self._address()
        return f"ws://{host}:{port}/v2/{feed}"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        if self._sock is not None:
            raise RuntimeError("a FakeAlpaca starts once")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit it: without it every answer waits ~40 ms (Nagle + delayed ACK)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock.bind(("127.0.0.1", self.port))
        except OSError as e:
            self._sock.close()
            raise ConfigError(f"cannot serve on 127.0.0.1:{self.port}: {e.strerror}") from None
        config = uvicorn.Config(Gate(self, self._app()), lifespan="on", log_level="warning",
                                proxy_headers=False, server_header=False, access_log=False,
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="fake-alpaca", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._stopping.set()
                raise RuntimeError("the fake Alpaca server did not start")
            time.sleep(0.005)
        self._last_activity = time.monotonic()
        threading.Thread(target=self._watchdog, name="fake-alpaca-idle", daemon=True).start()
        if self._replay is not None and not self._paused:
            self._replay.start()
        return self

    def play(self) -> None:
        """Start a replay created with ``paused=True`` (its clock starts now)."""
        if self._replay is None or self._server is None or not self._paused:
            raise RuntimeError("play() starts a paused replay of a running fake")
        self._paused = False
        self._replay.start()

    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app):
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            if self._stopping.is_set():
                self._release.set()
            self.hub.bind(self._loop)
            yield

        routes = (market.routes(self.market) + trading.routes(self.book, self.clock.now)
                  + activities.routes(self.book) + list(self.hub.routes()))
        async def not_found(request, exc):
            if exc.status_code == 405:
                return error(405, 40500000, f"method {request.method} not allowed")
            return error(exc.status_code, exc.status_code * 100000, "endpoint not found"
                         if exc.status_code == 404 else str(exc.detail))

        async def crashed(request, exc):  # a handler bug is an Alpaca-style 500
            return error(500, 50000000, f"fake handler failed: {type(exc).__name__}: {exc}")

        return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
            HTTPException: not_found, Exception: crashed})

    def stop(self, reason: str = "stopped") -> None:
        """Stop serving: end the replay, release stalled requests, close every connection."""
        with self._lock:
            if self._stopping.is_set() or self._server is None:
                return
            self._stopping.set()
            self.stopped_reason = reason
        if self._replay is not None:
            self._replay.stop()
        if self._loop is not None and self._release is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._release.set)
        with contextlib.suppress(Exception):
            self.hub.close()
        self._server.should_exit = True
        if threading.current_thread() is not self._thread:
            self._thread.join(5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(5)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _watchdog(self) -> None:
        while not self._stopping.wait(min(1.0, self.idle_timeout / 4)):
            if time.monotonic() - self._last_activity > self.idle_timeout:
                self.stop(reason="idle timeout")

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` in ``requests`` (the gate calls this for every HTTP request)."""
        with self._lock:
            self.requests.append(request)

    def touch(self) -> None:
        """Count as activity (a request or a websocket connection) for the idle timeout."""
        self._last_activity = time.monotonic()

    # -- replay ------------------------------------------------------------------------------
    def publish(self, minute, rows: list[dict]) -> None:
        """Minute ``minute``'s bars (hub dicts: ``S``, ``t``, ``o``...) are out: fill due
        orders against them, record them in ``served``, show them over REST and stream them.
        The replay calls this; a
        test without a replay may call it to drive fills by hand."""
        minute = pd.Timestamp(minute)
        minute = minute.tz_localize("UTC") if minute.tz is None else minute.tz_convert("UTC")
        rows = [{**r, "t": minute} for r in rows]
        # fills first, as at a real broker (an order meets minute m's prices during m, before
        # m's bar is out); and the book knows m is out before any client can react to it, so
        # an order sent on seeing m's bar can only fill from m + 1 on (the sim broker's rule)
        self.book.on_bars(minute, {r["S"]: r for r in rows})
        self.served.extend((minute, r["S"]) for r in rows)
        self._published = max(self._published, minute.value)  # REST shows m with the stream
        self.hub.bars(rows)

    def late_minute(self, minute, seconds: float) -> None:
        """Publish the replay's ``minute`` (REST and stream alike) ``seconds`` of the fake's
        clock after its close, not at it: market data behind the clock (before it is out)."""
        minute = pd.Timestamp(minute).tz_convert("UTC")  # tz-aware, as the replay's minutes
        if self._replay is None or not seconds >= 0 \
                or minute not in {m for m, _ in self._replay.minutes}:
            raise ConfigError(f"late_minute({minute}, {seconds!r}): a replayed minute and "
                              "seconds >= 0")
        if self._replay.published is not None and self._replay.published >= minute:
            raise RuntimeError(f"minute {minute} is already out")
        self._replay.late[minute] = float(seconds)

    def wait_until_done(self, timeout: float) -> None:
        """Block until the replay has published its last minute; TimeoutError if not in time."""
        if self._replay is None:
            raise RuntimeError("this fake replays nothing (pass replay=DATE)")
        if not self._replay.done.wait(timeout):
            raise TimeoutError(f"the replay was not done within {timeout} s "
                               f"({len(self.served)} bars served)")
        if self._replay.error is not None:
            raise RuntimeError(f"the replay failed after {len(self.served)} bars: "
                               f"{type(self._replay.error).__name__}: {self._replay.error}"
                               ) from self._replay.error

    @property
    def done(self) -> bool:
        return self._replay is not None and self._replay.done.is_set()

    # -- the broker, behind the client's back --------------------------------------------------
    def set_clock(self, ts) -> None:
        """Fix the fake's clock at ``ts`` (not during a replay)."""
        if self._replay is not None:
            raise RuntimeError("a replaying fake's clock is the replay's")
        self.clock.set(ts)

    def set_position(self, symbol: str, qty, avg_price) -> None:
        """Make the broker hold ``qty`` (signed) of ``symbol`` at ``avg_price``, no order."""
        self.book.set_position(symbol, qty, avg_price)

    def manual_order(self, symbol: str, qty, side: str = "buy", type: str = "market",
                     time_in_force: str = "day", **fields: Any) -> dict:
        """Place an order the client did not place (as from Alpaca's web page); its JSON."""
        try:
            o = self.book.submit({"symbol": symbol, "qty": qty, "side": side, "type": type,
                                  "time_in_force": time_in_force, **fields}, manual=True)
        except ApiError as e:
            raise ConfigError(f"manual order refused: {e.message}") from None
        with self.book.lock:
            return self.book.order_json(o)

    def reject_next(self, times: int = 1, reason: str = "rejected by the fake") -> None:
        """The next ``times`` client orders are accepted (answered ``new``), then rejected: a
        ``rejected`` trade update follows the answer."""
        with self.book.lock:
            self.book.rejections.extend([reason] * times)

    @property
    def orders(self) -> list[dict]:
        """Every order the broker holds (legs included), oldest first, as Alpaca JSON."""
        with self.book.lock:
            return [self.book.order_json(o, nested=False) for o in self.book.all_orders()]

    @property
    def positions(self) -> dict[str, Position]:
        """The broker's open positions."""
        return self.book.positions()

    @property
    def fills(self):
        """Every execution, oldest first (``workbench.model.Fill``)."""
        with self.book.lock:
            return list(self.book.fills)

    # -- fault injection -------------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used once, in order, by the next matching request."""
        self.faults.add(*faults)

    def fail(self, status: int, times: int = 1, message: str | None = None, path: str = "/",
             method: str | None = None, retry_after: float | None = None) -> None:
        """The next ``times`` requests matching are answered ``status`` (nothing done)."""
        body = None if message is None else {"code": status * 100000, "message": message}
        self.inject(*[Fault("status", status=status, body=body, path=path, method=method,
                            retry_after=retry_after) for _ in range(times)])

    def delay(self, seconds: float, path: str = "/", method: str | None = None,
              times: int = 1) -> None:
        """The next ``times`` matching requests are answered ``seconds`` late."""
        self.inject(*[Fault("latency", seconds=seconds, path=path, method=method)
                      for _ in range(times)])

    def stall(self, seconds: float | None = None, path: str = "/", method: str | None = None,
              after_headers: bool = False, takes_effect: bool = False, times: int = 1) -> None:
        """The next ``times`` matching requests get no answer until the fake stops (or
        ``seconds`` pass; then the connection closes). ``takes_effect``: processed first."""
        self.inject(*[Fault("no_answer", seconds=seconds, path=path, method=method,
                            after_headers=after_headers, takes_effect=takes_effect)
                      for _ in range(times)])

    def accept_then(self, status: int = 504, path: str = "/v2/orders",
                    method: str | None = "POST", times: int = 1) -> None:
        """The next ``times`` matching requests take effect, then are answered ``status``."""
        self.inject(*[Fault("accept_then", status=status, path=path, method=method)
                      for _ in range(times)])

    def drop_connection(self, path: str = "/", method: str | None = None,
                        takes_effect: bool = False, times: int = 1) -> None:
        """The next ``times`` matching requests' connections are closed with no answer."""
        self.inject(*[Fault("drop_connection", path=path, method=method,
                            takes_effect=takes_effect) for _ in range(times)])

    # -- the gate -----------------------------------------------------------------------------------
    def authorized(self, headers: dict[str, str]) -> bool:
        key = headers.get("apca-api-key-id", "")
        secret = headers.get("apca-api-secret-key", "")
        return hmac.compare_digest(key, self.key) and hmac.compare_digest(secret, self._secret)

    async def hold(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: forever) or until the fake stops; True if it stopped."""
        if self._release is None:
            return True
        try:
            await asyncio.wait_for(self._release.wait(), seconds)
        except TimeoutError:
            return False
        return True
