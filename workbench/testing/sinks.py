"""An in-memory :class:`~workbench.model.events.EventSink`: the journal's ``append``."""

from __future__ import annotations

from typing import Any

__all__ = ["ListSink"]


class ListSink:
    """An event sink that keeps ``(type, payload)`` in a list (for tests and notebooks)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def append(self, type: str, /, **payload: Any) -> None:
        self.events.append((type, payload))

    append_durable = append

    def of(self, type: str) -> list[dict[str, Any]]:
        return [p for t, p in self.events if t == type]
