"""A sweep chunk's simulation, books and metrics in one compiled pass per column.

    if fused.supports(options):     # no stops
        fused.score_chunk(open_, close, signals, n_symbols, costs, options, ppy,
                          metrics, equity, invested, counts)

The general path (:func:`workbench.backtesting.simulation.simulate`, then
:func:`workbench.backtesting.sweeps.worker.column_metrics`) merges the signals into orders,
runs vectorbt's flexible simulation loop with our order function, writes every fill, trade
and the full T x N equity and position curves, then scores them with ``metrics.summary`` in
numpy. A sweep keeps none of those tables: only each column's metrics and each
combination's summed equity. Here one loop per column does all of it while the column's
prices and signals are in cache: the signals merged into orders (the rules of
``passes.signal_orders``), each order executed by vectorbt's own ``execute_order_nb`` (the
same order fields our order function sends, so fill prices, fees, cash and position are
vectorbt's arithmetic, bit for bit), the book of ``passes.books`` (mark, equity, trades)
and the metrics of ``metrics.summary`` with the same definitions and formulas (sums are
taken in bar order where numpy sums pairwise: the results agree to about 1e-13).

Scope: no ``sl_stop``/``tp_stop`` (any direction, fill, costs, size and shares; a short
is covered on a credit of missing cash and fees beyond a sale's proceeds are taken from
cash, as ``vbt_core`` does). With stops the general path runs; the sweep says which
(``info["kernel"]``). ``tests/test_sweep.py`` holds both to ``wb.backtest`` column by
column, and this pass to the general path on dense random signals.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from workbench.backtesting.passes import LE, LX, SE, SX, resolve
from workbench.backtesting.simulation import SimOptions
from workbench.lazy import vectorbt_kernels
from workbench.model.costs import CostModel

vnb, _enums, _math = vectorbt_kernels()  # without vectorbt's package imports (workbench.lazy)
Direction, OrderStatus, ProcessOrderState, SizeType = (
    _enums.Direction, _enums.OrderStatus, _enums.ProcessOrderState, _enums.SizeType)
add_nb, is_close_nb, is_close_or_less_nb = (_math.add_nb, _math.is_close_nb,
                                            _math.is_close_or_less_nb)

__all__ = ["N_METRICS", "score_chunk", "supports"]

# rows of the metrics output: workbench.backtesting.sweeps.worker.COLUMN_METRICS, in order
(_TOTAL, _CAGR, _SHARPE, _SORTINO, _MAXDD, _TRADES, _WIN, _EXPOSURE, _TURNOVER, _FEES,
 _FINAL) = range(11)
N_METRICS = 11


def supports(options: SimOptions) -> bool:
    """Whether :func:`score_chunk` covers these options (else: the general path)."""
    return options.sl_stop is None and options.tp_stop is None and not options.sl_trail


@njit(cache=True, nogil=True)
def _execute(cash, pos, size, ref, rate, fixed, slip):
    """vectorbt executes the order our order function would send (``vbt_core._order``);
    returns (filled, size, price, fees, cash after, position after)."""
    order = vnb.order_nb(size, ref, SizeType.Amount, Direction.Both, rate, fixed, slip, 0.0,
                         np.inf, np.nan, 0.0, False, False, True, False)
    state = ProcessOrderState(cash, pos, 0.0, cash, ref, cash, -1, -1)
    new, res = vnb.execute_order_nb(state, order)
    if res.status == OrderStatus.Rejected:
        raise ValueError("vectorbt rejected an order of the sweep")
    if res.status != OrderStatus.Filled:
        return False, 0.0, 0.0, 0.0, cash, pos
    return True, res.size, res.price, res.fees, new.cash, new.position


@njit(cache=True, nogil=True)
def _sell_fixed(qty, ref, fixed, slip, rate):
    """(fixed fee to send, fee left over) for a sell of ``qty`` at ``ref``: all of it,
    unless the fees exceed the proceeds (vectorbt rejects that): then what the proceeds
    cover, the rest taken from cash after the fill (``vbt_core._sell_fees``)."""
    acq = qty * (ref * (1.0 - slip))
    if add_nb(acq, -(acq * rate + fixed)) >= 0.0:
        return fixed, 0.0
    covered = acq - acq * rate
    return covered, fixed - covered


@njit(cache=True, nogil=True)
def _exit(cash, pos, ref, slip, rate, fps):
    """Close the whole position ``pos`` at ``ref`` (``vbt_core._exit`` and ``_settle``): a
    short is covered even on a credit of the missing cash, taken back after the fill.
    Returns (filled, size, price, fees, cash, position)."""
    qty = abs(pos)
    fixed = qty * fps
    if pos > 0.0:
        fixed, extra = _sell_fixed(qty, ref, fixed, slip, rate)
        ok, q, px, fee, cash, pos = _execute(cash, pos, -qty, ref, rate, fixed, slip)
        if ok:
            fee += extra
            cash -= extra
        return ok, q, px, fee, cash, pos
    req = qty * (ref * (1.0 + slip))
    need = req + (req * rate + fixed)
    credit = 0.0
    if not is_close_or_less_nb(need, cash):
        credit = need - cash
        cash = cash + credit
    ok, q, px, fee, cash, pos = _execute(cash, pos, qty, ref, rate, fixed, slip)
    if credit != 0.0:
        cash = cash - credit
    return ok, q, px, fee, cash, pos


@njit(cache=True, nogil=True)
def _enter(cash, pos, direction, ref, slip, rate, fps, size, whole):
    """Open a position in ``direction`` (+1/-1) with ``size`` x the cash, fees included
    (``vbt_core._enter``); none is sent without cash or without a share.
    Returns (filled, size, price, fees, cash, position)."""
    budget = size * cash
    if not budget > 0.0 or is_close_nb(cash, 0.0):
        return False, 0.0, 0.0, 0.0, cash, pos
    px = ref * (1.0 + slip) if direction > 0 else ref * (1.0 - slip)
    qty = budget / (px * (1.0 + rate) + fps)
    if whole:
        qty = np.floor(qty)
    if not qty > 0.0 or is_close_nb(qty, 0.0):
        return False, 0.0, 0.0, 0.0, cash, pos
    fixed = qty * fps
    if direction > 0:
        return _execute(cash, pos, qty, ref, rate, fixed, slip)
    fixed, extra = _sell_fixed(qty, ref, fixed, slip, rate)
    ok, q, px, fee, cash, pos = _execute(cash, pos, -qty, ref, rate, fixed, slip)
    if ok:
        fee += extra
        cash -= extra
    return ok, q, px, fee, cash, pos


@njit(cache=True, nogil=True)
def _column(o, cl, le, lx, se, sx, shorts, at_close, cost, cash0, book, inv, rets, acc):
    """Simulate one column, adding its equity into ``book`` (T) and OR-ing "holds a
    position" into ``inv`` (T); its per-bar returns, in bar order and without the NaNs
    (after a zero equity) and the flat stretches' zeros, into ``rets[:kept]``. ``se``/``sx``
    are read only with ``shorts``. ``acc`` gets the trade numbers (notional, fees, trades,
    closed, wins: as ``BOOK_COUNTS``), the bars that end with a position, then the sum and
    count of the returns, the worst drawdown, the sum of the equity, the last equity, then
    ``kept`` and the number of flat bars skipped (each a return of 0, counted, not kept)."""
    slip, rate, fps, size, whole = cost[0], cost[1], cost[2], cost[3], cost[4] > 0.0
    n_t = cl.shape[0]
    cash, pos, mark = cash0, 0.0, np.nan
    pending = 0
    notional = fees = 0.0
    trades = closed = wins = held = 0
    t_size = t_px = t_fees = t_dir = 0.0
    prev, peak, worst, total, n_r, eq_sum = cash0, cash0, np.nan, 0.0, 0, 0.0
    kept = skipped = 0  # returns kept in rets[:kept]; flat bars skipped (returns of 0)
    i = 0
    while i < n_t:
        if pos == 0.0 and pending == 0 and i > 0 and cash == prev and prev != 0.0:
            # flat with nothing pending and the equity unchanged since the last bar: until
            # the next signal every bar has the same equity (the cash), a return of 0 and
            # the same drawdown; only the book and the last close (the mark) need the bars
            j = i
            if shorts:
                while j < n_t and not (le[j] | lx[j] | se[j] | sx[j]):
                    book[j] += cash
                    j += 1
            else:
                while j < n_t and not (le[j] | lx[j]):
                    book[j] += cash
                    j += 1
            if j > i:
                for q in range(j - 1, i - 1, -1):
                    if cl[q] > 0.0:
                        mark = cl[q]
                        break
                skipped += j - i
                n_r += j - i
                eq_sum += cash * (j - i)
                i = j
                if i == n_t:
                    break
        elif pos != 0.0 and pending == 0 and i > 0:
            # held with nothing pending: until the next signal no order, only the mark, the
            # equity, the book and the metrics move (the general bar below without its
            # signal tests: a fifth off the pass, held or not)
            while i < n_t and not (le[i] | lx[i] | (shorts and (se[i] | sx[i]))):
                c = cl[i]
                if c > 0.0:
                    mark = c
                e = cash + pos * mark
                inv[i] = True
                held += 1
                book[i] += e
                eq_sum += e
                if e == prev and prev != 0.0:
                    rets[kept] = 0.0
                    kept += 1
                    n_r += 1
                else:
                    r = e / prev - 1.0 if prev != 0.0 else np.nan
                    if not np.isnan(r):
                        rets[kept] = r
                        kept += 1
                        total += r
                        n_r += 1
                    peak = max(peak, e)
                    if peak > 0.0 and not (e > peak * ((1.0 + worst) + 1e-9)):
                        dd = e / peak - 1.0
                        if not (dd >= worst):
                            worst = dd
                prev = e
                i += 1
            if i == n_t:
                break
        bits = 0
        if not at_close and pending and o[i] > 0.0:
            bits, pending = resolve(pending), 0
        if le[i]:
            pending |= LE
        if lx[i]:
            pending |= LX
        if shorts:
            if se[i]:
                pending |= SE
            if sx[i]:
                pending |= SX
        if at_close and pending and cl[i] > 0.0:
            bits, pending = resolve(pending), 0
        if bits:
            ref = cl[i] if at_close else o[i]
            if (pos > 0.0 and bits & (SE | LX)) or (pos < 0.0 and bits & (LE | SX)):
                ok, q, px, fee, cash, pos = _exit(cash, pos, ref, slip, rate, fps)
                if ok:
                    notional += q * px
                    fees += fee
                    diff = t_size * px - t_size * t_px
                    if t_dir < 0:
                        diff = -diff
                    pnl = diff - t_fees - fee
                    closed += 1
                    wins += pnl > 0.0
            if pos == 0.0 and bits & (LE | SE):  # flat, or just closed by a reversal
                way = 1 if bits & LE else -1
                ok, q, px, fee, cash, pos = _enter(cash, pos, way, ref, slip, rate, fps, size,
                                                   whole)
                if ok:
                    if np.isnan(mark):  # marked at its reference until a close
                        mark = ref
                    notional += q * px
                    fees += fee
                    trades += 1
                    t_size, t_px, t_fees, t_dir = q, px, fee, way
        c = cl[i]
        if c > 0.0:
            mark = c
        if pos != 0.0:
            e = cash + pos * mark
            inv[i] = True
            held += 1
        else:
            e = cash
        book[i] += e
        eq_sum += e
        if e == prev and prev != 0.0 and i > 0:  # unchanged (flat): r = 0, same drawdown
            rets[kept] = 0.0
            kept += 1
            n_r += 1
        else:
            r = e / prev - 1.0 if prev != 0.0 else np.nan
            if not np.isnan(r):
                rets[kept] = r
                kept += 1
                total += r
                n_r += 1
            peak = max(peak, e)
            # the drawdown e / peak - 1 (NaN without a positive peak: ignored, as np.fmin)
            # can only be a new worst below (1 + worst) x the peak: divide only then (a
            # division a held bar was a third of the pass); the margin of 1e-9 on the ratio
            # is far above the roundings, and the candidate's drawdown is exact
            if peak > 0.0 and not (e > peak * ((1.0 + worst) + 1e-9)):
                dd = e / peak - 1.0
                if not (dd >= worst):
                    worst = dd
        prev = e
        i += 1
    acc[0], acc[1], acc[2], acc[3], acc[4], acc[5] = notional, fees, trades, closed, wins, held
    acc[6], acc[7], acc[8], acc[9], acc[10] = total, n_r, worst, eq_sum, prev
    acc[11], acc[12] = kept, skipped


@njit(cache=True, nogil=True)
def _metrics(n_t, last, cash0, ppy, acc, rets, out):
    """``metrics.summary`` of one column from :func:`_column`'s numbers, into ``out``."""
    out[_FINAL] = last
    out[_TOTAL] = last / cash0 - 1.0
    growth = last / cash0
    if n_t == 0:
        out[_CAGR] = np.nan
    elif growth > 0:
        out[_CAGR] = math.pow(max(growth, 0.0), ppy / n_t) - 1.0
    else:
        out[_CAGR] = -1.0
    n_r = int(acc[7])
    mean = acc[6] / n_r if n_r else np.nan  # numpy's nanmean
    ss, down = 0.0, 0.0  # deviations from the mean (nanstd, ddof=1) and the downside
    for i in range(int(acc[11])):  # the returns kept (none NaN)
        r = rets[i]
        ss += (r - mean) * (r - mean)
        # min, not a branch on the sign: a held column's returns change sign at random,
        # and a mispredicted branch a bar cost a third of the pass; adding 0.0 for the
        # gains changes no bit of the sum
        neg = min(r, 0.0)
        down += neg * neg
    if acc[12] > 0:  # the skipped flat bars' returns of 0: each deviates by the mean
        ss += acc[12] * (mean * mean)
    root = math.sqrt(ppy)
    std = math.sqrt(ss / (n_r - 1)) if n_r > 1 else np.nan
    out[_SHARPE] = mean / std * root if n_t >= 2 and std > 0 else np.nan
    dn = math.sqrt(down / n_r) if n_r else np.nan
    out[_SORTINO] = mean / dn * root if n_t and dn > 0 else np.nan
    out[_MAXDD] = acc[8] if n_t else 0.0
    out[_TRADES] = acc[2]
    out[_WIN] = acc[4] / acc[3] if acc[3] > 0 else np.nan
    out[_EXPOSURE] = acc[5] / n_t if n_t else 0.0
    avg = acc[9] / n_t if n_t else np.nan
    out[_TURNOVER] = (acc[0] / avg / (n_t / ppy) if avg > 0 else np.nan) if n_t else 0.0
    out[_FEES] = acc[1]


@njit(cache=True, nogil=True)
def _score(o, cl, le, lx, se, sx, shorts, n_sym, at_close, cost, cash0, ppy, metrics,
           equity, invested, counts):
    n_cols, n_t = le.shape
    rets = np.empty(n_t)
    acc = np.zeros(13)
    one = np.empty(N_METRICS)
    for col in range(n_cols):
        k, s = col // n_sym, col % n_sym
        # the flags as constants, one call each: _column is compiled into this loop once
        # per combination of them, without their tests on every bar (about 10% of the pass)
        if at_close and shorts:
            _column(o[s], cl[s], le[col], lx[col], se[col], sx[col], True, True, cost, cash0,
                    equity[k], invested[k], rets, acc)
        elif at_close:
            _column(o[s], cl[s], le[col], lx[col], se[col], sx[col], False, True, cost, cash0,
                    equity[k], invested[k], rets, acc)
        elif shorts:
            _column(o[s], cl[s], le[col], lx[col], se[col], sx[col], True, False, cost, cash0,
                    equity[k], invested[k], rets, acc)
        else:
            _column(o[s], cl[s], le[col], lx[col], se[col], sx[col], False, False, cost, cash0,
                    equity[k], invested[k], rets, acc)
        _metrics(n_t, acc[10], cash0, ppy, acc, rets, one)
        for m in range(N_METRICS):
            metrics[m, k, s] = one[m]
        for m in range(5):
            counts[m, k] += acc[m]


def score_chunk(open_, close, signals: dict, n_symbols: int, costs: CostModel,
                options: SimOptions, periods_per_year: float, metrics, equity, invested,
                counts) -> None:
    """Score a chunk's columns (combination major: column ``k * n_symbols + s``).

    ``open_``/``close``: (n_symbols, T) C-contiguous float64; ``signals``: entries, exits
    and (``direction="longshort"``) short_entries, short_exits, (k * n_symbols, T)
    C-contiguous bool. Writes ``metrics`` (N_METRICS, k, n_symbols) and adds into
    ``equity`` (k, T), ``invested`` (k, T) and ``counts`` (5, k)."""
    cost = np.array([costs.slippage, costs.fee_rate, costs.fee_per_share, options.size,
                     1.0 if options.shares == "whole" else 0.0])
    le, lx = signals["entries"], signals["exits"]
    shorts = options.direction == "longshort"
    se, sx = (signals["short_entries"], signals["short_exits"]) if shorts else (le, lx)
    _score(open_, close, le, lx, se, sx, shorts, n_symbols, options.fill == "close", cost,
           float(options.cash), float(periods_per_year), metrics, equity, invested, counts)
