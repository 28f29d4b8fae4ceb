"""Alpaca's market-data websocket as the live feed's stream source.

alpaca-py's ``StockDataStream`` runs on its own daemon thread with its own event loop
(``run()`` calls ``asyncio.run`` there), so it works inside a Jupyter kernel whose loop is
already running. Bars (``"b"``) and updated bars (``"u"``, Alpaca's re-sent bars after late
trades: the feed reports them as corrections) become :class:`~workbench.feeds.minutes.MinuteBar`
and are handed to ``deliver`` from that thread.

Mute detection is the feed's (``FeedOptions.stale_s``), not alpaca-py's ``data_timeout``;
a restart closes the websocket and starts a fresh client, the feed spacing restarts with
backoff and jitter. alpaca-py still reconnects by itself after a websocket error (its own
backoff and jitter). No alpaca-py type leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence

import pandas as pd

with warnings.catch_warnings():  # alpaca.data imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.data.enums import DataFeed
    from alpaca.data.live.stock import StockDataStream

from workbench.config import Credentials, Settings, load_settings
from workbench.data.alpaca_history import DEFAULT_DATA_URL
from workbench.errors import ConfigError
from workbench.feeds.options import MinuteBar
from workbench.secrets import SECRET_ENV_VARS

__all__ = ["AlpacaBarStream", "stream_url"]

log = logging.getLogger(__name__)
_STOP_WAIT_S = 5.0


def stream_url(settings: Settings) -> str | None:
    """The market-data websocket URL: None (alpaca-py's default host) unless
    ``alpaca.data_url`` points elsewhere than Alpaca, in which case the stream is on that server too
    (``http://host:port`` -> ``ws://host:port/v2/<feed>``, as the fake serves it)."""
    url = settings.alpaca.data_url
    if not url or url.rstrip("/") == DEFAULT_DATA_URL:  # Alpaca's own: its stream host differs
        return None
    base = url.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            base = ws + base[len(http):]
    return f"{base}/v2/{settings.alpaca.feed}"


class AlpacaBarStream:
    """Minute bars of ``symbols`` from ``StockDataStream``; see the module docstring."""

    def __init__(self, symbols: Sequence[str], *, settings: Settings | None = None,
                 credentials: Credentials | None = None, url: str | None = None,
                 updated_bars: bool = True) -> None:
        self.settings = settings or load_settings()
        creds = credentials or self.settings.credentials
        if not creds.present:
            raise ConfigError(f"Alpaca credentials missing: set {' and '.join(SECRET_ENV_VARS)} "
                              "in the environment")
        self._key = creds.api_key.get_secret_value()
        self._secret = creds.secret_key.get_secret_value()
        self.symbols = tuple(symbols)
        self.url = url if url is not None else stream_url(self.settings)
        self.updated_bars = updated_bars
        self._deliver: Callable[[list[MinuteBar]], None] | None = None
        self._lock = threading.Lock()
        self._client: StockDataStream | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0
        self.malformed = 0

    # -- StreamSource -------------------------------------------------------------------------
    def start(self, deliver: Callable[[list[MinuteBar]], None]) -> None:
        self._deliver = deliver
        with self._lock:
            self._launch()

    def restart(self) -> None:
        """Close the current connection, then open a new one (the feed paces the calls;
        closing first: Alpaca allows one market-data connection per account)."""
        with self._lock:
            _shutdown(self._client, self._thread)
            self._launch()

    def stop(self) -> None:
        with self._lock:
            old, thread = self._client, self._thread
            self._client = self._thread = None
        _shutdown(old, thread)

    # -- inside -------------------------------------------------------------------------------
    def _launch(self) -> None:
        client = StockDataStream(self._key, self._secret, raw_data=True,
                                 feed=DataFeed(self.settings.alpaca.feed), url_override=self.url)
        client.subscribe_bars(self._on_bar, *self.symbols)
        if self.updated_bars:
            client.subscribe_updated_bars(self._on_bar, *self.symbols)
        self.starts += 1
        thread = threading.Thread(target=_run, args=(client,), daemon=True,
                                  name=f"alpaca-bars-{self.starts}")
        self._client, self._thread = client, thread
        thread.start()

    async def _on_bar(self, msg: dict) -> None:
        bar = to_minute_bar(msg)
        if bar is None:
            self.malformed += 1
            log.warning("alpaca bar stream: a malformed bar message was skipped")
            return
        if self._deliver is not None:
            self._deliver([bar])


def to_minute_bar(msg: dict) -> MinuteBar | None:
    """A raw ``{"T": "b"|"u", "S", "t": msgpack Timestamp, "o", "h", "l", "c", "v"}`` as a
    MinuteBar (values kept as sent, NaN where missing: the feed's validator judges them);
    None when it has no symbol or no readable time."""
    t = msg.get("t")
    try:
        if hasattr(t, "to_unix_nano"):
            ts = pd.Timestamp(t.to_unix_nano(), unit="ns", tz="UTC")
        else:
            ts = pd.Timestamp(t)
            ts = ts if ts.tz is None else ts.tz_convert("UTC")  # naive stays naive: rejected
    except (TypeError, ValueError):
        return None
    symbol = msg.get("S")
    if not isinstance(symbol, str) or ts is pd.NaT:
        return None
    return MinuteBar(symbol, ts, *(_number(msg.get(k)) for k in ("o", "h", "l", "c", "v")))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _run(client: StockDataStream) -> None:
    try:
        client.run()
    except Exception:  # the thread must not die silently; the feed sees the silence as stale
        log.exception("alpaca bar stream thread ended")


def _shutdown(client: StockDataStream | None, thread: threading.Thread | None) -> None:
    """Stop a client from another thread: ask its loop to stop and close the socket now
    (alpaca-py alone notices a stop only at its next 5 s receive timeout)."""
    if client is None:
        return
    deadline = time.monotonic() + _STOP_WAIT_S
    loop = None
    while thread is not None and thread.is_alive() and time.monotonic() < deadline:
        loop = getattr(client, "_loop", None)  # set once run() started its loop
        if loop is not None and loop.is_running():
            break
        time.sleep(0.01)
    # stop first (no reconnect after the close), then close the socket; each coroutine is
    # made only when the loop still runs to take it
    for make in (client.stop_ws, client.close):
        if loop is None or not loop.is_running():
            break
        coro = make()
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed meanwhile
            coro.close()
            break
        with contextlib.suppress(Exception):
            future.result(timeout=_STOP_WAIT_S)
    if thread is not None:
        thread.join(_STOP_WAIT_S)
