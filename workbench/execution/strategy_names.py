"""A notebook's strategy parameters read from its code, before any kernel starts.

    strategy_parameters("sma_cross.ipynb")     # ("sma_cross", ("fast", "slow"))
    check_grid_names("sma_cross.ipynb", {"fsat": [5, 10]}, "fast < slow")
    # StrategyError: sma_cross: unknown parameter 'fsat' in grid (strategy parameters:
    # fast, slow); did you mean fast?

A sweep's grid and constraint name strategy parameters, which the notebook's ``parameters``
cell does not list; the kernel checks them (``wb.sweep``), but only after its start and the
notebook's first cells, seconds later. Here the notebook's code cells are parsed (``ast``,
nothing imported or run): a function decorated with ``@wb.strategy``/``@strategy`` (bare or
called) is a strategy, its parameters everything after the first (the bars), as
:class:`workbench.strategy.params.Schema` reads them. Exactly one such function: the grid's
names and the constraint's are checked against its parameters, the same refusal the kernel
would give. None or several (a strategy built some other way, or a choice made at run
time): nothing is checked here, and the kernel's check stands.
"""

from __future__ import annotations

import ast
import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, StrategyError

__all__ = ["check_grid_names", "strategy_parameters"]

_DECORATOR = "strategy"


def _is_strategy_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id == _DECORATOR
    return isinstance(target, ast.Attribute) and target.attr == _DECORATOR


def _code(notebook: Path) -> list[str]:
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells") or []
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return []
    out = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source") or ""
            out.append("".join(source) if isinstance(source, list) else str(source))
    return out


def strategy_parameters(notebook: str | Path) -> tuple[str, tuple[str, ...]] | None:
    """(name, parameter names) of the notebook's one decorated strategy function, or None
    when it has none or several (see the module doc)."""
    found = []
    for source in _code(Path(notebook)):
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics, shell lines: not read here
            continue
        for node in ast.walk(tree):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and any(_is_strategy_decorator(d) for d in node.decorator_list)):
                args = node.args
                if args.vararg or args.kwarg:
                    return None  # refused by the kernel's schema with its own message
                names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                found.append((node.name, tuple(names[1:])))
    return found[0] if len(found) == 1 else None


def check_grid_names(notebook: str | Path, grid: Any, constraint: Any) -> None:
    """The grid's names and the constraint's are the strategy's parameters (a
    ``StrategyError`` naming the closest one), when the notebook's strategy is known; a
    grid that is not a mapping, or a constraint that is not text, is a ``ConfigError``
    wherever the strategy comes from (``None``: not given)."""
    if grid is not None and not isinstance(grid, Mapping):
        raise ConfigError(f"grid: give parameter -> values, e.g. {{'fast': [5, 10]}}, "
                          f"not {grid!r}")
    if constraint is not None and not isinstance(constraint, str):
        raise ConfigError(f"constraint: give the rule as text, e.g. 'fast < slow', "
                          f"not {constraint!r}")
    found = strategy_parameters(notebook)
    if found is None:
        return
    name, params = found
    for key in grid or {}:
        if key not in params:
            close = difflib.get_close_matches(str(key), params, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise StrategyError(f"{name}: unknown parameter {key!r} in grid (strategy "
                                f"parameters: {', '.join(params) or 'none'}){hint}")
    if constraint:
        from workbench.backtesting.sweeps.grid import Constraint

        Constraint(str(constraint), list(params))
