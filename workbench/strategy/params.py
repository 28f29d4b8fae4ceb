"""A strategy's parameter schema, read from its signature: names, types, defaults.

``def f(bars, fast: int = 10, slow: int = 30)`` accepts ``fast`` and ``slow``, both ints.
An unknown name is an error that lists the accepted ones and suggests the closest; a
value of the wrong type is an error naming the parameter and the type wanted. Ints are
accepted for float parameters; numpy scalars are accepted as their Python type; strings
from the command line are converted (``"10"`` for an int).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import StrategyError

__all__ = ["Param", "Schema"]

_EMPTY = inspect.Parameter.empty
_SIMPLE = (bool, int, float, str)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: type | None
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _EMPTY

    def coerce(self, value: Any, strategy: str) -> Any:
        if self.type is None:
            return value
        if isinstance(value, np.generic):
            value = value.item()
        if self.type is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, bool):
                return value
        elif self.type is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
        elif self.type is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        elif isinstance(value, self.type):
            return value
        elif self.type is str:
            return str(value)
        raise StrategyError(
            f"{strategy}: parameter {self.name} must be {self.type.__name__}, got {value!r}"
        )


class Schema:
    """The parameters of one strategy function (everything after ``bars``)."""

    def __init__(self, fn: Callable, strategy: str) -> None:
        self.strategy = strategy
        sig = inspect.signature(fn)
        names = list(sig.parameters)
        if not names:
            raise StrategyError(f"{strategy}: a strategy takes the bars as its first argument")
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolved annotations: fall back to defaults' types
            hints = {}
        self.params: dict[str, Param] = {}
        for name in names[1:]:
            p = sig.parameters[name]
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise StrategyError(f"{strategy}: *args/**kwargs are not allowed; name every parameter")
            hint = hints.get(name)
            if hint not in _SIMPLE and hint is not None and not isinstance(hint, type):
                hint = None  # unions, generics: checked by the strategy itself
            if hint is None and p.default is not _EMPTY and isinstance(p.default, _SIMPLE):
                hint = type(p.default)
            self.params[name] = Param(name, hint, p.default)

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.params.items() if not p.required}

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each value checked; or a ``StrategyError``."""
        for name in given:
            if name not in self.params:
                raise StrategyError(self._unknown(name))
        out = {}
        for name, param in self.params.items():
            if name in given:
                out[name] = param.coerce(given[name], self.strategy)
            elif param.required:
                raise StrategyError(f"{self.strategy}: parameter {name} has no default; give a value")
            else:
                out[name] = param.default
        return out

    def _unknown(self, name: str) -> str:
        accepted = ", ".join(f"{n}: {p.type.__name__ if p.type else 'any'}" for n, p in self.params.items())
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{self.strategy}: unknown parameter {name!r} (accepts {accepted or 'no parameters'}){hint}"

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "type": p.type.__name__ if p.type else None,
             "default": None if p.required else p.default}
            for n, p in self.params.items()
        ]
