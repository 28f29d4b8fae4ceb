"""The workbench kernel's process (workbench.kernel_launcher) and the kernel a command
starts early (workbench.execution.kernels): real kernels of the project's kernelspec."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from jupyter_core.utils import run_sync

from workbench.execution import kernels


@pytest.fixture
def kernel_env(jupyter_env, monkeypatch):
    """This process's environment pointed at the private kernelspec of ``jupyter_env``."""
    for key in ("JUPYTER_DATA_DIR", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH"):
        monkeypatch.setenv(key, jupyter_env[key])
    yield
    kernels.discard_early()


def _run(kc, code: str) -> str:
    """Execute ``code`` in the kernel; its stdout."""
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))

    reply = run_sync(kc.execute_interactive)(code, output_hook=hook, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def _started(tmp_path):
    kernels.start_early(tmp_path)
    km = kernels.take_early(tmp_path, "workbench")
    assert km is not None, "the kernel started early was not taken"
    kc = km.client()
    kc.start_channels()
    run_sync(kc.wait_for_ready)(timeout=60)
    return km, kc


def _end(km, kc) -> None:
    kc.stop_channels()
    run_sync(km.shutdown_kernel)(now=False)  # as the runner ends a run: asked, waited for
    kernels.remove_sockets(km)


def test_workbench_kernel_preloads_workbench_and_flushes_files_at_its_quick_end(
        kernel_env, tmp_path):
    km, kc = _started(tmp_path)
    pid = km.provisioner.pid
    assert "workbench.kernel_launcher" in " ".join(psutil.Process(pid).cmdline())
    # workbench was imported before the first cell, into sys.modules only
    assert _run(kc, "import sys; print('workbench' in sys.modules, 'workbench' in dir())"
                ).split() == ["True", "False"]
    kept, handler = tmp_path / "kept.txt", tmp_path / "atexit.txt"
    # a file a cell leaves open (kept alive past IPython's namespace reset) and an atexit
    # handler of the notebook's: both must have done their work when the process ends
    _run(kc, f"import atexit, builtins\n"
             f"builtins._kept = open({str(kept)!r}, 'w'); builtins._kept.write('buffered')\n"
             f"atexit.register(lambda: open({str(handler)!r}, 'w').write('ran'))")
    assert kept.read_text() == ""  # still in the file object's buffer
    _end(km, kc)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert kept.read_text() == "buffered"
    assert handler.read_text() == "ran"


def _gone(pid: int, within: float = 10.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_an_early_kernel_is_taken_only_as_the_run_would_start_its_own(
        kernel_env, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    kernels.start_early(tmp_path)
    pid = kernels._early[0].km.provisioner.pid
    assert kernels.take_early(other, "workbench") is None  # another working folder
    assert _gone(pid)

    kernels.start_early(tmp_path)
    pid = kernels._early[0].km.provisioner.pid
    monkeypatch.setenv("WORKBENCH_MAX_COMBINATIONS", "5")  # the environment changed since
    assert kernels.take_early(tmp_path, "workbench") is None
    assert _gone(pid)
    monkeypatch.delenv("WORKBENCH_MAX_COMBINATIONS")

    kernels.start_early(tmp_path)
    pid = kernels._early[0].km.provisioner.pid
    assert kernels.take_early(tmp_path, "python3") is None  # another kernel
    assert _gone(pid)

    kernels.start_early(tmp_path)  # never taken (a refused parameter): shut down
    pid = kernels._early[0].km.provisioner.pid
    sockets = kernels._early[0].km._sockets
    kernels.discard_early()
    assert _gone(pid)
    assert not os.path.exists(sockets)
    assert kernels.take_early(tmp_path, "workbench") is None


def test_the_early_kernel_gets_the_arguments_nbclient_would_give_it():
    """nbclient adds --HistoryManager.hist_file only for kernels named python/python3; the
    early start adds nothing, so the two starts are the same while the name is ours."""
    import nbformat
    from nbclient import NotebookClient

    client = NotebookClient(nbformat.v4.new_notebook(), kernel_name="workbench")
    km = client.create_kernel_manager()
    assert not km.ipykernel
    assert client.extra_arguments == []


def test_a_runs_cells_stay_out_of_the_users_ipython_history(kernel_env, tmp_path):
    """nbclient keeps a python3 kernel's cells out of ~/.ipython's history; the workbench
    kernel (ipykernel under another name) gets the same, started early or by the run."""
    km, kc = _started(tmp_path)
    try:
        assert _run(kc, "print(get_ipython().history_manager.hist_file)").strip() == \
            kernels.NO_HISTORY
    finally:
        _end(km, kc)
    late = kernels.IpcKernelManager(kernel_name="workbench")
    assert late.ipykernel  # what nbclient reads before it starts a kernel itself
