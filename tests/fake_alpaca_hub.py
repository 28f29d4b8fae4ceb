"""A recording stand-in for the fake's ``StreamHub`` (same interface, no websockets), for the
REST tests: what the fake published and the trade updates it emitted, in order."""

from __future__ import annotations

import threading


class RecordingHub:
    def __init__(self, *, key: str = "", secret: str = "") -> None:
        self.loop = None
        self.updates: list[dict] = []
        self.published: list[dict] = []
        self.closed = False
        self._lock = threading.Lock()

    def bind(self, loop) -> None:
        self.loop = loop

    def routes(self) -> list:
        return []

    def trade_update(self, data: dict) -> None:
        with self._lock:
            self.updates.append(data)

    def bars(self, bars: list[dict]) -> None:
        with self._lock:
            self.published.extend(bars)

    def close(self) -> None:
        self.closed = True

    def events(self, order_id: str | None = None) -> list[str]:
        with self._lock:
            return [u["event"] for u in self.updates
                    if order_id is None or u["order"]["id"] == order_id]
