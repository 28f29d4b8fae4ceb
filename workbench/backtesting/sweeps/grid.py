"""The parameter grid of a sweep: ranges in, checked combinations out.

    grid = Grid.build(sma_cross, {"fast": range(5, 30, 5), "slow": range(10, 70, 5)},
                      constraint=lambda p: p["fast"] < p["slow"])
    grid.combos        # tuple of full parameter dicts (defaults filled in), one per combination
    grid.frame()       # DataFrame: one row per combination, a column per named parameter

A range is any iterable (``range``, list, tuple, numpy array, pandas Series); a scalar
(strings included) is a fixed value. Every value is checked and converted by the
strategy's schema, so an unknown name raises the schema's error (with its "did you
mean" suggestion) and a value of the wrong type names the parameter. Combinations run in
``itertools.product`` order of the names as the strategy declares them, so consecutive
combinations share the leading parameters (and their indicators).

Size. The number of combinations is the product of the ranges' lengths, known before
any is made; more than ``max_combinations`` (default :data:`MAX_COMBINATIONS`, or the
environment's ``WORKBENCH_SWEEP_MAX_COMBINATIONS``; ``None``: no limit) is refused at once
with the number, never enumerated for hours (a grid of 1e10 combinations once hung
silently). One parameter's values are read only up to the limit, so ``range(10**10)``
is refused without being listed.

A constraint is any ``f(params) -> bool``; :class:`Constraint` makes one from text::

    c = Constraint("fast < slow and slow - fast >= 10", names=["fast", "slow"])
    c({"fast": 5, "slow": 20})      # True

The text is a restricted expression, checked when the ``Constraint`` is made and
evaluated by :mod:`simpleeval` (``eval`` is never used): parameter names, numbers,
strings, True/False/None, comparisons (chains too), ``and``, ``or``, ``not``,
``+ - * / // %`` and unary minus. Anything else (calls, attributes, subscripts,
lambdas...) is refused with a ``ConfigError``.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from simpleeval import InvalidExpression, NameNotDefined, SimpleEval, safe_add, safe_mult

from workbench.errors import ConfigError, StrategyError
from workbench.strategy import Strategy

__all__ = ["MAX_COMBINATIONS", "RESERVED", "Constraint", "Grid", "combination_limit",
           "values_of"]

MAX_COMBINATIONS = 1_000_000  # combinations before the constraint: minutes to check and run
LIMIT_VARIABLE = "WORKBENCH_SWEEP_MAX_COMBINATIONS"  # the workbench sweep command sets it

# table columns a parameter may not be named like
RESERVED = ("combo", "symbol", "total_return", "cagr", "sharpe", "sortino", "max_drawdown",
            "win_rate", "trades", "exposure", "turnover", "fees", "final_equity")


def combination_limit(given: int | None | str = "default") -> int | None:
    """The largest number of combinations a sweep may have: ``given`` (None: no limit), by
    default ``WORKBENCH_SWEEP_MAX_COMBINATIONS`` when set, else :data:`MAX_COMBINATIONS`."""
    if given == "default":
        text = os.environ.get(LIMIT_VARIABLE, "").strip()
        if not text:
            return MAX_COMBINATIONS
        if text.lower() == "none":
            return None
        given = text
    if given is None:
        return None
    try:
        value = int(given)
    except (TypeError, ValueError):
        value = 0
    if isinstance(given, bool) or value < 1 or str(value) != str(given).strip():
        raise ConfigError(f"max_combinations {given!r}: a whole number >= 1, or None for no "
                          f"limit ({LIMIT_VARIABLE} likewise)")
    return value


def _too_many(count: int, what: str, limit: int) -> ConfigError:
    return ConfigError(
        f"sweep: {count:,} combinations ({what}) is more than the limit of {limit:,}; a sweep "
        f"that size would not finish. Narrow the grid, or go past the limit with "
        f"max_combinations=N (workbench sweep --max-combinations N; None / 'none': no limit)")


def values_of(name: str, given: Any, limit: int | None = None) -> list:
    """The values of one parameter: an iterable's distinct items in order, or ``[scalar]``;
    more than ``limit`` items is refused without reading the rest."""
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        return [given]
    if isinstance(given, Mapping):
        raise ConfigError(f"sweep: {name} must be a value or an iterable of values, got a mapping")
    if limit is not None and hasattr(given, "__len__") and len(given) > limit:
        raise _too_many(len(given), f"{name} alone", limit)
    if isinstance(given, (np.ndarray, pd.Series, pd.Index)):
        items = np.asarray(given, dtype=object).ravel().tolist()
    else:
        items = list(itertools.islice(given, None if limit is None else limit + 1))
        if limit is not None and len(items) > limit:
            raise _too_many(len(items), f"{name} alone, at least", limit)
    if not items:
        raise ConfigError(f"sweep: {name} has no values (an empty range)")
    try:  # distinct in order by equality, as below, in linear time (100,000 values: quadratic took minutes)
        return list(dict.fromkeys(items))
    except TypeError:  # an unhashable value (a list): compared one by one
        out: list = []
        for item in items:
            if item not in out:
                out.append(item)
        return out


@dataclass(frozen=True)
class Grid:
    """Checked parameter combinations of one strategy."""

    names: tuple[str, ...]  # the parameters the user named, in the strategy's order
    combos: tuple[dict[str, Any], ...]  # full parameter sets, defaults included
    n_candidates: int  # combinations before the constraint

    @classmethod
    def build(cls, strategy: Strategy, ranges: Mapping[str, Any],
              constraint: Callable[[dict], bool] | None = None,
              max_combinations: int | None | str = "default") -> Grid:
        """Every combination of ``ranges`` that passes ``constraint``, checked by the schema;
        more candidates than ``max_combinations`` (:func:`combination_limit`) is refused
        before any is made."""
        if constraint is not None and not callable(constraint):
            raise ConfigError("sweep: constraint must be a function of the parameter dict")
        limit = combination_limit(max_combinations)
        values = {name: values_of(name, given, limit) for name, given in ranges.items()}
        count = math.prod(len(v) for v in values.values())
        if limit is not None and count > limit:
            sizes = " x ".join(f"{n} {len(v):,}" for n, v in values.items() if len(v) > 1)
            raise _too_many(count, sizes, limit)
        strategy.params(**{name: v[0] for name, v in values.items()})  # names: schema errors
        names = tuple(n for n in strategy.schema.names if n in values)
        clash = [n for n in names if n in RESERVED]
        if clash:
            raise StrategyError(f"{strategy.name}: parameter(s) {', '.join(clash)} are named "
                                f"like sweep table columns; rename them in the strategy")
        candidates = itertools.product(*(values[n] for n in names))
        combos, n = [], 0
        for point in candidates:
            n += 1
            params = strategy.params(**dict(zip(names, point)))
            if constraint is None or _accepts(constraint, params):
                combos.append(params)
        if not combos:
            raise ConfigError(f"sweep: the constraint rejects all {n} combination(s)")
        return cls(names=names, combos=tuple(combos), n_candidates=n)

    def __len__(self) -> int:
        return len(self.combos)

    def frame(self) -> pd.DataFrame:
        """One row per combination (index ``combo``), one column per named parameter."""
        data = {n: [c[n] for c in self.combos] for n in self.names}
        return pd.DataFrame(data, index=pd.RangeIndex(len(self.combos), name="combo"))

    def distinct(self) -> dict[str, int]:
        """How many distinct values each named parameter takes among the combinations."""
        return {n: len({repr(c[n]) for c in self.combos}) for n in self.names}


def _accepts(constraint: Callable[[dict], bool], params: dict[str, Any]) -> bool:
    try:
        return bool(constraint(dict(params)))
    except Exception as e:
        raise ConfigError(f"sweep: the constraint raised {type(e).__name__}: {e} "
                          f"for {params}") from e


# the constraint language: these expression nodes and these operators, nothing else
_NODES = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Constant)
_CONSTANTS = (int, float, str, type(None))  # bool is an int
_OPERATORS = {ast.Add: safe_add, ast.Sub: operator.sub, ast.Mult: safe_mult,
              ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
              ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
              ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
              ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}


class Constraint:
    """A restricted boolean expression over parameter names; call it with a params dict."""

    def __init__(self, text: str, names: Iterable[str]) -> None:
        self.text = str(text).strip()
        self.names = frozenset(names)
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError as e:
            raise ConfigError(f"--constraint {self.text!r}: not an expression ({e.msg})") from None
        for node in ast.walk(self._tree):
            self._check(node)
        self._evaluator = SimpleEval(operators=_OPERATORS, functions={}, names={})
        self._evaluator.nodes = {kind: handler for kind, handler in self._evaluator.nodes.items()
                                 if kind in _NODES}

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, (ast.expr_context, ast.boolop)):  # Load, and/or: their node's part
            return
        if isinstance(node, ast.cmpop) and type(node) not in _OPERATORS:
            raise ConfigError(f"--constraint {self.text!r}: only < <= > >= == != compare")
        if isinstance(node, (ast.operator, ast.unaryop)) and type(node) not in _OPERATORS:
            raise ConfigError(f"--constraint {self.text!r}: operator "
                              f"{type(node).__name__} is not allowed")
        if not isinstance(node, (*_NODES, ast.cmpop, ast.operator, ast.unaryop)):
            raise ConfigError(f"--constraint {self.text!r}: {type(node).__name__} is not allowed "
                              "(only parameter names, numbers, comparisons, and/or/not, "
                              "+ - * / // %)")
        if isinstance(node, ast.Name) and node.id not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise ConfigError(f"--constraint {self.text!r}: unknown name {node.id!r} "
                              f"(parameters: {known})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANTS):
            raise ConfigError(f"--constraint {self.text!r}: constant {node.value!r} not allowed")

    def __call__(self, params: Mapping[str, Any]) -> bool:
        self._evaluator.names = params  # one call at a time: Grid.build calls it in a loop
        try:
            return bool(self._evaluator.eval(self.text, previously_parsed=self._tree))
        except NameNotDefined as e:
            raise ConfigError(f"--constraint {self.text!r}: no value for {e.name}") from None
        except (ArithmeticError, TypeError, InvalidExpression) as e:
            raise ConfigError(f"--constraint {self.text!r} at {dict(params)}: {e}") from None
