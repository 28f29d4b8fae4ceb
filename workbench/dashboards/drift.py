"""A paper or live session against the backtest replay of its day: what the drift page shows.

    drift = compare(journal, replay)      # a RunJournal and a recompute.SessionReplay
    drift.signals    # each (bar, symbol, field) either side signalled, and who did
    drift.fills      # each fill matched by symbol, fill bar and side: prices, slippage in bps
    drift.pnl        # session P&L, replay P&L and their difference, bar by bar
    drift.summary    # the headline figures (agreement, fills matched, P&L difference)

Signals: the session journals each non-empty signal it acted on (``signal`` events: entry,
exit, short entry, short exit at a bar); the replay's are the strategy's frames on the same
bars from the day's first bar up to the last bar the session decided. Agreement is the
share of (bar, symbol, field) signalled by both among those signalled by either.

Fills: a session fill and a replay fill are the same trade leg when symbol, fill bar and
side agree (the backtest's trade entry/exit times are its fill bars). Slippage is the
session's price against the replay's, in basis points, positive when the session paid
more on a buy or got less on a sell. A fill on one side only is listed with the other
empty: it is drift, not dropped.

P&L: the session's ``equity`` events (each at a bar's close: the bar's open time plus
the timeframe) less its start equity, against the replay's book equity at the same bar
less its start (the replay has the session's cash per account on each symbol).

The figures the operations issue will compute (drift alerts, tolerances) are not here yet:
this is the comparison the core can make today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SIGNAL_FIELDS", "Drift", "compare", "replay_fills"]

SIGNAL_FIELDS = ("entry", "exit", "short_entry", "short_exit")
_FRAMES = {"entry": "entries", "exit": "exits", "short_entry": "short_entries",
           "short_exit": "short_exits"}


@dataclass(frozen=True)
class Drift:
    signals: pd.DataFrame  # bar_time, symbol, field, session, replay
    fills: pd.DataFrame  # symbol, time, side, session_qty/price, replay_qty/price, slippage_bps
    pnl: pd.DataFrame  # ts, session, replay, difference
    summary: dict[str, Any]


def replay_fills(trades: pd.DataFrame, day_start: pd.Timestamp) -> pd.DataFrame:
    """The replay's fills from its trades: an entry each, an exit each unless still open."""
    rows = []
    for t in trades.itertuples(index=False):
        long = t.direction == "long"
        if t.entry_time >= day_start:
            rows.append((t.symbol, t.entry_time, "buy" if long else "sell", t.size, t.entry_price))
        if t.exit_reason != "open at end" and pd.notna(t.exit_time):
            rows.append((t.symbol, t.exit_time, "sell" if long else "buy", t.size, t.exit_price))
    return pd.DataFrame(rows, columns=["symbol", "time", "side", "qty", "price"])


def _session_signals(signals: pd.DataFrame) -> pd.DataFrame:
    if signals.empty:
        return pd.DataFrame(columns=["bar_time", "symbol", "field"])
    parts = [signals.loc[signals[f].fillna(False).astype(bool), ["bar_time", "symbol"]]
             .assign(field=f) for f in SIGNAL_FIELDS if f in signals]
    return pd.concat(parts, ignore_index=True)


def _replay_signals(signals, start: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    parts = []
    for name, attr in _FRAMES.items():
        frame = getattr(signals, attr, None)
        if frame is None:
            continue
        window = frame.loc[(frame.index >= start) & (frame.index <= last)]
        stacked = window.rename_axis(index="bar_time", columns="symbol").stack()
        hits = stacked[stacked.astype(bool)].reset_index()[["bar_time", "symbol"]]
        parts.append(hits.assign(field=name))
    if not parts:
        return pd.DataFrame(columns=["bar_time", "symbol", "field"])
    return pd.concat(parts, ignore_index=True)


def _signals(journal, replay) -> pd.DataFrame:
    session = _session_signals(journal.signals())
    session["bar_time"] = pd.to_datetime(session["bar_time"], utc=True)
    bars = journal.equity()
    last = (session["bar_time"].max() if bars.empty else
            pd.to_datetime(bars["ts"], utc=True).max())
    if pd.isna(last):
        last = replay.day_start
    theirs = _replay_signals(replay.signals, replay.day_start, last)
    merged = session.merge(theirs, on=["bar_time", "symbol", "field"], how="outer", indicator=True)
    merged["session"] = merged["_merge"].isin(["both", "left_only"])
    merged["replay"] = merged["_merge"].isin(["both", "right_only"])
    return merged.drop(columns="_merge").sort_values(["bar_time", "symbol", "field"],
                                                     ignore_index=True)


def _fills(journal, replay) -> pd.DataFrame:
    mine = journal.fills()
    if mine.empty:
        mine = pd.DataFrame(columns=["symbol", "time", "side", "quantity", "price"])
    mine = (mine[["symbol", "time", "side", "quantity", "price"]]
            .rename(columns={"quantity": "session_qty", "price": "session_price"}))
    mine = mine.groupby(["symbol", "time", "side"], as_index=False).agg(
        session_qty=("session_qty", "sum"), session_price=("session_price", "mean"))
    theirs = replay_fills(replay.result.trades(), replay.day_start)
    last = mine["time"].max() if len(mine) else None
    if last is not None and journal.end is None:  # a running session: compare what it reached
        theirs = theirs[theirs["time"] <= last]
    theirs = theirs.rename(columns={"qty": "replay_qty", "price": "replay_price"})
    out = mine.merge(theirs, on=["symbol", "time", "side"], how="outer")
    sign = np.where(out["side"] == "buy", 1.0, -1.0)
    out["slippage_bps"] = sign * (out["session_price"] / out["replay_price"] - 1.0) * 1e4
    return out.sort_values(["time", "symbol"], ignore_index=True)


def _pnl(journal, replay, timeframe_delta: pd.Timedelta) -> pd.DataFrame:
    eq = journal.equity()
    if eq.empty:
        return pd.DataFrame(columns=["ts", "session", "replay", "difference"])
    start_equity = float((journal.start or {}).get("start_equity") or eq["equity"].iloc[0])
    session = pd.Series(eq["equity"].to_numpy(float) - start_equity,
                        index=pd.to_datetime(eq["ts"], utc=True))
    book = replay.result.equity()["total"]
    book = book[book.index >= replay.day_start]
    book.index = book.index + timeframe_delta  # valued at the bar's close, as the session
    first = book.iloc[0] if len(book) else np.nan
    base = replay.cash * len(replay.result.symbols) if np.isfinite(first) else np.nan
    theirs = (book - base).reindex(session.index).ffill()
    return pd.DataFrame({"ts": session.index, "session": session.to_numpy(),
                         "replay": theirs.to_numpy(),
                         "difference": session.to_numpy() - theirs.to_numpy()})


def compare(journal, replay) -> Drift:
    """The session in ``journal`` (a RunJournal, refreshed) against ``replay``."""
    tf = replay.result.bars.timeframe
    delta = tf.delta if tf is not None else pd.Timedelta(0)
    signals, fills = _signals(journal, replay), _fills(journal, replay)
    pnl = _pnl(journal, replay, delta)
    either = len(signals)
    agreed = int((signals["session"] & signals["replay"]).sum()) if either else 0
    matched = fills["session_price"].notna() & fills["replay_price"].notna()
    slip = fills.loc[matched, "slippage_bps"]
    summary = {
        "signals_either": either, "signals_both": agreed,
        "signal_agreement": agreed / either if either else 1.0,
        "session_fills": int(fills["session_price"].notna().sum()),
        "replay_fills": int(fills["replay_price"].notna().sum()),
        "fills_matched": int(matched.sum()),
        "slippage_bps_mean": float(slip.mean()) if len(slip) else 0.0,
        "slippage_bps_max": float(slip.abs().max()) if len(slip) else 0.0,
        "pnl_session": float(pnl["session"].iloc[-1]) if len(pnl) else 0.0,
        "pnl_replay": float(pnl["replay"].iloc[-1]) if len(pnl) else 0.0,
        "pnl_difference": float(pnl["difference"].iloc[-1]) if len(pnl) else 0.0,
    }
    return Drift(signals, fills, pnl, summary)
