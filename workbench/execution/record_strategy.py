"""The strategy a run traded or backtested, from its record's notebook, if the notebook's
code is still the run's.

A record keeps its notebook's path and code hash (``manifest.json``'s ``notebook``). The
strategy is the notebook's ``@wb.strategy`` cells, executed alone (no data cell, no
``wb.run``), only when the notebook still hashes as the run's: a changed notebook is
another strategy, and replaying it would report drift or results the run never had.
``workbench drift`` and the research and drift pages use this one function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import DataError
from workbench.execution.hashing import hash_of, read_notebook
from workbench.fsutil import read_json
from workbench.strategy import Strategy

__all__ = ["record_strategy"]


def record_strategy(run_dir: Path | str, name: str | None = None) -> Strategy:
    """The strategy ``name`` (None: the manifest's) of the record at ``run_dir``."""
    manifest = read_json(Path(run_dir) / "manifest.json")
    if not isinstance(manifest, dict):
        raise DataError(f"{run_dir}: no readable manifest.json; not a run record")
    run_id = manifest.get("run_id", Path(run_dir).name)
    book = manifest.get("notebook") or {}
    path, wanted = book.get("path"), book.get("hash")
    name = name or manifest.get("strategy")
    if not path or not wanted:
        raise DataError(f"run {run_id}: its record names no notebook and hash; its strategy "
                        "cannot be replayed")
    if not Path(path).is_file():
        raise DataError(f"run {run_id}: its notebook {path} is gone; its strategy cannot be "
                        "replayed")
    notebook = read_notebook(path)
    if hash_of(notebook) != wanted:
        raise DataError(f"{path} has changed since run {run_id} (its code no longer hashes "
                        "as the run's): the strategy that ran is not this one")
    namespace: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and "@wb.strategy" in text:
            exec(compile(text, f"{Path(path).name}:strategy", "exec"), namespace)  # noqa: S102
    found = [v for v in namespace.values() if isinstance(v, Strategy)
             and (name is None or v.name == name)]
    if len(found) != 1:
        raise DataError(f"{path}: {len(found)} strategies named {name!r} in its @wb.strategy "
                        "cells; cannot tell which one the run used")
    return found[0]
