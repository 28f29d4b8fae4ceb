"""Alpaca's market clock (``GET /v2/clock``): the time a live session runs on.

    read = clock_reader(settings)       # one TradingClient, its timeout from the settings
    read()                              # -> pd.Timestamp (UTC), the server's now

Against Alpaca this is the exchange's time; against a replaying fake Alpaca it is the
replay's scaled clock (the session measures it, it is never told). The trading URL is
``alpaca.trading_url`` when set, else Alpaca's paper or live API by ``alpaca.paper`` (the
clock is the same for both).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import pandas as pd
import requests

from workbench.config import Credentials, Settings, load_settings
from workbench.data.alpaca_history import _TimeoutAdapter
from workbench.errors import ConfigError, DataError
from workbench.secrets import SECRET_ENV_VARS, redact

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.client import TradingClient

__all__ = ["START_WAIT_S", "clock_reader"]

# the first read retries a refused connection this long (a server just started in the
# background, as the README's fake Alpaca is, may not listen yet); later reads never wait
START_WAIT_S = 10.0


def clock_reader(settings: Settings | None = None,
                 credentials: Credentials | None = None) -> Callable[[], pd.Timestamp]:
    """A function returning the market clock's now (UTC); its failure is a ``DataError``
    (message redacted)."""
    settings = settings or load_settings()
    credentials = credentials or settings.credentials
    if not credentials.present:
        raise ConfigError("Alpaca credentials missing: set "
                          f"{' and '.join(SECRET_ENV_VARS)} in the environment")
    client = TradingClient(credentials.api_key.get_secret_value(),
                           credentials.secret_key.get_secret_value(),
                           paper=settings.alpaca.paper, raw_data=True,
                           url_override=settings.alpaca.trading_url)
    adapter = _TimeoutAdapter(settings.alpaca.request_timeout_s)  # alpaca-py sets none
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)

    first = True

    def read() -> pd.Timestamp:
        nonlocal first
        deadline = time.monotonic() + (START_WAIT_S if first else 0.0)
        retried = False
        while True:
            try:
                raw = client.get_clock()
                first = False
                return pd.Timestamp(raw["timestamp"]).tz_convert("UTC")
            except requests.ConnectionError as e:
                if time.monotonic() < deadline:
                    retried = True
                    time.sleep(0.2)
                    continue
                error = e
            except Exception as e:  # noqa: BLE001 - one error kind for the session
                error = e
            waited = f" (retried for {START_WAIT_S:g} s)" if retried else ""
            raise DataError(redact(f"the Alpaca market clock could not be read{waited}: "
                                   f"{type(error).__name__}: {error}")) from None
    return read
