"""Promotion gates: what a notebook's recorded runs must show before it trades.

    report = evaluate("notebooks/strategies/sma_cross.ipynb", "paper")
    report.passed, report.table()        # every gate: measured value, limit, pass or not

The evidence is the run records under ``runs/`` of THIS notebook's code (its
:func:`~workbench.execution.hashing.notebook_hash`): editing any code cell makes a new hash
with no runs, so an edited notebook goes through the gates again. Only runs that ended well
count as evidence of passing; the newest run of each kind is the one judged.

To paper (``[gates]`` thresholds, :class:`~workbench.config.GateSettings`):

* ``backtest``: a backtest run ended well;
* ``walk_forward``: a walk-forward run ended well, with its out-of-sample Sharpe
  (``oos_sharpe``) at least ``min_oos_sharpe`` and its out-of-sample max drawdown
  (``oos_drawdown``) at most ``max_oos_drawdown``;
* ``parity``: the newest parity run found at most ``max_parity_mismatches`` mismatches;
* ``lookahead``: the newest parity run's look-ahead check found no past signal that changes
  when the future is cut off.

To live, every paper gate and:

* ``paper_sessions``: at least ``min_paper_sessions`` paper sessions ended well;
* ``drift``: each of those sessions measured its drift against the replayed backtest and
  stayed within ``max_drift`` (a session with no drift measured does not count as within);
* ``confirmation``: the operator confirmed going live explicitly.

A gate with no evidence fails and says what is missing; nothing is assumed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench import paths
from workbench.config import GateSettings, load_settings
from workbench.errors import ConfigError
from workbench.execution.hashing import notebook_hash
from workbench.runs.records import canonical_outcome

__all__ = ["GateReport", "GateResult", "Target", "evaluate", "runs_of"]

Target = Literal["paper", "live"]
TARGETS = ("paper", "live")
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class GateResult:
    """One gate: what was measured, against what limit, and whether it passed."""

    gate: str
    value: Any
    limit: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "value": self.value, "limit": self.limit,
                "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class GateReport:
    """Every gate of a promotion, in order; ``passed`` only if all passed."""

    notebook: str
    notebook_hash: str
    target: str
    results: tuple[GateResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "notebook_hash": self.notebook_hash,
                "target": self.target, "passed": self.passed,
                "gates": [r.to_dict() for r in self.results]}

    def lines(self) -> list[str]:
        """The report as aligned text lines, one gate per line."""
        width = max((len(r.gate) for r in self.results), default=4)
        out = []
        for r in self.results:
            mark = "pass" if r.passed else "FAIL"
            value = "-" if r.value is None else _show(r.value)
            note = f"  ({r.detail})" if r.detail else ""
            out.append(f"{mark}  {r.gate:<{width}}  {value:>12}  limit {r.limit}{note}")
        return out


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- the evidence ----------------------------------------------------------------------------


def _hash_of(manifest: Mapping[str, Any]) -> str | None:
    """The code hash the notebook runner recorded (``manifest["notebook"]["hash"]``)."""
    notebook = manifest.get("notebook")
    return notebook.get("hash") if isinstance(notebook, Mapping) else None


def runs_of(hash_: str, root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every finished run of the notebook code ``hash_`` under ``root``, oldest first."""
    found = [m for m in _manifests(Path(root) if root else paths.runs_dir())
             if _hash_of(m) == hash_ and m.get("status") == "finished"]
    return sorted(found, key=lambda m: (m.get("started_at") or "", m.get("run_id") or ""))


def _manifests(root: Path) -> Iterator[dict[str, Any]]:
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run being written or damaged is no evidence either way
        if isinstance(manifest, dict):
            outcome = canonical_outcome(manifest.get("outcome"))
            yield {**manifest, "outcome": outcome, "_path": str(path.parent)}


def _good(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("outcome") == SUCCEEDED


def _newest(runs: list[dict], kind: str, mode: str | None = None,
            good_only: bool = True) -> dict | None:
    chosen = [m for m in runs if m.get("kind") == kind and (mode is None or m.get("mode") == mode)
              and (_good(m) or not good_only)]
    return chosen[-1] if chosen else None


def _figure(manifest: Mapping[str, Any] | None, name: str, *keys: str) -> Any:
    """A figure ``wb.run`` recorded: ``results/<name>.json``'s ``[key]...``, or None."""
    path = Path(manifest["_path"]) / "results" / f"{name}.json" if manifest else None
    if path is None or not path.is_file():
        return None
    try:
        value: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


# -- the gates -------------------------------------------------------------------------------


def _paper_gates(runs: list[dict], s: GateSettings) -> list[GateResult]:
    out = []
    backtest = _newest(runs, "backtest")
    out.append(GateResult("backtest", backtest and backtest["run_id"], "a backtest ended well",
                          backtest is not None, "" if backtest else "no backtest run of this code"))
    wf = _newest(runs, "walk_forward")
    sharpe = _figure(wf, "oos_stats", "sharpe")
    drawdown = _figure(wf, "oos_stats", "max_drawdown")
    missing = "no walk-forward run of this code" if wf is None else "not recorded by the run"
    out.append(GateResult("oos_sharpe", sharpe, f">= {s.min_oos_sharpe:g}",
                          sharpe is not None and sharpe >= s.min_oos_sharpe,
                          wf["run_id"] if wf and sharpe is not None else missing))
    out.append(GateResult("oos_drawdown", drawdown, f"<= {s.max_oos_drawdown:g}",
                          drawdown is not None and abs(drawdown) <= s.max_oos_drawdown,
                          wf["run_id"] if wf and drawdown is not None else missing))
    parity = _newest(runs, "parity", good_only=False)  # a failed parity run is evidence too
    mismatches = _figure(parity, "parity", "mismatches")
    missing = "no parity run of this code" if parity is None else "not recorded by the run"
    out.append(GateResult("parity", mismatches, f"<= {s.max_parity_mismatches} mismatches",
                          mismatches is not None and mismatches <= s.max_parity_mismatches,
                          parity["run_id"] if parity and mismatches is not None else missing))
    clean = _figure(parity, "parity", "lookahead_clean")
    out.append(GateResult("lookahead", clean, "clean", clean is True,
                          parity["run_id"] if parity and clean is not None else missing))
    return out


def _live_gates(runs: list[dict], s: GateSettings, confirmed: bool) -> list[GateResult]:
    sessions = [m for m in runs if m.get("kind") == "session" and m.get("mode") == "paper"
                and _good(m)]
    out = [GateResult("paper_sessions", len(sessions), f">= {s.min_paper_sessions}",
                      len(sessions) >= s.min_paper_sessions)]
    drifts = [_figure(m, "drift", "pnl_fraction") for m in sessions]
    unmeasured = sum(d is None for d in drifts)
    worst = max((abs(d) for d in drifts if d is not None), default=None)
    ok = bool(sessions) and unmeasured == 0 and worst is not None and worst <= s.max_drift
    detail = (f"{unmeasured} of {len(sessions)} sessions have no drift measured" if unmeasured
              else "" if sessions else "no paper session of this code")
    out.append(GateResult("drift", worst, f"<= {s.max_drift:g} of capital", ok, detail))
    out.append(GateResult("confirmation", confirmed, "explicit", confirmed,
                          "" if confirmed else "going live needs an explicit confirmation"))
    return out


def evaluate(notebook: str | Path, target: str, *, confirmed: bool = False,
             settings: GateSettings | None = None, root: str | Path | None = None) -> GateReport:
    """Every gate of promoting ``notebook`` to ``target`` ("paper" or "live")."""
    if target not in TARGETS:
        raise ConfigError(f"--to must be one of {', '.join(TARGETS)}, got {target!r}")
    settings = settings or load_settings().gates
    hash_ = notebook_hash(notebook)
    runs = runs_of(hash_, root)
    results = _paper_gates(runs, settings)
    if target == "live":
        results += _live_gates(runs, settings, confirmed)
    return GateReport(str(notebook), hash_, target, tuple(results))
