"""A session's money caps at its start: :func:`workbench.risk.caps.fit_caps` on what its
sizing can reach, said and recorded.

The reach is of the sizing the trader uses (:class:`~workbench.session.trader.Sizing`):
``accounts="per_symbol"``: each symbol's account of ``Sizing.cash`` (what the trader sizes
an entry from, whatever the broker holds); ``"shared"``: the one account's value at the
session's first start (``start_equity``, kept by a restart), so a restart derives the
same caps. Said: the derived caps in one line on stdout (the notebook's output, a script's
terminal); each cap the user set that the sizing reaches at the start in one line on
stderr (at every start) and a warning ``alert`` (source "risk": delivered by the monitor)
once per run: a restart whose journal already holds the same alert does not journal (nor
deliver) it again. Recorded: the
``session_start`` event's ``risk_caps`` (:meth:`~workbench.risk.caps.FittedCaps.record`),
the ``config`` event's ``risk`` (the settings the gateway uses).
"""

from __future__ import annotations

import sys
from decimal import Decimal

from workbench.model import events as ev
from workbench.risk import RiskSettings
from workbench.risk.caps import FittedCaps, fit_caps, sizing_reach

__all__ = ["say_caps", "session_caps"]


def session_caps(settings: RiskSettings, sizing, symbols: int,
                 start_equity: Decimal) -> FittedCaps:
    """The caps a session of ``symbols`` symbols sized by ``sizing`` trades with."""
    cash = sizing.cash if sizing.accounts == "per_symbol" else max(start_equity, Decimal(0))
    return fit_caps(settings, sizing_reach(accounts=sizing.accounts, cash=cash,
                                           size=float(sizing.size), symbols=symbols))


def say_caps(fitted: FittedCaps, journal, clock, events=()) -> None:
    """The derived caps in one line; each set cap the sizing reaches loudly, its alert
    journaled unless the run's ``events`` (a restart's journal) already hold it (see the
    module doc)."""
    if (line := fitted.line()) is not None:
        print(f"NOTE: {line}", flush=True)
    alerted = {e.payload.get("message") for e in events
               if e.type == ev.ALERT and e.payload.get("source") == "risk"}
    for text in fitted.warnings():
        if text not in alerted:
            journal.append(ev.ALERT, source="risk", level="warning", message=text,
                           at=clock.now().isoformat())
        print(f"WARNING: {text}", file=sys.stderr, flush=True)
