"""The single place where signals become fills: vectorbt's compiled core over numpy arrays.

Array in, arrays out; no pandas needed, cheap to call once per chunk of a sweep::

    from workbench.backtesting import CostModel, SimOptions, simulate

    sim = simulate(open, high, low, close, entries, exits,      # float64 / bool, T x N
                   short_entries=None, short_exits=None,         # bool T x N ("longshort")
                   costs=CostModel(), options=SimOptions(),
                   sl_stop=None, tp_stop=None)    # overrides: (N,) per column, (T, N) per bar
    sim.equity          # T x N float64: each account's value at each bar's close
    sim.position        # T x N float64: signed shares held after each bar
    sim.fills           # structured (col, idx, side, size, price, fees, reason)
    sim.trades          # structured (col, direction, size, entry_idx, entry_price, ...)
    sim.metrics()       # dict of (N,) arrays: total_return, sharpe, ... (see metrics.py)
    sim.portfolio(index, columns)   # the same fills as a vectorbt Portfolio

Each column is its own account starting with ``options.cash``; columns never interact, so a
sweep can tile symbols x parameter combinations into columns and split them into chunks.

**vectorbt runs the simulation.** The loop over bars and columns is vectorbt's compiled
``vectorbt.portfolio.nb.flex_simulate_nb`` (the engine of ``Portfolio.from_order_func(...,
flexible=True)``), one account per column, and every order is executed by vectorbt's
``process_order_nb``: fill price with slippage, fees, cash, position and order record are
vectorbt's arithmetic. What is ours (:mod:`workbench.backtesting.vbt_core`) is the order
function vectorbt calls on a bar: it decides the bar's orders in the order the semantics
below give (signal exit, signal entry, stops; stops first with ``fill="close"``), their
reference price, and their size in shares for an entry (sent as ``SizeType.Amount`` with
``fees`` = ``fees_bps``/1e4, ``fixed_fees`` = shares x ``fee_per_share``, ``slippage`` =
``slippage_bps``/1e4); it notes each fill's exit reason. Two compiled passes of ours
(:mod:`workbench.backtesting.passes`) run before and after: merging the signals into the
orders of their fill bars (which also tells vectorbt which bars to visit at all), and
reading vectorbt's order records into the fills, trades, equity and position.

It reads each column contiguously (column-major (T, N) arrays, e.g. ``a.T`` of a C-ordered
(N, T) array, avoid a copy), runs about 45 ns per bar and column with long signals on 5% of
the bars (about 100 ns long/short with stops), and releases the GIL, so threads can
simulate chunks in parallel. The first call imports vectorbt (seconds) and, once per
installation, compiles (then cached on disk by numba).

Semantics (the independent reference in ``tests/reference_backtest.py`` does the same):

* **Fill timing.** ``fill="next_open"`` (default): a signal on bar t (computed from data
  up to t's close) is an order that fills at the open of the column's next bar with an
  open (> 0). A NaN bar (the symbol did not trade) delays the order to its next bar; it is
  never dropped and never filled at a price known before the signal. Signals of bars that
  wait for the same fill are OR-ed. An entry on the last bar does not fill.
  ``fill="close"`` fills at bar t's close (a NaN close delays to the next close).
* **Signals to orders** (vectorbt's ``from_signals`` defaults, no accumulation): an entry
  and an exit of the same side on one bar cancel out, as do a long and a short entry.
  Flat: a long entry buys, a short entry (``"longshort"`` only) sells short. Long: an exit
  sells everything; a short entry reverses (sell everything, then sell short). Short:
  mirrored. Entries in the direction already held are ignored. With ``"long"`` the short
  signal arrays are ignored.
* **Costs and size** (:class:`CostModel`): buys fill at ``ref * (1 + slip)``, sells at
  ``ref * (1 - slip)``; fee = notional x ``fees_bps`` / 1e4 + shares x ``fee_per_share``
  (vectorbt's ``fees`` and ``fixed_fees`` of the order, evaluated by vectorbt in this very
  order, so they equal the CostModel's numbers to the last bit). An entry spends ``size`` x the
  account's cash, fees included: ``qty = size * cash / (price * (1 + rate) + per_share)``,
  floored with ``shares="whole"``; an entry that buys no share does not happen.
* **Target weights** (``weights``, instead of the boolean signals): a weight ``w`` on
  bar t (NaN: none) is an order that fills as a signal does (the next open); of weights
  waiting for the same fill the last wins. It trades
  :func:`workbench.model.weights.rebalance_quantity` shares (the session's very function):
  the position brought to ``w`` x the account's value at the decision's close (cash +
  shares x that close), fees not in the target, truncated toward zero with whole shares;
  a buy whose costs exceed the cash runs it negative (as a cover). Trades: a fill of the
  position's side adds to the open trade (average entry price), a fill against it closes
  the part it sells (entry fees prorated) or, crossing zero, all of it and opens the rest.
  Negative weights need ``"longshort"``; stops are refused with weights.
* **Stops** (``sl_stop``/``tp_stop``: fractions of the entry *fill* price, slippage
  included). Levels: long ``entry * (1 - sl)`` and ``entry * (1 + tp)``; short
  ``entry * (1 + sl)`` and ``entry * (1 - tp)``. They are checked on every bar *after*
  the entry bar that has an open, high and low, exactly as vectorbt's
  ``get_stop_price_nb``: if the bar opens through the level (a gap) the stop fills at the
  open, else if the bar's range reaches the level it fills at the level; the stop loss is
  checked first, so a bar reaching both levels exits at the stop loss. The exit is a
  market order: slippage and fees apply to the stop price as to any sell (or buy).
  A stop is a number, one per column, or one per bar and column (a (T, N) array, e.g. an
  ATR stop ``2 * atr / close``; NaN: no stop for an entry of that bar). As vectorbt's
  ``from_signals`` (which reads ``sl_stop[i]`` at the bar ``i`` its entry executes and
  keeps it until the position closes), an entry's fraction is fixed when it opens: the
  value of its *signal* bar (the fill bar with ``close``; with ``next_open`` the signal
  bar, i.e. vectorbt with its signals and stops shifted together; of several entry
  signals waiting for one fill, the first). Later values never move an open position's
  levels.
* **Trailing stop** (``sl_trail=True``, vectorbt's rule in ``simulate_from_signals_nb``):
  the stop loss trails the extreme since the entry: it starts at the entry fill price,
  and after each bar's stop check (the bar itself is checked against the level before
  it) the extreme moves to the bar's high if higher (long; a short: its low if lower),
  the level following as ``extreme * (1 - sl)`` (short ``extreme * (1 + sl)``). The
  entry bar does not move it; bars without an open, high or low neither (vectorbt would
  fill them from the close). The take profit does not trail.
  With ``next_open`` a signal order at the bar's open comes before the stops (the open is
  the bar's first trade); with ``close`` the stops come before the signal at the close,
  and a stopped-out account may re-enter at that close.
* **Accounting.** ``equity = cash + shares x last close`` (NaN bars keep the last close).
  A short sale credits its proceeds to cash; covering always buys the whole position back,
  even if cash goes negative. An account whose cash is not positive cannot enter.
  Positions still open after the last bar are trades with reason ``OPEN``, marked at the
  last close with no exit fee.

Why an order function and not ``vectorbt.Portfolio.from_signals``: ``from_signals`` raises
on a reversal with percent-of-cash sizing, checks stops *before* a pending order that fills
at the same bar's open, partially covers a short when cash runs short, and does not record
why a position was exited. Where vectorbt's order execution itself would differ, the order
function adjusts around it (see :mod:`workbench.backtesting.vbt_core`): a short is covered in
full on a credit of the missing cash (vectorbt would cover only partly), and a sell whose
fees exceed its proceeds (vectorbt rejects it) books the excess fee after the fill. One
vectorbt convention remains: it treats amounts within 1e-12 (and a cash balance within 1e-9
of the amount spent) as zero, so an entry that would leave a billionth of the cash unspent
leaves none, and an account with less than 1e-12 of cash does not trade. vectorbt's order
records are the fills: :meth:`Simulation.portfolio` hands them to ``vectorbt.Portfolio`` for
its analytics, and the test suite checks vectorbt's trades and equity against ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from workbench.backtesting import metrics as _metrics
from workbench.backtesting import passes
from workbench.errors import ConfigError
from workbench.model.costs import CostModel, Shares
from workbench.values import Number, Value

__all__ = ["EXIT_REASONS", "FILL_DTYPE", "TRADE_DTYPE", "Direction", "Fill", "SimOptions",
           "Simulation", "simulate"]

Fill = Literal["next_open", "close"]
Direction = Literal["long", "longshort"]
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "open at end")  # by the passes' code 0..3

_INT = ("col", "idx", "side", "reason", "direction", "entry_idx", "exit_idx")
# fills: side +1 buy / -1 sell; reason and trades' reason index EXIT_REASONS; direction +1/-1;
# a trade still open at the end has exit_idx -1 and is marked at the last close
FILL_DTYPE = np.dtype([(f, np.int64 if f in _INT else np.float64) for f in passes.FILL_FIELDS])
TRADE_DTYPE = np.dtype([(f, np.int64 if f in _INT else np.float64) for f in passes.TRADE_FIELDS])


class SimOptions(Value):
    """How signals are filled (see the module docstring). Bad values raise ``ConfigError``.

    ``periods_per_year`` only annualizes metrics (None: 252, i.e. daily bars)."""

    fill: Fill = "next_open"
    shares: Shares = "fractional"
    cash: Annotated[Number, Field(gt=0)] = 100_000.0
    size: Annotated[Number, Field(gt=0, le=1, description="fraction of cash per entry")] = 1.0
    direction: Direction = "long"
    sl_stop: Number | None = Field(None, gt=0)
    tp_stop: Number | None = Field(None, gt=0)
    sl_trail: bool = False
    # a record of stops given per bar (not numbers, so not above): e.g. "sl_stop (Signals)"
    stops_per_bar: str | None = None
    periods_per_year: Number | None = Field(None, gt=0)

    def describe(self) -> dict:
        return self.model_dump()


@dataclass(frozen=True, eq=False)
class Simulation:
    """What :func:`simulate` returns: numpy arrays only (see the module docstring)."""

    equity: np.ndarray
    position: np.ndarray
    fills: np.ndarray
    trades: np.ndarray
    costs: CostModel
    options: SimOptions
    close: np.ndarray = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.equity.shape

    def metrics(self, periods_per_year: float | None = None) -> dict[str, np.ndarray]:
        """Per-column metrics (see :func:`workbench.backtesting.metrics.summary`)."""
        ppy = periods_per_year or self.options.periods_per_year or _metrics.DAYS_PER_YEAR
        return _metrics.summary(self.equity, self.position, self.fills, self.trades,
                                self.options.cash, ppy)

    def order_records(self) -> np.ndarray:
        """The fills as vectorbt order records (``vectorbt.portfolio.enums.order_dt``)."""
        from vectorbt.portfolio.enums import order_dt

        out = np.empty(len(self.fills), dtype=order_dt)
        out["id"] = np.arange(len(self.fills))
        for name in ("col", "idx", "size", "price", "fees"):
            out[name] = self.fills[name]
        out["side"] = np.where(self.fills["side"] > 0, 0, 1)  # vectorbt: 0 buy, 1 sell
        return out

    def portfolio(self, index=None, columns=None, freq=None):
        """A ``vectorbt.Portfolio`` over the same fills (imports vectorbt: seconds, once)."""
        import pandas as pd
        import vectorbt as vbt
        from vectorbt.base.array_wrapper import ArrayWrapper
        from vectorbt.portfolio.enums import log_dt

        n_t, n_c = self.shape
        index = pd.RangeIndex(n_t) if index is None else index
        columns = pd.RangeIndex(n_c) if columns is None else columns
        wrapper = ArrayWrapper(index=index, columns=columns, ndim=2, freq=freq)
        # valued at the last close; before a column's first bar it holds only cash
        close = pd.DataFrame(self.close, index=index, columns=columns).ffill().bfill()
        return vbt.Portfolio(wrapper, close, self.order_records(), np.empty(0, dtype=log_dt),
                             init_cash=np.full(n_c, self.options.cash), cash_sharing=False,
                             call_seq=np.zeros((n_t, n_c), dtype=np.int64))


def _prices(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out, shape = {}, None
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.float64)
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.ndim != 2 or (shape is not None and a.shape != shape):
            raise ConfigError(f"simulate: {name} has shape {a.shape}, expected {shape or '(T, N)'}")
        shape = a.shape
        out[name] = a
    return out


def _columns(a: np.ndarray) -> np.ndarray:
    """(T, N) -> the (N, T) C-contiguous layout the loop reads (one compiled variant): always
    a writable copy, since numba compiles a read-only array (a pandas 3 frame's values, a
    broadcast) as another type, every compiled function again (tens of seconds)."""
    return np.array(a.T, order="C")


def _flags(name: str, a, shape) -> np.ndarray:
    if a is None:
        return np.zeros(shape, dtype=np.bool_)
    a = np.asarray(a)
    a = a.reshape(-1, 1) if a.ndim == 1 else a
    if a.dtype != np.bool_:
        raise ConfigError(f"simulate: {name} must be a boolean array, got {a.dtype}")
    if a.shape != shape:
        raise ConfigError(f"simulate: {name} has shape {a.shape}, the prices {shape}")
    return a


def _stop_levels(name: str, override, default: float | None, shape) -> np.ndarray:
    """The stop fractions as (N, 1) (a number, or one per column) or (T, N) per bar (a
    2-D array of the prices' shape); NaN: no stop (on that bar's entries)."""
    n_t, n_c = shape
    if override is None:
        return np.full((1, n_c), np.nan if default is None else default)
    try:
        a = np.asarray(override, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"simulate: {name} must be numbers, got {type(override).__name__}") from e
    if a.ndim == 2:
        if a.shape != shape:
            raise ConfigError(f"simulate: {name} has shape {a.shape}, the prices {shape} "
                              "(per bar and column: the prices' shape)")
    elif a.ndim <= 1 and a.size in (1, n_c):
        a = np.array(np.broadcast_to(a.reshape(-1), (n_c,))).reshape(1, n_c)  # writable
    else:
        raise ConfigError(f"simulate: {name} has shape {a.shape}: give a number, one per "
                          f"column ({n_c},) or one per bar and column {shape}")
    given = a[~np.isnan(a)]
    if not (np.isfinite(given).all() and (given > 0).all()):
        raise ConfigError(f"simulate: {name} values must be > 0 (NaN: no stop)")
    return a


def simulate(open, high, low, close, entries=None, exits=None, short_entries=None,
             short_exits=None, *, costs: CostModel | None = None,
             options: SimOptions | None = None, sl_stop=None, tp_stop=None,
             weights=None) -> Simulation:
    """Fill ``entries``/``exits`` (and the short ones), or target ``weights``, against OHLC
    prices; see the module doc.

    Prices are float arrays T x N (a 1-D array is one column), NaN where a column has no
    bar; signals are bool arrays of the same shape, ``weights`` a float array (NaN: no
    order). ``sl_stop``/``tp_stop`` optionally override ``options``: one stop per column
    (shape (N,)) or per bar and column (T x N), NaN: none.
    """
    costs = CostModel() if costs is None else costs
    options = SimOptions() if options is None else options
    if not isinstance(costs, CostModel) or not isinstance(options, SimOptions):
        raise ConfigError("simulate: costs must be a CostModel and options a SimOptions")
    px = _prices({"open": open, "high": high, "low": low, "close": close})
    shape = px["close"].shape
    le, lx = _flags("entries", entries, shape), _flags("exits", exits, shape)
    longshort = options.direction == "longshort"
    se = _flags("short_entries", short_entries if longshort else None, shape)
    sx = _flags("short_exits", short_exits if longshort else None, shape)
    sl = _stop_levels("sl_stop", sl_stop, options.sl_stop, shape)
    tp = _stop_levels("tp_stop", tp_stop, options.tp_stop, shape)
    if options.sl_trail and np.isnan(sl).all():
        raise ConfigError("simulate: sl_trail=True needs an sl_stop (it trails the stop loss)")
    if weights is not None:
        return _run(px, None, costs, options, sl, tp, _weights(weights, shape, options, sl, tp,
                                                               (entries, exits, short_entries,
                                                                short_exits)))
    return _run(px, (le, lx, se, sx), costs, options, sl, tp)


def _weights(weights, shape, options: SimOptions, sl, tp, signals) -> np.ndarray:
    """``weights`` checked: float T x N, finite or NaN, no short without ``"longshort"``,
    alone (no entries/exits) and without stops."""
    if any(a is not None for a in signals):
        raise ConfigError("simulate: give weights or entries/exits, not both")
    if not (np.isnan(sl).all() and np.isnan(tp).all()):
        raise ConfigError("simulate: sl_stop/tp_stop are not supported with target weights "
                          "(a rebalance changes the position the stop levels belong to)")
    w = np.asarray(weights, dtype=np.float64)
    w = w.reshape(-1, 1) if w.ndim == 1 else w
    if w.shape != shape:
        raise ConfigError(f"simulate: weights has shape {w.shape}, the prices {shape}")
    if np.isinf(w).any():
        raise ConfigError("simulate: weights must be finite (NaN: keep the position)")
    if options.direction == "long" and (w < 0).any():
        raise ConfigError("simulate: negative weights (shorts) need direction='longshort'")
    return w


def _run(px: dict[str, np.ndarray], signals: tuple | None, costs: CostModel,
         options: SimOptions, sl: np.ndarray, tp: np.ndarray,
         weights: np.ndarray | None = None) -> Simulation:
    """Signals (or weights) to orders (ours), the simulation (vectorbt's), books (ours); see
    the module docstring. Every compiled step reads (N, T) C-contiguous arrays."""
    from workbench.backtesting import vbt_core  # imports vectorbt (seconds, once)

    cols = {k: _columns(a) for k, a in px.items()}
    at_close = options.fill == "close"
    bits = np.empty(cols["close"].shape, dtype=np.uint8)  # the orders, and vectorbt's mask
    wts = wpx = None
    if weights is None:
        n_orders = passes.signal_orders(cols["open"], cols["close"], *map(_columns, signals),
                                        at_close, bits)
    else:
        wts, wpx = np.empty(bits.shape), np.empty(bits.shape)
        n_orders = passes.weight_orders(cols["open"], cols["close"], _columns(weights),
                                        at_close, bits, wts, wpx)
    sl, tp = (_fill_rows(a, cols, signals, at_close) for a in (sl, tp))
    # bounds: a signal order opens at most one trade, and a trade has two fills
    side = np.empty((2 * n_orders + 1, len(passes.SIDE_FIELDS)))
    cost = np.array([costs.slippage, costs.fee_rate, costs.fee_per_share, options.size,
                     1.0 if options.shares == "whole" else 0.0,
                     1.0 if options.sl_trail else 0.0])
    records = vbt_core.simulate_orders(cols["open"], cols["high"], cols["low"], cols["close"],
                                       bits, len(side), options.cash, cost, sl, tp, at_close,
                                       side, wts, wpx)
    fills = np.empty((len(records), len(passes.FILL_FIELDS)))
    trades = np.empty((len(records) + 1, len(passes.TRADE_FIELDS)))  # a fill opens at most one
    equity, position = np.empty(bits.shape), np.empty(bits.shape)
    n_trades = passes.books(cols["close"], records, side, options.cash, equity, position,
                            fills, trades)
    return Simulation(equity=equity.T, position=position.T,
                      fills=_records(fills, FILL_DTYPE),
                      trades=_records(trades[:n_trades], TRADE_DTYPE),
                      costs=costs, options=options, close=px["close"])


def _fill_rows(stops: np.ndarray, cols: dict, signals, at_close: bool) -> np.ndarray:
    """Stop fractions as the loop reads them: (N, 1) per column, or per bar (T, N) moved
    to each entry's fill bar (:func:`~workbench.backtesting.passes.stop_rows`), (N, T)."""
    if stops.shape[0] == 1 or signals is None:  # per column (weights: no stops)
        return np.array(stops.T, order="C")  # writable: see _columns
    out = np.empty(cols["close"].shape)
    passes.stop_rows(cols["open"], cols["close"], _columns(signals[0]), _columns(signals[2]),
                     _columns(stops), at_close, out)
    return out


def _records(table: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rows written by the loop (already in column, then time order) as a record array."""
    out = np.empty(len(table), dtype=dtype)
    for j, name in enumerate(dtype.names):
        out[name] = table[:, j]
    return out
