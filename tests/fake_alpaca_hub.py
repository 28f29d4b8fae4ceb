"""The fake's real ``StreamHub`` that also keeps, in call order, every trade update and bar the
fake published through it (the real hub checks and encodes each, and records what it sent or
withheld; this list is synchronous, so a REST test can assert on it right after a call)."""

from __future__ import annotations

import threading

from workbench.testing.alpaca.hub import StreamHub


class RecordingHub(StreamHub):
    def __init__(self, *, key: str = "fake-key", secret: str = "fake-secret") -> None:
        super().__init__(key=key, secret=secret)
        self.updates: list[dict] = []
        self.published: list[dict] = []
        self._record_lock = threading.Lock()

    def trade_update(self, data: dict) -> None:
        super().trade_update(data)  # raises on a malformed update, before it is recorded
        with self._record_lock:
            self.updates.append(data)

    def bars(self, bars: list[dict]) -> None:
        super().bars(bars)
        with self._record_lock:
            self.published.extend(bars)

    def events(self, order_id: str | None = None) -> list[str]:
        with self._record_lock:
            return [u["event"] for u in self.updates
                    if order_id is None or u["order"]["id"] == order_id]
