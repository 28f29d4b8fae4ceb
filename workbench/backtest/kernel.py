"""The compiled simulation loop (numba): signals and stops become fills, bar by bar.

Private to :mod:`workbench.backtest.simulate`, which documents the semantics and is the
only caller. One column is one account; columns never interact, so the loop runs column
by column over time, on arrays laid out column by column: shape (N, T), C-contiguous
(one compiled variant, contiguous reads). Everything here is plain numpy arrays and floats.

The cost expressions are the ones of :class:`workbench.backtest.costs.CostModel`, written
in the same order so results agree to the last bit:
``buy = ref * (1 + slip)``, ``sell = ref * (1 - slip)``,
``fee = qty * price * rate + qty * per_share``,
``qty = budget / (price * (1 + rate) + per_share)`` (floored for whole shares).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["FILL_FIELDS", "OPEN", "SIGNAL", "STOP_LOSS", "TAKE_PROFIT", "TRADE_FIELDS", "run"]

# exit reasons
SIGNAL, STOP_LOSS, TAKE_PROFIT, OPEN = 0, 1, 2, 3

# columns of the fill and trade tables the loop writes (float64 rows)
FILL_FIELDS = ("col", "idx", "side", "size", "price", "fees", "reason")
TRADE_FIELDS = ("col", "direction", "size", "entry_idx", "entry_price", "entry_fees",
                "exit_idx", "exit_price", "exit_fees", "pnl", "return", "reason")

# per-column state vector
_CASH, _POS, _MARK, _SL, _TP, _TRADE, _ENTRY_IDX = range(7)
_NSTATE = 7
# cost vector: slippage, fee rate, fee per share, size, whole (0/1)
_SLIP, _RATE, _FPS, _SIZE, _WHOLE = range(5)


@njit(cache=True)
def _fill(fills, n, c, i, side, qty, px, fee, reason):
    k = n[0]
    fills[k, 0] = c
    fills[k, 1] = i
    fills[k, 2] = side
    fills[k, 3] = qty
    fills[k, 4] = px
    fills[k, 5] = fee
    fills[k, 6] = reason
    n[0] = k + 1


@njit(cache=True)
def _enter(st, fills, trades, n, c, i, direction, ref, cost, sl, tp):
    """Open a position in ``direction`` (+1 long, -1 short) at reference price ``ref``."""
    if direction > 0:
        px = ref * (1.0 + cost[_SLIP])
    else:
        px = ref * (1.0 - cost[_SLIP])
    budget = cost[_SIZE] * st[_CASH]
    if not budget > 0.0:
        return
    qty = budget / (px * (1.0 + cost[_RATE]) + cost[_FPS])
    if cost[_WHOLE] > 0.0:
        qty = np.floor(qty)
    if not qty > 0.0:
        return
    fee = qty * px * cost[_RATE] + qty * cost[_FPS]
    if direction > 0:
        st[_CASH] -= qty * px + fee
        st[_POS] = qty
    else:
        st[_CASH] += qty * px - fee
        st[_POS] = -qty
    if np.isnan(st[_MARK]):
        st[_MARK] = ref
    _fill(fills, n, c, i, direction, qty, px, fee, SIGNAL)
    k = n[1]
    trades[k, 0] = c
    trades[k, 1] = direction
    trades[k, 2] = qty
    trades[k, 3] = i
    trades[k, 4] = px
    trades[k, 5] = fee
    n[1] = k + 1
    st[_TRADE] = k
    st[_ENTRY_IDX] = i
    # stop levels: fractions of the entry fill price, against the position
    st[_SL] = px * (1.0 - sl) if direction > 0 else px * (1.0 + sl)
    st[_TP] = px * (1.0 + tp) if direction > 0 else px * (1.0 - tp)


@njit(cache=True)
def _close_trade(trades, k, exit_idx, exit_px, exit_fee, reason):
    size = trades[k, 2]
    entry_val = size * trades[k, 4]
    diff = size * exit_px - entry_val
    if trades[k, 1] < 0:
        diff = -diff
    pnl = diff - trades[k, 5] - exit_fee
    trades[k, 6] = exit_idx
    trades[k, 7] = exit_px
    trades[k, 8] = exit_fee
    trades[k, 9] = pnl
    trades[k, 10] = pnl / entry_val
    trades[k, 11] = reason


@njit(cache=True)
def _exit(st, fills, trades, n, c, i, ref, cost, reason):
    """Close the whole position at reference price ``ref``."""
    pos = st[_POS]
    qty = abs(pos)
    if pos > 0:
        px = ref * (1.0 - cost[_SLIP])
    else:
        px = ref * (1.0 + cost[_SLIP])
    fee = qty * px * cost[_RATE] + qty * cost[_FPS]
    if pos > 0:
        st[_CASH] += qty * px - fee
        _fill(fills, n, c, i, -1, qty, px, fee, reason)
    else:
        st[_CASH] -= qty * px + fee
        _fill(fills, n, c, i, 1, qty, px, fee, reason)
    st[_POS] = 0.0
    _close_trade(trades, int(st[_TRADE]), i, px, fee, reason)
    st[_TRADE] = -1.0


@njit(cache=True)
def _act(st, fills, trades, n, c, i, ref, le, lx, se, sx, cost, sl, tp):
    """Apply one bar's (merged) signals at ``ref`` (vectorbt's default conflict rules)."""
    if le and lx:  # an entry and an exit of the same side cancel out
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:  # a long and a short entry cancel out
        le = se = False
    pos = st[_POS]
    if pos > 0:
        if se:
            _exit(st, fills, trades, n, c, i, ref, cost, SIGNAL)
            _enter(st, fills, trades, n, c, i, -1, ref, cost, sl, tp)
        elif lx:
            _exit(st, fills, trades, n, c, i, ref, cost, SIGNAL)
    elif pos < 0:
        if le:
            _exit(st, fills, trades, n, c, i, ref, cost, SIGNAL)
            _enter(st, fills, trades, n, c, i, 1, ref, cost, sl, tp)
        elif sx:
            _exit(st, fills, trades, n, c, i, ref, cost, SIGNAL)
    elif le:
        _enter(st, fills, trades, n, c, i, 1, ref, cost, sl, tp)
    elif se:
        _enter(st, fills, trades, n, c, i, -1, ref, cost, sl, tp)


@njit(cache=True)
def _stop_price(pos, level, is_loss, o, h, lo):
    """Where a stop at ``level`` fills on a bar (NaN: not hit). The open if the bar opens
    through the level (a gap), else the level itself if the bar's range reaches it."""
    if np.isnan(level):
        return np.nan
    if (pos > 0) == is_loss:  # the level is below the price: long stop loss, short take profit
        if o <= level:
            return o
        if lo <= level:
            return level
    else:
        if o >= level:
            return o
        if h >= level:
            return level
    return np.nan


@njit(cache=True)
def _stops(st, fills, trades, n, c, i, o, h, lo, cost):
    """Check the position's stops on bar ``i`` (never on the bar it was entered)."""
    pos = st[_POS]
    if pos == 0 or st[_ENTRY_IDX] >= i or not (o > 0.0) or np.isnan(h) or np.isnan(lo):
        return
    px = _stop_price(pos, st[_SL], True, o, h, lo)
    if not np.isnan(px):
        _exit(st, fills, trades, n, c, i, px, cost, STOP_LOSS)
        return
    px = _stop_price(pos, st[_TP], False, o, h, lo)
    if not np.isnan(px):
        _exit(st, fills, trades, n, c, i, px, cost, TAKE_PROFIT)


@njit(cache=True, nogil=True)  # threads may simulate chunks in parallel
def run(open_, high, low, close, le, lx, se, sx, at_close, cash0, cost, sl, tp,
        equity, position, fills, trades, n):
    """Simulate every column; write ``equity``/``position``, the fill and trade tables and
    their row counts ``n = [fills, trades]``. Arrays are column-major: shape (N, T)."""
    n_c, n_t = close.shape
    st = np.empty(_NSTATE)
    for c in range(n_c):
        st[:] = np.nan
        st[_CASH] = cash0
        st[_POS] = 0.0
        st[_ENTRY_IDX] = -1.0
        p_le = p_lx = p_se = p_sx = False
        for i in range(n_t):
            o = open_[c, i]
            cl = close[c, i]
            if at_close:
                _stops(st, fills, trades, n, c, i, o, high[c, i], low[c, i], cost)
                p_le |= le[c, i]
                p_lx |= lx[c, i]
                p_se |= se[c, i]
                p_sx |= sx[c, i]
                if (p_le or p_lx or p_se or p_sx) and cl > 0.0:
                    _act(st, fills, trades, n, c, i, cl, p_le, p_lx, p_se, p_sx, cost, sl[c], tp[c])
                    p_le = p_lx = p_se = p_sx = False
            else:
                if (p_le or p_lx or p_se or p_sx) and o > 0.0:
                    _act(st, fills, trades, n, c, i, o, p_le, p_lx, p_se, p_sx, cost, sl[c], tp[c])
                    p_le = p_lx = p_se = p_sx = False
                _stops(st, fills, trades, n, c, i, o, high[c, i], low[c, i], cost)
                p_le |= le[c, i]
                p_lx |= lx[c, i]
                p_se |= se[c, i]
                p_sx |= sx[c, i]
            if cl > 0.0:
                st[_MARK] = cl
            pos = st[_POS]
            equity[c, i] = st[_CASH] + pos * st[_MARK] if pos != 0 else st[_CASH]
            position[c, i] = pos
        if st[_POS] != 0:  # still open at the end: marked at the last close, no exit fee
            _close_trade(trades, int(st[_TRADE]), -1, st[_MARK], 0.0, OPEN)
