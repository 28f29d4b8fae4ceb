"""Drift: what a paper session did against the backtest of the same day, same settings.

    report = measure_drift(run_dir, sma_cross)        # the session's record, its strategy
    report.pnl_difference, report.pnl_fraction, report.level   # to the cent; "ok" .. "halt"
    write_drift(run_dir, report)                      # results/drift.json

The replay takes everything from the session's own record, never from defaults: the
journal's ``session_start`` (replayed day, symbols, strategy parameters, timeframe,
accounts, cash per account, size, shares, the cost model, stops, direction, start equity)
and ``results/settings.json`` when ``wb.run`` wrote one (``history_days``); the bars are
the store's, as the session loaded them (the day and ``history_days`` sessions before it).
The backtest (:func:`workbench.backtesting.run.backtest`) runs with the session's cost
model and settings, its signals cleared before the day (a session trades from the day's
first bar, flat), so with a simulated broker that fills as the cost model says the two
agree to the cent. A session that ended early (interrupted, halted) is compared on the
bars it processed: the replay stops at its last journaled bar (said in ``notes``).

The report:

* signal agreement: the session's journaled signals against the backtest's, every field
  (entries, exits, short entries and exits) of every symbol at every bar of the day;
* per fill: each session fill matched to the backtest's fill of the same symbol, bar and
  side; its slippage in basis points against the reference price the fill met (the
  backtest's price without the model's slippage), the model's slippage, the excess, and
  what the difference cost in dollars (``(price - backtest price) x quantity`` against the
  trader, plus the fee difference);
* missed trades (backtest fills the session did not make) and extra ones (session fills
  the backtest did not make);
* P&L: the session's (``results/session.json``) against the backtest's over the day, the
  difference to the cent, and that difference as a fraction of the start equity
  (``pnl_fraction``: what the ``drift`` promotion gate reads).

``level`` from ``|pnl_fraction|`` and the thresholds (:func:`level_of`): "ok", "warn" (at
``warn_drift``), "block" (above ``max_drift``: promotion to live is refused) or "halt"
(above ``halt_drift``: the deployment stops). A missed or extra trade, or a signal that
differs, makes it at least "warn".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.config import GateSettings
from workbench.errors import ConfigError, DataError, WorkbenchError
from workbench.fsutil import atomic_write
from workbench.monitor.drift_fills import FillDrift, backtest_fills, fill_drift, session_fills
from workbench.plain import plain

__all__ = ["DRIFT_FILE", "DriftReport", "FillDrift", "checked_limits", "level_of",
           "limits_of", "measure_drift", "read_drift", "write_drift"]

DRIFT_FILE = "drift.json"
LEVELS = ("ok", "warn", "block", "halt")
CENT = Decimal("0.01")
EXAMPLES = 10  # signal disagreements a report lists
_FIELDS = {"entries": "entry", "exits": "exit", "short_entries": "short_entry",
           "short_exits": "short_exit"}


@dataclass(frozen=True)
class DriftReport:
    """The outcome of :func:`measure_drift` (see the module doc)."""

    run_id: str
    strategy: str
    params: dict[str, Any]
    replay_date: str
    symbols: list[str]
    costs: dict[str, float]  # the model: the session's sizing costs, the backtest's
    signals_compared: int
    signals_differing: int
    signal_agreement: float
    signal_examples: list[dict[str, Any]]
    fills: list[FillDrift]
    missed: int
    extra: int
    session_pnl: str  # Decimal text, to the cent
    backtest_pnl: str
    pnl_difference: str  # session - backtest, to the cent
    start_equity: str
    pnl_fraction: float  # pnl_difference / start_equity
    excess_slippage_cost: str  # the fills' cost against the backtest, to the cent
    level: str
    limits: dict[str, float]
    notes: list[str] = field(default_factory=list)
    carried: bool = False  # the session started from an account the replay cannot hold

    def to_dict(self) -> dict[str, Any]:
        return plain(asdict(self))

    def lines(self) -> list[str]:
        """A summary for people."""
        matched = [f for f in self.fills if f.status == "matched"]
        worst = max((abs(f.excess_bps) for f in matched if f.excess_bps is not None),
                    default=0.0)
        agree = self.signals_compared - self.signals_differing
        slip = self.costs.get("slippage_bps", 0)
        limits = self.limits
        out = [
            (f"drift of {self.run_id}: {self.strategy} on {self.replay_date}, "
             f"{len(self.symbols)} symbols"),
            (f"  signals     {agree} of {self.signals_compared} agree "
             f"({self.signal_agreement:.4%})"),
            (f"  fills       {len(matched)} matched, {self.missed} missed, {self.extra} extra; "
             f"worst excess slippage {worst:.2f} bps over the model's {slip:g}"),
            (f"  P&L         session {self.session_pnl}, backtest {self.backtest_pnl}, "
             f"difference {self.pnl_difference} ({self.pnl_fraction:.4%} of "
             f"{self.start_equity})"),
            (f"  level       {self.level.upper()} (warn {limits['warn']:g}, block "
             f"{limits['block']:g}, halt {limits['halt']:g} of capital)"),
        ]
        out += [f"  note: {n}" for n in self.notes]
        return out


def level_of(fraction: float, limits: dict[str, float], *, mismatched: bool = False) -> str:
    """"ok", "warn", "block" or "halt" for a drift of ``|fraction|`` of the capital."""
    value = abs(fraction)
    level = ("halt" if value > limits["halt"] else "block" if value > limits["block"]
             else "warn" if value >= limits["warn"] and value > 0 else "ok")
    if mismatched and level == "ok":
        level = "warn"
    return level


def limits_of(gates: GateSettings | None = None) -> dict[str, float]:
    """The thresholds (fractions of capital): ``[gates]`` warn_drift, max_drift, halt_drift."""
    if gates is None:
        from workbench.config import load_settings

        gates = load_settings().gates
    return checked_limits({"warn": gates.warn_drift, "block": gates.max_drift,
                           "halt": gates.halt_drift}, "[gates] warn_drift, max_drift, halt_drift")


def checked_limits(limits, what: str) -> dict[str, float]:
    """``limits`` as {"warn", "block", "halt"} fractions, each > 0, in that order."""
    try:
        out = {k: float(limits[k]) for k in ("warn", "block", "halt")}
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{what}: drift limits need warn, block and halt numbers, got "
                          f"{limits!r}") from None
    if not 0 < out["warn"] <= out["block"] <= out["halt"]:
        raise ConfigError(f"{what}: drift limits must be 0 < warn <= block <= halt, got "
                          f"warn {out['warn']:g}, block {out['block']:g}, halt {out['halt']:g}")
    return out


# -- the session's record --------------------------------------------------------------------


def _session(run_dir: Path) -> tuple[dict, list, list, dict, pd.Timestamp | None, dict]:
    """(session_start payload, signal payloads, fill payloads, session.json, the last bar
    the session processed, the risk gateway's refusals by (symbol, time))."""
    from workbench.journal.reader import replay
    from workbench.model import events as ev

    events = replay(run_dir).events
    starts = [e.payload for e in events if e.type == ev.SESSION_START]
    if not starts:
        raise DataError(f"drift: {run_dir.name} has no session_start in its journal: not a "
                        "session run")
    summary = _json(run_dir / "results" / "session.json")
    if summary is None:
        raise DataError(f"drift: {run_dir.name} has no results/session.json: the session has "
                        "not ended")
    signals = [e.payload for e in events if e.type == ev.SIGNAL]
    fills = [e.payload for e in events if e.type == ev.FILL]
    last = max((pd.Timestamp(e.payload["bar_time"]) for e in events if e.type == ev.BAR),
               default=None)
    refused = {(p["symbol"], pd.Timestamp(p["at"])): f"refused by risk ({p.get('check')}): "
               f"{p.get('reason')}" for p in (e.payload for e in events
                                             if e.type == ev.RISK_DECISION)
               if p.get("approved") is False and p.get("symbol") and p.get("at")}
    return starts[0], signals, fills, summary, last, refused


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _history_days(run_dir: Path, start: dict) -> int:
    settings = _json(run_dir / "results" / "settings.json") or {}
    days = (settings.get("settings") or {}).get("history_days")
    if isinstance(days, int) and days >= 1:
        return days
    manifest = _json(run_dir / "manifest.json") or {}
    first = (manifest.get("data_range") or {}).get("first")
    if first is None:
        raise DataError(f"drift: {run_dir.name} records neither history_days nor its bars' "
                        "first time: the replay cannot load the bars the session saw")
    from workbench.data import calendar
    from workbench.times import ny_date

    day = pd.Timestamp(start["replay_date"])
    sessions = calendar.sessions(ny_date(pd.Timestamp(first)), day)
    return max(1, len(sessions) - 1)


def _bars(start: dict, history_days: int, store):
    from workbench.data.aggregate import aggregate_bars
    from workbench.data.timeframe import Timeframe
    from workbench.engine import load_sessions

    tf = Timeframe.parse(start["timeframe"])
    day, symbols = start["replay_date"], list(start["symbols"])
    if str(start.get("bars_from", "")).startswith("stored 1Min aggregated"):
        minutes = load_sessions(1 + history_days, symbols, "1Min", end=day, store=store)
        return aggregate_bars(minutes, tf)
    return load_sessions(1 + history_days, symbols, tf, end=day, store=store)


# -- the replay ------------------------------------------------------------------------------


def _backtest(strategy, bars, start: dict, day_start: pd.Timestamp):
    from workbench.backtesting.run import backtest
    from workbench.strategy import TradingFrom

    wrapped = TradingFrom(strategy, day_start)  # the session trades from the day, flat
    stops = start.get("stops") or {}
    return backtest(wrapped, bars, fill="next_open", **start["costs"], shares=start["shares"],
                    cash=float(start["cash"]), size=float(start["size"]),
                    direction=start.get("direction", "long"), sl_stop=stops.get("sl_stop"),
                    tp_stop=stops.get("tp_stop"), sl_trail=bool(start.get("sl_trail", False)),
                    **start["params"])


def _signal_drift(result, signals: list[dict], day_start) -> tuple[int, int, list[dict]]:
    """(compared, differing, the earliest examples) over the day's bars."""
    got: set[tuple] = set()
    for p in signals:
        t = pd.Timestamp(p["bar_time"])
        if t >= day_start:
            got.update((t, p["symbol"], name) for name, attr in _FIELDS.items() if p.get(attr))
    want: set[tuple] = set()
    index = result.index
    day = index[index >= day_start]
    fields = [n for n in _FIELDS if getattr(result.signals, n) is not None]
    for name in fields:
        frame = getattr(result.signals, name).loc[day]
        rows, cols = frame.to_numpy(dtype=bool).nonzero()
        want.update((frame.index[r], str(frame.columns[c]), name) for r, c in zip(rows, cols))
    if result.signals.kind == "weights":  # target weights: equal within 1e-9 relative
        fields = ["weights"]
        weights = result.signals.weights.loc[day]
        mine = {(pd.Timestamp(p["bar_time"]), p["symbol"]): float(p["weight"]) for p in signals
                if p.get("weight") is not None and pd.Timestamp(p["bar_time"]) >= day_start}
        for t, row in weights.iterrows():
            for sym, w in row.items():
                ours = mine.get((t, str(sym)))
                if (ours is None) != bool(np.isnan(w)) or (
                        ours is not None and not np.isclose(ours, w, rtol=1e-9, atol=1e-12)):
                    (got if ours is not None else want).add((t, str(sym), "weights"))
    differing = sorted(got ^ want)
    examples = [{"time": t.isoformat(), "symbol": s, "field": f, "session": (t, s, f) in got,
                 "backtest": (t, s, f) in want} for t, s, f in differing[:EXAMPLES]]
    return len(day) * len(result.symbols) * max(1, len(fields)), len(differing), examples


def _cents(value) -> Decimal:
    out = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return out + 0  # -0.00 -> 0.00


def measure_drift(run_dir: str | Path, strategy, *, store=None,
                  gates: GateSettings | None = None,
                  limits: dict[str, float] | None = None) -> DriftReport:
    """Replay the session of ``run_dir`` through the backtest and compare (module doc).
    ``limits``: the deployment's thresholds (default: ``[gates]`` of the settings)."""
    from workbench.model.costs import CostModel
    from workbench.strategy import as_strategy
    from workbench.times import ny_midnight

    run_dir = Path(run_dir)
    strat = as_strategy(strategy, "measure_drift")
    start, signals, fills, summary, last, refused = _session(run_dir)
    if strat.name != start["strategy"]:
        raise WorkbenchError(f"drift: {run_dir.name} traded {start['strategy']!r}, not "
                             f"{strat.name!r}: give its strategy")
    notes = []
    if start.get("accounts") != "per_symbol":
        notes.append(f"accounts={start.get('accounts')!r}: the backtest gives each symbol its "
                     "own account, so their trades differ by design")
    if summary.get("outcome") != "succeeded":
        notes.append(f"the session ended {summary.get('outcome')}: {summary.get('message')}")
    n_accounts = len(start["symbols"]) if start.get("accounts") == "per_symbol" else 1
    carried = Decimal(str(start["start_equity"])) != Decimal(str(start["cash"])) * n_accounts
    if carried:
        notes.append(f"the session started from a carried account (equity "
                     f"{start['start_equity']}, the backtest {start['cash']} x {n_accounts}): "
                     "positions and cash carried from earlier sessions are not in the "
                     "replay, which starts flat; the P&L difference includes them, so the "
                     "level stops at 'block' (no halt on this comparison)")
    costs = CostModel(**start["costs"])
    bars = _bars(start, _history_days(run_dir, start), store)
    day_start = ny_midnight(start["replay_date"])
    if last is None or last < bars.index[-1]:  # the replay stops where the session did
        shown = "no bar of the day" if last is None else f"bars up to {last.isoformat()}"
        notes.append(f"the session processed {shown}; the replay stops there too")
        bars = bars.iloc(slice(0, int(bars.index.searchsorted(
            last if last is not None else day_start, side="right" if last else "left"))))
    result = _backtest(strat, bars, start, day_start)
    compared, differing, examples = _signal_drift(result, signals, day_start)
    fills_drift = fill_drift(session_fills(fills), backtest_fills(result), costs,
                             refused)
    equity = result.equity()["total"]
    backtest_pnl = _cents(float(equity.iloc[-1]) - float(start["cash"]) * n_accounts)
    session_pnl = _cents(summary["pnl"])
    difference = session_pnl - backtest_pnl
    start_equity = Decimal(str(start["start_equity"]))
    fraction = float(difference / start_equity) if start_equity else 0.0
    missed = sum(f.status == "missed" for f in fills_drift)
    extra = sum(f.status == "extra" for f in fills_drift)
    limits = checked_limits(limits, "drift limits") if limits else limits_of(gates)
    level = level_of(fraction, limits, mismatched=bool(differing or missed or extra))
    return DriftReport(
        run_id=run_dir.name, strategy=strat.name, params=dict(start["params"]),
        replay_date=str(start["replay_date"]), symbols=list(start["symbols"]),
        costs=costs.describe(), signals_compared=compared, signals_differing=differing,
        signal_agreement=1 - differing / compared if compared else 1.0,
        signal_examples=examples, fills=fills_drift, missed=missed, extra=extra,
        session_pnl=str(session_pnl), backtest_pnl=str(backtest_pnl),
        pnl_difference=str(difference), start_equity=str(start_equity), pnl_fraction=fraction,
        excess_slippage_cost=str(_cents(sum(f.cost or 0.0 for f in fills_drift))),
        level="block" if carried and level == "halt" else level, limits=dict(limits),
        notes=notes, carried=carried)


def write_drift(run_dir: str | Path, report: DriftReport) -> Path:
    """``results/drift.json`` of the run (replaced: the newest measurement is the one)."""
    path = Path(run_dir) / "results" / DRIFT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.to_dict(), indent=2)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n"), overwrite=True)
    return path


def read_drift(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``results/drift.json`` (what the drift dashboard reads), None if none."""
    return _json(Path(run_dir) / "results" / DRIFT_FILE)
