"""A notebook's parameters (its cell tagged ``parameters``) and the check of given values.

    notebook_parameters("sma_cross.ipynb")          # {"fast": 10, "slow": 30, ...}
    check_parameters("sma_cross.ipynb", {"fsat": 5})
    # ConfigError: unknown parameter 'fsat' for sma_cross.ipynb (did you mean 'fast'?)

The check runs before any kernel starts, so a typo costs nothing. Refused: a name the
notebook's parameters cell does not assign; a name that looks like a secret (credentials
reach the kernel through the environment only, never through parameters, which papermill
writes into the executed notebook); a value holding a secret present in the environment;
a value that is not plain (str, int, float, bool, None, lists and dicts of those); and the
reserved names ``mode`` and ``run_dir``, which the runner sets itself.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.plain import NotPlain, plain
from workbench.secrets import SECRET_WORDS, looks_secret, secret_values

__all__ = ["RESERVED", "SECRET_WORDS", "check_parameters", "looks_secret", "notebook_parameters"]

RESERVED = ("mode", "run_dir")

def _notebook_path(notebook: str | Path) -> Path:
    path = Path(notebook)
    if not path.is_file():
        raise ConfigError(f"no such notebook: {path}")
    if path.suffix != ".ipynb":
        raise ConfigError(f"{path} is not a notebook (.ipynb)")
    return path


def _inspect(path: Path) -> dict[str, dict[str, Any]]:
    """papermill's view of the parameters cell (the notebook read as the workbench kernel's
    Python, whatever kernel its metadata names)."""
    from workbench.execution import defer_iri_grammar

    defer_iri_grammar()
    import nbformat
    import papermill

    try:
        node = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except (UnicodeDecodeError, ValueError) as e:  # not JSON, not a notebook
        raise ConfigError(f"{path} is not a notebook ({e})") from None
    node.metadata["kernelspec"] = {"name": "workbench", "language": "python",
                                   "display_name": "Python 3 (workbench)"}
    try:
        return papermill.inspect_notebook(node)
    except Exception as e:  # noqa: BLE001 - papermill's own errors for a malformed notebook
        raise ConfigError(f"cannot read the parameters of {path.name}: {e}") from None


def _default(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text  # an expression, not a literal: its source text


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """``name -> default`` of the notebook's cell tagged ``parameters`` (in order).

    A default that is a Python literal is its value; any other expression is its source
    text. A notebook without a parameters cell has none."""
    return {name: _default(p["default"]) for name, p in _inspect(_notebook_path(notebook)).items()}


def _check_names(tree: Any, where: str) -> None:
    """Secret-looking keys anywhere inside a value (``{"broker": {"api_key": ...}}``)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if looks_secret(key):
                raise ConfigError(f"parameter {where}.{key} looks like a secret: credentials "
                                  "reach the kernel through the environment only")
            _check_names(value, f"{where}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _check_names(value, f"{where}[{i}]")


def _check_values(tree: Any, where: str, secrets: list[str]) -> None:
    """No secret value from the environment anywhere inside a value."""
    if isinstance(tree, str):
        if any(s in tree for s in secrets):
            raise ConfigError(f"parameter {where} holds a credential's value: credentials "
                              "reach the kernel through the environment only")
    elif isinstance(tree, dict):
        for key, value in tree.items():
            _check_values(key, where, secrets)
            _check_values(value, f"{where}.{key}", secrets)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _check_values(value, f"{where}[{i}]", secrets)


def check_parameters(notebook: str | Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` checked against the notebook's parameters cell, as plain values.

    One ``ConfigError`` line for the first problem (see the module doc); nothing runs.
    """
    path = _notebook_path(notebook)
    if not isinstance(given, Mapping):
        raise ConfigError(f"parameters must be a mapping of name to value, "
                          f"got {type(given).__name__}")
    secrets = secret_values()
    known = None
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"parameter {name!r}: a parameter name is a Python identifier")
        if name in RESERVED:
            raise ConfigError(f"parameter {name!r} is reserved: the runner sets it "
                              f"({', '.join(RESERVED)}); use the command's own option")
        if looks_secret(name):
            raise ConfigError(f"parameter {name!r} looks like a secret: credentials reach "
                              "the kernel through the environment only")
        if known is None:
            known = list(_inspect(path))
        if name not in known:
            if not known:
                raise ConfigError(f"{path.name} has no cell tagged `parameters`, so it takes "
                                  f"no parameter ({name!r} given)")
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (it takes {', '.join(known)})"
            raise ConfigError(f"unknown parameter {name!r} for {path.name}{hint}")
        try:
            value = plain(value, strict=True, where=f"parameter {name}")
        except NotPlain as e:
            raise ConfigError(f"{e} (parameters are str, int, float, bool, None, "
                              "and lists or dicts of those)") from None
        if not _is_simple(value):
            raise ConfigError(f"parameter {name}: {value!r} is not a plain value (str, int, "
                              "float, bool, None, and lists or dicts of those)")
        _check_names(value, name)
        _check_values(value, name, secrets)
        checked[name] = value
    return checked


def _is_simple(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_is_simple(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_simple(v) for k, v in value.items())
    return False
