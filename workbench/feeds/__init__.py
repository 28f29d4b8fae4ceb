"""Live market data for sessions: minute bars as the engine's rows.

:mod:`workbench.feeds.minutes` holds the logic (assembly, completion, late and corrected
bars, gaps, the stream/polling switch) and :mod:`workbench.feeds.checks` the bar rules,
with no network; :mod:`workbench.feeds.live` is the engine's ``Feed`` around them;
:mod:`workbench.feeds.alpaca_stream` and :mod:`workbench.feeds.alpaca_poll` are the Alpaca
sources (alpaca-py's ``StockDataStream`` and ``StockHistoricalDataClient``), put together
by :func:`workbench.feeds.alpaca.alpaca_feed` (import it from there: it loads alpaca-py).
"""

from workbench.feeds.live import LiveFeed
from workbench.feeds.minutes import MinuteBook
from workbench.feeds.options import FeedOptions, MinuteBar, backoff_delay

__all__ = ["FeedOptions", "LiveFeed", "MinuteBar", "MinuteBook", "backoff_delay"]
