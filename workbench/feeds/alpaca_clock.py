"""Alpaca's market clock (``GET /v2/clock``): the time a live session runs on.

    read = clock_reader(settings)       # one TradingClient, its timeout from the settings
    read()                              # -> pd.Timestamp (UTC), the server's now

Against Alpaca this is the exchange's time; against a replaying fake Alpaca it is the
replay's scaled clock (the session measures it, it is never told). The trading URL is
``alpaca.trading_url`` when set, else Alpaca's paper or live API by ``alpaca.paper`` (the
clock is the same for both).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pandas as pd

from workbench.config import Credentials, Settings, load_settings
from workbench.data.alpaca_history import _TimeoutAdapter
from workbench.errors import ConfigError, DataError
from workbench.secrets import SECRET_ENV_VARS, redact

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.client import TradingClient

__all__ = ["clock_reader"]


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

    def read() -> pd.Timestamp:
        try:
            raw = client.get_clock()
            return pd.Timestamp(raw["timestamp"]).tz_convert("UTC")
        except Exception as e:  # noqa: BLE001 - one error kind for the session
            raise DataError(redact(f"the Alpaca market clock could not be read: "
                                   f"{type(e).__name__}: {e}")) from None
    return read
