"""Memoized indicators for a parameter sweep: each distinct indicator computed once.

    with indicator_cache() as cache:
        for fast, slow in grid:
            strategy(bars, fast=fast, slow=slow)   # SMA(close, 10) computed the first time only
    cache.hits, cache.misses

A call is the same when it names the same function with the same parameters on the same
input objects (``bars.close`` is one object for the whole sweep). Inputs are held by the
cache while it lives, so an object id is never reused for a different frame. Results are
handed out as lazy copies (pandas copy-on-write): a strategy that modifies one in place
cannot change what the next parameter combination sees.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["IndicatorCache", "cached_call", "indicator_cache"]


class IndicatorCache:
    def __init__(self) -> None:
        self._store: dict[tuple, tuple[tuple, Any]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def get_or_compute(self, key: tuple, inputs: tuple, compute: Callable[[], Any]) -> Any:
        found = self._store.get(key)
        if found is None:
            self.misses += 1
            found = self._store[key] = (inputs, compute())
        else:
            self.hits += 1
        return _lazy_copy(found[1])


_active: contextvars.ContextVar[IndicatorCache | None] = contextvars.ContextVar(
    "workbench_indicator_cache", default=None
)


@contextmanager
def indicator_cache() -> Iterator[IndicatorCache]:
    """Memoize ``wb.ta`` calls inside the block (nested blocks share the outer cache)."""
    outer = _active.get()
    if outer is not None:
        yield outer
        return
    cache = IndicatorCache()
    token = _active.set(cache)
    try:
        yield cache
    finally:
        _active.reset(token)


def cached_call(name: str, inputs: list, params: dict, compute: Callable[[], Any]) -> Any:
    """``compute()``, or its memoized result when a cache is active."""
    cache = _active.get()
    if cache is None:
        return compute()
    key = (name, tuple(id(x) for x in inputs), tuple(sorted(params.items())))
    return cache.get_or_compute(key, tuple(inputs), compute)


def _lazy_copy(value: Any) -> Any:
    if hasattr(value, "_fields"):  # a NamedTuple of frames
        return type(value)(*(v.copy(deep=False) for v in value))
    return value.copy(deep=False)
