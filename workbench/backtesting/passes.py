"""The compiled passes around vectorbt's simulation (numba): orders in, books out.

Private to :mod:`workbench.backtesting.simulation`, which documents the semantics and is the
only caller. vectorbt's compiled core runs the simulation itself
(:mod:`workbench.backtesting.vbt_core`); the two passes here prepare its input and read its
output, column by column, on arrays laid out column by column (shape (N, T), C-contiguous):

* :func:`signal_orders` (before): which bars carry an order from the signals, and which
  signals it merges, after the conflict rules. Its result is the ``segment_mask`` of the
  simulation: vectorbt calls our order function only on those bars, which keeps it up to
  date as it goes (it unmarks bars whose signals cannot change the position held, and
  marks the bar where a stop triggers), so quiet bars cost almost nothing.
* :func:`books` (after): vectorbt's order records plus what our callbacks noted per fill
  (reason, reference price, cash and position after it) become the fill and trade tables
  and the equity and position curves, marked at the last close.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["FILL_FIELDS", "LE", "LX", "OPEN", "SE", "resolve", "SIDE_FIELDS", "SIGNAL", "STOP", "STOP_LOSS",
           "SX", "TAKE_PROFIT", "TRADE_FIELDS", "W", "books", "signal_orders", "stop_rows",
           "weight_orders"]

# exit reasons
SIGNAL, STOP_LOSS, TAKE_PROFIT, OPEN = 0, 1, 2, 3

# bits of the order table (uint8, (N, T)): the merged signals an order carries, and STOP,
# set by the order function on a later bar where the open position's stop triggers; W: a
# target-weight order (its weight and sizing price in separate arrays, see weight_orders)
LE, LX, SE, SX, STOP, W = 1, 2, 4, 8, 16, 32

# columns of the fill and trade tables (float64 rows)
FILL_FIELDS = ("col", "idx", "side", "size", "price", "fees", "reason")
TRADE_FIELDS = ("col", "direction", "size", "entry_idx", "entry_price", "entry_fees",
                "exit_idx", "exit_price", "exit_fees", "pnl", "return", "reason")
# what the post-order callback notes per order record (row = the record's id)
SIDE_FIELDS = ("reason", "ref", "cash", "position")
_REASON, _REF, _CASH, _POS = range(4)


@njit(cache=True, nogil=True)
def resolve(bits):
    """vectorbt's ``from_signals`` conflict rules: an entry and an exit of one side cancel
    out, and so do a long and a short entry."""
    if bits & LE and bits & LX:
        bits &= ~(LE | LX)
    if bits & SE and bits & SX:
        bits &= ~(SE | SX)
    if bits & LE and bits & SE:
        bits &= ~(LE | SE)
    return bits


@njit(cache=True, nogil=True)
def signal_orders(open_, close, le, lx, se, sx, at_close, out):
    """Write into ``out`` (uint8, (N, T)) the resolved signal bits of the order each bar
    fills, 0 where none; return how many bars carry one.

    Signals wait, OR-ed, for the column's next bar with an open (``next_open``: the order
    fills at the open of a bar after the signal) or with a close (``close``: the order
    fills at the close of the signal bar or, if it has none, of the next bar that has one).
    """
    n_c, n_t = close.shape
    count = 0
    for c in range(n_c):
        pending = 0
        for i in range(n_t):
            bits = 0
            if not at_close and pending and open_[c, i] > 0.0:
                bits = resolve(pending)
                pending = 0
            pending |= (LE if le[c, i] else 0) | (LX if lx[c, i] else 0)
            pending |= (SE if se[c, i] else 0) | (SX if sx[c, i] else 0)
            if at_close and pending and close[c, i] > 0.0:
                bits = resolve(pending)
                pending = 0
            out[c, i] = bits
            count += bits != 0
    return count


@njit(cache=True, nogil=True)
def stop_rows(open_, close, le, se, frac, at_close, out):
    """Per-bar stop fractions ``frac`` ((N, T), by signal bar) moved to the bars where the
    entries fill, into ``out`` (NaN elsewhere): an entry takes the fraction of its signal's
    bar (of several entry signals waiting for one fill, the first: the one a session's
    order carries), as vectorbt takes the ``sl_stop`` of the bar its entry fills, the
    signal bar with ``fill="close"``. The fill bars are :func:`signal_orders`'s."""
    n_c, n_t = close.shape
    for c in range(n_c):
        first = -1
        for i in range(n_t):
            out[c, i] = np.nan
            if not at_close and first >= 0 and open_[c, i] > 0.0:
                out[c, i] = frac[c, first]
                first = -1
            if first < 0 and (le[c, i] or se[c, i]):
                first = i
            if at_close and first >= 0 and close[c, i] > 0.0:
                out[c, i] = frac[c, first]
                first = -1


@njit(cache=True, nogil=True)
def weight_orders(open_, close, weights, at_close, out, wts, wpx):
    """Like :func:`signal_orders` for target weights (NaN: none): write ``W`` into ``out``
    at the bar each weight order fills, the weight into ``wts`` and its sizing price (the
    last positive close at the decision: the decision bar's, or with ``at_close`` the fill
    bar's close) into ``wpx``; of weights waiting for the same fill, the last one wins.
    Return how many bars carry one."""
    n_c, n_t = close.shape
    count = 0
    for c in range(n_c):
        pending, pending_px, last = np.nan, np.nan, np.nan
        for i in range(n_t):
            out[c, i] = 0
            wts[c, i], wpx[c, i] = np.nan, np.nan
            if close[c, i] > 0.0:
                last = close[c, i]
            if not at_close and not np.isnan(pending) and open_[c, i] > 0.0:
                out[c, i], wts[c, i], wpx[c, i] = W, pending, pending_px
                pending = np.nan
                count += 1
            if not np.isnan(weights[c, i]):
                pending, pending_px = weights[c, i], last
            if at_close and not np.isnan(pending) and close[c, i] > 0.0:
                out[c, i], wts[c, i], wpx[c, i] = W, pending, close[c, i]
                pending = np.nan
                count += 1
    return count


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
def _open_trade(trades, t, col, sign, size, idx, price, fees):
    trades[t, 0] = col
    trades[t, 1] = sign
    trades[t, 2] = size
    trades[t, 3] = idx
    trades[t, 4] = price
    trades[t, 5] = fees


@njit(cache=True)
def _book_fill(rec, side, fills, trades, k, n_trades, pos_before):
    """Copy order record ``k`` into the fill table; open, grow or close a trade with it.
    A fill from flat opens one; a fill of the position's side (a target-weight order)
    adds to the open one (average entry price, fees summed); any other fill closes it:
    all of it (an exit, or a weight order crossing zero, whose rest opens a new trade,
    the fill's fee split by shares), or the part it sells (a weight order: a closed trade
    of that size, entry fees prorated, the rest stays open). Return the trade count."""
    sign = 1.0 if rec["side"] == 0 else -1.0  # vectorbt: 0 buy, 1 sell
    fills[k, 0] = rec["col"]
    fills[k, 1] = rec["idx"]
    fills[k, 2] = sign
    fills[k, 3] = rec["size"]
    fills[k, 4] = rec["price"]
    fills[k, 5] = rec["fees"]
    fills[k, 6] = side[k, _REASON]
    size, price, fees = rec["size"], rec["price"], rec["fees"]
    if pos_before == 0:
        _open_trade(trades, n_trades, rec["col"], sign, size, rec["idx"], price, fees)
        return n_trades + 1
    t = n_trades - 1
    held = abs(pos_before)
    if (pos_before > 0) == (sign > 0):  # adds to the position
        total = trades[t, 2] + size
        trades[t, 4] = (trades[t, 2] * trades[t, 4] + size * price) / total
        trades[t, 2] = total
        trades[t, 5] += fees
        return n_trades
    if size < held and not size == held:  # a part: close that much, keep the rest open
        share = size / trades[t, 2]
        for j in range(trades.shape[1]):
            trades[n_trades, j] = trades[t, j]
        trades[t, 2] = size
        trades[t, 5] = trades[n_trades, 5] * share
        trades[n_trades, 2] -= size
        trades[n_trades, 5] -= trades[t, 5]
        _close_trade(trades, t, rec["idx"], price, fees, side[k, _REASON])
        return n_trades + 1
    rest = size - held
    if not rest > 0.0:
        _close_trade(trades, t, rec["idx"], price, fees, side[k, _REASON])
        return n_trades
    exit_fee = fees * held / size  # crossing zero: the fee split by shares
    _close_trade(trades, t, rec["idx"], price, exit_fee, side[k, _REASON])
    _open_trade(trades, n_trades, rec["col"], sign, rest, rec["idx"], price, fees - exit_fee)
    return n_trades + 1


@njit(cache=True, nogil=True)
def books(close, records, side, cash0, equity, position, fills, trades):
    """From vectorbt's order records (in column, then time order) and the side table, fill
    ``fills`` (one row per record), ``trades``, ``equity`` and ``position`` ((N, T));
    return the number of trades. Equity is ``cash + shares x mark``, the mark being the
    last positive close (an entry before any close marks at its reference price); a trade
    still open after the last bar is marked there, with no exit fee."""
    n_c, n_t = close.shape
    n_rec = len(records)
    k = 0
    n_trades = 0
    for c in range(n_c):
        cash, pos, mark = cash0, 0.0, np.nan
        for i in range(n_t):
            while k < n_rec and records[k]["col"] == c and records[k]["idx"] == i:
                n_trades = _book_fill(records[k], side, fills, trades, k, n_trades, pos)
                if pos == 0 and np.isnan(mark):
                    mark = side[k, _REF]
                cash, pos = side[k, _CASH], side[k, _POS]
                k += 1
            cl = close[c, i]
            if cl > 0.0:
                mark = cl
            equity[c, i] = cash + pos * mark if pos != 0 else cash
            position[c, i] = pos
        if pos != 0:
            _close_trade(trades, n_trades - 1, -1, mark, 0.0, OPEN)
    return n_trades
