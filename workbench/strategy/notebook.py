"""Load a strategy from its research notebook without running the whole notebook.

    strategy, params = load_notebook_strategy("notebooks/strategies/sma_cross.ipynb")
    strategy            # the wb.Strategy the notebook defines
    params              # the plain values of its parameters cell: symbols, timeframe, fast...

The tag convention (cell tags, set in JupyterLab with the property inspector):

* ``parameters`` -- plain values only (numbers, strings, booleans, None, lists and dicts
  of those): the data selection (``symbols``, ``timeframe``, ``start``, ``end``), the
  strategy's parameters and the backtest's options (``fees_bps``...). It is the cell
  papermill injects its parameters after; a cell tagged ``injected-parameters`` (what
  papermill adds to an executed copy) is read too and overrides it.
* ``strategy`` -- the code that defines the ``@wb.strategy`` function, with the imports it
  needs (``import workbench as wb``). No I/O: it must run without data.

Only these cells run, in notebook order, in a fresh module namespace; every other cell
(loading data, plots, sweeps) is left alone, so loading is quick and has no side effects.
The strategy is the one named ``name``, or the only ``wb.Strategy`` the cells define.
"""

from __future__ import annotations

import ast
import itertools
import sys
import types
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, StrategyError
from workbench.strategy import Strategy

__all__ = ["PARAMETER_TAGS", "STRATEGY_TAG", "load_notebook_strategy", "plain_value"]

PARAMETER_TAGS = ("parameters", "injected-parameters")
STRATEGY_TAG = "strategy"
_counter = itertools.count()


def plain_value(value: Any) -> bool:
    """Whether ``value`` is a plain parameter value (JSON-like, no objects)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_value(v) for k, v in value.items())
    return False


def _read(path: Path):
    import nbformat

    if not path.is_file():
        raise ConfigError(f"no such notebook: {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - nbformat raises several kinds
        raise ConfigError(f"{path} is not a readable notebook: {_one_line(e)}") from None


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _assigned_names(tree: ast.Module) -> list[str]:
    """Names bound at the top level of a cell (``x = 1``, ``x: int = 1``, ``a, b = ...``)."""
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _namespace(path: Path) -> types.ModuleType:
    """A fresh module for the cells, registered in ``sys.modules`` so the plain functions
    they define pickle by reference in this process, and with cloudpickle *by value*, so
    a sweep's spawned worker processes (which cannot import this module) get them too."""
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    module = types.ModuleType(f"_wb_notebook_{stem}_{next(_counter)}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - comes with dask, a dependency of the sweep
        return module
    cloudpickle.register_pickle_by_value(module)
    return module


def _run_cell(source: str, where: str, namespace: dict) -> ast.Module:
    try:
        tree = ast.parse(source, filename=where)
        exec(compile(tree, where, "exec"), namespace)  # noqa: S102 - the user's own notebook
    except SyntaxError as e:
        raise StrategyError(f"{where}: line {e.lineno}: {e.msg} (only plain Python runs "
                            "here: no magics or shell commands)") from None
    except Exception as e:  # the user's code may raise anything
        raise StrategyError(f"{where} raised {_one_line(e)}") from e
    return tree


def _execute(path: Path, nb) -> tuple[dict, dict[str, Any]]:
    """Run the tagged cells in order; return the namespace and the parameters' values."""
    module = _namespace(path)
    namespace, param_names = module.__dict__, []
    ran_strategy = False
    for number, cell in enumerate(nb.cells, start=1):
        tags = _tags(cell)
        is_params = bool(tags & set(PARAMETER_TAGS))
        if cell.cell_type != "code" or not (is_params or STRATEGY_TAG in tags):
            continue
        kind = "parameters" if is_params else STRATEGY_TAG
        tree = _run_cell(cell.source, f"{path.name} cell {number} ({kind})", namespace)
        if is_params:
            param_names.extend(_assigned_names(tree))
        else:
            ran_strategy = True
    if not ran_strategy:
        raise ConfigError(f"{path.name} has no cell tagged {STRATEGY_TAG!r}: tag the cell that "
                          "defines the @wb.strategy function")
    params = {n: namespace[n] for n in dict.fromkeys(param_names)
              if n in namespace and not n.startswith("_") and plain_value(namespace[n])}
    return namespace, params


def _pick(found: dict[str, Strategy], name: str | None, path: Path) -> Strategy:
    listed = ", ".join(sorted(found)) or "none"
    if name is not None:
        if name not in found:
            raise ConfigError(f"{path.name} defines no strategy named {name!r} (found: {listed})")
        return found[name]
    if len(found) != 1:
        why = "defines no wb.Strategy in its strategy cells" if not found else (
            f"defines several strategies ({listed}); choose one with --strategy NAME")
        raise ConfigError(f"{path.name} {why}")
    return next(iter(found.values()))


def load_notebook_strategy(path: str | Path, name: str | None = None
                           ) -> tuple[Strategy, dict[str, Any]]:
    """The strategy a notebook defines and its parameters cell's plain values.

    ``ConfigError``: not a notebook, no ``strategy`` cell, no strategy (or several and no
    ``name``). ``StrategyError``: a tagged cell raised; the message names the notebook
    and the cell number.
    """
    path = Path(path).expanduser()
    nb = _read(path)
    namespace, params = _execute(path, nb)
    found: dict[str, Strategy] = {}
    for value in namespace.values():
        if isinstance(value, Strategy):
            found.setdefault(value.name, value)
    return _pick(found, name, path), params
