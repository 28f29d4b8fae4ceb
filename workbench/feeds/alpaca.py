"""The live feed on Alpaca: the stream, the poller and the logic put together.

    feed = alpaca_feed(["AAPL", "MSFT"], "2026-12-02", on_event=journal_it)
    for row in feed: ...            # one BarRow per minute until the session's close
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from workbench.clock import Clock, LiveClock
from workbench.config import Credentials, Settings, load_settings
from workbench.feeds.alpaca_poll import AlpacaBarPoller
from workbench.feeds.alpaca_stream import AlpacaBarStream
from workbench.feeds.live import LiveFeed
from workbench.feeds.minutes import EventSink
from workbench.feeds.options import FeedOptions

__all__ = ["alpaca_feed"]


def alpaca_feed(symbols: Sequence[str], session, *, settings: Settings | None = None,
                credentials: Credentials | None = None, clock: Clock | None = None,
                options: FeedOptions | None = None, on_event: EventSink | None = None,
                speed: float = 1.0, stream_url: str | None = None,
                rng: random.Random | None = None, updated_bars: bool = True,
                timeframe="1Min") -> LiveFeed:
    """A :class:`~workbench.feeds.minutes.LiveFeed` of ``session``'s minutes from Alpaca
    (``alpaca.data_url`` and ``alpaca.feed`` from the settings; ``stream_url`` overrides
    the websocket). ``clock`` and ``speed``: a scaled clock against a replaying fake.
    ``updated_bars``: also subscribe to Alpaca's re-sent bars (reported as corrections).
    ``timeframe``: the rows' (above the minute: built from the minutes, the store's rule)."""
    settings = settings or load_settings()
    credentials = credentials or settings.credentials
    stream = AlpacaBarStream(symbols, settings=settings, credentials=credentials, url=stream_url,
                             updated_bars=updated_bars)
    poller = AlpacaBarPoller(settings=settings, credentials=credentials)
    return LiveFeed(symbols, session, stream=stream, poller=poller, clock=clock or LiveClock(),
                    options=options, on_event=on_event, rng=rng, speed=speed,
                    timeframe=timeframe)
