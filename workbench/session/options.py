"""A session's checked settings: how fast it replays, how often it beats, how it sizes.

    options = SessionOptions(speed="max", heartbeat_every=1, history_days=1,
                             sizing=Sizing(size=0.1, accounts="shared"))

``speed``: "max" (as fast as possible) or N > 0 (N x real time); ``heartbeat_every``: a
``heartbeat`` event every N >= 1 bars (default :data:`HEARTBEAT_EVERY`: every bar, what a
supervisor watches; the one default of the runner and of ``wb.run``'s paper mode); ``history_days``: the stored sessions before the
replayed day that warm the strategy up (>= 0); ``sizing``: the trader's
:class:`~workbench.session.trader.Sizing` (size, shares, costs, accounts, cash). A bad
value is a ``ConfigError`` naming it (:mod:`workbench.values`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from workbench.session.trader import Sizing
from workbench.values import Number, Value, Whole

__all__ = ["HEARTBEAT_EVERY", "SessionOptions"]

HEARTBEAT_EVERY = 1  # a heartbeat every bar


class SessionOptions(Value):
    """The options of one session's loop (see the module doc)."""

    speed: Literal["max"] | Annotated[Number, Field(gt=0)] = "max"
    heartbeat_every: Whole = Field(HEARTBEAT_EVERY, ge=1)
    history_days: Whole = Field(1, ge=0)
    sizing: Sizing = Field(default_factory=Sizing)
