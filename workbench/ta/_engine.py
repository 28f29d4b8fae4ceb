"""Apply one TA-Lib function column by column, on each symbol's present bars.

Frames are turned into ``(symbols, times)`` float64 arrays whose rows are contiguous: Bars
frames are stored symbol-major, so ``frame.to_numpy().T`` is such an array without a copy.
A symbol whose column has no NaN is handed to TA-Lib as is (the fast path); otherwise its
present rows are gathered, computed and scattered back, NaN elsewhere. A function with an
all-symbols form (``Spec.rows``: the SMA) is given the whole array at once instead, and
handles each symbol's present rows itself.
"""

from __future__ import annotations

import collections
import functools
import inspect
from typing import NamedTuple

import numpy as np
import pandas as pd

from workbench.errors import StrategyError
from workbench.ta._cache import cached_call
from workbench.ta._spec import Spec, UnknownIndicatorError, bind, functions, spec
from workbench.ta._stream import active_stream

__all__ = [
    "BBandsOutput",
    "MACDOutput",
    "StochOutput",
    "UnknownIndicatorError",
    "call",
    "functions",
    "indicator",
]


class MACDOutput(NamedTuple):
    macd: pd.DataFrame
    signal: pd.DataFrame
    hist: pd.DataFrame


class BBandsOutput(NamedTuple):
    upper: pd.DataFrame
    middle: pd.DataFrame
    lower: pd.DataFrame


class StochOutput(NamedTuple):
    slowk: pd.DataFrame
    slowd: pd.DataFrame


_OUTPUT_TYPES = {"MACD": MACDOutput, "BBANDS": BBandsOutput, "STOCH": StochOutput}


@functools.cache
def _output_type(name: str, outputs: tuple[str, ...]) -> type:
    known = _OUTPUT_TYPES.get(name)
    if known is not None and known._fields == outputs:
        return known
    return collections.namedtuple(f"{name}Output", outputs)


def call(name: str, *args, **kwargs):
    """Run TA-Lib function ``name`` column-wise: ``call("KAMA", close, timeperiod=10)``."""
    sp = spec(name)
    inputs, params = bind(sp, args, kwargs)
    stream = active_stream()
    if stream is not None:  # the live engine: indicator state carried from the last bar
        ordinal = stream.next_ordinal()
        like = _check_inputs(sp, inputs)
        mats = [_matrix(x) for x in inputs]
        out = stream.call(ordinal, sp.name, inputs, mats, params)
        if out is not None:
            return _wrap(sp, like, out)
    return cached_call(sp.name, inputs, params, lambda: _run(sp, inputs, params))


def _run(sp: Spec, inputs: list, params: dict):
    like = _check_inputs(sp, inputs)
    mats = [_matrix(x) for x in inputs]
    return _wrap(sp, like, _compute(sp, mats, params, _names(like)))


def _wrap(sp: Spec, like, out: np.ndarray):
    """``(outputs, symbols, times)`` as frames (or Series) shaped like the first input."""
    if isinstance(like, pd.Series):
        results = [pd.Series(o[0], index=like.index, name=like.name) for o in out]
    else:
        results = [
            pd.DataFrame(o.T, index=like.index, columns=like.columns, copy=False) for o in out
        ]
    if len(results) == 1:
        return results[0]
    return _output_type(sp.name, sp.outputs)(*results)


def _check_inputs(sp: Spec, inputs: list) -> pd.DataFrame | pd.Series:
    first = inputs[0]
    for n, x in zip(sp.inputs, inputs):
        if not isinstance(x, (pd.DataFrame, pd.Series)):
            raise StrategyError(f"wb.ta.{sp.name}: {n} must be a DataFrame or Series, got {type(x).__name__}")
        if isinstance(x, pd.Series) != isinstance(first, pd.Series):
            raise StrategyError(f"wb.ta.{sp.name}: inputs mix Series and DataFrames")
        if not x.index.equals(first.index) or (
            isinstance(x, pd.DataFrame) and not x.columns.equals(first.columns)
        ):
            raise StrategyError(
                f"wb.ta.{sp.name}: input {n} is not aligned with {sp.inputs[0]} (index and columns)"
            )
    return first


def _matrix(x: pd.DataFrame | pd.Series) -> np.ndarray:
    """``(symbols, times)`` float64 with contiguous rows; no copy for symbol-major frames."""
    try:
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise StrategyError(f"wb.ta: inputs must be numeric: {e}") from e
    mat = values.reshape(1, -1) if values.ndim == 1 else values.T
    return mat if mat.flags.c_contiguous else np.ascontiguousarray(mat)


def _names(like) -> list:
    return [like.name] if isinstance(like, pd.Series) else list(like.columns)


def _compute(sp: Spec, mats: list[np.ndarray], params: dict, symbols: list) -> np.ndarray:
    """``(outputs, symbols, times)``: the function on each symbol's present rows."""
    if sp.rows is not None and len(mats) == 1:
        return _compute_rows(sp, mats[0], params)
    n_s, n_t = mats[0].shape
    out = np.empty((len(sp.outputs), n_s, n_t))
    present = ~np.isnan(mats[0])
    for m in mats[1:]:
        present &= ~np.isnan(m)
    complete = present.all(axis=1)
    j = 0
    try:
        for j in range(n_s):
            if complete[j]:
                res = sp.fn(*(m[j] for m in mats), **params)
                rows = slice(None)
            else:
                out[:, j] = np.nan
                rows = np.flatnonzero(present[j])
                if rows.size == 0:
                    continue
                res = sp.fn(*(m[j, rows] for m in mats), **params)
            for k, r in enumerate(res if isinstance(res, tuple) else (res,)):
                out[k, j, rows] = r
    except Exception as e:
        given = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise StrategyError(f"wb.ta.{sp.name}({given}) failed for {symbols[j]!r}: {e}") from e
    return out


def _compute_rows(sp: Spec, mat: np.ndarray, params: dict) -> np.ndarray:
    """``(1, symbols, times)``: ``sp.rows``, every symbol on its present rows in one pass."""
    try:
        return sp.rows(mat, **params)[None]
    except ValueError as e:
        given = ", ".join(f"{key}={v!r}" for key, v in params.items())
        raise StrategyError(f"wb.ta.{sp.name}({given}) failed: {e}") from e


def indicator(name: str):
    """The callable ``wb.ta.<name>``: ``call`` bound to ``name``, with TA-Lib's signature."""
    sp = spec(name)

    def fn(*args, **kwargs):
        return call(sp.name, *args, **kwargs)

    fn.__name__ = fn.__qualname__ = sp.name
    fn.__module__ = "workbench.ta"
    fn.__doc__ = (
        f"{sp.doc}\n\nColumn-wise over symbols on each symbol's present bars; the inputs "
        f"are frames (or Series), or a wb.Bars as the single first argument."
    )
    fn.__signature__ = _signature(sp)
    return fn


def _signature(sp: Spec) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [
        inspect.Parameter(n, kind, default=inspect.Parameter.empty if i == 0 else None)
        for i, n in enumerate(sp.inputs)
    ]
    params += [inspect.Parameter(n, kind, default=d) for n, d in sp.params.items()]
    return inspect.Signature(params)
