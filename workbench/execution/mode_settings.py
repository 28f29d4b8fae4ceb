"""The modes ``wb.run`` knows and each mode's settings: a table, light to import.

The notebook runner reads it before any kernel starts (a ``-p`` name that only another
mode uses would go unused: it is refused), and ``wb.run`` inside the kernel checks values
against it. Imports nothing of ours.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODES", "REQUIRED", "SETTINGS", "foreign_settings", "owners"]

REQUIRED = object()  # a setting the mode cannot run without

#: every mode and its settings with their defaults (``REQUIRED``: no default)
SETTINGS: dict[str, dict[str, Any]] = {
    "research": {},
    "backtest": {},
    "sweep": {"grid": REQUIRED, "constraint": None, "metric": "sharpe"},
    "walk_forward": {"grid": REQUIRED, "constraint": None, "metric": "sharpe",
                     "train": REQUIRED, "test": REQUIRED, "anchored": False},
    "parity": {"window": None},
    # heartbeat_every None: the session's default, a heartbeat every bar (the supervisor
    # watches them; the number lives in workbench.session.options.HEARTBEAT_EVERY)
    # replay_date: required with feed "replay" (paper.py says so); broker "sim" | "alpaca",
    # feed "replay" (a stored day) | "alpaca" (today's live minutes), live: real money
    "paper": {"replay_date": None, "speed": "max", "accounts": "per_symbol",
              "heartbeat_every": None, "history_days": None, "broker_path": None,
              # a deployment's capital: the session's whole cash (None: the backtest's cash)
              "capital": None, "broker": "sim", "feed": "replay", "live": False},
    "live": {},
}
MODES = tuple(SETTINGS)


def owners(name: str) -> list[str]:
    """The modes whose setting ``name`` is."""
    return [m for m, settings in SETTINGS.items() if name in settings]


def foreign_settings(mode: str, names) -> list[str]:
    """Of ``names`` (e.g. a run's ``-p`` names), those that are settings of other modes only:
    what a runner refuses before a kernel starts, since a notebook hands each mode only its
    own settings and would leave them unused."""
    own = set(SETTINGS.get(mode, {}))
    return [n for n in names if n not in own and owners(n)]
