"""Historical stock bars from Alpaca's market-data API, returned as long bars.

    bars = fetch_bars(["AAPL", "MSFT"], "2026-01-02", "2026-03-31", "1Min")

Uses alpaca-py's ``StockHistoricalDataClient`` and ``StockBarsRequest``; no alpaca-py type
leaves this module. The feed is ``settings.alpaca.feed`` (``iex`` free, ``sip`` with a
subscription), the server ``settings.alpaca.data_url`` when set (``url_override``).
Adjustment: ``raw`` by default (prices as traded, what the live feed streams; a later
split does not rewrite stored history, so a refetch is no "conflict"), or ``split``,
``dividend``, ``all`` (adjusted as of the request: the whole series changes after each
corporate action). The store records which one a symbol's bars hold and refuses to mix
them (:func:`workbench.data.sources.fetch_into_store`).

Bounds: a bare date is a New York calendar day (``start`` at its first instant, ``end``
inclusive to its last); a time without a zone is UTC; ``end=None`` means now.

Requests. alpaca-py follows ``next_page_token`` itself when no ``limit`` is given (pages
of 10,000 bars, ``common/rest.py: _get_marketdata``), but only returns when every page is
in, holding them all as Python dicts meanwhile and reporting no progress. So the range
is cut into time windows (31 days of minute bars, a year of hourly, ten of daily) and the
symbols into groups of 100 (the names travel in the URL); one call per (group, window)
keeps that memory bounded and gives progress steps, for a few extra requests at most.

Time limit: alpaca-py passes no timeout to ``requests`` (a silent server blocks forever),
so a transport adapter with a default timeout is mounted on the client's session (see
:class:`_TimeoutAdapter`). alpaca-py retries HTTP 429 and 504 three times, ``_RETRY_WAIT_S``
apart (safe: reads only). Errors become one-line workbench errors, passed through ``redact``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Self

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

with warnings.catch_warnings():  # alpaca.data imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import Adjustment, DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from workbench.config import Credentials, Settings, load_settings
from workbench.data.bars import FIELDS
from workbench.data.store import symbol_list
from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError, DataError, WorkbenchError
from workbench.secrets import SECRET_ENV_VARS, redact
from workbench.times import ny_midnight, to_utc

__all__ = ["ADJUSTMENTS", "COLUMNS", "HistoryClient", "fetch_bars"]

COLUMNS = ("symbol", "ts", *FIELDS)
ADJUSTMENTS = ("raw", "split", "dividend", "all")
DEFAULT_DATA_URL = "https://data.alpaca.markets"
_RETRY_WAIT_S = 3  # alpaca-py's own default; tests lower it
_SYMBOLS_PER_REQUEST = 100
_WINDOW = {"Min": pd.Timedelta(days=31), "Hour": pd.Timedelta(days=366),
           "Day": pd.Timedelta(days=3660)}
_UNITS = {"Min": TimeFrameUnit.Minute, "Hour": TimeFrameUnit.Hour, "Day": TimeFrameUnit.Day}
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")  # e.g. "[Errno 111] Connection refused"
_KEYS = {"t": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}

Progress = bool | Callable[[int, int], None]


class _TimeoutAdapter(HTTPAdapter):
    """A requests transport adapter that applies a default timeout to every request.

    ``requests.Session.request`` hands its ``timeout`` (None when, as in alpaca-py, the
    caller gives none) to the mounted adapter's ``send``; filling it in there covers
    every call alpaca-py makes (pages and retries alike) through requests' public
    adapter API, without replacing or wrapping any alpaca-py method. The only private
    thing touched is the client's ``_session`` attribute, to mount it. The limit applies
    to connecting and to each wait for data, not to a whole response.
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self.timeout_s, self.timeout_s)
        return super().send(request, **kwargs)


def fetch_bars(symbols: str | Iterable[str], start, end, timeframe: str | Timeframe = "1Min", *,
               settings: Settings | None = None, credentials: Credentials | None = None,
               progress: Progress = False, adjustment: str = "raw") -> pd.DataFrame:
    """Long bars (``symbol, ts, open, high, low, close, volume``; ``ts`` the UTC open time,
    ns) for ``symbols`` from ``start`` to ``end`` inclusive, sorted by symbol then ts.

    Bars are returned as Alpaca sent them, not validated (``Store.write`` does that).
    ``adjustment``: one of :data:`ADJUSTMENTS` (default ``raw``, see the module docstring).
    ``progress``: ``True`` shows a tqdm bar over requests, a callable gets ``(done, total)``.
    Raises ``ConfigError`` (no or refused credentials, bad arguments) or ``DataError``
    (timeout, rate limit, server failure, malformed answer).
    """
    with HistoryClient(settings, credentials) as client:
        return client.fetch(symbols, start, end, timeframe, adjustment=adjustment,
                            progress=progress)


class HistoryClient:
    """One ``StockHistoricalDataClient`` (with the timeout adapter) for many fetches: the
    live feed's poller keeps one for the session. Close it (or use ``with``)."""

    def __init__(self, settings: Settings | None = None,
                 credentials: Credentials | None = None) -> None:
        self.settings = settings or load_settings()
        self._client = _client(self.settings, credentials or self.settings.credentials)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client._session.close()

    def fetch(self, symbols: str | Iterable[str], start, end,
              timeframe: str | Timeframe = "1Min", *, adjustment: str = "raw",
              progress: Progress = False) -> pd.DataFrame:
        """As :func:`fetch_bars`."""
        tf = Timeframe.parse(timeframe)
        names = symbol_list(symbols)
        adjust = _adjustment(adjustment)
        lo, hi = _bound(start, "start"), _bound(end, "end", inclusive=True)
        if lo > hi:
            raise ConfigError(f"start {start} is after end {end}")
        frame = _alpaca_timeframe(tf)
        jobs = [(group, a, b) for group in _groups(names) for a, b in _windows(lo, hi, tf)]
        parts = []
        with _steps(len(jobs), progress) as step:
            for group, a, b in jobs:
                request = _request(group, a, b, frame, adjust, self.settings)
                parts.append(_to_long(_call(self._client, request, self.settings)))
                step()
        return _concat(parts)


def _adjustment(value: str) -> Adjustment:
    if value not in ADJUSTMENTS:
        raise ConfigError(f"adjustment {value!r}: choose one of {', '.join(ADJUSTMENTS)}")
    return Adjustment(value)


def _bound(value, what: str, inclusive: bool = False) -> pd.Timestamp:
    """A UTC bound at microsecond precision (what a request can carry)."""
    if value is None:
        if what == "start":
            raise ConfigError("start is required")
        return pd.Timestamp.now(tz="UTC").floor("us")
    is_date = (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and len(value.strip()) <= 10)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: cannot read {value!r} as a date or time") from None
    if is_date:
        day = ts + (pd.Timedelta(days=1) if inclusive else pd.Timedelta(0))
        ts = ny_midnight(day) - (pd.Timedelta(1, "us") if inclusive else pd.Timedelta(0))
    return to_utc(ts).floor("us")


def _groups(names: list[str]) -> list[list[str]]:
    return [names[i:i + _SYMBOLS_PER_REQUEST] for i in range(0, len(names), _SYMBOLS_PER_REQUEST)]


def _windows(lo: pd.Timestamp, hi: pd.Timestamp, tf: Timeframe) -> Iterator[tuple]:
    """Consecutive, non-overlapping inclusive windows covering ``lo .. hi``."""
    step = _WINDOW[tf.unit]
    while True:
        nxt = lo + step
        if nxt > hi:
            yield lo, hi
            return
        yield lo, nxt - pd.Timedelta(1, "us")
        lo = nxt


@contextmanager
def _steps(total: int, progress: Progress) -> Iterator[Callable[[], None]]:
    """A callable to call after each request: advances a tqdm bar (closed even on error,
    so an error line never lands inside it) or calls ``progress(done, total)``."""
    if progress is True:
        from workbench.progress import progress_bar

        with progress_bar(total=total, desc="alpaca", unit="request") as bar:
            yield lambda: bar.update(1)
        return
    done = iter(range(1, total + 1))
    yield (lambda: progress(next(done), total)) if callable(progress) else (lambda: None)


def _client(settings: Settings, credentials: Credentials) -> StockHistoricalDataClient:
    if not credentials.present:
        raise ConfigError(
            f"Alpaca credentials missing: set {' and '.join(SECRET_ENV_VARS)} in the environment")
    url = settings.alpaca.data_url.rstrip("/") if settings.alpaca.data_url else None
    client = StockHistoricalDataClient(
        api_key=credentials.api_key.get_secret_value(),
        secret_key=credentials.secret_key.get_secret_value(),
        raw_data=True,  # plain dicts: parsed column-wise below, not one model per bar
        url_override=url,
    )
    adapter = _TimeoutAdapter(settings.alpaca.request_timeout_s)
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)
    client._retry_wait = _RETRY_WAIT_S
    return client


def _alpaca_timeframe(tf: Timeframe) -> TimeFrame:
    """Our ``Timeframe`` as alpaca-py's ``TimeFrame(amount, unit)`` (1-59 Min, 1-23 Hour, 1 Day)."""
    try:
        return TimeFrame(tf.amount, _UNITS[tf.unit])
    except ValueError as e:
        raise ConfigError(f"timeframe {tf} is not one Alpaca serves: {e}") from None


def _request(group: list[str], lo: pd.Timestamp, hi: pd.Timestamp, frame: TimeFrame,
             adjustment: Adjustment, settings: Settings) -> StockBarsRequest:
    return StockBarsRequest(
        symbol_or_symbols=group, timeframe=frame, start=lo.to_pydatetime(),
        end=hi.to_pydatetime(), feed=DataFeed(settings.alpaca.feed), adjustment=adjustment,
    )


def _call(client: StockHistoricalDataClient, request: StockBarsRequest, settings: Settings) -> dict:
    """One (paginated) alpaca-py call, with every failure translated.

    Raised ``from None`` on purpose: the alpaca-py frames of the original traceback hold
    the auth headers as local variables, which a verbose traceback (IPython
    ``%xmode Verbose``, an output notebook) would print.
    """
    url = settings.alpaca.data_url or DEFAULT_DATA_URL
    try:
        return client.get_stock_bars(request)
    except APIError as e:
        error = _api_error(e, settings)
    except requests.JSONDecodeError as e:  # also a RequestException: it reached us, garbled
        error = DataError(redact(f"malformed answer from the Alpaca data API at {url}: "
                                 f"not JSON ({_one_line(str(e))})"))
    except requests.RequestException as e:
        # a stall while reading the body surfaces as a ConnectionError saying "timed out"
        if isinstance(e, requests.Timeout) or "timed out" in str(e):
            error = _timeout(settings, url)
        else:
            reason = _ERRNO.search(str(e))
            error = DataError(redact(f"cannot reach the Alpaca data API at {url}: "
                                     f"{reason.group(1) if reason else type(e).__name__}"))
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        error = DataError(redact(f"malformed answer from the Alpaca data API at {url}: "
                                 f"{type(e).__name__}: {_one_line(str(e))}"))
    raise error from None


def _timeout(settings: Settings, url: str) -> DataError:
    limit = settings.alpaca.request_timeout_s
    return DataError(redact(
        f"the Alpaca data API at {url} did not answer within the {limit:g} s request timeout "
        f"(setting alpaca.request_timeout_s); try again later"))


def _api_error(e: APIError, settings: Settings) -> WorkbenchError:
    status = e.status_code
    detail = f"HTTP {status}: {_message(e)}"
    if status in (401, 403):
        return ConfigError(redact(
            f"Alpaca credentials refused ({detail}); check {' and '.join(SECRET_ENV_VARS)} "
            f"and that your subscription covers feed {settings.alpaca.feed!r}"))
    if status in (429, 504):
        what = "rate limit reached" if status == 429 else "gateway timeout"
        return DataError(redact(
            f"Alpaca {what} ({detail}), still so after alpaca-py's retries; this is "
            f"temporary: wait a minute and run again"))
    if status in (400, 404, 422):
        return ConfigError(redact(f"Alpaca refused the request ({detail}); check the symbols, "
                                  f"dates, timeframe and alpaca.data_url"))
    return DataError(redact(f"the Alpaca data API failed ({detail}); try again later"))


def _message(e: APIError) -> str:
    text = str(e)
    try:
        text = str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        pass
    return _one_line(text) or "no message"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _to_long(raw: dict) -> pd.DataFrame:
    """alpaca-py's raw ``{symbol: [{"t", "o", ...}, ...]}`` as long bars.

    A value that is missing or not a number becomes NaN, for the validator to quarantine;
    a bar without a readable time cannot be stored at all and fails the fetch.
    """
    try:
        frames = [pd.DataFrame.from_records(rows, columns=list(_KEYS)).assign(symbol=sym)
                  for sym, rows in raw.items() if rows]
    except (TypeError, ValueError, AttributeError) as e:
        raise DataError(f"malformed bars from the Alpaca data API: {type(e).__name__}") from None
    if not frames:
        return _empty()
    df = pd.concat(frames, ignore_index=True).rename(columns=_KEYS)
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601", errors="coerce")
    if df["ts"].isna().any():
        raise DataError(f"malformed bars from the Alpaca data API: "
                        f"{int(df['ts'].isna().sum())} without a valid time 't'")
    for col in COLUMNS[2:]:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": pd.Series(dtype="str"), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
        **{c: pd.Series(dtype="float64") for c in COLUMNS[2:]}})


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    df = pd.concat(parts, ignore_index=True) if parts else _empty()
    df = df[list(COLUMNS)].astype({"symbol": "str", "ts": "datetime64[ns, UTC]",
                                   **{c: "float64" for c in COLUMNS[2:]}})
    return df.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)
