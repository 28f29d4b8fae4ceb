"""The tutorial from data to a promoted paper session (notebooks/tutorials/
02_idea_to_paper.ipynb) runs to its end with papermill on the `workbench` kernel, and leaves
what it promises: the evidence runs, the deployment and a succeeded, supervised paper session
of it. (tests/test_notebooks.py runs the others.) The run starts with the test session, in
the background (tests/early_runs.py); this test waits for it and judges what it left."""

from __future__ import annotations

import json

import nbformat
import pytest

from tests import early_runs

pytestmark = pytest.mark.slow


@pytest.fixture
def tutorial(jupyter_env, tmp_path_factory) -> early_runs.EarlyRun:
    return early_runs.tutorial(jupyter_env, tmp_path_factory)  # started with the session


def test_idea_to_paper_runs_to_a_succeeded_session_of_its_deployment(tutorial):
    proc, workbench_home, out = tutorial.wait(), tutorial.home, tutorial.output
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
