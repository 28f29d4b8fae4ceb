"""How a run can end, and the old names of those outcomes: one definition, read by the run
records (:mod:`workbench.runs.records`) and by the catalog's ``runs`` view
(:mod:`workbench.journal.catalog`), which sits below the records. Imports nothing."""

from __future__ import annotations

__all__ = ["LEGACY_OUTCOMES", "OUTCOMES", "canonical_outcome"]

OUTCOMES = ("succeeded", "failed", "interrupted", "halted", "timeout")
# outcomes written by older versions, read as the outcome they stand for ("ok" was renamed)
LEGACY_OUTCOMES = {"ok": "succeeded"}


def canonical_outcome(outcome: str | None) -> str | None:
    """``outcome`` as written today (an old manifest's "ok" is "succeeded")."""
    return LEGACY_OUTCOMES.get(outcome, outcome) if isinstance(outcome, str) else outcome
