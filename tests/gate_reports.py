"""A passed promotion gates' report built in a test, for registering a deployment without
recording evidence runs (the gates themselves are tested in tests/test_gates.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.deploy.gates import GateReport, GateResult
from workbench.execution.hashing import notebook_hash


def passed_report(notebook: str | Path, target: str = "paper",
                  parameters: Any = None) -> GateReport:
    """A report of ``notebook``'s current code to ``target`` for ``parameters``, every gate
    passed."""
    results = (GateResult("backtest", "run-1", "a backtest ended well", True),
               GateResult("parity", 0, "<= 0 mismatches", True))
    return GateReport(str(notebook), notebook_hash(notebook), target, results,
                      {} if parameters is None else parameters)
