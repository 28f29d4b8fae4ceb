"""Every notebook in notebooks/ runs top to bottom with papermill on small data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

ALL = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
# notebooks executed by a test of their own, which checks what they leave behind (run once)
OWN_TEST = {"tutorials/02_idea_to_paper.ipynb": "tests/test_tutorials.py",
            # Voila pages, not papermill runs (no parameters; a preheated kernel's last cell
            # waits for its page's request): rendered in Chromium by their own tests
            "dashboards/monitor.ipynb": "tests/test_dashboard_monitor.py",
            "dashboards/research.ipynb": "tests/test_dashboard_research.py",
            "dashboards/drift.ipynb": "tests/test_dashboard_research.py"}
NOTEBOOKS = [p for p in ALL if str(p.relative_to(ROOT / "notebooks")) not in OWN_TEST]



def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


def test_each_notebook_left_out_here_has_its_own_test():
    for name, test in OWN_TEST.items():
        assert (ROOT / "notebooks" / name) in ALL, name
        assert name.split("/")[-1] in (ROOT / test).read_text(), (name, test)


@pytest.fixture(scope="module")
def executions(jupyter_env, tmp_path_factory):
    """Every notebook's papermill run, all started at once (each in a home of its own: they
    share nothing, and their kernels overlap); each test waits for its own."""
    papermill = Path(sys.executable).parent / "papermill"
    running = {}
    for notebook in NOTEBOOKS:
        where = tmp_path_factory.mktemp(notebook.stem)
        (where / "home").mkdir()
        env = {k: v for k, v in jupyter_env.items() if not k.startswith("WORKBENCH__")
               and k not in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "WORKBENCH_CONFIG")}
        out = where / notebook.name
        running[notebook] = (out, subprocess.Popen(
            [str(papermill), str(notebook), str(out), "-k", "workbench", "--cwd",
             str(notebook.parent), "--log-level", "ERROR"],
            env={**env, "WORKBENCH_HOME": str(where / "home")}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True))
    yield running
    for _, proc in running.values():
        if proc.poll() is None:  # its test did not wait for it: it and its kernel go
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_executes(notebook, executions):
    nb = nbformat.read(notebook, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "no parameters cell"
    out, proc = executions[notebook]
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
