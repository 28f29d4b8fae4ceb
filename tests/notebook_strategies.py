"""Tests' way to hold a strategy notebook's strategy in-process: the code cells that define a
``@wb.strategy`` function, executed in a fresh namespace. Test support only: the product runs
the whole notebook with papermill (``workbench backtest|sweep|parity|session``)."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks" / "strategies"


def strategy_of(notebook: str | Path, name: str | None = None):
    """The strategy a notebook defines (``name``: the one of that name)."""
    from workbench.strategy import Strategy

    path = Path(notebook)
    if not path.is_absolute() and not path.exists():
        path = NOTEBOOKS / (str(notebook) if str(notebook).endswith(".ipynb") else f"{notebook}.ipynb")
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "@wb.strategy" in cell.source:
            exec(compile(cell.source, f"{path.name}:strategy", "exec"), namespace)
    found = [v for v in namespace.values() if isinstance(v, Strategy)]
    if name is not None:
        found = [s for s in found if s.name == name]
    if len(found) != 1:
        raise LookupError(f"{path.name}: {len(found)} strategies match {name!r}")
    return found[0]
