"""Block kernels: SMA and RSI over many symbols at once, with TA-Lib's values bit for bit.

TA-Lib works on one array per call, so a frame of 500 symbols is 500 calls (and as many
Python round trips) per indicator. These kernels take a ``(symbols, times)`` block and
repeat TA-Lib's arithmetic in TA-Lib's order on all symbols at once. A running SMA is one
``cumsum`` over the values interleaved with their negations, which adds and subtracts in
exactly the order TA-Lib's running total does (add the new value, read, drop the oldest).
RSI loops over time only, each step a numpy operation on all symbols: Wilder's ``prev *
(n - 1) + change``, then a multiplication by ``1.0 / n`` (how this TA-Lib build divides;
a plain ``/ n`` differs in the last bit), ``100 * (gain / (gain + loss))``, and 0 where
nothing moved. tests/test_ta.py compares both with TA-Lib on random data with gaps.

No kernel for EMA, ATR, MACD (and the rest): this TA-Lib build fuses their multiply-adds
(``(x - prev) * k + prev`` is rounded once), which numpy cannot repeat without an emulated
fused multiply-add that costs more than TA-Lib per symbol; they stay on TA-Lib, one call
per symbol.

Each kernel takes the inputs as ``(symbols, length)`` arrays whose every row starts at the
symbol's first present bar (rows may end early, padded with NaN: a value only depends on
the ones before it, so padding never leaks into a real value) and returns ``(outputs,
symbols, length)`` with NaN over TA-Lib's lookback. :func:`kernel` gives the kernel of a
call, or None when there is none for that function or those parameters (then
:mod:`workbench.ta._engine` calls TA-Lib per symbol), and never one while TA-Lib's global
settings (an RSI unstable period, Metastock compatibility) would make TA-Lib compute
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import talib

__all__ = ["kernel"]

Kernel = Callable[[list[np.ndarray]], np.ndarray]


def kernel(name: str, params: dict) -> Kernel | None:
    """The block kernel of ``name`` with ``params`` (TA-Lib's defaults filled), or None."""
    build = _BUILDERS.get(name)
    if build is None or talib.get_compatibility() != 0:
        return None
    if name != "SMA" and talib.get_unstable_period(name) != 0:
        return None
    return build(params)


def _period(params: dict, key: str, default: int) -> int | None:
    n = params.get(key, default)
    return n if isinstance(n, int) and 2 <= n <= 100_000 else None


def _time_major(x: np.ndarray) -> np.ndarray:
    """``(symbols, length)`` as a contiguous ``(length, symbols)``: a step is one row."""
    return np.ascontiguousarray(x.T)


def _sma(params: dict) -> Kernel | None:
    n = _period(params, "timeperiod", 30)
    if n is None:
        return None

    def run(m: list[np.ndarray]) -> np.ndarray:
        xt = _time_major(m[0])
        length, s = xt.shape
        out = np.full((length, s), np.nan)
        if length >= n:
            # TA-Lib's running total: add the new value, read it, drop the oldest
            seq = np.empty((n + 2 * (length - n), s))
            seq[:n] = xt[:n]
            np.negative(xt[: length - n], out=seq[n::2])
            seq[n + 1 :: 2] = xt[n:]
            np.cumsum(seq, axis=0, out=seq)  # per column, strictly in sequence
            np.divide(seq[n - 1], n, out=out[n - 1])
            np.divide(seq[n + 1 :: 2], n, out=out[n:])
        return out.T[None]

    return run


def _rsi(params: dict) -> Kernel | None:
    n = _period(params, "timeperiod", 14)
    if n is None:
        return None

    def run(m: list[np.ndarray]) -> np.ndarray:
        xt = _time_major(m[0])
        length, s = xt.shape
        out = np.full((length, s), np.nan)
        if length <= n:
            return out.T[None]
        d = xt[1:] - xt[:-1]  # (length - 1, s): each bar's change
        # steps[t] = (rise or 0, -(fall) or 0): TA-Lib adds a rise to the gains and
        # subtracts a fall from the losses (adding 0, or subtracting it, changes nothing)
        steps = np.empty((length - 1, 2, s))
        falling = d < 0
        np.copyto(steps[:, 0], np.where(falling, 0.0, d))
        np.copyto(steps[:, 1], np.where(falling, -d, 0.0))
        inv, keep = 1.0 / n, float(n - 1)
        hist = np.empty((length - n, 2, s))  # (gain, loss) at bars n..length-1
        hist[0] = np.cumsum(steps[:n], axis=0)[-1] * inv
        for t in range(1, length - n):
            h = hist[t]
            np.multiply(hist[t - 1], keep, out=h)
            np.add(h, steps[n + t - 1], out=h)
            np.multiply(h, inv, out=h)
        gain, loss = hist[:, 0], hist[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            total = gain + loss  # a sum of magnitudes: 0 only when nothing moved (RSI 0)
            rsi = np.where(total > 0.0, 100.0 * (gain / total), 0.0)
        rsi[np.isnan(total)] = np.nan
        out[n:] = rsi
        return out.T[None]

    return run


_BUILDERS: dict[str, Callable[[dict], Kernel | None]] = {"SMA": _sma, "RSI": _rsi}
