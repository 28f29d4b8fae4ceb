"""Alpaca's historical bars endpoint as the live feed's poller and gap backfiller.

One :class:`~workbench.data.alpaca_history.HistoryClient` for the session: its timeout
adapter, error translation and secret redaction are the ``workbench data fetch`` ones.
Prices are ``raw``, as the stream sends them. A failure raises a workbench error; the feed
reports it (``poll_failed``) and tries again.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from workbench.config import Credentials, Settings
from workbench.data.alpaca_history import HistoryClient
from workbench.feeds.options import MinuteBar

__all__ = ["AlpacaBarPoller"]


class AlpacaBarPoller:
    """``bars(symbols, first, last)``: the 1-minute bars starting in ``first .. last``."""

    def __init__(self, *, settings: Settings | None = None,
                 credentials: Credentials | None = None) -> None:
        self._client = HistoryClient(settings, credentials)
        self.calls: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def bars(self, symbols: Sequence[str], first: pd.Timestamp, last: pd.Timestamp) -> list[MinuteBar]:
        self.calls.append((first, last))
        frame = self._client.fetch(list(symbols), first, last, "1Min", adjustment="raw")
        return [MinuteBar(r.symbol, r.ts, r.open, r.high, r.low, r.close, r.volume)
                for r in frame.itertuples(index=False)]

    def close(self) -> None:
        self._client.close()
