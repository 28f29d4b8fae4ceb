"""The deployments registry: one atomic JSON file per deployment, duplicates refused, retire,
unknown ids named with the closest ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.gate_reports import passed_report
from workbench.clock import SimClock
from workbench.deploy import registry as reg
from workbench.deploy.registry import Capital, Registry, get, list_deployments, register, retire
from workbench.errors import ConfigError
from workbench.execution.hashing import notebook_hash

ROOT = Path(__file__).resolve().parents[1]
SMA = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
GATES = [{"gate": "backtest", "value": "run-1", "limit": "a backtest ended well",
          "passed": True, "detail": ""},
         {"gate": "parity", "value": 0, "limit": "<= 0 mismatches", "passed": True,
          "detail": ""}]


def paper(notebook=SMA, **kw):
    """Register ``notebook`` with a passed report of its code for the mode and parameters."""
    args = {"mode": "paper", "capital": {"cash": 100_000},
            "parameters": {"fast": 10, "slow": 30},
            "clock": SimClock("2026-11-20 12:00"), **kw}
    if "gates" not in args:
        args["gates"] = passed_report(notebook, args["mode"], args["parameters"])
    return register(notebook, **args)


def test_register_writes_one_json_file_that_reads_back(workbench_home):
    dep = paper()
    assert dep.id.startswith("sma_cross-paper-") and len(dep.id.rsplit("-", 1)[1]) == 6
    path = workbench_home / "deployments" / f"{dep.id}.json"
    data = json.loads(path.read_text())
    assert data["notebook_hash"] == notebook_hash(SMA) and data["mode"] == "paper"
    assert data["parameters"] == {"fast": 10, "slow": 30} and data["broker"] == "sim"
    assert data["capital"] == {"cash": 100000.0, "canary": None}
    assert data["status"] == "active" and data["retired_at"] is None
    assert data["created_at"] == "2026-11-20T12:00:00Z"
    assert data["gates"] == GATES
    assert data["notebook"] == "notebooks/strategies/sma_cross.ipynb"
    assert get(dep.id) == dep and list_deployments() == [dep]
    assert sorted(p.name for p in path.parent.iterdir()) == [".registry.lock", path.name]


@pytest.mark.parametrize("gates", [
    GATES,                                                      # rows
    {"gate": "parity", "value": 0, "limit": 0, "passed": True},  # a mapping
    [type("Row", (), {"gate": "parity", "value": 0, "limit": 0, "passed": True})()],
    None,
])
def test_only_the_gates_report_registers(gates):
    with pytest.raises(ConfigError, match="gates must be the promotion gates' GateReport") as e:
        paper(gates=gates)
    assert "\n" not in str(e.value) and list_deployments() == []


def test_the_parameters_are_the_ones_the_gates_judged():
    report = passed_report(SMA, "paper", {"fast": 5})
    dep = register(SMA, mode="paper", capital=1000, gates=report)
    assert dep.parameters == {"fast": 5}
    with pytest.raises(ConfigError, match=r'the gate report judged parameters \{"fast": 5\}, '
                                          r'not \{"fast": 10\}'):
        register(SMA, mode="paper", capital=1000, gates=report, parameters={"fast": 10})
    assert [d.id for d in list_deployments()] == [dep.id]


def test_the_gates_report_is_taken_as_the_gates_module_builds_it(tmp_path):
    from workbench.deploy.gates import GateReport, GateResult

    copy = tmp_path / "sma_cross.ipynb"
    shutil.copy(SMA, copy)
    results = (GateResult("backtest", "1 run", ">= 1 run", True),
               GateResult("parity", 0, "<= 0", True, "newest parity run"))
    report = GateReport(str(copy), notebook_hash(copy), "paper", results,
                        {"fast": 10, "slow": 30})
    dep = paper(copy, gates=report)
    assert dep.gates[1] == {"gate": "parity", "value": 0, "limit": "<= 0", "passed": True,
                            "detail": "newest parity run"}
    with pytest.raises(ConfigError, match="for promotion to paper, not live"):
        paper(copy, gates=report, mode="live", broker="alpaca",
              capital={"cash": 1000, "canary": 0.1})
    copy.write_text(copy.read_text().replace("fast", "quick"))
    with pytest.raises(ConfigError, match="changed since the gates ran"):
        paper(copy, gates=report, parameters={"fast": 1})
    failing = GateReport(str(copy), notebook_hash(copy), "paper",
                         (GateResult("drift", 0.2, "<= 0.05", False),), {"fast": 1})
    with pytest.raises(ConfigError, match=r"gates failed: drift \(0.2 vs limit <= 0.05\)"):
        paper(copy, gates=failing, parameters={"fast": 1})
    with pytest.raises(ConfigError, match="holds no gate"):
        paper(copy, gates=GateReport(str(copy), notebook_hash(copy), "paper", (),
                                     {"fast": 1}), parameters={"fast": 1})


def test_a_failed_gate_registers_nothing(workbench_home):
    from workbench.deploy.gates import GateResult

    report = passed_report(SMA, "paper", {"fast": 10, "slow": 30})
    failing = type(report)(report.notebook, report.notebook_hash, "paper", (
        *report.results, GateResult("parity_mismatches", 3, "0", False)), report.parameters)
    with pytest.raises(ConfigError, match=r"gates failed: parity_mismatches \(3 vs limit 0\)"):
        paper(gates=failing)
    assert list_deployments() == []


def test_the_same_active_deployment_is_refused_naming_the_one_that_exists():
    first = paper()
    with pytest.raises(ConfigError, match=f"{first.id} already deploys this notebook") as e:
        paper(parameters={"slow": 30, "fast": 10})  # same parameters, other order
    assert f"workbench retire {first.id}" in str(e.value) and "\n" not in str(e.value)
    other = paper(parameters={"fast": 5, "slow": 30})
    live = paper(mode="live", broker="alpaca", capital={"cash": 50_000, "canary": 0.1})
    assert len({first.id, other.id, live.id}) == 3
    assert live.id.startswith("sma_cross-live-") and live.capital == Capital(50_000, 0.1)
    retire(first.id, "new version")
    again = paper()
    assert again.id != first.id and {d.id for d in list_deployments("active")} == \
        {other.id, live.id, again.id}


def test_an_edited_notebook_is_a_new_deployment(tmp_path):
    copy = tmp_path / "sma_cross.ipynb"
    shutil.copy(SMA, copy)
    gated = passed_report(copy, "paper", {"fast": 10, "slow": 30})
    first = paper(copy, gates=gated)
    nb = json.loads(copy.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["source"] = "".join(cell["source"]) + "\n# edited"
    copy.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="changed since the gates ran"):
        paper(copy, gates=gated)
    second = paper(copy)
    assert second.notebook_hash != first.notebook_hash
    assert second.notebook == str(copy.resolve())


@pytest.mark.parametrize("kw, message", [
    ({"mode": "live", "broker": "sim", "capital": {"cash": 1, "canary": 0.1}},
     "live deployment trades through alpaca"),
    ({"mode": "live", "broker": "alpaca"}, "canary fraction"),
    ({"capital": {"cash": 1000, "canary": 0.5}}, "canary fraction is for live"),
    ({"capital": {"cash": 1000, "canary": 1.5}}, "canary"),
    ({"capital": {"cash": -5}}, "cash"),
    ({"mode": "backtest"}, "mode must be 'paper' or 'live'"),
    ({"broker": "ib"}, "broker must be 'sim' or 'alpaca'"),
    ({"parameters": {"fast": object()}}, "parameters must be plain JSON"),
    ({"parameters": [1, 2]}, "parameters must be a mapping"),
    ({"gates": "all good"}, "gates must be the promotion gates' GateReport"),
])
def test_bad_registrations_are_one_line_errors(kw, message):
    with pytest.raises(ConfigError, match=message) as e:
        paper(**kw)
    assert "\n" not in str(e.value)
    assert list_deployments() == []


def test_a_missing_notebook_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such notebook"):
        paper(tmp_path / "nope.ipynb")


def test_retire_records_when_and_why_and_only_once(workbench_home):
    dep = paper()
    done = retire(dep.id, "drift too high", clock=SimClock("2026-11-25 21:00"))
    assert done.status == "retired" and done.retired_reason == "drift too high"
    assert pd.Timestamp(done.retired_at) == pd.Timestamp("2026-11-25 21:00", tz="UTC")
    data = json.loads((workbench_home / "deployments" / f"{dep.id}.json").read_text())
    assert data["status"] == "retired" and data["retired_at"] == "2026-11-25T21:00:00Z"
    assert data["notebook_hash"] == dep.notebook_hash and data["created_at"] == \
        "2026-11-20T12:00:00Z"
    assert list_deployments("active") == [] and list_deployments() == [done]
    assert list_deployments("retired") == [done]
    with pytest.raises(ConfigError, match="already retired at 2026-11-25 21:00 UTC"):
        retire(dep.id, "again")
    with pytest.raises(ConfigError, match="status must be"):
        list_deployments("gone")


def test_an_unknown_id_names_the_closest_ones():
    with pytest.raises(ConfigError, match="no deployments registered"):
        get("sma_cross-paper-000000")
    dep = paper()
    typo = dep.id[:-1] + ("0" if dep.id[-1] != "0" else "1")
    with pytest.raises(ConfigError, match=f"no deployment '{typo}' \\(closest: {dep.id}"):
        get(typo)
    with pytest.raises(ConfigError, match="closest"):
        retire(typo, "x")
    with pytest.raises(ConfigError, match="no deployment '../etc'"):
        get("../etc")


def test_an_id_collision_never_overwrites(monkeypatch):
    suffixes = iter(["abcdef", "abcdef", "123456"])
    monkeypatch.setattr(reg.secrets, "token_hex", lambda n: next(suffixes))
    first = paper()
    second = paper(parameters={"fast": 3, "slow": 9})
    assert (first.id, second.id) == ("sma_cross-paper-abcdef", "sma_cross-paper-123456")
    assert get(first.id).parameters == {"fast": 10, "slow": 30}


def test_a_corrupt_file_is_named(workbench_home):
    paper()
    (workbench_home / "deployments" / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json is unreadable"):
        list_deployments()


def test_concurrent_registrations_of_one_deployment_register_it_once(workbench_home):
    code = ("from workbench.deploy.registry import register\n"
            "from workbench.errors import ConfigError\n"
            "from tests.gate_reports import passed_report\n"
            "import sys\n"
            "try:\n"
            f"    register({str(SMA)!r}, mode='paper', capital={{'cash': 1000}},\n"
            f"             gates=passed_report({str(SMA)!r}, 'paper', {{'fast': 10}}))\n"
            "except ConfigError as e:\n"
            "    print(e); sys.exit(2)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
             for _ in range(4)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    outs = [p.stdout.read() for p in procs]
    assert codes == [0, 2, 2, 2], outs
    assert sum("already deploys this notebook" in o for o in outs) == 3
    assert len(Registry().list()) == 1
