"""Live market data for sessions: minute bars as the engine's rows.

:mod:`workbench.feeds.minutes` holds the logic (assembly, completion, late and corrected
bars, validation, gaps, the stream/polling switch) with no network;
:mod:`workbench.feeds.alpaca_stream` and :mod:`workbench.feeds.alpaca_poll` are the
Alpaca sources (alpaca-py's ``StockDataStream`` and ``StockHistoricalDataClient``);
:func:`workbench.feeds.alpaca.alpaca_feed` puts them together.
"""

from workbench.feeds.minutes import FeedOptions, LiveFeed, MinuteBar, MinuteBook

__all__ = ["FeedOptions", "LiveFeed", "MinuteBar", "MinuteBook"]
