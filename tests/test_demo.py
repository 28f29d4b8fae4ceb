"""`make demo`'s job (`workbench demo`): issue 9's whole path on synthetic data. One demo run,
as a real process, shared with tests/test_readme.py (tests/demo_run.py)."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from tests.demo_run import demo_run

pytestmark = pytest.mark.slow

STEPS = ("data", "research", "evidence", "promote", "session", "records")


@pytest.fixture(scope="module")
def demo(jupyter_env, tmp_path_factory):
    run = demo_run(jupyter_env, tmp_path_factory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _manifests(home):
    return {p.name: json.loads((p / "manifest.json").read_text())
            for p in sorted((home / "runs").iterdir())}


def test_each_step_prints_one_progress_line_with_its_elapsed_time(demo):
    progress = [line for line in demo.stdout.splitlines() if line.startswith("[")]
    names = [re.match(r"\[\s*(\d+\.\d) s\] (\w+): ", line) for line in progress]
    assert all(names), progress
    assert [m.group(2) for m in names] == list(STEPS)
    elapsed = [float(m.group(1)) for m in names]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0
    assert all(re.search(r": done in \d+\.\d s", line) for line in progress[:-1])


def test_the_records_of_every_run_are_left_and_succeeded(demo):
    runs = _manifests(demo.home)
    kinds = sorted(m["kind"] for m in runs.values())
    assert kinds == ["backtest", "backtest", "parity", "session", "sweep", "walk_forward"]
    assert {m["outcome"] for m in runs.values()} == {"succeeded"}
    assert len({m["notebook"]["hash"] for m in runs.values()}) == 1  # one notebook's code
    for run_id, manifest in runs.items():
        path = demo.home / "runs" / run_id
        assert f"{path}" in demo.stdout  # printed where it is
        executed = nbformat.read(path / "notebook.ipynb", as_version=4)
        assert not [o for c in executed.cells for o in c.get("outputs", [])
                    if o.get("output_type") == "error"]
    sweep = next(demo.home / "runs" / k for k, m in runs.items() if m["kind"] == "sweep")
    best = json.loads((sweep / "results" / "best.json").read_text())["params"]
    assert re.search(rf"best by sharpe: fast={best['fast']}, slow={best['slow']}, Sharpe "
                     r"-?\d+\.\d\d; DSR \d\.\d{3}, PBO \d\.\d{3}", demo.stdout)
    promoted = {"timeframe": "1Min", **best}
    evidence = [m for m in runs.values() if m["kind"] in ("walk_forward", "parity")]
    evidence += [m for m in runs.values() if m["kind"] == "backtest"
                 and m["params"].get("timeframe") == "1Min"]
    assert len(evidence) == 3
    for manifest in evidence:  # the gates' evidence is of the promoted parameters
        assert {k: manifest["params"][k] for k in promoted} == promoted


def test_the_deployment_is_what_the_supervised_session_ran(demo):
    deployments = [json.loads(p.read_text()) for p in (demo.home / "deployments").glob("*.json")]
    assert len(deployments) == 1
    dep = deployments[0]
    assert dep["status"] == "active" and dep["mode"] == "paper" and dep["broker"] == "sim"
    assert all(g["passed"] for g in dep["gates"])
    assert f"deployed: {dep['id']} (paper, sim)" in demo.stdout
    for gate in ("backtest", "oos_sharpe", "oos_drawdown", "parity", "lookahead"):
        assert re.search(rf"pass  {gate} ", demo.stdout), gate
    assert "min_oos_sharpe -100, max_oos_drawdown 1 for this promotion only" in demo.stdout
    session_id, session = next((k, m) for k, m in _manifests(demo.home).items()
                               if m["kind"] == "session")
    assert session["mode"] == "paper" and session["notebook"]["hash"] == dep["notebook_hash"]
    assert {k: session["params"][k] for k in dep["parameters"]} == dep["parameters"]
    assert session["params"]["replay_date"] == "2025-12-31"
    path = demo.home / "runs" / session_id
    assert "--- supervisor: attempt 0" in (path / "session.log").read_text()
    events = [json.loads(line)["type"] for f in sorted((path / "events").glob("*.jsonl"))
              for line in f.read_text().splitlines()]
    assert events[-1] == "session_end" and "fill" in events
    pnl = re.search(r"equity ([\d,.]+) -> ([\d,.]+): P&L (-?[\d,.]+) \(realized incl\. fees "
                    r"(-?[\d,.]+), unrealized (-?[\d,.]+)\)", demo.stdout)
    start, end, total, realized, unrealized = (float(g.replace(",", "")) for g in pnl.groups())
    assert abs(end - start - total) < 0.011 and abs(realized + unrealized - total) < 0.011
    assert re.search(r"orders [1-9]\d*, fills [1-9]\d*, open positions \d+, risk state active",
                     demo.stdout)


def test_it_says_how_to_look_at_the_records(demo):
    session = next(demo.home / "runs" / k for k, m in _manifests(demo.home).items()
                   if m["kind"] == "session")
    assert "workbench status" in demo.stdout and "workbench deployments" in demo.stdout
    assert f"jupyter lab {session / 'notebook.ipynb'}" in demo.stdout
    last = demo.stdout.rstrip("\n").splitlines()[-1]  # it ends with the dashboard's command
    assert re.search(r"WORKBENCH_HOME=\S+ workbench dashboard .* http://127\.0\.0\.1:8866/"
                     r"voila/render/monitor\.ipynb\?token=", last), last


def test_a_failing_step_stops_the_demo_naming_the_record(jupyter_env, workbench_home, tmp_path,
                                                         monkeypatch):
    """A notebook whose data cell raises: the research runs fail, the demo stops there."""
    import workbench.demo as demo_module
    from tests.conftest import ROOT
    from workbench.demo import DemoFailed, run_demo

    nb = nbformat.read(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb", as_version=4)
    data_cell = next(c for c in nb.cells if "wb.data.load(" in c.source)
    data_cell.source = 'raise RuntimeError("planted failure")\n' + data_cell.source
    broken = tmp_path / "sma_cross.ipynb"
    nbformat.write(nb, broken)
    monkeypatch.setattr(demo_module, "DEMO_NOTEBOOK", broken)
    # the research fails at its data cell: the bars' size proves nothing here (the demo's
    # 20 symbols x 500 days and 5 minute days are the shared run's, above)
    monkeypatch.setattr(demo_module, "DEMO_SYMBOLS", 2)
    monkeypatch.setattr(demo_module, "DEMO_DAILY_DAYS", 60)
    monkeypatch.setattr(demo_module, "DEMO_MINUTE_DAYS", 1)
    monkeypatch.setenv("JUPYTER_DATA_DIR", jupyter_env["JUPYTER_DATA_DIR"])
    monkeypatch.setenv("JUPYTER_PATH", "")
    lines: list[str] = []
    with pytest.raises(DemoFailed) as failed:
        run_demo(echo=lines.append)
    message = str(failed.value)
    assert "\n" not in message and "RuntimeError: planted failure" in message
    assert re.match(r"research: the (backtest|sweep) run \S+ failed: ", message)
    assert re.search(r"look at \S+/runs/\S+/notebook\.ipynb$", message)
    assert any(" research: FAILED in " in x for x in lines)
    assert not any(x.startswith("[") and " evidence: " in x for x in lines)
    assert not (workbench_home / "deployments").exists()
