"""Promotion gates judge the recorded runs of a notebook's code, and say what is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from workbench.clock import SimClock
from workbench.config import GateSettings
from workbench.deploy.gates import evaluate
from workbench.errors import ConfigError
from workbench.execution.hashing import notebook_hash
from workbench.runs.records import RunRecord

SMA = Path(__file__).resolve().parents[1] / "notebooks" / "strategies" / "sma_cross.ipynb"
SETTINGS = GateSettings(min_oos_sharpe=0.5, max_oos_drawdown=0.2, min_paper_sessions=3,
                        max_drift=0.01)


@pytest.fixture
def notebook(tmp_path) -> Path:
    path = tmp_path / "sma_cross.ipynb"
    shutil.copy(SMA, path)
    return path


# what wb.run records in results/settings.json with the notebook's defaults (fast=10, slow=30)
PARAMS = {"fast": 10, "slow": 30}
OPTIONS = {"fill": "next_open", "fees_bps": 1.0, "fee_per_share": 0.0, "slippage_bps": 2.0,
           "shares": "fractional", "cash": 100000.0, "size": 1.0, "direction": "long",
           "sl_stop": None, "tp_stop": None}


def _run(root: Path, kind: str, mode: str, hash_: str, outcome="succeeded", params=None,
         options=None, **results) -> str:
    """A finished run of the notebook code ``hash_``, with ``results/<name>.json`` as
    ``wb.run`` writes them (``settings``, ``oos_stats``, ``parity``, ...)."""
    clock = SimClock(pd.Timestamp("2026-11-20 15:00", tz="UTC") + pd.Timedelta(
        seconds=len(list(root.glob("*")))))
    params = PARAMS if params is None else params
    record = RunRecord.create(kind, "sma_cross", params, mode, None, clock, root=root,
                              notebook={"path": str(SMA), "hash": hash_})
    settings = {"mode": mode, "params": params, "options": {**OPTIONS, **(options or {})},
                "settings": {"grid": {"fast": [5, 10]}} if kind == "walk_forward" else {}}
    results = {"settings": settings, **results}
    for name, figures in results.items():
        record.write_json(name, figures)
    record.finish(outcome)
    return record.run_id


def _evidence(root: Path, hash_: str, mismatches=0, sharpe=1.1, drawdown=0.12,
              params=None) -> None:
    _run(root, "backtest", "backtest", hash_, params=params)
    _run(root, "walk_forward", "walk_forward", hash_, params={},  # fast, slow swept
         oos_stats={"sharpe": sharpe, "max_drawdown": drawdown})
    _run(root, "parity", "parity", hash_, outcome="succeeded" if mismatches == 0 else "failed",
         parity={"mismatches": mismatches, "lookahead_clean": True}, params=params)


def _gates(report) -> dict:
    return {r.gate: r for r in report.results}


def test_no_evidence_fails_every_paper_gate_and_says_what_is_missing(notebook, tmp_path):
    report = evaluate(notebook, "paper", settings=SETTINGS, root=tmp_path / "runs")
    assert not report.passed
    gates = _gates(report)
    assert set(gates) == {"backtest", "oos_sharpe", "oos_drawdown", "parity", "lookahead"}
    assert "no backtest run of this code" in gates["backtest"].detail
    assert "no walk-forward run" in gates["oos_sharpe"].detail
    assert "no parity run" in gates["parity"].detail
    assert all("FAIL" in line for line in report.lines())


def test_full_evidence_passes_to_paper_and_an_edit_sends_the_notebook_back(notebook, tmp_path):
    runs = tmp_path / "runs"
    _evidence(runs, notebook_hash(notebook))
    report = evaluate(notebook, "paper", settings=SETTINGS, root=runs)
    assert report.passed, report.lines()
    assert _gates(report)["oos_sharpe"].value == 1.1
    backtest = _gates(report)["backtest"].detail
    assert backtest.endswith(" with fast=10, fees_bps=1.0, slippage_bps=2.0, slow=30")
    assert "fast chosen per fold from its grid" in _gates(report)["oos_sharpe"].detail
    nb = json.loads(notebook.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = "".join(code["source"]) + "\n# edited\n"
    notebook.write_text(json.dumps(nb))
    again = evaluate(notebook, "paper", settings=SETTINGS, root=runs)
    assert not again.passed and not _gates(again)["backtest"].passed


@pytest.mark.parametrize("mismatches, sharpe, drawdown, failing", [
    (3, 1.1, 0.12, {"parity"}),
    (0, 0.2, 0.12, {"oos_sharpe"}),
    (0, 1.1, -0.35, {"oos_drawdown"}),
])
def test_a_failing_gate_blocks_and_names_the_numbers(notebook, tmp_path, mismatches, sharpe,
                                                       drawdown, failing):
    runs = tmp_path / "runs"
    _evidence(runs, notebook_hash(notebook), mismatches, sharpe, drawdown)
    report = evaluate(notebook, "paper", settings=SETTINGS, root=runs)
    assert not report.passed
    assert {r.gate for r in report.failed} == failing
    line = next(x for x in report.lines() if x.startswith("FAIL"))
    bad = report.failed[0]
    assert bad.gate in line and bad.limit in line and str(bad.value) in line.replace(" ", "")


def test_to_live_needs_enough_paper_sessions_measured_drift_and_a_confirmation(notebook, tmp_path):
    runs, h = tmp_path / "runs", notebook_hash(notebook)
    _evidence(runs, h)
    _run(runs, "session", "paper", h, drift={"pnl_fraction": 0.004})
    report = evaluate(notebook, "live", settings=SETTINGS, root=runs)
    gates = _gates(report)
    assert not gates["paper_sessions"].passed and gates["paper_sessions"].value == 1
    assert not gates["confirmation"].passed
    _run(runs, "session", "paper", h, drift={"pnl_fraction": 0.003})
    _run(runs, "session", "paper", h)  # no drift measured: not within tolerance
    gates = _gates(evaluate(notebook, "live", confirmed=True, settings=SETTINGS, root=runs))
    assert gates["paper_sessions"].passed and gates["confirmation"].passed
    assert not gates["drift"].passed and "1 of 3 sessions have no drift" in gates["drift"].detail
    _run(runs, "session", "paper", h, drift={"pnl_fraction": -0.02})
    gates = _gates(evaluate(notebook, "live", confirmed=True, settings=SETTINGS, root=runs))
    assert not gates["drift"].passed and gates["drift"].value == 0.02
    _run(runs, "session", "paper", h, outcome="failed", drift={"pnl_fraction": 0.0})  # a failed session: no evidence
    assert _gates(evaluate(notebook, "live", confirmed=True, settings=SETTINGS,
                           root=runs))["paper_sessions"].value == 4


def test_a_bad_target_is_one_line(notebook, tmp_path):
    with pytest.raises(ConfigError, match="--to must be one of paper, live"):
        evaluate(notebook, "production", settings=SETTINGS, root=tmp_path)


def test_evidence_with_other_parameters_is_a_near_miss_that_blocks_and_says_so(notebook,
                                                                              tmp_path):
    """A backtest and a parity check with fast=5 are no evidence for promoting fast=10."""
    runs, h = tmp_path / "runs", notebook_hash(notebook)
    _evidence(runs, h, params={"fast": 5, "slow": 30})
    report = evaluate(notebook, "paper", parameters={"fast": 10}, settings=SETTINGS, root=runs)
    assert not report.passed and report.parameters == {"fast": 10}
    assert {r.gate for r in report.failed} == {"backtest", "parity", "lookahead"}
    detail = _gates(report)["backtest"].detail
    assert detail.startswith("no backtest run of this code with the promoted parameters; the "
                             "newest, ") and "ran with fast=5 (promoted 10)" in detail
    line = next(x for x in report.lines() if "backtest" in x)
    assert line.startswith("FAIL") and "fast=5 (promoted 10)" in line
    # the same evidence promotes what it measured, and costs count as parameters too
    assert evaluate(notebook, "paper", parameters={"fast": 5}, settings=SETTINGS,
                    root=runs).passed
    costly = evaluate(notebook, "paper", parameters={"fast": 5, "fees_bps": 3.0},
                      settings=SETTINGS, root=runs)
    assert {r.gate for r in costly.failed} == {"backtest", "oos_sharpe", "oos_drawdown",
                                               "parity", "lookahead"}
    assert "fees_bps=1.0 (promoted 3.0)" in _gates(costly)["oos_sharpe"].detail
    # a walk-forward chose fast per fold from its grid: a value outside the grid is a miss
    outside = evaluate(notebook, "paper", parameters={"fast": 7}, settings=SETTINGS, root=runs)
    assert "fast swept over [5, 10] (promoted 7, not among them)" in \
        _gates(outside)["oos_sharpe"].detail
    # a newer run with other values does not hide an older one with the promoted values
    _run(runs, "backtest", "backtest", h, params={"fast": 10, "slow": 30})
    assert _gates(evaluate(notebook, "paper", parameters={"fast": 5}, settings=SETTINGS,
                           root=runs))["backtest"].passed


def test_values_compare_as_values():
    from workbench.deploy.gates import _same

    assert _same(10, 10.0) and _same({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not _same(True, 1) and not _same(None, 0) and not _same("5", 5)


def test_a_run_without_its_settings_is_no_evidence(notebook, tmp_path):
    runs, h = tmp_path / "runs", notebook_hash(notebook)
    _evidence(runs, h)
    for settings in runs.glob("*backtest*/results/settings.json"):
        settings.unlink()
    gates = _gates(evaluate(notebook, "paper", settings=SETTINGS, root=runs))
    assert not gates["backtest"].passed
    assert "no results/settings.json recorded" in gates["backtest"].detail


def test_an_unknown_promoted_parameter_is_refused(notebook, tmp_path):
    with pytest.raises(ConfigError, match="unknown parameter 'fsat'"):
        evaluate(notebook, "paper", parameters={"fsat": 5}, settings=SETTINGS, root=tmp_path)
