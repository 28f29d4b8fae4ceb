"""Promotion gates: what a notebook's recorded runs must show before it trades.

    report = evaluate("notebooks/strategies/sma_cross.ipynb", "paper", parameters={"fast": 5})
    report.passed, report.lines()        # every gate: measured value, limit, pass or not

The evidence is the run records under ``runs/`` of THIS notebook's code (its
:func:`~workbench.execution.hashing.notebook_hash`) run with THE PARAMETERS BEING PROMOTED:
``parameters`` (the promote command's ``-p`` values) over the defaults of the notebook's
``parameters`` cell. A run is compared on what its ``results/settings.json`` records of the
strategy parameters (``params``) and the backtest options, costs included (``options``):
each of those names that the promoted values give must hold the same value. Mode settings
(``replay_date``, ``grid``, ``train``...) and data (``timeframe``, ``symbols``) are not
compared, except that a walk-forward chooses the parameters its ``grid`` sweeps per fold:
the promoted value of a swept name must be among the grid's values, and its gates say
which names it swept. A run without a ``settings.json`` is no evidence. Editing any code
cell makes a new hash with no runs, so an edited notebook goes through the gates again.
Only runs that ended well count as evidence of passing; the newest run of each kind with
the promoted parameters is the one judged, and when there is none the gate names the
newest run of that kind with other parameters and what differs (a near miss is said).

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
* ``drift``: each of those sessions measured its drift against the replayed backtest
  (``results/drift.json``'s ``pnl_fraction``, :mod:`workbench.monitor.drift`) and stayed
  within ``max_drift`` (a session with no drift measured does not count as within); a
  failing gate names the worst session;
* ``confirmation``: the operator confirmed going live explicitly.

A gate with no evidence fails and says what is missing; nothing is assumed. The paper
sessions of the live gates are matched on the parameters the same way.
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

__all__ = ["GateReport", "GateResult", "Target", "evaluate", "promoted_values", "runs_of"]

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
    parameters: dict[str, Any] = field(default_factory=dict)  # the promoted -p values

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "notebook_hash": self.notebook_hash,
                "target": self.target, "parameters": dict(self.parameters),
                "passed": self.passed,
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


def _recorded(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the run recorded of its strategy parameters and backtest options (costs
    included), from ``results/settings.json``; None when it recorded none."""
    settings = _figure(manifest, "settings")
    if not isinstance(settings, Mapping):
        return None
    params, options = settings.get("params"), settings.get("options")
    return {**(options if isinstance(options, Mapping) else {}),
            **(params if isinstance(params, Mapping) else {})}


def _differences(manifest: Mapping[str, Any], promoted: Mapping[str, Any]) -> list[str]:
    """How the run's recorded values differ from the promoted ones (empty: the same)."""
    recorded = _recorded(manifest)
    if recorded is None:
        return ["no results/settings.json recorded"]
    out = [f"{name}={_text(value)} (promoted {_text(promoted[name])})"
           for name, value in sorted(recorded.items())
           if name in promoted and not _same(value, promoted[name])]
    for name, values in sorted(_swept(manifest).items()):  # a walk-forward's grid
        if name in promoted and not any(_same(v, promoted[name]) for v in values):
            out.append(f"{name} swept over {_text(values)} (promoted {_text(promoted[name])}, "
                       "not among them)")
    return out


def _swept(manifest: Mapping[str, Any]) -> dict[str, list]:
    """The names a walk-forward chose per fold from its grid, with the grid's values."""
    if manifest.get("kind") != "walk_forward":
        return {}
    grid = _figure(manifest, "settings", "settings", "grid")
    return {k: list(v) if isinstance(v, list) else [v]
            for k, v in grid.items()} if isinstance(grid, Mapping) else {}


def _same(a: Any, b: Any) -> bool:
    """Equal as values: 10 and 10.0 are, True and 1 are not."""
    return _canon(a) == _canon(b)


def _canon(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, Mapping):
        return ("map", sorted((str(k), _canon(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("list", [_canon(v) for v in value])
    return ("other", str(value))


def _text(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


def _with_values(manifest: Mapping[str, Any], promoted: Mapping[str, Any]) -> str:
    """``run_id with fast=10, slow=30, ...``: the promoted values the run was compared on."""
    recorded = _recorded(manifest) or {}
    names = [n for n in sorted(recorded) if n in promoted]
    swept = _swept(manifest)
    text = f"{manifest['run_id']} with " + (", ".join(
        f"{n}={_text(recorded[n])}" for n in names) or "no promoted value recorded")
    if swept:
        text += f"; {', '.join(sorted(swept))} chosen per fold from its grid"
    return text


@dataclass(frozen=True)
class _Found:
    """The newest run of a kind with the promoted values, or why there is none."""

    run: dict | None
    missing: str


def _newest(runs: list[dict], kind: str, promoted: Mapping[str, Any], what: str,
            good_only: bool = True) -> _Found:
    of_kind = [m for m in runs if m.get("kind") == kind and (_good(m) or not good_only)]
    matching = [m for m in of_kind if not _differences(m, promoted)]
    if matching:
        return _Found(matching[-1], "")
    if not of_kind:
        return _Found(None, f"no {what} run of this code")
    near = of_kind[-1]
    return _Found(None, f"no {what} run of this code with the promoted parameters; the newest, "
                        f"{near['run_id']}, ran with {'; '.join(_differences(near, promoted))}")


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


def _detail(found: _Found, value: Any, promoted: Mapping[str, Any]) -> str:
    if found.run is None:
        return found.missing
    if value is None:
        return f"not recorded by the run {found.run['run_id']}"
    return _with_values(found.run, promoted)


def _paper_gates(runs: list[dict], s: GateSettings,
                 promoted: Mapping[str, Any]) -> list[GateResult]:
    out = []
    bt = _newest(runs, "backtest", promoted, "backtest")
    out.append(GateResult("backtest", bt.run and bt.run["run_id"], "a backtest ended well",
                          bt.run is not None, _detail(bt, bt.run, promoted)))
    wf = _newest(runs, "walk_forward", promoted, "walk-forward")
    sharpe = _figure(wf.run, "oos_stats", "sharpe")
    drawdown = _figure(wf.run, "oos_stats", "max_drawdown")
    out.append(GateResult("oos_sharpe", sharpe, f">= {s.min_oos_sharpe:g}",
                          sharpe is not None and sharpe >= s.min_oos_sharpe,
                          _detail(wf, sharpe, promoted)))
    out.append(GateResult("oos_drawdown", drawdown, f"<= {s.max_oos_drawdown:g}",
                          drawdown is not None and abs(drawdown) <= s.max_oos_drawdown,
                          _detail(wf, drawdown, promoted)))
    # a failed parity run is evidence too
    parity = _newest(runs, "parity", promoted, "parity", good_only=False)
    mismatches = _figure(parity.run, "parity", "mismatches")
    out.append(GateResult("parity", mismatches, f"<= {s.max_parity_mismatches} mismatches",
                          mismatches is not None and mismatches <= s.max_parity_mismatches,
                          _detail(parity, mismatches, promoted)))
    clean = _figure(parity.run, "parity", "lookahead_clean")
    out.append(GateResult("lookahead", clean, "clean", clean is True,
                          _detail(parity, clean, promoted)))
    return out


def _live_gates(runs: list[dict], s: GateSettings, confirmed: bool,
                promoted: Mapping[str, Any]) -> list[GateResult]:
    sessions = [m for m in runs if m.get("kind") == "session" and m.get("mode") == "paper"
                and _good(m) and not _differences(m, promoted)]
    out = [GateResult("paper_sessions", len(sessions), f">= {s.min_paper_sessions}",
                      len(sessions) >= s.min_paper_sessions)]
    drifts = [_figure(m, "drift", "pnl_fraction") for m in sessions]
    unmeasured = sum(d is None for d in drifts)
    measured = [(abs(d), m) for d, m in zip(drifts, sessions) if d is not None]
    worst = max((d for d, _ in measured), default=None)
    ok = bool(sessions) and unmeasured == 0 and worst is not None and worst <= s.max_drift
    detail = (f"{unmeasured} of {len(sessions)} sessions have no drift measured" if unmeasured
              else "" if sessions else "no paper session of this code with the promoted "
              "parameters")
    if measured and not ok:  # the worst session named, with its P&L against the replay
        run = max(measured, key=lambda dm: dm[0])[1]
        detail = "; ".join(filter(None, [detail, (
            f"worst {run['run_id']}: P&L {_figure(run, 'drift', 'pnl_difference')} vs the "
            f"replayed backtest (workbench drift {run['run_id']})")]))
    out.append(GateResult("drift", worst, f"<= {s.max_drift:g} of capital", ok, detail))
    out.append(GateResult("confirmation", confirmed, "explicit", confirmed,
                          "" if confirmed else "going live needs an explicit confirmation"))
    return out


def promoted_values(notebook: str | Path,
                    parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a deployment of ``notebook`` with ``parameters`` runs with: those values over
    the defaults of its ``parameters`` cell (each name checked against the cell)."""
    from workbench.execution.params import check_parameters, notebook_parameters

    given = check_parameters(notebook, dict(parameters or {}))
    return {**notebook_parameters(notebook), **given}


def evaluate(notebook: str | Path, target: str, *, parameters: Mapping[str, Any] | None = None,
             confirmed: bool = False, settings: GateSettings | None = None,
             root: str | Path | None = None) -> GateReport:
    """Every gate of promoting ``notebook`` with ``parameters`` (the ``-p`` values; the
    notebook's defaults for the rest) to ``target`` ("paper" or "live")."""
    if target not in TARGETS:
        raise ConfigError(f"--to must be one of {', '.join(TARGETS)}, got {target!r}")
    settings = settings or load_settings().gates
    hash_ = notebook_hash(notebook)
    promoted = promoted_values(notebook, parameters)
    runs = runs_of(hash_, root)
    results = _paper_gates(runs, settings, promoted)
    if target == "live":
        results += _live_gates(runs, settings, confirmed, promoted)
    return GateReport(str(notebook), hash_, target, tuple(results), dict(parameters or {}))
