"""``wb.run(..., mode="paper")``: the kernel is the session's runner.

    wb.run(sma_cross, mode="paper", run_dir=run_dir, bars=bars, fast=fast, slow=slow,
           fees_bps=fees_bps, slippage_bps=slippage_bps, replay_date="2026-11-20")

A replayed paper session (:func:`workbench.session.runner.run_session`) on the simulated
broker, with what the backtest would use, taken from the same values, never from
separate defaults: the symbols and timeframe of the notebook's ``bars``; costs
(``fees_bps``, ``fee_per_share``, ``slippage_bps``), ``cash``, ``size`` and ``shares`` of
the backtest options; ``accounts="per_symbol"`` (each symbol its own account, as the
backtest) unless ``accounts="shared"`` is asked for, which is said loudly (symbols then
compete for cash and the trades differ from the backtest's); ``sl_stop``/``tp_stop`` as
broker-side stop loss / take profit orders placed when an entry fills, at the levels the
backtest computes from the fill price (:mod:`workbench.session.stops`); ``direction``
("long" or "longshort": short sales, covers, reversals). What a session cannot do the
backtest's way is refused: ``fill`` other than ``"next_open"``.

Where the bars and fills come from: ``feed="replay"`` (default; ``replay_date`` required,
the stored day) on ``broker="sim"``; or ``feed="alpaca"``, today's live minutes
(:func:`workbench.session.live.run_live_session`, the notebook's timeframe: above the minute
the live minutes built into its bars by the store's rule; no ``replay_date``: the day
is the market clock's) on ``broker="sim"`` (simulated fills) or ``broker="alpaca"`` (the
Alpaca paper account; ``live=True`` for real money, refused unless every live safety
holds). With the live feed ``speed`` is the market clock's rate: 1 against Alpaca, N
against ``workbench fake-alpaca --speed N``; "max" means 1 there (said).

Settings: ``replay_date`` (the stored day to replay), ``speed`` ("max" or N x
real time), ``accounts``, ``heartbeat_every`` (None: the session's default, every bar),
``history_days`` (None: enough sessions before the day for the strategy's warmup),
``broker_path`` (None: a fresh account in the record), ``capital`` (None: each account
has the backtest's ``cash``; a deployment's capital: the session's whole cash, split over
the per-symbol accounts, said and recorded as ``cash_per_account``). With ``run_dir`` (a record the
runner prepared, still "running") the session opens that record, writes
``results/settings.json`` (every value as used) and its journal under ``events/``, and
finishes the record itself with the session's outcome, its figures (bars, orders, fills,
P&L, trading state, ...) in ``results/session.json`` (what ``workbench session`` prints).
Once it has ended, its drift against the replayed backtest is measured into
``results/drift.json`` (:mod:`workbench.monitor.drift_hook`).
"""

from __future__ import annotations

import math
from typing import Any

from workbench.data.bars import Bars
from workbench.errors import ConfigError
from workbench.execution.recorded import all_options, settings_doc
from workbench.runs.records import RunRecord
from workbench.strategy import Strategy

__all__ = ["account_cash", "history_days", "run_paper", "session_refusals"]

_SESSION_MINUTES = 390


def session_refusals(options: dict[str, Any]) -> list[str]:
    """The backtest options a paper session cannot honour (each with why)."""
    out = []
    if options["fill"] != "next_open":
        out.append(f"fill={options['fill']!r} (a session fills a signal at the next bar's open)")
    return out


def history_days(strategy: Strategy, params: dict[str, Any], bars: Bars) -> int:
    """Stored sessions before the replayed day that cover the strategy's warmup."""
    from workbench.data.timeframe import Timeframe

    tf = Timeframe.parse(bars.timeframe)
    per_day = max(1, _SESSION_MINUTES * 60 // tf.seconds) if tf.is_intraday else 1
    return max(1, math.ceil((strategy.warmup(params) + 1) / per_day))


def account_cash(cash: float, capital: Any, accounts: str, n_symbols: int) -> float:
    """Each account's cash: the backtest's ``cash``, or with a deployment's ``capital`` that
    capital split over the accounts (said: the book is then the capital, and each entry
    the same fraction of its account as in the backtest)."""
    if capital is None:
        return cash
    try:
        capital = float(capital)
    except (TypeError, ValueError):
        capital = float("nan")
    if not capital > 0:
        raise ConfigError(f"capital={capital!r}: the session's whole cash, a number > 0")
    each = capital / n_symbols if accounts == "per_symbol" else capital
    if each != cash:
        split = f"{n_symbols} accounts of {each:,.2f}" if accounts == "per_symbol" else "one account"
        print(f"NOTE: capital {capital:,.2f}: {split} (the backtest: {cash:,.2f} per account); "
              "each entry is the same fraction of its account as in the backtest, so amounts "
              "scale and whole-share rounding may differ")
    return each


def run_paper(strategy: Strategy, bars: Bars, params, options, settings,
              record: RunRecord | None):
    """The session: a stored day replayed, or today's live minutes (see the module doc)."""
    from workbench.model.costs import CostModel
    from workbench.session.options import HEARTBEAT_EVERY
    from workbench.session.runner import run_session

    if bars.timeframe is None:
        raise ConfigError("mode 'paper' needs bars with a timeframe (wb.data.load gives one)")
    options = all_options(options)
    refused = session_refusals(options)
    if refused:
        raise ConfigError("mode 'paper' cannot trade as the backtest does with "
                          + "; ".join(refused))
    accounts = settings["accounts"]
    if accounts not in ("per_symbol", "shared"):
        raise ConfigError(f"accounts={accounts!r}: 'per_symbol' (as the backtest) or 'shared'")
    if accounts == "shared":
        print("NOTE: accounts='shared': the symbols compete for one account's cash, so the "
              "session's trades differ from the backtest's (one account per symbol)")
    cash = account_cash(options["cash"], settings["capital"], accounts, len(bars.symbols))
    resolved = strategy.params(**params)
    days = settings["history_days"]
    beat = settings["heartbeat_every"]
    used = {**settings, "history_days": days if days is not None
            else history_days(strategy, resolved, bars),
            "heartbeat_every": HEARTBEAT_EVERY if beat is None else beat,
            "cash_per_account": cash}
    costs = CostModel(**{k: options[k] for k in CostModel.model_fields})
    source = _source(settings)
    if source == "alpaca":
        used["speed"] = 1 if settings["speed"] == "max" else settings["speed"]
    if record is not None:
        _settings_once(record, settings_doc("paper", strategy, resolved, options, bars, used,
                                            accounts=accounts))
    if source == "alpaca":
        from workbench.session.live import run_live_session

        result = run_live_session(
            strategy, resolved, symbols=list(bars.symbols), broker=settings["broker"],
            live=bool(settings["live"]), speed=used["speed"], timeframe=str(bars.timeframe),
            broker_path=used["broker_path"], run_dir=None if record is None else record.path,
            cash=cash, size=options["size"], shares=options["shares"], costs=costs,
            heartbeat_every=used["heartbeat_every"], history_days=used["history_days"],
            accounts=accounts, sl_stop=options["sl_stop"], tp_stop=options["tp_stop"],
            direction=options["direction"], capital=settings["capital"],
            sl_trail=options.get("sl_trail", False))
        return _shown(result, record, strategy)
    result = run_session(
        strategy, resolved, replay_date=used["replay_date"], speed=used["speed"],
        symbols=list(bars.symbols), timeframe=str(bars.timeframe),
        broker_path=used["broker_path"], run_dir=None if record is None else record.path,
        cash=cash, size=options["size"], shares=options["shares"], costs=costs,
        heartbeat_every=used["heartbeat_every"], history_days=used["history_days"],
        accounts=accounts, sl_stop=options["sl_stop"], tp_stop=options["tp_stop"],
        direction=options["direction"], sl_trail=options.get("sl_trail", False))
    return _shown(result, record, strategy)


def _source(settings) -> str:
    """``"replay"`` or ``"alpaca"``, with every combination a session cannot run refused."""
    broker, feed, live = settings["broker"], settings["feed"], settings["live"]
    if broker not in ("sim", "alpaca"):
        raise ConfigError(f"broker={broker!r}: 'sim' (simulated fills) or 'alpaca'")
    if feed not in ("replay", "alpaca"):
        raise ConfigError(f"feed={feed!r}: 'replay' (a stored day) or 'alpaca' (live minutes)")
    if not isinstance(live, bool):
        raise ConfigError(f"live={live!r}: True or False")
    if feed == "replay":
        if broker != "sim" or live:
            raise ConfigError(f"broker={broker!r}, live={live}: a replayed stored day trades on "
                              "the simulated broker only; give feed='alpaca' (--feed alpaca) "
                              "for a session on the live market")
        if settings["replay_date"] is None:
            raise ConfigError("mode 'paper' needs replay_date= (the stored day to replay), or "
                              "feed='alpaca' for today's live minutes")
        return "replay"
    if settings["replay_date"] is not None:
        raise ConfigError(f"replay_date={settings['replay_date']!r} with feed='alpaca': a live "
                          "session trades the market's day; give one or the other")
    if settings["speed"] == "max":
        print("NOTE: feed='alpaca': the market clock runs at real time (speed 1); give "
              "speed N only against `workbench fake-alpaca --speed N`")
    return "alpaca"


def _shown(result, record, strategy):
    print(f"session {result.outcome}: {result.message}; {result.bars} bars, {result.orders} "
          f"orders, {result.fills} fills, P&L {result.pnl}; record {result.path}")
    if record is not None:  # drift: the day replayed through the backtest, once it ended
        from workbench.monitor.drift_hook import after_session

        after_session(record.path, strategy)
        from workbench.execution.recorded import show
        from workbench.execution.session_figure import session_figure

        figure = session_figure(record.path)
        if figure is not None:
            show(figure)
    return result


def _settings_once(record: RunRecord, doc: dict) -> None:
    """Write ``settings.json``; a resumed session (after its kernel died) must find the very
    settings it started with, else it refuses to trade on (never a silent change)."""
    import json

    from workbench.plain import plain

    path = record.results_dir / "settings.json"
    if not path.exists():
        record.write_json("settings", doc)
        return
    before, now = json.loads(path.read_text()), json.loads(json.dumps(plain(doc)))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        raise ConfigError(f"run {record.run_id} is resumed with other settings than it "
                          f"started with ({', '.join(changed)}): start a new run instead")
