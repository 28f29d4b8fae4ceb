"""Drift: what a paper session did against the backtest of the same day, same settings.

    report = measure_drift(run_dir, sma_cross)        # the session's record, its strategy
    report.pnl_difference, report.pnl_fraction, report.level   # to the cent; "ok" .. "halt"
    write_drift(run_dir, report)                      # results/drift.json

One computation, here and on the drift page: the session's record and its day replayed
through the backtest with the session's own settings are
:mod:`workbench.monitor.drift_replay` (``SessionRecord``, ``session_bars``: the bars it
traded, ``replay_session``), their comparison :mod:`workbench.monitor.drift_compare`
(``compare``); this module turns the comparison of an ended session into the recorded
report, with a level. With a simulated broker that fills as the cost model says the two
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
* P&L: the session's (its ``session_end``, as ``results/session.json``) against the backtest's over the day, the
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

from workbench.config import GateSettings
from workbench.errors import ConfigError, DataError
from workbench.fsutil import atomic_write, read_json
from workbench.monitor.drift_compare import Comparison, compare, start_book
from workbench.monitor.drift_fills import FillDrift
from workbench.monitor.drift_replay import (
    Replay,
    SessionRecord,
    replay_session,
    session_bars,
)
from workbench.plain import plain

__all__ = ["DRIFT_FILE", "Comparison", "DriftReport", "FillDrift", "Replay", "SessionRecord",
           "checked_limits", "compare", "level_of", "limits_of", "measure_drift", "read_drift",
           "replay_session", "session_bars", "write_drift"]

DRIFT_FILE = "drift.json"
LEVELS = ("ok", "warn", "block", "halt")
CENT = Decimal("0.01")
EXAMPLES = 10  # signal disagreements a report lists


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


def _cents(value) -> Decimal:
    out = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return out + 0  # -0.00 -> 0.00


def measure_drift(run_dir: str | Path, strategy, *, store=None,
                  gates: GateSettings | None = None,
                  limits: dict[str, float] | None = None) -> DriftReport:
    """Replay the ended session of ``run_dir`` through the backtest and compare (module
    doc). ``limits``: the deployment's thresholds (default: ``[gates]`` of the settings)."""
    from workbench.model.costs import CostModel

    run_dir = Path(run_dir)
    record = SessionRecord.read(run_dir)
    if record.start is None:
        raise DataError(f"drift: {run_dir.name} has no session_start in its journal: not a "
                        "session run")
    if record.end is None:
        raise DataError(f"drift: {run_dir.name} has no session_end in its journal: the "
                        "session has not ended")
    start, end = record.start, record.end
    replay = replay_session(run_dir, strategy, record, store=store)
    notes = []
    if start.get("accounts") != "per_symbol":
        notes.append(f"accounts={start.get('accounts')!r}: the backtest gives each symbol its "
                     "own account, so their trades differ by design")
    if end.get("outcome") != "succeeded":
        notes.append(f"the session ended {end.get('outcome')}: {end.get('message')}")
    n_accounts = len(start["symbols"]) if start.get("accounts") == "per_symbol" else 1
    expected = Decimal(str(start["cash"])) * n_accounts
    held = f"{start['cash']} x {n_accounts}"
    if replay.trade_from < replay.day_start and n_accounts > 1:  # a daily run's account
        expected, held = _cents(start_book(replay)), "replayed from the account's first day"
    carried = abs(Decimal(str(start["start_equity"])) - expected) > CENT
    if carried:
        notes.append(f"the session started from a carried account (equity "
                     f"{start['start_equity']}, the backtest {expected} ({held})): "
                     "positions and cash carried from earlier sessions are not in the "
                     "replay; the P&L difference includes them, so the "
                     "level stops at 'block' (no halt on this comparison)")
    notes += replay.notes
    costs = CostModel(**start["costs"])
    c = compare(record, replay)
    s = c.summary
    differing = c.differing
    examples = [{"time": r.bar_time.isoformat(), "symbol": r.symbol, "field": r.field,
                 "session": bool(r.session), "backtest": bool(r.backtest)}
                for r in differing.head(EXAMPLES).itertuples()]
    session_pnl, backtest_pnl = _cents(c.session_pnl), _cents(c.backtest_pnl)
    difference = session_pnl - backtest_pnl
    start_equity = Decimal(str(start["start_equity"]))
    fraction = float(difference / start_equity) if start_equity else 0.0
    limits = checked_limits(limits, "drift limits") if limits else limits_of(gates)
    level = level_of(fraction, limits,
                     mismatched=bool(s["signals_differing"] or s["missed"] or s["extra"]))
    return DriftReport(
        run_id=run_dir.name, strategy=start["strategy"], params=dict(start["params"]),
        replay_date=str(start["replay_date"]), symbols=list(start["symbols"]),
        costs=costs.describe(), signals_compared=s["signals_compared"],
        signals_differing=s["signals_differing"], signal_agreement=s["signal_agreement"],
        signal_examples=examples, fills=c.fills, missed=s["missed"], extra=s["extra"],
        session_pnl=str(session_pnl), backtest_pnl=str(backtest_pnl),
        pnl_difference=str(difference), start_equity=str(start_equity), pnl_fraction=fraction,
        excess_slippage_cost=str(_cents(s["excess_cost"])),
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
    return read_json(Path(run_dir) / "results" / DRIFT_FILE)
