"""The executed notebook, written scrubbed: no credential value ever reaches the disk.

papermill writes the output notebook after every cell and, during a long cell, every
``autosave_cell_every`` seconds; each of those writes would hold whatever the kernel printed,
a credential included. This module registers a papermill engine, :data:`ENGINE`, whose every
save goes through :func:`write_scrubbed`: each secret value present in the environment
(:mod:`workbench.secrets`) is masked in outputs, tracebacks, sources, the injected parameters
and metadata, then the file is written to a temporary name, fsynced and renamed
(:func:`workbench.fsutil.atomic_write`), so a reader (a dashboard showing progress) sees a
whole notebook or the previous one, never a torn or unscrubbed one.

The engine also skips research-only cells: given ``run_mode`` (the mode injected into the
notebook), every code cell tagged ``research`` (:func:`workbench.execution.hashing.research_cells`)
is skipped in any mode but "research": it keeps its source, gets no execution count and one
stream output saying it was skipped in that mode (:func:`skip_note`), and its papermill
status is "skipped". A notebook without the tag runs every cell.

Use it through :func:`workbench.execution.run.execute_run`; it takes the output path as
``scrubbed_output`` (papermill itself is given no output path, so it writes nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.execution import defer_iri_grammar

defer_iri_grammar()  # before nbformat's first import (see workbench.execution)

import nbformat
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_output
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import (
    NBClientEngine,
    NotebookExecutionManager,
    catch_nb_assignment,
    papermill_engines,
)
from papermill.log import logger

from workbench.execution.hashing import RESEARCH_MODE, RESEARCH_TAG, research_cells
from workbench.execution.kernels import IpcKernelManager, remove_sockets, take_early
from workbench.fsutil import atomic_write
from workbench.secrets import redact, redact_tree

__all__ = ["ENGINE", "SKIPPED", "scrub", "skip_note", "write_scrubbed"]

ENGINE = "workbench-scrubbed"
SKIPPED = "skipped"  # the papermill status of a cell the mode does not run


def skip_note(mode: str) -> str:
    """The output a skipped research-only cell shows in the executed notebook."""
    return (f"[workbench] skipped in mode {mode}: this cell is tagged {RESEARCH_TAG!r}, "
            f"research-only cells run only in mode {RESEARCH_MODE!r}\n")


def scrub(nb: Any) -> nbformat.NotebookNode:
    """A copy of notebook ``nb`` with every secret value from the environment masked."""
    return nbformat.from_dict(redact_tree(_plain_tree(nb)))


def _plain_tree(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _plain_tree(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_plain_tree(v) for v in tree]
    return tree


def write_scrubbed(nb: Any, path: str | Path) -> None:
    """Write notebook ``nb`` to ``path`` scrubbed, atomically (replacing an older save)."""
    text = redact(nbformat.writes(scrub(nb)))  # the text too: a value split across fields
    data = text.encode("utf-8")
    atomic_write(Path(path), lambda p: p.write_bytes(data), overwrite=True)


class _ScrubbingManager(NotebookExecutionManager):
    """papermill's execution manager, saving through :func:`write_scrubbed`."""

    @catch_nb_assignment
    def save(self, **kwargs: Any) -> None:
        if self.output_path:
            write_scrubbed(self.nb, self.output_path)
        self.last_save_time = self.now()


class _Client(PapermillNotebookClient):
    """papermill's client; a run that ends by a timeout, a dead kernel or an interrupt kills
    its kernel at once instead of asking a hung kernel to shut down and waiting."""

    skip: frozenset[int] = frozenset()  # indexes of the cells not to run
    skip_mode = ""

    def papermill_execute_cells(self) -> None:
        try:
            self._execute_cells()
        except BaseException:
            self.shutdown_kernel = "immediate"
            raise

    def _execute_cells(self) -> None:
        """papermill's loop (each cell started, executed, completed and saved; the first
        failure ends it), with the cells in :attr:`skip` skipped, said in their output."""
        for index, cell in enumerate(self.nb.cells):
            if index in self.skip:
                cell.execution_count = None
                cell.outputs = [new_output("stream", name="stdout",
                                           text=skip_note(self.skip_mode))]
                cell.metadata.papermill["status"] = SKIPPED
                continue
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
            except CellExecutionError as ex:
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
                break
            finally:
                self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    def _cleanup_kernel(self) -> None:
        km = self.km
        try:
            super()._cleanup_kernel()
        finally:
            remove_sockets(km)


class ScrubbingEngine(NBClientEngine):
    """papermill's nbclient engine with the scrubbing manager, the client above, kernels on
    Unix sockets, and no progress bar."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None,
                                 skip=(), skip_mode="", **kwargs):
        kwargs.pop("input_path", None)
        kwargs.pop("startup_timeout", None)
        kwargs.pop("timeout", None)
        kwargs.setdefault("kernel_manager_class", IpcKernelManager)
        # a kernel the command started early, if it is the one this run would start here
        # (papermill has moved to the run's folder): the client ends it as its own
        early = take_early(Path.cwd(), kernel_name)
        client = _Client(nb_man, km=early, timeout=execution_timeout,
                         startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                         log_output=log_output, stdout_file=stdout_file,
                         stderr_file=stderr_file, **kwargs)
        client.skip, client.skip_mode = frozenset(skip), skip_mode
        return client.execute(cleanup_kc=True)

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=False,
                         log_output=False, autosave_cell_every=30, *,
                         scrubbed_output: str | Path, source_path: str,
                         run_mode: str | None = None, **kwargs):
        """papermill's entry point; ``run_mode``: the mode injected (None: run every cell)."""
        nb.metadata.papermill["input_path"] = source_path  # papermill recorded the node
        nb.metadata.papermill["output_path"] = str(scrubbed_output)
        manager = _ScrubbingManager(nb, output_path=str(scrubbed_output), progress_bar=False,
                                    log_output=log_output,
                                    autosave_cell_every=autosave_cell_every)
        manager.notebook_start()
        skip = research_cells(nb, run_mode) if run_mode is not None else []
        try:
            cls.execute_managed_notebook(manager, kernel_name, log_output=log_output,
                                         skip=skip, skip_mode=run_mode or "", **kwargs)
        finally:
            manager.cleanup_pbar()
            manager.notebook_complete()  # the final save, whatever happened
        return manager.nb


papermill_engines.register(ENGINE, ScrubbingEngine)
