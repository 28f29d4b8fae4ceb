"""Market data: sources, validation, the Parquet store and the exchange calendar.

    bars = wb.data.load(["AAPL", "MSFT"], timeframe="1Min", start="2026-01-02", end="2026-03-31")

Bare dates are New York trading days (``end`` inclusive); times without a zone are UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.data.bars import Bars
from workbench.data.timeframe import Timeframe
from workbench.lazy import lazy_names

if TYPE_CHECKING:
    from workbench.data.store import Store, WriteReport

__all__ = ["Bars", "Store", "Timeframe", "WriteReport", "load", "ls", "quarantine"]


def load(symbols=None, timeframe: str = "1Min", start=None, end=None, *, store: Store | None = None) -> Bars:
    """Wide bars from the store for ``symbols`` (None: all) between ``start`` and ``end``."""
    return (store or _store()).load(symbols, timeframe, start, end)


def ls(*, store: Store | None = None):
    """What the store holds: one row per (timeframe, symbol)."""
    return (store or _store()).ls()


def quarantine(symbols=None, timeframe=None, *, store: Store | None = None):
    """Quarantined bars with the reason each was refused."""
    return (store or _store()).quarantine(symbols, timeframe)


def _store() -> Store:
    from workbench.data.store import Store

    return Store()


# the store (DuckDB, pyarrow) is imported on first use, not with the package
__getattr__, __dir__ = lazy_names(__name__, {"Store": "workbench.data.store",
                                             "WriteReport": "workbench.data.store"})
