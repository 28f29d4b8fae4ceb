"""The default universe: every stored symbol, except those whose history is short.

A symbol with far fewer bars than the others in the requested range would join a
default-universe backtest as a mostly flat account diluting the book. The rule: a symbol
with fewer bars than :data:`SHORT_HISTORY` (half) of the median symbol's bar count in the
range is short; ``Store.load(None, ...)`` (``wb.data.load()`` without symbols) leaves it
out and names it in a :class:`ShortHistoryWarning`. Asking for symbols by name never
leaves one out.
"""

from __future__ import annotations

import statistics
import warnings

from workbench.data.bars import Bars

__all__ = ["SHORT_HISTORY", "ShortHistoryWarning", "default_universe", "short_history",
           "without_short_history"]


class ShortHistoryWarning(UserWarning):
    """Symbols left out of a default universe because their history is short."""


SHORT_HISTORY = 0.5  # a symbol with fewer bars than this fraction of the median is short


def short_history(bars: Bars) -> dict[str, int]:
    """The symbols of ``bars`` with fewer bars than ``SHORT_HISTORY`` times the median
    symbol's bar count, with their counts."""
    counts = bars.close.notna().sum()
    floor = SHORT_HISTORY * float(counts.median())
    return {str(s): int(n) for s, n in counts.items() if n < floor}


def default_universe(store, timeframe, start=None, end=None) -> tuple[list[str], dict[str, int]]:
    """The stored symbols of ``timeframe`` a default universe holds in ``start .. end`` (the
    one date rule), and the short-history ones it leaves out with their bar counts, counted
    without loading the bars (for a caller picking "the first N symbols")."""
    from workbench.data import duck
    from workbench.data.timeframe import Timeframe
    from workbench.errors import DataError
    from workbench.times import bounds

    tf = Timeframe.parse(timeframe)
    lo, hi = bounds(start, end, error=DataError)
    catalog = store._bar_files(tf)
    symbols = sorted(catalog)
    if not symbols:
        return [], {}
    files = [f for s in symbols for f in catalog[s]]
    codes = [i for i, s in enumerate(symbols) for _ in catalog[s]]
    counts = duck.count_bars(files, codes, len(symbols), lo, hi)
    median = statistics.median(counts)
    short = {s: int(n) for s, n in zip(symbols, counts) if n < SHORT_HISTORY * median}
    return [s for s in symbols if s not in short], short


def without_short_history(bars: Bars) -> Bars:
    """``bars`` without its short-history symbols, named in a warning (never silently)."""
    short = short_history(bars)
    if not short:
        return bars
    median = int(bars.close.notna().sum().median())
    names = ", ".join(f"{s} ({n} bars)" for s, n in sorted(short.items()))
    warnings.warn(
        f"left out of the default universe, short history: {names}; the median symbol has "
        f"{median} bars in the range and a symbol needs at least {SHORT_HISTORY:.0%} of that. "
        f"Name the symbols to include them anyway", ShortHistoryWarning, stacklevel=3)
    keep = [s for s in bars.symbols if s not in short]
    return bars.select(keep).dropna()


