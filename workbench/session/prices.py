"""``LastPrices``: each symbol's last close, as the exact Decimal the order path uses,
made only for the symbols read.

A session marks every symbol at its last close (sizing, the risk checks, equity): each
bar's 500 closes used to become Decimals (``to_decimal``, 0.5-0.7 ms a bar) though a bar
reads a few dozen. Here a bar's closes are kept as the feed's floats and a symbol's
Decimal is made on its first read after its close changed: the same value
(``to_decimal`` of the same float), only later and only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal

from workbench.model import to_decimal

__all__ = ["LastPrices"]

_MISSING = object()


class LastPrices(Mapping[str, Decimal]):
    """A read-only mapping of symbol -> ``to_decimal(last close)`` (see the module doc)."""

    def __init__(self) -> None:
        self._raw: dict[str, float | Decimal] = {}  # as given
        self._made: dict[str, Decimal] = {}  # to_decimal of _raw, for the symbols read

    def set_closes(self, symbols: Iterable[str], closes: Iterable[float]) -> None:
        """One bar's closes (floats, in the order of ``symbols``)."""
        self._raw.update(zip(symbols, closes, strict=True))
        self._made = {}

    def update(self, prices: Mapping[str, float | Decimal]) -> None:
        """Closes known another way (a restart: the day's closes before the resumed bar)."""
        self._raw.update(prices)
        self._made = {}

    def __getitem__(self, symbol: str) -> Decimal:
        made = self._made.get(symbol)
        if made is None:
            made = self._made[symbol] = to_decimal(self._raw[symbol])
        return made

    def get(self, symbol, default=None):
        """``self[symbol]``, or ``default`` for a symbol with no close (the risk checks ask
        a thousand times a bar: ``Mapping.get`` goes through ``__getitem__`` and a
        ``KeyError``)."""
        made = self._made.get(symbol)
        if made is None:
            raw = self._raw.get(symbol, _MISSING)
            if raw is _MISSING:
                return default
            made = self._made[symbol] = to_decimal(raw)
        return made

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"LastPrices({len(self._raw)} symbols)"
