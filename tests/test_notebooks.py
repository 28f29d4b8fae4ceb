"""Every notebook in notebooks/ runs top to bottom with papermill on small data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

ALL = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
# notebooks executed by a test of their own, which checks what they leave behind (run once)
OWN_TEST = {"tutorials/02_idea_to_paper.ipynb": "tests/test_tutorials.py"}
NOTEBOOKS = [p for p in ALL if str(p.relative_to(ROOT / "notebooks")) not in OWN_TEST]



def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


def test_each_notebook_left_out_here_has_its_own_test():
    for name, test in OWN_TEST.items():
        assert (ROOT / "notebooks" / name) in ALL, name
        assert name.split("/")[-1] in (ROOT / test).read_text(), (name, test)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_executes(notebook, jupyter_env, workbench_home, tmp_path):
    nb = nbformat.read(notebook, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "no parameters cell"
    out = tmp_path / notebook.name
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home)}
    papermill = Path(sys.executable).parent / "papermill"
    proc = subprocess.run([str(papermill), str(notebook), str(out), "-k", "workbench",
                           "--cwd", str(notebook.parent), "--log-level", "ERROR"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
