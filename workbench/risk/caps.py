"""The pre-trade caps a session starts with: the user's, or derived from its sizing.

    reach = sizing_reach(accounts="per_symbol", cash=Decimal(100_000), size=1.0, symbols=20)
    fitted = fit_caps(settings.risk, reach)
    RiskGateway(fitted.settings, ...)             # the caps the session trades with
    fitted.record()                               # session_start's ``risk_caps``

The three money caps of ``[risk]`` (:data:`CAPS`: ``max_order_notional``,
``max_symbol_exposure``, ``max_total_exposure``) are fat-finger and runaway guards. Their
built-in defaults (100,000 / 100,000 / 500,000) know nothing of the session: a notebook
backtested with accounts of 100,000 and ``size=1.0`` makes entries of 100,000 and more as
soon as an account has made a cent, so fixed defaults would refuse half of its trades. The
one rule, applied at every session's start (replayed, ``wb.run(mode="paper")``,
``workbench session``, the supervisor, live on Alpaca: all start through
:func:`workbench.session.runner._run`):

* a cap the user did **not** set (not in ``[risk]`` of ``workbench.toml``, not in a
  ``WORKBENCH__RISK__*`` variable, not given to the session's ``RiskSettings``: pydantic's
  ``model_fields_set``) is **derived**: :data:`HEADROOM` (2) x what the sizing can reach
  at the start (:class:`Reach`), so an account may double within the session before its
  cap bites, and an order many times the strategy's size (a sizing bug, a bad price) is
  still refused;
* a cap the user **set** is never changed; if the sizing can already reach it at the
  start (the reach is at or above it), :meth:`FittedCaps.warnings` says so, one line per
  cap naming the setting and the figures: orders will be refused by it.

What the sizing can reach at the start (:func:`sizing_reach`; the trader's rules,
:mod:`workbench.session.trader`): an entry spends ``size`` x its account's cash (a
reversal's ``size`` x the account's value after the close, the same at the start); so the
largest order and one symbol's exposure are ``size`` x the account's cash. The book:
``symbols`` accounts each entering at once (``per_symbol``), or one account whose entries
together spend at most its value (``shared``, ``size`` <= 1). ``direction`` does not change
these figures (a short sale is sized as a buy); a short sale's proceeds funding later
entries of a shared account, and target weights above 1, are leverage:
``max_gross_leverage`` (not derived) decides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from workbench.config import RiskSettings

__all__ = ["CAPS", "HEADROOM", "FittedCaps", "Reach", "fit_caps", "sizing_reach"]

CAPS = ("max_order_notional", "max_symbol_exposure", "max_total_exposure")
HEADROOM = Decimal(2)  # a derived cap: this many times the sizing's reach at the start
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Reach:
    """What a session's sizing can put in at its start, in USD: its largest order, one
    symbol's gross exposure, the whole book's; ``sizing`` says where they come from."""

    order: Decimal
    symbol: Decimal
    total: Decimal
    sizing: str

    def of(self, cap: str) -> Decimal:
        return {"max_order_notional": self.order, "max_symbol_exposure": self.symbol,
                "max_total_exposure": self.total}[cap]


def sizing_reach(*, accounts: str, cash: Decimal, size: float, symbols: int) -> Reach:
    """The reach of ``symbols`` symbols traded from ``accounts`` ("per_symbol": one account
    of ``cash`` each; "shared": one account of ``cash``, its value at the start) with
    entries of ``size`` x the account's cash (see the module doc)."""
    if accounts not in ("per_symbol", "shared"):
        raise ValueError(f"accounts={accounts!r}")
    cash, fraction = Decimal(cash), Decimal(repr(float(size)))
    entry = (cash * fraction).quantize(_CENT)
    if accounts == "per_symbol":
        total = entry * symbols
        sizing = f"{symbols} account(s) of {_money(cash)}, size {float(size):g}"
    else:
        total = min(cash, entry * symbols).quantize(_CENT)
        sizing = f"one account of {_money(cash)} for {symbols} symbol(s), size {float(size):g}"
    return Reach(order=entry, symbol=entry, total=total, sizing=sizing)


@dataclass(frozen=True)
class FittedCaps:
    """The settings a session trades with, and how each money cap was chosen."""

    settings: RiskSettings
    reach: Reach
    derived: tuple[str, ...]  # the caps the user did not set, derived from the reach
    reached: tuple[str, ...]  # the caps the user set that the sizing reaches at the start
    headroom: Decimal = HEADROOM

    def record(self) -> dict:
        """For ``session_start`` (``risk_caps``): each cap's value, whether it was derived
        or set, the sizing's reach, the headroom; the lines said (``note``: the derived
        caps', ``warnings``: the set caps reached)."""
        return {"sizing": self.reach.sizing, "headroom": f"{self.headroom:f}",
                "caps": {cap: {"value": f"{getattr(self.settings, cap):f}",
                               "source": "derived" if cap in self.derived else "set",
                               "reach": f"{self.reach.of(cap):f}",
                               **({"reached": True} if cap in self.reached else {})}
                         for cap in CAPS},
                "note": self.line(), "warnings": self.warnings()}

    def line(self) -> str | None:
        """One line on the derived caps (None when the user set all three)."""
        if not self.derived:
            return None
        caps = ", ".join(f"{cap} {_money(getattr(self.settings, cap))}" for cap in self.derived)
        return (f"risk caps not set in [risk], derived from the sizing ({self.reach.sizing}; "
                f"largest entry at start {_money(self.reach.order)}, book "
                f"{_money(self.reach.total)}) x{self.headroom:f} headroom: {caps}")

    def warnings(self) -> list[str]:
        """One line per cap the user set that the sizing already reaches at the start."""
        what = {"max_order_notional": "its largest order",
                "max_symbol_exposure": "one symbol's exposure",
                "max_total_exposure": "the book's exposure"}
        return [f"[risk] {cap} = {_money(getattr(self.settings, cap))} (set) is reached at "
                f"the start: {what[cap]} can be {_money(self.reach.of(cap))} "
                f"({self.reach.sizing}); orders above it will be refused: raise {cap} or "
                "lower the sizing" for cap in self.reached]


def fit_caps(settings: RiskSettings, reach: Reach, headroom: Decimal = HEADROOM) -> FittedCaps:
    """``settings`` with every money cap the user did not set derived from ``reach`` (see
    the module doc); the caps the user set kept, and named when ``reach`` attains them."""
    given = settings.model_fields_set
    derived = tuple(cap for cap in CAPS if cap not in given)
    reached = tuple(cap for cap in CAPS
                    if cap in given and reach.of(cap) >= getattr(settings, cap))
    update = {cap: max((reach.of(cap) * headroom).quantize(_CENT), _CENT) for cap in derived}
    fitted = settings.model_copy(update=update) if update else settings
    return FittedCaps(fitted, reach, derived, reached, headroom)


def _money(x: Decimal) -> str:
    return f"{x:,.2f}"
