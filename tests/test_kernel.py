"""`workbench kernel install` makes papermill run notebooks in the project interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat


def test_kernel_install_user_and_papermill_runs_in_project_env(tmp_path, workbench_cmd):
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"), "JUPYTER_PATH": ""}
    proc = subprocess.run([*workbench_cmd, "kernel", "install", "--user"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "jupyter" / "kernels" / "workbench" / "kernel.json").read_text())
    assert os.path.samefile(spec["argv"][0], sys.executable)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys, workbench\nprint(sys.prefix)")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    papermill = os.path.join(os.path.dirname(sys.executable), "papermill")
    run = subprocess.run([papermill, str(src), str(out), "-k", "workbench", "--log-level", "ERROR"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    printed = nbformat.read(out, as_version=4).cells[0].outputs[0]["text"].strip()
    assert printed == sys.prefix  # the project environment, not the launcher's


def test_committed_spec_is_portable():
    from workbench.kernelspec import render_spec, spec_source

    committed = json.loads(spec_source().read_text())
    assert committed["argv"][0] == "python"  # jupyter_client resolves it to the launcher
    assert committed["argv"][1:3] == ["-m", "workbench.kernel_launcher"]
    assert render_spec("/opt/x/python")["argv"][0] == "/opt/x/python"
