"""The kernels notebook runs execute in: on private Unix sockets, and one started early.

:class:`IpcKernelManager` is the kernel manager papermill's engine uses
(:mod:`workbench.execution.scrub`): the kernel listens on Unix sockets in a private
folder, and its own output reaches this process's stderr scrubbed.

**A kernel started early** (:func:`start_early`, issue 11's cold start): a command that will
run a notebook (``workbench backtest``, ``sweep``, ``parity``) starts the kernel as soon as
it knows the notebook's folder, before it checks the parameters, creates the run record and
imports papermill; on a 2-core machine the kernel boots (and, with
:mod:`workbench.kernel_launcher`, imports workbench) on the other core meanwhile. The engine
takes it (:func:`take_early`) only if it was started as the run would start its own: the
same kernel name, the same working folder, this process's environment unchanged since (a
sweep's size limits reach the kernel through it) and the kernel still alive. Otherwise it
is shut down and the engine starts a kernel of its own, as without the early start. A
command that ends without running the notebook (a refused parameter) shuts it down at
exit (:func:`discard_early`, also an ``atexit`` handler). The kernel is started with the
arguments nbclient would give it (none beyond the kernelspec's for a kernel not named
python/python3: a test compares them).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import CaselessStrEnum

from workbench.secrets import redact

__all__ = ["NO_HISTORY", "IpcKernelManager", "discard_early", "start_early", "take_early"]

#: IPython's history file for run kernels: in memory, gone with the kernel (as nbclient gives
#: the python3 kernel)
NO_HISTORY = ":memory:"


class IpcKernelManager(AsyncKernelManager):
    """Kernels on Unix sockets in a private temporary folder (mode 0700, removed with the
    kernel by :class:`_Client`, dead or alive), not on TCP ports of localhost that any
    local process can reach (jupyter_client's own ipc default is ``kernel-ipc-N`` in the
    working folder, shared by runs of notebooks in one folder). The kernel's own stdout and
    stderr (ipykernel echoes there what a cell writes to file descriptors 1 and 2) reach
    this process's stderr only through :func:`_forward`, scrubbed."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    _sockets: str | None = None

    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        if self._sockets is None:
            self._sockets = tempfile.mkdtemp(prefix="workbench-kernel-")
        return os.path.join(self._sockets, "kernel")

    async def _async_finish_shutdown(self, waittime: float | None = None,
                                     pollinterval: float = 0.1, restart: bool = False) -> None:
        # jupyter_client looks whether the kernel has exited every 0.1 s: half of that,
        # on average, after every run's end (the workbench kernel ends in ~0.1 s)
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.01), restart)

    @property
    def ipykernel(self) -> bool:
        """The workbench kernel is ipykernel too (nbclient reads this to keep a run's cells
        out of the user's IPython history)."""
        return super().ipykernel or self.kernel_name == "workbench"

    async def start_kernel(self, **kw: Any) -> None:
        if self.ipykernel:  # a run's cells are not the user's typing: no IPython history
            kw.setdefault("extra_arguments", [f"--HistoryManager.hist_file={NO_HISTORY}"])
        read, write = os.pipe()
        kw.setdefault("stdout", write)
        kw.setdefault("stderr", write)
        try:
            await super().start_kernel(**kw)
        finally:
            os.close(write)  # the kernel holds its own copy: end of file when it exits
            threading.Thread(target=_forward, args=(read,), daemon=True,
                             name="kernel-output").start()


def _forward(fd: int) -> None:
    """Copy the kernel's output lines to stderr, every secret masked, until it exits."""
    with os.fdopen(fd, "rb") as stream:
        for line in stream:
            try:
                sys.stderr.write(redact(line.decode("utf-8", "replace")))
                sys.stderr.flush()
            except (OSError, ValueError):  # stderr closed: keep draining the pipe
                pass



def remove_sockets(km: Any) -> None:
    """Remove the private folder of a kernel's sockets (dead or alive)."""
    sockets = getattr(km, "_sockets", None)
    if sockets:
        shutil.rmtree(sockets, ignore_errors=True)


@dataclass
class _Early:
    km: IpcKernelManager
    kernel_name: str
    cwd: Path
    env: dict[str, str]


_early: list[_Early] = []  # at most one


def start_early(cwd: str | Path, kernel_name: str = "workbench") -> None:
    """Start the kernel a notebook run in ``cwd`` will need; nothing if it cannot start
    (the run then starts its own and reports why it cannot)."""
    discard_early()
    folder = Path(cwd).resolve()
    km = IpcKernelManager(kernel_name=kernel_name)
    try:
        run_sync(km.start_kernel)(cwd=str(folder))
    except Exception:  # noqa: BLE001 - the run's own start says what is wrong
        remove_sockets(km)
        return
    if not _early:
        atexit.register(discard_early)
    _early.append(_Early(km, kernel_name, folder, dict(os.environ)))


def take_early(cwd: str | Path, kernel_name: str) -> IpcKernelManager | None:
    """The kernel started early, if it is the kernel the run would start now; else None
    (a kernel started early and not taken is shut down)."""
    if not _early:
        return None
    early = _early.pop()
    same = (early.kernel_name == kernel_name and early.cwd == Path(cwd).resolve()
            and early.env == dict(os.environ))
    if same and run_sync(early.km.is_alive)():
        return early.km
    _shut(early.km)
    return None


def discard_early() -> None:
    """Shut down a kernel started early and never taken."""
    while _early:
        _shut(_early.pop().km)


def _shut(km: IpcKernelManager) -> None:
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)  # it ran no code: nothing to end cleanly
    except Exception:  # noqa: BLE001, S110 - gone already
        pass
    finally:
        remove_sockets(km)
