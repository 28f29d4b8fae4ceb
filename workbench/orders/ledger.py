"""Cash and positions moved by fills, in exact Decimal arithmetic.

A buy of ``q`` at ``p`` with fee ``f`` takes ``q * p + f`` from cash; a sell adds
``q * p - f``. Positions are signed (short is negative). The average price is the
quantity-weighted entry price of the open position: it moves when the position grows,
stays when it shrinks, restarts at the fill price when the position flips side, and is
zero when flat. Realized P&L is booked on the part of a fill that reduces the position.

Conservation (checked by ``tests/test_accounting.py``): for any sequence of fills,
``cash + sum(position * mark) == start cash + sum(signed qty * (mark - price)) - fees``
with every symbol marked at ``mark``; marked at the fill prices of a symbol that always
traded at one price, the account is worth its start minus the fees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from workbench.model import Account, Fill, Position

__all__ = ["Ledger", "apply_fill"]

ZERO = Decimal(0)


def apply_fill(position: Position | None, fill: Fill) -> tuple[Position, Decimal]:
    """The position after ``fill`` and the P&L the fill realized (fees excluded)."""
    qty = position.quantity if position else ZERO
    avg = position.average_price if position else ZERO
    signed = fill.side.sign * fill.quantity
    new = qty + signed
    if qty == 0 or (qty > 0) == (signed > 0):  # opening or adding
        avg = (abs(qty) * avg + fill.quantity * fill.price) / abs(new)
        return Position(fill.symbol, new, avg), ZERO
    closed = min(abs(signed), abs(qty))
    realized = closed * (fill.price - avg) * (1 if qty > 0 else -1)
    if new == 0:
        avg = ZERO
    elif (new > 0) != (qty > 0):  # flipped: the rest opens at the fill price
        avg = fill.price
    return Position(fill.symbol, new, avg), realized


@dataclass
class Ledger:
    """The account as our fills made it: cash, positions, fees paid and realized P&L."""

    cash: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    # the cash each symbol's fills moved since the book started (its snapshot): a
    # per-symbol account's cash is its starting cash plus this
    flows: dict[str, Decimal] = field(default_factory=dict)
    # the non-flat subset of ``positions``, kept by ``apply`` (read every bar, several
    # times: a scan of every symbol ever traded each time cost about 1 ms a bar)
    _open: dict[str, Position] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)

    def __post_init__(self) -> None:
        self._open = {s: p for s, p in self.positions.items() if p.quantity != 0}

    def apply(self, fill: Fill) -> None:
        """Book one fill (the caller de-duplicates by execution id)."""
        position, realized = apply_fill(self.positions.get(fill.symbol), fill)
        self.positions[fill.symbol] = position
        if position.quantity != 0:
            self._open[fill.symbol] = position
        else:
            self._open.pop(fill.symbol, None)
        flow = fill.side.sign * fill.quantity * fill.price + fill.fee
        self.cash -= flow
        self.flows[fill.symbol] = self.flows.get(fill.symbol, ZERO) - flow
        self.fees += fill.fee
        self.realized += realized

    def quantity(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.quantity if position else ZERO

    def open_positions(self) -> dict[str, Position]:
        """The positions that are not flat (a new dict, in the order they opened).
        ``positions`` is changed by :meth:`apply` only."""
        return dict(self._open)

    def account(self) -> Account:
        return Account(self.cash, self.open_positions())

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash plus positions marked at ``marks`` (their average price where none given)."""
        return self.account().equity(marks)
