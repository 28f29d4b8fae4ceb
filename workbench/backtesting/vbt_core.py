"""vectorbt's compiled core runs the simulation; our callbacks decide the orders.

Private to :mod:`workbench.backtesting.simulation` (which documents the semantics). The loop
is ``vectorbt.portfolio.nb.flex_simulate_nb`` (what ``Portfolio.from_order_func(...,
flexible=True)`` runs), one group and one account per column, over the bars the
``segment_mask`` activates. On such a bar vectorbt calls :func:`order_func` until it says
"no more orders", and every order it returns is executed by vectorbt's
``process_order_nb``: slippage, fees, cash, position and the order record are vectorbt's
arithmetic. :func:`order_func` decides which order comes next, as the semantics ask:

* the signal order of the bar (from :func:`workbench.backtesting.passes.signal_orders`): an
  exit of the position, then an entry, each its own order (a reversal is two fills);
* the stops of the open position (stop loss first), before the signal order with
  ``fill="close"``, after it with ``next_open``;
* then which coming bar vectorbt must visit: the segment mask is our order table (``bits``);
  up to the next bar whose signals change the position, or where its stop triggers
  (marked ``STOP``), the order function unmarks the bars whose signals cannot (entries in
  the direction held, exits while flat). Nothing else can happen on a bar, so vectorbt
  visits only bars with something to do (about 200 ns each, against a few ns for a quiet
  bar).

Orders are absolute amounts (``SizeType.Amount``, ``Direction.Both``) at the reference
price (open, close, stop level or gap open), with ``slippage``, ``fees`` (fraction of the
notional) and ``fixed_fees = shares x fee_per_share``; vectorbt's own formulas then give
the :class:`~workbench.model.costs.CostModel` numbers. An entry's size is ours:
``size x cash / (price x (1 + rate) + per_share)``, floored for whole shares.

A target-weight order (bit ``W``, :func:`workbench.backtesting.passes.weight_orders`) is
one order of :func:`workbench.model.weights.rebalance_quantity` shares, the session's sizing
function compiled here, from the cash and position before the fill (those of the
decision's close: nothing fills in between) at the decision's close. It runs on a credit
as a cover does: a buy of the missing cash, a sell (which vectorbt refuses to an account
without cash) of enough to make the cash positive, taken back after the fill.

Two orders vectorbt would not execute as our semantics say are adjusted around it, and
:func:`post_order_func` settles the difference right after the fill: covering a short
with less cash than the buy-back costs (vectorbt would cover only partly) runs on a
credit of the missing cash, taken back after the fill, so cash goes negative exactly as
in the reference; a sell whose fees exceed its proceeds (a price below the per-share fee;
vectorbt rejects it) passes only the fee the proceeds cover, the rest is added to the
record's fees and taken from cash. Orders are sent with ``allow_partial=False`` and
``raise_reject=True``: if vectorbt still refused one, the run fails loudly.

Caching: numba cannot cache a function that passes jitted functions as constants
(vectorbt's own ``from_order_func`` is never cached). :func:`simulate_orders` therefore
passes the callbacks as *arguments* of the cached, GIL-free :func:`_run`, and gives them
fixed uuids (:func:`_stable_uuids`), so the cache index finds the same dispatchers in the
next process. The cache tracks this file only: after upgrading vectorbt, clear
``__pycache__``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from workbench.backtesting.passes import LE, LX, SE, SIGNAL, STOP, STOP_LOSS, SX, TAKE_PROFIT, W
from workbench.lazy import vectorbt_kernels
from workbench.model.weights import rebalance_quantity

vnb, _enums, _math = vectorbt_kernels()  # without vectorbt's package imports (workbench.lazy)
Direction, OrderStatus, SizeType = (_enums.Direction, _enums.OrderStatus, _enums.SizeType)
add_nb, is_close_nb, is_close_or_less_nb = (_math.add_nb, _math.is_close_nb,
                                            _math.is_close_or_less_nb)

# the one sizing rule of a target-weight order, the session's very function, compiled
_rebalance = njit(cache=True, _nrt=False)(rebalance_quantity)

__all__ = ["simulate_orders"]

# per-column state of the callbacks (float64 rows of ``state``)
(_STEP, _SL_FRAC, _TP_FRAC, _SL, _TP, _ENTRY_IDX, _CREDIT, _EXTRA_FEE, _REASON, _REF,
 _PEAK) = range(11)
N_STATE = 11
# cost tuple: slippage, fee rate, fee per share, size, whole (0/1), trailing stop loss (0/1)
_SLIP, _RATE, _FPS, _SIZE, _WHOLE, _TRAIL = range(6)
# the steps of one bar, in order, for each fill timing
_EXIT, _ENTER, _STOPS, _DONE = range(4)
_AT_OPEN = (_EXIT, _ENTER, _STOPS, _DONE)
_AT_CLOSE = (_STOPS, _EXIT, _ENTER, _DONE)

# The callbacks only unpack vectorbt's context and call plain functions of scalars and the
# few arrays they need, and none of them allocates, so they are compiled without numba's
# reference counting (``_nrt=False``): counting the twenty-odd arrays of vectorbt's context
# at every call cost more than the rest of the simulation.


@njit(cache=True, _nrt=False)
def _order(size, ref, fixed_fees, cost):
    return vnb.order_nb(size, ref, SizeType.Amount, Direction.Both, cost[_RATE], fixed_fees,
                        cost[_SLIP], 0.0, np.inf, np.nan, 0.0, False, False, True, False)


@njit(cache=True, _nrt=False)
def _sell_fees(state, col, qty, ref, fixed, cost):
    """The fixed fee to send with a sell of ``qty`` at ``ref``: all of it, unless the fees
    exceed the proceeds (vectorbt rejects that); then what the proceeds cover, the rest
    noted for :func:`post_order_func`."""
    acq = qty * (ref * (1.0 - cost[_SLIP]))
    if add_nb(acq, -(acq * cost[_RATE] + fixed)) >= 0.0:
        return fixed
    covered = acq - acq * cost[_RATE]
    state[col, _EXTRA_FEE] = fixed - covered
    return covered


@njit(cache=True, _nrt=False)
def _exit(col, pos, cash, state, ref, reason, cost):
    """The order closing the whole position ``pos`` at ``ref``."""
    qty = abs(pos)
    fixed = qty * cost[_FPS]
    state[col, _REASON] = reason
    state[col, _REF] = ref
    if pos > 0:
        return _order(-qty, ref, _sell_fees(state, col, qty, ref, fixed, cost), cost)
    req = qty * (ref * (1.0 + cost[_SLIP]))  # vectorbt's cost of the buy-back
    need = req + (req * cost[_RATE] + fixed)
    if not is_close_or_less_nb(need, cash[col]):  # lend what is missing (post_order_func)
        state[col, _CREDIT] = need - cash[col]
        cash[col] = cash[col] + state[col, _CREDIT]
    return _order(qty, ref, fixed, cost)


@njit(cache=True, _nrt=False)
def _frac(stops, col, i):
    """The stop fraction of an entry filling on bar ``i``: ``stops`` is (N, 1) (one per
    column) or (N, T) (per bar, already moved to the fill bar); NaN: no stop."""
    return stops[col, i if stops.shape[1] > 1 else 0]


@njit(cache=True, _nrt=False)
def _enter(col, i, cash, state, direction, ref, cost, sl_a, tp_a):
    """The order opening a position in ``direction`` (+1/-1) at ``ref`` with ``size`` of
    the cash, fees included (nothing if no cash or no share)."""
    budget = cost[_SIZE] * cash
    if not budget > 0.0 or is_close_nb(cash, 0.0):
        return vnb.order_nothing_nb()
    px = ref * (1.0 + cost[_SLIP]) if direction > 0 else ref * (1.0 - cost[_SLIP])
    qty = budget / (px * (1.0 + cost[_RATE]) + cost[_FPS])
    if cost[_WHOLE] > 0.0:
        qty = np.floor(qty)
    if not qty > 0.0 or is_close_nb(qty, 0.0):
        return vnb.order_nothing_nb()
    state[col, _REASON] = SIGNAL
    state[col, _REF] = ref
    state[col, _ENTRY_IDX] = i
    # stop levels: fractions (of this entry's bar) of the entry fill price, against the
    # position; the trailing stop's extreme starts at the fill price
    sl, tp = _frac(sl_a, col, i), _frac(tp_a, col, i)
    state[col, _SL_FRAC], state[col, _TP_FRAC], state[col, _PEAK] = sl, tp, px
    state[col, _SL] = px * (1.0 - sl) if direction > 0 else px * (1.0 + sl)
    state[col, _TP] = px * (1.0 + tp) if direction > 0 else px * (1.0 - tp)
    fixed = qty * cost[_FPS]
    if direction > 0:
        return _order(qty, ref, fixed, cost)
    return _order(-qty, ref, _sell_fees(state, col, qty, ref, fixed, cost), cost)


@njit(cache=True, _nrt=False)
def _rebalance_order(col, i, pos, cash, state, weight, price, ref, cost):
    """The order bringing ``pos`` to ``weight`` (sized at ``price``, the decision's close,
    by :func:`workbench.model.weights.rebalance_quantity`), filled at ``ref``; a buy
    runs on a credit of missing cash (as a cover), nothing if no share changes."""
    delta = _rebalance(weight, cash[col], pos, price, cost[_WHOLE] > 0.0)
    if delta == 0.0 or is_close_nb(delta, 0.0):
        return vnb.order_nothing_nb()
    state[col, _REASON] = SIGNAL
    state[col, _REF] = ref
    if pos == 0.0 or (pos > 0.0) != (pos + delta > 0.0):
        state[col, _ENTRY_IDX] = i
    qty = abs(delta)
    fixed = qty * cost[_FPS]
    if delta < 0.0:
        if not cash[col] > 0.0:  # vectorbt takes no order of an account without cash:
            state[col, _CREDIT] = 1.0 - cash[col]  # lend it some, taken back after the fill
            cash[col] = 1.0
        return _order(-qty, ref, _sell_fees(state, col, qty, ref, fixed, cost), cost)
    req = qty * (ref * (1.0 + cost[_SLIP]))
    need = req + (req * cost[_RATE] + fixed)
    if not is_close_or_less_nb(need, cash[col]):  # lend what is missing (post_order_func)
        state[col, _CREDIT] = need - cash[col]
        cash[col] = cash[col] + state[col, _CREDIT]
    return _order(qty, ref, fixed, cost)


@njit(cache=True, _nrt=False)
def _stop_price(pos, level, is_loss, o, h, lo):
    """Where a stop at ``level`` fills on a bar (NaN: not hit): the open if the bar opens
    through the level (a gap), else the level itself if the bar's range reaches it."""
    if np.isnan(level):
        return np.nan
    if (pos > 0) == is_loss:  # the level is below the price: long stop loss, short take profit
        if o <= level:
            return o
        if lo <= level:
            return level
    elif o >= level:
        return o
    elif h >= level:
        return level
    return np.nan


@njit(cache=True, _nrt=False)
def _stop_hit(sl, tp, pos, o, h, lo):
    """(price, reason) of the stop (levels ``sl``, ``tp``) a bar triggers, stop loss first;
    price NaN if none or if the bar lacks an open, high or low."""
    if not (o > 0.0) or np.isnan(h) or np.isnan(lo):
        return np.nan, SIGNAL
    px = _stop_price(pos, sl, True, o, h, lo)
    if not np.isnan(px):
        return px, STOP_LOSS
    return _stop_price(pos, tp, False, o, h, lo), TAKE_PROFIT


@njit(cache=True, _nrt=False)
def _trail(col, state, pos, o, h, lo):
    """A trailing stop loss after a bar without a stop exit (vectorbt's ``sl_trail``): the
    extreme since the entry moves to the bar's high (long) or low (short) if beyond it,
    and the level follows: ``extreme * (1 -/+ sl)``. Bars lacking an open, high or low
    (where stops are not checked) do not move it."""
    if np.isnan(state[col, _SL]) or not (o > 0.0) or np.isnan(h) or np.isnan(lo):
        return
    f = state[col, _SL_FRAC]
    if pos > 0 and h > state[col, _PEAK]:
        state[col, _PEAK] = h
        state[col, _SL] = h * (1.0 - f)
    elif pos < 0 and lo < state[col, _PEAK]:
        state[col, _PEAK] = lo
        state[col, _SL] = lo * (1.0 + f)


@njit(cache=True, _nrt=False)
def _acts_on(b, pos):
    """Whether signal bits ``b`` change position ``pos`` (else the bar is a no-op)."""
    if b & W:
        return True
    if pos > 0:
        return b & (SE | LX) != 0
    if pos < 0:
        return b & (LE | SX) != 0
    return b & (LE | SE) != 0


@njit(cache=True, _nrt=False)
def _plan_ahead(col, i, pos, o, h, lo, bits, state, trail):
    """Until the next bar that can change position ``pos``, unmark (in ``bits``, the
    segment mask) the bars whose signals cannot; mark ``STOP`` that bar if it is the one
    where the position's stop (levels in ``state``) triggers. Nothing changes the
    position in between, so vectorbt need not visit those bars; a trailing stop's level
    moves over them here (as :func:`_trail` on a visited bar)."""
    stops = pos != 0 and not (np.isnan(state[col, _SL]) and np.isnan(state[col, _TP]))
    for j in range(i + 1, bits.shape[1]):
        if stops and not np.isnan(_stop_hit(state[col, _SL], state[col, _TP], pos,
                                            o[col, j], h[col, j], lo[col, j])[0]):
            bits[col, j] |= STOP  # its signals stay: at the close they may re-enter
            return
        b = bits[col, j]
        if b != 0:
            if _acts_on(b, pos):
                return  # the visit of that bar moves a trailing level (after its stops)
            bits[col, j] = 0
        if stops and trail:
            _trail(col, state, pos, o[col, j], h[col, j], lo[col, j])


@njit(cache=True, _nrt=False)
def _next_order(col, i, first, cash, position, o, h, lo, cl, bits, state, cost, at_close,
                wts, wpx, sl_a, tp_a):
    """``(col, order)`` of the bar's next step that has an order; ``(-1, nothing)`` once
    the bar is done. Cheap checks inline; the helpers run only when an order is due."""
    if first:
        state[col, _STEP] = 0
    b = bits[col, i] & (LE | LX | SE | SX)
    while True:
        k = int(state[col, _STEP])
        state[col, _STEP] = k + 1
        step = _AT_CLOSE[k] if at_close else _AT_OPEN[k]
        pos = position[col]
        if step == _STOPS:
            if pos != 0 and state[col, _ENTRY_IDX] < i:  # never on the entry bar
                px, why = _stop_hit(state[col, _SL], state[col, _TP], pos,
                                    o[col, i], h[col, i], lo[col, i])
                if not np.isnan(px):
                    return col, _exit(col, pos, cash, state, px, why, cost)
                if cost[_TRAIL] > 0.0:
                    _trail(col, state, pos, o[col, i], h[col, i], lo[col, i])
        elif step == _EXIT:  # the signal order's exit, of a reversal too
            if (pos > 0 and b & (SE | LX)) or (pos < 0 and b & (LE | SX)):
                ref = cl[col, i] if at_close else o[col, i]
                return col, _exit(col, pos, cash, state, ref, SIGNAL, cost)
        elif step == _ENTER:  # its entry: flat, or just closed by a reversal
            if bits[col, i] & W:  # a target weight: one order to it
                ref = cl[col, i] if at_close else o[col, i]
                order = _rebalance_order(col, i, pos, cash, state, wts[col, i], wpx[col, i],
                                         ref, cost)
                if not np.isnan(order.size):
                    return col, order
            elif pos == 0 and b & (LE | SE):
                ref = cl[col, i] if at_close else o[col, i]
                order = _enter(col, i, cash[col], state, 1 if b & LE else -1, ref, cost,
                               sl_a, tp_a)
                if not np.isnan(order.size):
                    return col, order
        else:  # done: plan which coming bar vectorbt must visit next
            _plan_ahead(col, i, pos, o, h, lo, bits, state, cost[_TRAIL] > 0.0)
            return -1, vnb.order_nothing_nb()


@njit(cache=True, _nrt=False)
def order_func(c, o, h, lo, cl, bits, state, cost, at_close, wts, wpx, sl_a, tp_a):
    """vectorbt's flexible order function: ``(column, order)`` of the bar's next order,
    ``(-1, nothing)`` when the bar is done (see the module docstring)."""
    return _next_order(c.from_col, c.i, c.call_idx == 0, c.last_cash, c.last_position,
                       o, h, lo, cl, bits, state, cost, at_close, wts, wpx, sl_a, tp_a)


@njit(cache=True, _nrt=False)
def _settle(col, filled, k, cash, position, records, state, side):
    """Take back a credit, book an extra fee, note fill ``k`` in ``side``."""
    if state[col, _CREDIT] != 0.0:
        cash[col] = cash[col] - state[col, _CREDIT]
        state[col, _CREDIT] = 0.0
    if state[col, _EXTRA_FEE] != 0.0:
        if filled:
            records[k]["fees"] += state[col, _EXTRA_FEE]
            cash[col] = cash[col] - state[col, _EXTRA_FEE]
        state[col, _EXTRA_FEE] = 0.0
    if filled:
        side[k, 0] = state[col, _REASON]
        side[k, 1] = state[col, _REF]
        side[k, 2] = cash[col]
        side[k, 3] = position[col]


@njit(cache=True, _nrt=False)
def post_order_func(c, state, side):
    """After each order: settle a credit or an extra fee (see the module docstring) and
    note the fill's reason, reference price, and the cash and position after it in
    ``side`` (row = the order record's id)."""
    _settle(c.col, c.order_result.status == OrderStatus.Filled, c.last_oidx[c.col],
            c.last_cash, c.last_position, c.order_records, state, side)


@njit(cache=True, _nrt=False)
def _no_pre(c, *args):
    return ()


@njit(cache=True, _nrt=False)
def _no_post(c, *args):
    return None


@njit(cache=True, nogil=True)
def _run(o, h, lo, cl, bits, max_orders, cash, cost, at_close, state, side,
         order_fn, post_order_fn, no_pre, no_post, wts, wpx, sl_a, tp_a):
    """``flex_simulate_nb`` over (N, T) arrays (handed to vectorbt as (T, N) views); the
    order records, in column then time order."""
    n_c, n_t = cl.shape
    records, _ = vnb.flex_simulate_nb(
        (n_t, n_c), np.ones(n_c, dtype=np.int64), np.full(n_c, cash), False,
        bits.T, False, False,
        no_pre, (), no_post, (), no_pre, (), no_post, (), no_pre, (), no_post, (),
        order_fn, (o, h, lo, cl, bits, state, cost, at_close, wts, wpx, sl_a, tp_a),
        post_order_fn, (state, side),
        cl.T, True, False, False, max_orders, 0, False, True)
    return records


def _stable_uuids() -> None:
    """Fixed uuids for the callbacks, so the cached :func:`_run` (whose signature holds
    their types) is found again by the next process instead of compiled anew."""
    for fn in (order_func, post_order_func, _no_pre, _no_post):
        try:
            fn._set_uuid(f"workbench.backtesting.vbt_core.{fn.__name__}")
        except (AttributeError, AssertionError):  # numba changed: compile once per process
            pass


_stable_uuids()


def simulate_orders(o, h, lo, cl, bits, max_orders, cash, cost, sl, tp, at_close, side,
                    wts=None, wpx=None):
    """Run the simulation on (N, T) C-contiguous arrays; ``bits`` (from
    :func:`~workbench.backtesting.passes.signal_orders`) is the segment mask and is updated in
    place; ``cost`` is (slippage, fee rate, fee per share, size, whole, trail), ``sl``/``tp``
    the stop fractions, (N, 1) per column or (N, T) per fill bar (NaN: none). Fills
    ``side`` (``kernel.SIDE_FIELDS`` per order record) and returns vectorbt's order records
    (at most ``max_orders``)."""
    state = np.zeros((cl.shape[0], N_STATE))
    state[:, _SL_FRAC:_TP + 1] = np.nan
    sl, tp = (np.ascontiguousarray(a, dtype=np.float64) for a in (sl, tp))
    state[:, _ENTRY_IDX] = -1.0
    if wts is None:  # no target weights (``bits`` holds no W): never read
        wts = wpx = np.empty((1, 1))
    return _run(o, h, lo, cl, bits, max_orders, cash, tuple(map(float, cost)), at_close, state,
                side, order_func, post_order_func, _no_pre, _no_post, wts, wpx, sl, tp)
