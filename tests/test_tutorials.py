"""The tutorial from data to a promoted paper session runs to its end with papermill on the
`workbench` kernel, and leaves what it promises: the evidence runs, the deployment and a
succeeded, supervised paper session of it. (tests/test_notebooks.py runs the others.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

TUTORIAL = ROOT / "notebooks" / "tutorials" / "02_idea_to_paper.ipynb"

pytestmark = pytest.mark.slow


def test_idea_to_paper_runs_to_a_succeeded_session_of_its_deployment(jupyter_env,
                                                                      workbench_home, tmp_path):
    out = tmp_path / TUTORIAL.name
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home)}
    env = {k: v for k, v in env.items() if not k.startswith("WORKBENCH__")}
    papermill = Path(sys.executable).parent / "papermill"
    proc = subprocess.run([str(papermill), str(TUTORIAL), str(out), "-k", "workbench",
                           "--cwd", str(TUTORIAL.parent), "--log-level", "ERROR"],
                          env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(out, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)  # ran to the end
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    plots = [o for c in code for o in c.get("outputs", [])
             if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plots) >= 4  # prices, backtest, heatmap, walk-forward, session equity

    deployments = [json.loads(p.read_text())
                   for p in (workbench_home / "deployments").glob("*.json")]
    assert len(deployments) == 1
    dep = deployments[0]
    assert dep["status"] == "active" and dep["mode"] == "paper"
    assert dep["parameters"]["timeframe"] == "1Min" and all(g["passed"] for g in dep["gates"])
    manifests = [json.loads(p.read_text()) for p in (workbench_home / "runs").glob("*/manifest.json")]
    by_kind = {m["kind"]: m for m in manifests}
    assert sorted(by_kind) == ["backtest", "parity", "session", "walk_forward"]
    assert {m["outcome"] for m in manifests} == {"succeeded"}
    assert {m["notebook"]["hash"] for m in manifests} == {dep["notebook_hash"]}
    session = by_kind["session"]
    assert session["mode"] == "paper"
    assert {k: session["params"][k] for k in dep["parameters"]} == dep["parameters"]
    run = workbench_home / "runs" / session["run_id"]
    assert "--- supervisor: attempt 0" in (run / "session.log").read_text()
    assert (run / "notebook.ipynb").is_file()
    assert f"session record: {run}" in "".join(
        o.get("text", "") for o in code[-1].get("outputs", []))
