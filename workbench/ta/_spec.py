"""What one TA-Lib function takes and gives, read from ``talib.abstract``, and argument binding.

``SMA`` is computed by :mod:`workbench.ta._sma` (a value of its window only, not of the
history before it); every other function is TA-Lib's. A function's inputs are the
positional arrays its ``talib`` function takes (``real``, ``high``, ``low``, ``close``,
``volume``, ``real0``/``real1``, ``periods``), each with the
``Bars`` field it is read from when a ``Bars`` is given; its parameters are the keyword
arguments with their defaults; its outputs are the arrays it returns, in order.
"""

from __future__ import annotations

import difflib
import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import talib
from talib import abstract

from workbench.data.bars import FIELDS, Bars
from workbench.errors import StrategyError
from workbench.ta._sma import sma, sma_present

# functions computed here rather than by TA-Lib (same signature, NaN head and parameters)
_OWN: dict[str, Callable] = {"SMA": sma}
# their versions over a (symbols, times) matrix, every symbol in one pass (see Spec.rows)
_ROWS: dict[str, Callable] = {"SMA": sma_present}

__all__ = ["Spec", "UnknownIndicatorError", "bind", "functions", "spec"]

_RENAME = {
    "macdsignal": "signal", "macdhist": "hist",
    "upperband": "upper", "middleband": "middle", "lowerband": "lower",
}


class UnknownIndicatorError(StrategyError, AttributeError):
    """No TA-Lib function of that name (also an ``AttributeError``, for ``hasattr``)."""


@functools.cache
def functions() -> tuple[str, ...]:
    """Every TA-Lib function name, sorted."""
    return tuple(sorted(talib.get_functions()))


@dataclass(frozen=True)
class Spec:
    name: str
    fn: Callable
    inputs: tuple[str, ...]
    fields: tuple[str | None, ...]
    params: dict[str, Any]
    outputs: tuple[str, ...]
    doc: str
    # ``fn`` over every row of a (symbols, times) matrix at once, each row on its present
    # (non-NaN) values, NaN at its holes (one input, one output); None: ``fn`` symbol by symbol
    rows: Callable | None = None


@functools.cache
def spec(name: str) -> Spec:
    """The spec of TA-Lib function ``name``, or an error suggesting the closest name."""
    if not isinstance(name, str) or name not in functions():
        raise UnknownIndicatorError(_unknown(name))
    info = abstract.Function(name).info
    inputs: list[str] = []
    fields: list[str | None] = []
    for key, value in info["input_names"].items():
        if isinstance(value, (list, tuple)):
            inputs.extend(value)
            fields.extend(value)
        else:
            inputs.append(key.replace("price", "real") if key.startswith("price") else key)
            fields.append(value if value in FIELDS else None)
    outputs = tuple(_RENAME.get(o, o) for o in info["output_names"])
    doc = (getattr(talib, name).__doc__ or "").split("\n\n", 1)[-1].strip()
    return Spec(name, _OWN.get(name, getattr(talib, name)), tuple(inputs), tuple(fields),
                dict(info["parameters"]), outputs, doc, _ROWS.get(name))


def _unknown(name: object) -> str:
    text = str(name)
    if text.upper() in functions():
        guess = [text.upper()]
    else:
        guess = difflib.get_close_matches(text.upper(), functions(), n=1, cutoff=0.5)
    hint = f"; did you mean {guess[0]}?" if guess else "; see wb.ta.functions()"
    return f"wb.ta: no TA-Lib function {text!r}{hint}"


def _is_data(x: object) -> bool:
    return isinstance(x, (pd.DataFrame, pd.Series))


def bind(sp: Spec, args: tuple, kwargs: dict) -> tuple[list, dict[str, Any]]:
    """The input frames (in TA-Lib's order) and checked parameters of one call."""
    kwargs = dict(kwargs)
    given = {n: kwargs.pop(n) for n in sp.inputs if n in kwargs}
    rest = list(args)
    if rest and isinstance(rest[0], Bars):
        bars = rest.pop(0)
        for n, f in zip(sp.inputs, sp.fields):
            if n not in given and f is None:
                raise StrategyError(f"wb.ta.{sp.name}: input {n} is not a Bars field; pass it as a frame")
            given.setdefault(n, getattr(bars, f) if f else None)
    else:
        for n in sp.inputs:
            if n in given:
                continue
            if not rest or not _is_data(rest[0]):
                raise StrategyError(
                    f"wb.ta.{sp.name} takes input(s) {', '.join(sp.inputs)} as frames of one "
                    f"shape (or a wb.Bars as the single first argument); {n} is missing"
                )
            given[n] = rest.pop(0)
    params = _bind_params(sp, rest, kwargs)
    return [given[n] for n in sp.inputs], params


def _bind_params(sp: Spec, rest: list, kwargs: dict) -> dict[str, Any]:
    names = list(sp.params)
    if len(rest) > len(names):
        raise StrategyError(
            f"wb.ta.{sp.name}: too many arguments; after the input(s) it takes {', '.join(names) or 'nothing'}"
        )
    out = dict(zip(names, rest))
    for key, value in kwargs.items():
        if key not in sp.params:
            raise StrategyError(_unknown_param(sp, key))
        if key in out:
            raise StrategyError(f"wb.ta.{sp.name}: {key} given twice (positionally and by name)")
        out[key] = value
    return {k: _coerce(sp, k, v) for k, v in out.items()}


def _unknown_param(sp: Spec, key: str) -> str:
    accepted = [*sp.inputs, *sp.params]
    close = difflib.get_close_matches(key, accepted, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"wb.ta.{sp.name}: unknown argument {key!r} (accepts {', '.join(accepted)}){hint}"


def _coerce(sp: Spec, key: str, value: Any) -> Any:
    default = sp.params[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StrategyError(f"wb.ta.{sp.name}: {key} must be a number, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if float(value) != int(value):
            raise StrategyError(f"wb.ta.{sp.name}: {key} must be an integer, got {value!r}")
        return int(value)
    return float(value)
