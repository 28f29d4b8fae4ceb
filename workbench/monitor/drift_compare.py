"""A session against the backtest of its day: the one comparison, for the recorded drift
report (:func:`workbench.monitor.drift.measure_drift`) and the drift page.

    comparison = compare(record, replay)   # a drift_replay.SessionRecord and its Replay
    comparison.signals    # each (bar, symbol, field) either side signalled, and who did
    comparison.fills      # FillDrift per fill: matched, extra (session only), missed
    comparison.pnl        # bar by bar: the session's P&L, the backtest's, the difference
    comparison.summary    # the headline figures

Only the bars the session has reached are compared (its last journaled bar): a running
session is compared on what it did so far, an ended one on its replay, which stops where
it stopped (:mod:`workbench.monitor.drift_replay`). A daily session's signals are compared
on the bar it decided on (the day before: its "decision" row; never its "fill" row) and
its fills and P&L on its day (the replay may start earlier: the account's first daily
decision).

Signals: the session's journaled signals against the backtest's, every field (entries,
exits, short entries and exits) of every symbol at every compared bar of the day; a target
weights strategy's weights, equal within 1e-9 relative. ``signal_agreement`` is the share
of those (bar, symbol, field) cells on which the two agree; ``signals_both`` of
``signals_either``: the signals both sides gave among those either gave.

Fills: :func:`workbench.monitor.drift_fills.fill_drift` (slippage against the price the
fill met, the excess over the cost model, its cost in dollars; a missed fill with the risk
gateway's refusal). A fill on one side only is listed, never dropped.

P&L: at each ``equity`` event, the session's equity less its start equity against the
backtest's book value at the close of the same bar less its book before the day
(:func:`start_book`: the session's cash per account on each symbol, the backtest's own
start, when the replay starts with the day). The final figures: the session's
``session_end`` P&L once it has ended (else its last equity), the backtest's at the last
compared bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from workbench.monitor.drift_fills import FillDrift, backtest_fills, fill_drift, session_fills

__all__ = ["FIELDS", "Comparison", "compare", "start_book"]

FIELDS = {"entries": "entry", "exits": "exit", "short_entries": "short_entry",
          "short_exits": "short_exit"}  # the backtest's signal frames: the journal's fields


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare` (see the module doc)."""

    signals: pd.DataFrame  # bar_time, symbol, field, session, backtest (bools)
    signals_compared: int  # (bar, symbol, field) cells compared
    fills: list[FillDrift]
    pnl: pd.DataFrame  # ts, session, backtest, difference
    session_pnl: Decimal
    backtest_pnl: float

    @property
    def differing(self) -> pd.DataFrame:
        """The signals on one side only."""
        return self.signals[self.signals["session"] != self.signals["backtest"]]

    def fills_frame(self) -> pd.DataFrame:
        from dataclasses import asdict

        columns = list(FillDrift.__dataclass_fields__)
        return pd.DataFrame([asdict(f) for f in self.fills], columns=columns)

    @property
    def summary(self) -> dict[str, Any]:
        s = self.signals
        both = int((s["session"] & s["backtest"]).sum())
        differing = len(s) - both
        matched = [f for f in self.fills if f.status == "matched"]
        excess = [f.excess_bps for f in matched if f.excess_bps is not None]
        return {
            "signals_compared": self.signals_compared, "signals_differing": differing,
            "signal_agreement": (1 - differing / self.signals_compared
                                 if self.signals_compared else 1.0),
            "signals_both": both, "signals_either": len(s),
            "session_fills": sum(f.status != "missed" for f in self.fills),
            "backtest_fills": sum(f.status != "extra" for f in self.fills),
            "matched": len(matched), "missed": sum(f.status == "missed" for f in self.fills),
            "extra": sum(f.status == "extra" for f in self.fills),
            "excess_bps_mean": float(np.mean(excess)) if excess else 0.0,
            "excess_bps_worst": max((abs(x) for x in excess), default=0.0),
            "excess_cost": sum(f.cost or 0.0 for f in self.fills),
            "session_pnl": float(self.session_pnl), "backtest_pnl": self.backtest_pnl,
            "pnl_difference": float(self.session_pnl) - self.backtest_pnl,
        }


def compare(record, replay) -> Comparison:
    """The session of ``record`` (a SessionRecord) against ``replay`` (its Replay)."""
    result, day_start, last = replay.result, replay.day_start, record.last_bar
    decide_from, index = replay.decide_from, result.index
    day = (index[(index >= decide_from) & (index <= last) & ~index.isin(list(record.filled_only))]
           if last is not None else index[:0])  # the bars the session decided on
    signals, compared = _signals(result, record.signals, day, decide_from, last)
    theirs = [f for f in backtest_fills(result)
              if last is not None and day_start <= f["time"] <= last]
    fills = fill_drift(session_fills(record.fills), theirs, result.costs, record.refused)
    book = result.equity()["total"]
    base = start_book(replay)
    pnl = _pnl(record, book, base)
    upto = book[book.index <= last] if last is not None else book[book.index < day_start]
    backtest_pnl = float(upto.iloc[-1]) - base if len(upto) else 0.0
    if record.end is not None:
        session_pnl = Decimal(str(record.end["pnl"]))
    else:
        session_pnl = Decimal(str(pnl["session"].iloc[-1])) if len(pnl) else Decimal(0)
    return Comparison(signals, compared, fills, pnl, session_pnl, backtest_pnl)


def start_book(replay) -> float:
    """The backtest's book when the session's day starts: its close before the day (a
    daily replay from the account's first decision holds what earlier sessions left),
    else each symbol's cash (flat)."""
    result = replay.result
    book = result.equity()["total"]
    before = book[book.index < replay.day_start]
    return float(before.iloc[-1]) if len(before) else replay.cash * len(result.symbols)


def _signals(result, payloads: list[dict], day: pd.DatetimeIndex, day_start: pd.Timestamp,
             last: pd.Timestamp | None) -> tuple[pd.DataFrame, int]:
    """(each signalled or differing cell with who gave it, the cells compared). A session
    signal at a bar the replay lacks is kept: it differs."""
    got: set[tuple] = set()
    inside = [p for p in payloads if last is not None
              and day_start <= pd.Timestamp(p["bar_time"]) <= last]
    for p in inside:
        t = pd.Timestamp(p["bar_time"])
        got.update((t, p["symbol"], name) for name, attr in FIELDS.items() if p.get(attr))
    want: set[tuple] = set()
    fields = [n for n in FIELDS if getattr(result.signals, n) is not None]
    for name in fields:
        frame = getattr(result.signals, name).loc[day]
        rows, cols = frame.to_numpy(dtype=bool).nonzero()
        want.update((frame.index[r], str(frame.columns[c]), name) for r, c in zip(rows, cols))
    if result.signals.kind == "weights":  # target weights: equal within 1e-9 relative
        fields = ["weights"]
        weights = result.signals.weights.loc[day]
        mine = {(pd.Timestamp(p["bar_time"]), p["symbol"]): float(p["weight"]) for p in inside
                if p.get("weight") is not None}
        for t, row in weights.iterrows():
            for sym, w in row.items():
                ours = mine.get((t, str(sym)))
                if (ours is None) != bool(np.isnan(w)) or (
                        ours is not None and not np.isclose(ours, w, rtol=1e-9, atol=1e-12)):
                    (got if ours is not None else want).add((t, str(sym), "weights"))
        got.update((t, sym, "weights") for t, sym in mine if t not in weights.index)
    cells = sorted(got | want)
    frame = pd.DataFrame({"bar_time": pd.DatetimeIndex([c[0] for c in cells]),
                          "symbol": [c[1] for c in cells], "field": [c[2] for c in cells],
                          "session": [c in got for c in cells],
                          "backtest": [c in want for c in cells]})
    return frame, len(day) * len(result.symbols) * max(1, len(fields))


def _pnl(record, book: pd.Series, base: float) -> pd.DataFrame:
    if not record.equity:
        return pd.DataFrame({"ts": pd.DatetimeIndex([], tz="UTC"), "session": [],
                             "backtest": [], "difference": []})
    start_equity = float(Decimal(str(record.start["start_equity"])))
    ts, equity, bars = zip(*record.equity)
    session = np.asarray(equity, dtype=float) - start_equity
    valued = book.reindex(pd.DatetimeIndex([pd.NaT if b is None else b for b in bars]))
    theirs = valued.to_numpy(dtype=float) - base
    return pd.DataFrame({"ts": pd.DatetimeIndex(ts), "session": session, "backtest": theirs,
                         "difference": session - theirs})
