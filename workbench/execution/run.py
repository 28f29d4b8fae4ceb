"""A notebook run: papermill executes a notebook in a mode, and the run record says how it ended.

    record = prepare_run("notebooks/strategies/sma_cross.ipynb", kind="backtest",
                         mode="backtest", params={"fast": 5})        # runs/<run_id>/, "running"
    run = execute_run(record.path, timeout=600)                      # the kernel does the work
    run.outcome, run.error, run.path / "notebook.ipynb"

    run_notebook(notebook, kind=..., mode=..., params=...)           # both, in this process
    python -m workbench.execution.child RUN_DIR [--timeout S]        # execute_run, in a child

``prepare_run`` checks the parameters (:func:`workbench.execution.params.check_parameters`)
before anything else, then creates the record (status "running") whose manifest holds the
notebook's path and hash (:func:`workbench.execution.hashing.notebook_hash`), the kind, the
mode and the parameters. ``execute_run`` runs the notebook with those parameters plus
``mode`` and ``run_dir`` injected into its ``parameters`` cell (only if its code still has
the hash recorded: an edited notebook fails the run, nothing executed), on the
``workbench`` kernel, in the notebook's folder, autosaving the output notebook
(``<run_dir>/notebook.ipynb``, scrubbed of credentials: :mod:`workbench.execution.scrub`)
so a long run shows progress.

Research-only cells (tagged ``research``) run in mode "research" only: in any other mode
the runner skips them (each shows a note saying so in the executed notebook), the manifest
lists them (``notebook.skipped_cells``: their indexes among the notebook's cells, from 0),
and a run that then fails on a name only a skipped cell defines says so in its error.

papermill records a raised cell but not a dead kernel or a timeout; the outcome is decided
here: success -> "succeeded"; a cell raised -> "failed" with the error's line; the kernel
died -> "failed" ("kernel died"); a cell ran past ``timeout`` -> "timeout"; Ctrl-C (or
SIGTERM in the child) -> "interrupted". A kernel that finished the record itself (a session
does) keeps its outcome, unless it wrote "succeeded" and papermill then failed: the failure
overrules it (:meth:`RunRecord.overrule`).
"""

from __future__ import annotations

import errno
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.clock import Clock, LiveClock
from workbench.errors import ConfigError
from workbench.execution import defer_iri_grammar
from workbench.execution.hashing import RESEARCH_TAG, hash_of, read_notebook, research_cells
from workbench.execution.params import check_parameters
from workbench.runs.records import RunRecord, load_manifest
from workbench.secrets import redact

__all__ = ["EXIT_CODES", "OUTPUT", "NotebookRun", "execute_run", "exit_code", "prepare_run",
           "run_notebook"]

OUTPUT = "notebook.ipynb"
AUTOSAVE_SECONDS = 10
# the exit code by outcome, the same for run, session, supervise and the child; 2-5 are the
# WorkbenchErrors' (usage/config, data, strategy, broker or lock), 6 a halted session
EXIT_CODES = {"succeeded": 0, "failed": 1, "halted": 6, "timeout": 124, "interrupted": 130}
KERNEL_DIED = "kernel died"


def exit_code(outcome: str) -> int:
    """The process exit code for a run's ``outcome`` (0 only for "succeeded")."""
    return EXIT_CODES.get(outcome, 1)


@dataclass(frozen=True)
class NotebookRun:
    """How a notebook run ended and where its record is."""

    run_id: str
    path: Path  # the run folder, runs/<run_id>/
    outcome: str  # succeeded | failed | timeout | interrupted | halted
    error: str | None
    kind: str
    mode: str
    notebook: str  # the notebook that ran
    output: Path | None  # the executed notebook in the record (None if none was written)
    seconds: float
    skipped: tuple[int, ...] = ()  # the research-only cells the mode skipped (indexes)

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(path=str(self.path), output=None if self.output is None else str(self.output),
                 skipped=list(self.skipped))
        return d


def _word(value: str, what: str) -> str:
    text = str(value).strip()
    if not text.replace("_", "").isalnum() or not text[:1].isalpha() or text.lower() != text:
        raise ConfigError(f"{what} {value!r} is not a lowercase word (e.g. backtest, paper)")
    return text


def check_mode(notebook: dict, name: str, mode: str, params: Mapping[str, Any]) -> None:
    """For a notebook (parsed, named ``name``) that ends with ``wb.run``: a mode it knows, and
    no ``params`` setting that only another mode uses (the notebook would leave it unused:
    refused, never ignored)."""
    from workbench.execution.hashing import code_cells
    from workbench.execution.mode_settings import MODES, foreign_settings, owners

    if not any("wb.run(" in source for source in code_cells(notebook)):
        return
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r} for {name} (wb.run): one of "
                          f"{', '.join(MODES)}")
    for setting in foreign_settings(mode, params):
        raise ConfigError(f"-p {setting}: a setting of mode {' and '.join(owners(setting))}, "
                          f"not of mode {mode!r}; it would go unused")


def prepare_run(notebook: str | Path, *, kind: str, mode: str,
                params: Mapping[str, Any] | None = None, clock: Clock | None = None,
                root: str | Path | None = None) -> RunRecord:
    """Check ``params`` against the notebook, then create its run record ("running")."""
    path = Path(notebook)
    checked = check_parameters(path, params or {})
    kind, mode = _word(kind, "kind"), _word(mode, "mode")
    notebook_json = read_notebook(path)
    check_mode(notebook_json, path.name, mode, checked)
    if mode in ("sweep", "walk_forward"):  # the grid's names are the strategy's: now, not
        from workbench.execution.strategy_names import check_grid_names  # in the kernel

        check_grid_names(path, checked.get("grid"), checked.get("constraint"))
    source = {"path": str(path.resolve()), "hash": hash_of(notebook_json),
              "skipped_cells": research_cells(notebook_json, mode)}
    return RunRecord.create(kind, path.stem, checked, mode, None, clock or LiveClock(),
                            root=root, notebook=source)


def _one_line(text: Any) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return redact(lines[0] if lines else str(text).strip())


def _outcome(error: BaseException | None, timeout: float | None,
             kernel: str) -> tuple[str, str | None]:
    """(outcome, one-line error) for what ``papermill.execute_notebook`` raised."""
    defer_iri_grammar()
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if error is None:
        return "succeeded", None
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "interrupted"
    if isinstance(error, PapermillExecutionError):
        evalue = _one_line(error.evalue) if str(error.evalue).strip() else ""
        return "failed", f"{error.ename}: {evalue}" if evalue else error.ename
    if isinstance(error, DeadKernelError):
        return "failed", KERNEL_DIED
    if isinstance(error, (CellTimeoutError, TimeoutError)):
        return "timeout", f"a cell ran past the {timeout:g} s timeout" if timeout else "timeout"
    if isinstance(error, NotebookChanged):
        return "failed", str(error)
    if isinstance(error, NoSuchKernel):
        return "failed", (f"no Jupyter kernel named {kernel!r} "
                          "(install it: workbench kernel install)")
    if isinstance(error, RuntimeError) and "kernel died" in str(error).lower():
        return "failed", KERNEL_DIED
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "failed", f"disk full writing {error.filename or 'the run record'}: it stopped"
    return "failed", _one_line(f"{type(error).__name__}: {error}")


def _skip_hint(message: str | None, source: Path, mode: str, skipped: list[int]) -> str | None:
    """``message`` (a failed run's error) with, for a NameError, the research-only cells
    this mode skipped: the usual cause of a name that is not defined outside research."""
    found = re.match(r"NameError: name '(\w+)' is not defined", message or "")
    if not found or not skipped:
        return message
    try:
        cells = read_notebook(source).get("cells", [])
    except ConfigError:
        cells = []
    name = found.group(1)
    uses = [i for i in skipped if i < len(cells)
            and re.search(rf"\b{re.escape(name)}\b", "".join(cells[i].get("source", "")))]
    listed = ", ".join(str(i) for i in (uses or skipped))
    if uses:
        cause = (f"cell {listed}, which names {name!r}," if len(uses) == 1
                 else f"cells {listed}, which name {name!r},")
        return (f"{message} ({cause} tagged {RESEARCH_TAG!r}, skipped in mode {mode}: "
                "research-only cells run in mode research only)")
    return (f"{message} (cells {listed} tagged {RESEARCH_TAG!r} were skipped in mode {mode}: "
            "research-only cells run in mode research only)")


def _set_aside(output: Path) -> None:
    """A restarted run keeps its earlier attempt's notebook as notebook.attempt-N.ipynb."""
    if output.exists():
        n = 1
        while (aside := output.with_name(f"notebook.attempt-{n}.ipynb")).exists():
            n += 1
        output.rename(aside)


class NotebookChanged(Exception):
    """The notebook's code is not the code the run was prepared (and recorded) with."""


def _execute(source: Path, output: Path, parameters: dict, *, expected_hash: str, timeout,
             kernel, autosave, mode: str | None) -> None:
    defer_iri_grammar()
    import nbformat
    import papermill

    from workbench.execution.scrub import ENGINE

    node = nbformat.read(str(source), as_version=4)
    found = hash_of(node)
    if found != expected_hash:  # the hash recorded is the code that runs, or nothing runs
        raise NotebookChanged(f"the notebook changed after the run was prepared "
                              f"({found[:19]}, prepared {expected_hash[:19]})")
    # papermill's log ("Passed unknown parameter: mode", "Timeout waiting for execute
    # reply") says again what the outcome says
    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        papermill.execute_notebook(
            node, None, parameters=parameters, engine_name=ENGINE, kernel_name=kernel,
            language="python",
            progress_bar=False, log_output=False, cwd=str(source.parent),
            execution_timeout=None if timeout is None else math.ceil(timeout),
            autosave_cell_every=autosave, coalesce_streams=True,
            scrubbed_output=str(output), source_path=str(source), run_mode=mode)
    finally:
        quiet.setLevel(level)


def execute_run(run_dir: str | Path, *, timeout: float | None = None, kernel: str = "workbench",
                autosave: int = AUTOSAVE_SECONDS, clock: Clock | None = None,
                resumable: bool = False) -> NotebookRun:
    """Execute the prepared run in ``run_dir`` and record its outcome (see the module doc).

    ``resumable`` (a supervised session): when the kernel of a session dies before the
    session closed its record, the record is left "running" so that the supervisor resumes
    the same run (its journal replayed and reconciled with the broker before it trades);
    the returned run says failed, "kernel died", and nothing is recorded."""
    run_dir = Path(run_dir).resolve()
    clock = clock or LiveClock()
    manifest = load_manifest(run_dir)  # ConfigError: no run record there
    if manifest.get("status") != "running":
        raise ConfigError(f"run {manifest.get('run_id')} has ended ({manifest.get('outcome')}); "
                          "a run is executed once: prepare a new one")
    record = RunRecord.open(run_dir, clock)
    source = (manifest.get("notebook") or {}).get("path")
    expected = (manifest.get("notebook") or {}).get("hash")
    if not source or not expected:
        raise ConfigError(f"run {record.run_id} is not a notebook run "
                          "(no notebook in its manifest)")
    source = Path(source)
    if not source.is_file():
        raise ConfigError(f"run {record.run_id}: its notebook {source} is gone")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
    if autosave < 0:
        raise ConfigError(f"autosave must be >= 0 seconds (0: never), got {autosave}")
    parameters = {**(manifest.get("params") or {}), "mode": manifest["mode"],
                  "run_dir": str(run_dir)}
    # the cells to skip were decided (and recorded) when the run was prepared; a record
    # from before research-only cells (no "skipped_cells") runs every cell, as it was made to
    skip_mode = manifest["mode"] if "skipped_cells" in manifest["notebook"] else None
    output = run_dir / OUTPUT
    _set_aside(output)
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        _execute(source, output, parameters, expected_hash=expected, timeout=timeout,
                 kernel=kernel, autosave=autosave, mode=skip_mode)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every way a run ends is recorded
        error = e
    seconds = round(time.perf_counter() - started, 3)
    outcome, message = _outcome(error, timeout, kernel)
    skipped = list((manifest.get("notebook") or {}).get("skipped_cells") or [])
    message = _skip_hint(message, source, manifest["mode"], skipped)
    if (resumable and message == KERNEL_DIED and manifest.get("kind") == "session"
            and load_manifest(run_dir).get("status") == "running"):
        return NotebookRun(
            run_id=manifest["run_id"], path=run_dir, outcome=outcome,
            error=f"{KERNEL_DIED}; left running for its supervisor to resume",
            kind=manifest["kind"], mode=manifest["mode"], notebook=str(source),
            output=output if output.exists() else None, seconds=seconds, skipped=tuple(skipped))
    try:
        _record(run_dir, clock, outcome, message, seconds)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return NotebookRun(  # the record stays "running": `workbench status` shows it died
            run_id=manifest["run_id"], path=run_dir, outcome="failed",
            error=f"{message}; the record could not be closed (disk full: it stays running, "
                  "`workbench status` shows it died): free space, then restart it",
            kind=manifest["kind"], mode=manifest["mode"], notebook=str(source),
            output=output if output.exists() else None, seconds=seconds, skipped=tuple(skipped))
    final = load_manifest(run_dir)
    return NotebookRun(
        run_id=final["run_id"], path=run_dir, outcome=final["outcome"], error=final.get("error"),
        kind=final["kind"], mode=final["mode"], notebook=str(source),
        output=output if output.exists() else None, seconds=seconds, skipped=tuple(skipped))


def _record(run_dir: Path, clock: Clock, outcome: str, message: str | None,
            seconds: float) -> None:
    """Finish the record, or overrule the kernel's success by papermill's failure."""
    extra = {"notebook": OUTPUT, "seconds": seconds}
    record = RunRecord.open(run_dir, clock, finished=True)
    if not record.closed:
        record.finish(outcome, error=message, extra=extra)
    elif outcome != "succeeded" and record.manifest.get("outcome") == "succeeded":
        record.overrule(outcome, message)


def run_notebook(notebook: str | Path, *, kind: str, mode: str,
                 params: Mapping[str, Any] | None = None, timeout: float | None = None,
                 root: str | Path | None = None, kernel: str = "workbench",
                 clock: Clock | None = None) -> NotebookRun:
    """:func:`prepare_run` then :func:`execute_run`, in this process."""
    record = prepare_run(notebook, kind=kind, mode=mode, params=params, clock=clock, root=root)
    return execute_run(record.path, timeout=timeout, kernel=kernel, clock=clock)
