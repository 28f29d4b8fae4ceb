"""The fake's market-data "latest" routes through alpaca-py's StockHistoricalDataClient
(bars with pagination are tests/test_alpaca_fetch.py's)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from fake_alpaca_hub import RecordingHub

from workbench.data.synth import synthesize
from workbench.testing import FakeAlpaca

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import (
        StockLatestBarRequest,
        StockLatestQuoteRequest,
        StockLatestTradeRequest,
    )

KEY, SECRET = "PKFAKEMARKET01", "fake-market-secret"


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthesize(["AAPL", "MSFT"], 1, "1Min", seed=5, end="2026-11-23")


def test_latest_bar_quote_and_trade_are_the_last_bar(bars):
    last = bars.sort_values("ts").groupby("symbol").tail(1).set_index("symbol")
    with FakeAlpaca(bars, key=KEY, secret=SECRET, hub=RecordingHub(), feeds=("iex",)) as fake:
        client = StockHistoricalDataClient(KEY, SECRET, url_override=fake.url)
        got = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["AAPL", "MSFT"]))
        for symbol in ("AAPL", "MSFT"):
            assert got[symbol].timestamp == last.loc[symbol, "ts"]
            assert got[symbol].close == last.loc[symbol, "close"]
        quote = client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
        trade = client.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))
        assert quote["AAPL"].bid_price == quote["AAPL"].ask_price == last.loc["AAPL", "close"]
        assert trade["AAPL"].price == last.loc["AAPL", "close"]
        assert trade["AAPL"].timestamp == last.loc["AAPL", "ts"]
        with pytest.raises(APIError) as info:
            client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="AAPL",
                                                              feed=DataFeed.SIP))
        assert info.value.status_code == 403
        assert client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="ZZZ")) == {}
