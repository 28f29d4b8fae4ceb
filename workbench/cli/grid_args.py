"""Sweep specifications from the command line: parameter grids and a constraint.

    parse_grid("fast=5:25:5")       # ("fast", [5, 10, 15, 20, 25]): start:stop:step, stop INCLUSIVE
    parse_grid("slow=20,40,60")     # ("slow", [20, 40, 60]): a list of values
    parse_grid("kind=a,b")          # ("kind", ["a", "b"]): values are JSON if they parse, else text
    c = Constraint("fast < slow and slow - fast >= 10", names=["fast", "slow"])
    c({"fast": 5, "slow": 20})      # True

A range keeps ints when start, stop and step are all ints; otherwise it gives floats
rounded to 10 decimals (``0.01:0.05:0.01`` ends at 0.05, not 0.049999). The constraint is
a restricted expression, parsed with :mod:`ast` and evaluated by a small tree walker:
parameter names, numbers, strings, True/False/None, comparisons (chains too), ``and``,
``or``, ``not``, ``+ - * / // %`` and unary minus. Anything else (calls,
attributes, subscripts, lambdas...) is refused with a ``ConfigError``; ``eval`` is never
used.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from workbench.errors import ConfigError

__all__ = ["Constraint", "parse_grid", "parse_value"]

_MAX_POINTS = 100_000  # one parameter's range; a bigger one is surely a typo
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses (``10``, ``0.5``, ``true``, ``null``,
    ``[1, 2]``), else the text itself (``next_open``)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _number(text: str, spec: str) -> int | float:
    value = parse_value(text.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--grid {spec}: {text.strip()!r} is not a number")
    return value


def _range(name: str, body: str, spec: str) -> list:
    parts = body.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--grid {spec}: a range is start:stop:step, e.g. {name}=5:25:5")
    start, stop, step = (_number(p, spec) for p in parts)
    if step <= 0:
        raise ConfigError(f"--grid {spec}: step must be > 0")
    if stop < start:
        raise ConfigError(f"--grid {spec}: stop {stop} is below start {start}")
    count = int((stop - start) / step + 1e-9) + 1
    if count > _MAX_POINTS:
        raise ConfigError(f"--grid {spec}: {count:,} values; at most {_MAX_POINTS:,} per parameter")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(start, stop + 1, step))
    return [round(start + i * step, 10) for i in range(count)]


def parse_grid(spec: str) -> tuple[str, list]:
    """``NAME=start:stop:step`` (stop inclusive) or ``NAME=a,b,c`` -> ``(name, values)``."""
    name, sep, body = str(spec).partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name.isidentifier() or not body:
        raise ConfigError(f"--grid {spec!r}: write NAME=start:stop:step (stop inclusive) "
                          "or NAME=a,b,c")
    if ":" in body:
        values = _range(name, body, spec)
    else:
        values = [parse_value(v.strip()) for v in body.split(",")]
        if any(v == "" for v in values):
            raise ConfigError(f"--grid {spec}: an empty value in the list")
    return name, list(dict.fromkeys(values))


class Constraint:
    """A restricted boolean expression over parameter names; call it with a params dict."""

    def __init__(self, text: str, names: Iterable[str]) -> None:
        self.text = str(text).strip()
        self.names = frozenset(names)
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as e:
            raise ConfigError(f"--constraint {self.text!r}: not an expression ({e.msg})") from None
        self._check(tree.body)
        self._tree = tree.body

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"

    def _check(self, node: ast.AST) -> None:
        allowed = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Constant)
        if not isinstance(node, allowed):
            raise ConfigError(f"--constraint {self.text!r}: {type(node).__name__} is not allowed "
                              "(only parameter names, numbers, comparisons, and/or/not, "
                              "+ - * / // %)")
        if isinstance(node, ast.Name) and node.id not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise ConfigError(f"--constraint {self.text!r}: unknown name {node.id!r} "
                              f"(parameters: {known})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str,
                                                                          type(None))):
            raise ConfigError(f"--constraint {self.text!r}: constant {node.value!r} not allowed")
        op = getattr(node, "op", None)
        if isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(op) not in {**_BINARY, **_UNARY}:
            raise ConfigError(f"--constraint {self.text!r}: operator "
                              f"{type(op).__name__} is not allowed")
        if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
            raise ConfigError(f"--constraint {self.text!r}: only < <= > >= == != compare")
        for child in _children(node):
            self._check(child)

    def __call__(self, params: Mapping[str, Any]) -> bool:
        try:
            return bool(self._eval(self._tree, params))
        except KeyError as e:
            raise ConfigError(f"--constraint {self.text!r}: no value for {e.args[0]}") from None
        except (ArithmeticError, TypeError) as e:
            raise ConfigError(f"--constraint {self.text!r} at {dict(params)}: {e}") from None

    def _eval(self, node: ast.AST, params: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return params[node.id]
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, params))
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, params),
                                          self._eval(node.right, params))
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, params) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        left = self._eval(node.left, params)  # ast.Compare, possibly chained
        for op, right_node in zip(node.ops, node.comparators):
            right = self._eval(right_node, params)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True


def _children(node: ast.AST) -> list[ast.AST]:
    """The sub-expressions to check (operators and contexts are checked by their parent)."""
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    return []
