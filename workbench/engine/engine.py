"""The live engine: one timestamp at a time, the same strategy function, the last row.

    engine = Engine(sma_cross, symbols, params={"fast": 10, "slow": 30}, on_decision=print)
    engine.run(ReplayFeed.from_store(days=1, timeframe="1Min"))     # or engine.on_bars(row)

For each :class:`~workbench.engine.feed.BarRow` the engine appends the row to its
:class:`~workbench.engine.window.RollingWindow`, calls the strategy exactly as a backtest
does (``strategy.evaluate(window.bars(), params)``: signal checks, warmup masking, each
symbol's warmup counted in its bars since the first the engine saw), reads the last row of the signals and hands a :class:`Decision` to
``on_decision`` (a :data:`DecisionHandler`): the :class:`~workbench.model.Signal` of every
symbol with a signal, stamped with the bar's open time (the bar it belongs to), plus when
it was decided and how long it took. A signal on bar t is decided at t's close and fills
at t+1's open, in the backtest (``fill="next_open"``) as in a session.

Time. The engine reads time only through its clock: a :class:`~workbench.clock.SimClock`
(the default, for replays) is set to each bar's close as the bar is processed; a
:class:`~workbench.clock.LiveClock` reads wall time in a live session. Decision latency
(the row's arrival to its signals, ``on_decision`` excluded) is measured with
``time.perf_counter``, which is a stopwatch, not a clock for trading time.

Window length, and why engine and backtest agree exactly. The window *stores* the bars
from the first one the engine sees (its preloaded history, or the first bar replayed) up
to ``warmup + margin`` rows; the strategy is *evaluated* on the last rows only, so the
cost of a bar does not grow with the history. Indicators with memory (EMA, Wilder's RSI;
even TA-Lib's SMA, a running sum whose rounding depends on where it started) would give
other values on a short window than over the whole history; the engine therefore carries
their state from bar to bar instead of recomputing them: ``wb.ta.SMA``/``wb.ta.RSI`` and
``wb.crossed_above``/``crossed_below`` are served, during an evaluation, by the engine's
:class:`~workbench.ta.Stream` and :class:`~workbench.crossings.CrossStream`, which step
each call's state over the new row and keep the previous rows' values. The first
evaluation runs on the whole stored window (the history a backtest is given), so the
state is the whole history's, bit for bit what a vectorized backtest computes at row t;
parity holds whatever the window's length (``workbench parity`` checks it). ``run`` and the
sessions make that evaluation at their start, on the preloaded history (:meth:`Engine.prime`),
so the first bar costs what the others cost.

Rows evaluated: ``warmup + 1`` (the strategy's warmup is the contract for everything
outside ``wb.ta``: rolling windows, lags), plus, for each other ``wb.ta`` function the
strategy calls, the rows it needs to converge (:func:`workbench.ta.convergence`: TA-Lib's
lookback plus, for memory, the rows after which the start-up difference is below double
precision: an EMA(30) needs 580 bars, an ATR(14) 510), counted in each symbol's present
bars (a symbol with holes needs more rows; one with fewer bars than that in the whole
window makes the evaluation use the whole window). Those are not exact: their values
can differ from the whole history's in the last bits (the module says where, and
tests/test_ta_stream.py measures it). A function without a rule (KAMA, MAMA, ...) makes the
engine evaluate on its whole window, and it says so once. A streamed call whose input
does not continue the previous bar's (a branch that changes which indicators are called)
is restarted on the whole window, and the engine says so once. ``incremental=False``
recomputes everything on the whole window at every bar, as before issue 10 (exact only
while the window is anchored).

``margin`` defaults to :data:`DEFAULT_MARGIN` (2,048 rows) and only bounds memory and the
first evaluation now: past it the window slides, and the engine says so once (functions
computed on their rows then start from the window's first row; streamed ones do not care).
Give ``window=`` (rows in all) or ``margin=`` to change it.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.clock import Clock, SimClock
from workbench.crossings import CrossStream
from workbench.data.bars import FIELDS, Bars
from workbench.data.timeframe import Timeframe
from workbench.engine.feed import BarRow, Feed, bar_close
from workbench.engine.window import RollingWindow
from workbench.errors import ConfigError, DataError
from workbench.model import Signal
from workbench.strategy import Signals, as_strategy
from workbench.ta import Stream

__all__ = ["DEFAULT_MARGIN", "Decision", "DecisionHandler", "Engine", "LatencyStats"]

DEFAULT_MARGIN = 2048
_FLAGS = (("entries", "entry"), ("exits", "exit"),
          ("short_entries", "short_entry"), ("short_exits", "short_exit"))
_EPOCH = pd.Timestamp(0, tz="UTC")
_Mapping = tuple[np.ndarray, np.ndarray]  # positions in the row, positions in the engine


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided at one timestamp."""

    bar_time: pd.Timestamp  # the bar's open time: what the signals belong to
    decided_at: pd.Timestamp  # the engine's clock when the signals were emitted
    signals: tuple[Signal, ...]  # one per symbol with a signal (empty: nothing to do)
    latency: float  # seconds from the row's arrival to its signals
    ready: bool  # False while the window is shorter than warmup + 1 (no signals yet)


DecisionHandler = Callable[[Decision], None]  # called with every decision


class LatencyStats:
    """Decision latencies (seconds) of the timestamps the strategy ran on."""

    def __init__(self) -> None:
        self._samples = array("d")

    def record(self, seconds: float) -> None:
        self._samples.append(seconds)

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile in seconds (NaN when nothing was recorded)."""
        return float(np.percentile(self._samples, q)) if self._samples else float("nan")

    def summary(self) -> dict[str, float | int]:
        """count, and p50/p99/max/mean in milliseconds."""
        if not self._samples:
            return {"count": 0}
        values = np.frombuffer(self._samples, dtype=float) * 1e3
        return {"count": len(values), "p50_ms": float(np.percentile(values, 50)),
                "p99_ms": float(np.percentile(values, 99)), "max_ms": float(values.max()),
                "mean_ms": float(values.mean())}


class Engine:
    """Runs one strategy over bars arriving one timestamp at a time (see the module doc)."""

    def __init__(self, strategy, symbols: Sequence[str], *, params: dict[str, Any] | None = None,
                 window: int | None = None, margin: int = DEFAULT_MARGIN,
                 on_decision: DecisionHandler | None = None,
                 clock: Clock | None = None, timeframe: str | Timeframe | None = None,
                 log_notices: bool = True, incremental: bool = True) -> None:
        self.strategy = as_strategy(strategy, "Engine")
        self.params = self.strategy.params(**(params or {}))
        self.warmup = self.strategy.warmup(self.params)
        capacity = _capacity(window, margin, self.warmup)
        self.window = RollingWindow(symbols, capacity, timeframe)
        self.clock = clock if clock is not None else SimClock(_EPOCH)
        self.on_decision = on_decision
        self.latency = LatencyStats()
        self.notices: list[str] = []  # one-time messages, also logged if log_notices
        self.log_notices = log_notices
        self._told: set[str] = set()
        self._layout: tuple[tuple[str, ...], _Mapping | None] | None = None
        self.incremental = incremental
        self.stream = Stream()  # wb.ta state carried from bar to bar
        self.crosses = CrossStream()  # crossed_above/below state
        self.eval_rows: int | None = None  # rows evaluated (None: the whole window)
        self._started = False
        self._restarted = False
        # each symbol's bars since the first one seen (dropped from the window or not): the
        # warmup counts them, as a backtest of that whole history does (masked_warmup)
        self._bars_seen = np.zeros(len(self.symbols), dtype=np.int64)

    def __repr__(self) -> str:
        return (f"<Engine {self.strategy.name} {len(self.symbols)} symbols, warmup "
                f"{self.warmup}, {self.window!r}>")

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.window.symbols

    @property
    def ready(self) -> bool:
        """Whether the window is long enough for the strategy (more than warmup rows)."""
        return len(self.window) > self.warmup

    # -- input ----------------------------------------------------------------------------
    def preload(self, history: Bars) -> int:
        """Fill the window with bars before the first row (no signals); returns rows kept."""
        if not isinstance(history, Bars):
            raise DataError(f"preload needs wb.Bars, got {type(history).__name__}")
        columns = list(self.symbols)
        values = np.stack([getattr(history, f).reindex(columns=columns).to_numpy(dtype=float).T
                           for f in FIELDS])
        self.window.extend(history.index.asi8, values)
        self._bars_seen += np.count_nonzero(~np.isnan(values[FIELDS.index("close")]), axis=1)
        if self.window.timeframe is None:
            self.window.timeframe = history.timeframe
        self._note_sliding()
        self._started = False  # state carried so far lacks these rows: start it again
        return len(self.window)

    def prime(self) -> bool:
        """Evaluate the preloaded window once now, as the first bar would: the carried state
        (module doc) is then the history's, and the first bar costs what any bar costs, not
        a whole-window evaluation (130-180 ms at 500 symbols with four days preloaded). Call
        it after the last preload; whether it evaluated (no: not incremental, not ready, or
        started). A strategy that fails on the history raises here, at the start."""
        if not self.incremental or self._started or not self.ready:
            return False
        self._evaluate_carried()
        return True

    def on_bars(self, row: BarRow) -> Decision:
        """Process one timestamp: update the window, run the strategy, emit its last row.

        ``on_decision`` gets the decision of every timestamp (no signals while warming up). Rows
        must come in increasing time order (``DataError`` otherwise); a strategy error
        propagates as ``StrategyError``, the row staying in the window.
        """
        arrived = row.received if row.received is not None else time.perf_counter()
        values = self._aligned(row)
        self.window.append(row.time.value, values)
        self._bars_seen += ~np.isnan(values[FIELDS.index("close")])
        if isinstance(self.clock, SimClock):
            self.clock.set(self._close_of(row.time))
        ready = self.ready
        signals = self._decide(row.time) if ready else self._note_warming_up()
        latency = time.perf_counter() - arrived
        if ready:
            self.latency.record(latency)
        decision = Decision(row.time, self.clock.now(), signals, latency, ready)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def run(self, feed: Feed, progress: bool = False) -> int:
        """Preload the feed's history, then process each of its rows; returns rows processed."""
        if self.window.timeframe is None and feed.timeframe is not None:
            self.window.timeframe = Timeframe.parse(feed.timeframe)
        history = feed.history()
        if history is not None and len(history):
            self.preload(history)
            self.prime()
        rows = iter(feed)
        if progress:
            from workbench.progress import progress_bar

            total = len(feed) if hasattr(feed, "__len__") else None
            rows = progress_bar(rows, total=total, unit="bar", desc=f"replaying {self.strategy.name}")
        count = 0
        for row in rows:
            self.on_bars(row)
            count += 1
        return count

    # -- internals ------------------------------------------------------------------------
    def _aligned(self, row: BarRow) -> np.ndarray:
        """The row's values in the engine's symbol order (NaN for symbols it lacks)."""
        if self._layout is None or self._layout[0] is not row.symbols:
            self._layout = (row.symbols, _mapping(row.symbols, self.symbols))
        mapping = self._layout[1]
        if mapping is None:
            return row.values
        out = np.full((len(FIELDS), len(self.symbols)), np.nan)
        out[:, mapping[1]] = row.values[:, mapping[0]]
        return out

    def _close_of(self, bar_time: pd.Timestamp) -> pd.Timestamp:
        if self.window.timeframe is None:
            raise ConfigError("a replay engine sets its SimClock to each bar's close and needs "
                              "the bars' timeframe for that: Engine(..., timeframe='1Min')")
        return bar_close(bar_time, self.window.timeframe)

    def _decide(self, bar_time: pd.Timestamp) -> tuple[Signal, ...]:
        return self._last_row(self._evaluate_carried(), bar_time)

    def _evaluate_carried(self) -> Signals:
        """The strategy on the rows the carried state needs (the whole window to start it)."""
        self._note_sliding()
        rows = self.eval_rows if self._started else None
        signals = self._evaluate(rows)
        if rows is not None and self._restarted:
            self._notice(
                "engine_state_restart",
                f"{self.strategy.name}: an indicator's or crossing's input did not continue "
                f"the previous bar's (a branch changed which ones are called); evaluated "
                f"again on the whole window ({len(self.window)} rows) to restart its state",
            )
            signals = self._evaluate(None)
        self._started = True
        self.eval_rows = self._rows_needed()
        return signals

    def _evaluate(self, rows: int | None) -> Signals:
        if not self.incremental:  # recomputed on the whole window at every bar
            self._restarted = False
            return self.strategy.evaluate(self.window.bars(), self.params, self._before(None))
        before = self.stream.restarts + self.crosses.restarts
        with self.stream.active(), self.crosses.active():
            signals = self.strategy.evaluate(self.window.bars(rows), self.params,
                                             self._before(rows))
        self._restarted = self.stream.restarts + self.crosses.restarts > before
        return signals

    def _before(self, rows: int | None) -> np.ndarray:
        """Each symbol's bars seen before the last ``rows`` rows (None: the whole window)."""
        return self._bars_seen - np.count_nonzero(~np.isnan(self.window.field("close", rows)),
                                                  axis=1)

    def _rows_needed(self) -> int | None:
        """Rows the next evaluation needs (module doc); None: the whole window."""
        if not self.incremental:
            return None
        needs = self.stream.unstepped
        unknown = sorted({name for (name, _), rows in needs.items() if rows is None})
        if unknown:
            self._notice(
                "engine_window_unbounded",
                f"{self.strategy.name}: wb.ta.{', wb.ta.'.join(unknown)} has no convergence "
                f"rule (wb.ta.convergence); the strategy runs on the whole window at every "
                f"bar, and the cost per bar grows with it",
            )
            return None
        if not needs:
            return self.warmup + 1
        return self._rows_holding(self.warmup + 1 + max(needs.values()))

    def _rows_holding(self, bars: int) -> int | None:
        """Rows from the end holding ``bars`` present bars of every symbol that trades.

        Functions computed on their rows count bars, not rows: a symbol with holes needs
        more rows. None (the whole window) when a symbol has fewer bars than that in all."""
        present = ~np.isnan(self.window.field("close"))
        back = np.cumsum(present[:, ::-1], axis=1, dtype=np.int32)
        total = back[:, -1] if back.shape[1] else np.zeros(len(back), dtype=np.int32)
        trades = total > 0
        if np.any(total[trades] < bars):
            return None
        if not trades.any():
            return bars
        return max(bars, int(np.argmax(back[trades] >= bars, axis=1).max()) + 1)

    def _last_row(self, signals: Signals, bar_time: pd.Timestamp) -> tuple[Signal, ...]:
        last = signals.last_row()
        name, symbols = self.strategy.name, self.symbols
        if "weights" in last:
            weights = np.asarray(last["weights"], dtype=float)
            return tuple(Signal(name, symbols[j], bar_time, weight=float(weights[j]))
                         for j in np.flatnonzero(~np.isnan(weights)))
        flags = {attr: np.asarray(last[frame], dtype=bool) for frame, attr in _FLAGS if frame in last}
        hit = np.logical_or.reduce(list(flags.values()))
        stops = {k: np.broadcast_to(np.asarray(last[k], dtype=float), len(symbols))
                 for k in ("sl_stop", "tp_stop") if k in last}  # the strategy's own stops
        return tuple(Signal(name, symbols[j], bar_time, **{a: bool(v[j]) for a, v in flags.items()},
                            **{k: None if np.isnan(v[j]) else float(v[j])
                               for k, v in stops.items()})
                     for j in np.flatnonzero(hit))

    def _note_warming_up(self) -> tuple[Signal, ...]:
        """Say once that the engine waits for its warmup; no signals meanwhile."""
        self._notice(
            "engine_warming_up",
            f"{self.strategy.name}: warming up: the strategy needs more than {self.warmup} bars "
            f"before its first signal and the window holds {len(self.window)}; no signals until "
            f"then (preload history to start ready)",
        )
        return ()

    def _note_sliding(self) -> None:
        if self.window.anchored:
            return
        self._notice(
            "engine_window_sliding",
            f"{self.strategy.name}: the window is full ({self.window.capacity} rows) and now "
            f"slides: indicators with memory (EMA, RSI) start from its first row, no longer "
            f"from the first bar seen; run `workbench parity` or raise window/margin",
        )

    def _notice(self, event: str, message: str) -> None:
        """Log ``message`` the first time ``event`` happens."""
        if event in self._told:
            return
        self._told.add(event)
        self.notices.append(f"{event}: {message}")
        if not self.log_notices:
            return
        from workbench.log import get_logger

        get_logger("engine").warning(event, message=message, strategy=self.strategy.name)


def _capacity(window: int | None, margin: int, warmup: int) -> int:
    if window is None:
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
            raise ConfigError(f"margin must be a positive int, got {margin!r}")
        return warmup + margin
    if isinstance(window, bool) or not isinstance(window, int) or window <= warmup:
        raise ConfigError(
            f"window must be an int above the strategy's warmup ({warmup}), got {window!r}"
        )
    return window


def _mapping(source: tuple[str, ...], target: tuple[str, ...]) -> _Mapping | None:
    """Positions (in ``source``, in ``target``) of the shared symbols; None when identical."""
    if source == target:
        return None
    where = {s: i for i, s in enumerate(target)}
    unknown = [s for s in source if s not in where]
    if unknown:
        raise DataError(f"the feed sends bars for {unknown[:5]}, which the engine does not trade "
                        f"(it has {len(target)} symbols); give the engine the feed's symbols")
    return np.arange(len(source)), np.array([where[s] for s in source])
