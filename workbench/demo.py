"""The main job on the embedded defaults (``make demo``): no credentials, no network.

Step by step, each printing what it did: synthesize minute and daily bars on the NYSE
calendar into the store, show what the store holds and where, then backtest the SMA-cross
research notebook's strategy on the daily bars and sweep its two parameters, each run
recorded under ``runs/`` by the same code as ``workbench backtest`` and ``workbench sweep``;
last, replay the last stored minute session as a paper session on the simulated broker
with the sweep's best parameters (:mod:`workbench.session.demo`, the same code as
``workbench session``) and show its P&L, orders and record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from workbench import paths
from workbench.data import calendar
from workbench.data.sources import last_completed_session, synth_into_store
from workbench.data.store import Store

__all__ = ["DEMO_CONSTRAINT", "DEMO_GRID", "DEMO_NOTEBOOK", "DEMO_SEED", "DEMO_SYMBOLS",
           "run_demo"]

DEMO_SYMBOLS = 20
DEMO_SEED = 7
DEMO_MINUTE_DAYS = 10
DEMO_DAILY_DAYS = 500
DEMO_NOTEBOOK = Path("notebooks/strategies/sma_cross.ipynb")
DEMO_GRID = {"fast": [5, 10, 15, 20], "slow": [20, 30, 40, 50, 60]}
DEMO_CONSTRAINT = "fast < slow"


def run_demo(echo: Callable[[str], None] = print, store: Store | None = None, end=None) -> dict:
    """Run the demo; returns what it did (for tests), printing as it goes."""
    store = store or Store()
    out = _data(echo, store, end)
    research = _research(echo, store)
    return {**out, **research, "session": _session(echo, store, research["sweep"])}


def _data(echo: Callable[[str], None], store: Store, end) -> dict:
    """Synthesize the demo bars into ``store`` and show what it holds."""
    end = pd.Timestamp(end) if end is not None else last_completed_session()
    echo(f"== data: synthetic bars for {DEMO_SYMBOLS} symbols, seed {DEMO_SEED}, "
         f"sessions ending {end:%Y-%m-%d}")
    reports = {}
    for timeframe, days in (("1Min", DEMO_MINUTE_DAYS), ("1Day", DEMO_DAILY_DAYS)):
        report = synth_into_store(store, DEMO_SYMBOLS, days, timeframe, DEMO_SEED, end)
        reports[timeframe] = report
        echo(f"   {report.summary()}")
    listing = store.ls()
    echo(f"== store: {store.root}")
    for tf, group in listing.groupby("timeframe"):
        first = calendar.to_display(group["first"].min())
        last = calendar.to_display(group["last"].max())
        echo(f"   {tf}: {len(group)} symbols ({', '.join(group['symbol'].head(5))}, ...), "
             f"{int(group['rows'].sum()):,} bars, {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} "
             f"New York, files under {store.root / 'bars' / f'timeframe={tf}'}")
    echo("   load them in a notebook: "
         f"wb.data.load({list(listing['symbol'].head(2))}, timeframe='1Min')")
    return {"reports": reports, "listing": listing, "store": store.root}


def _research(echo: Callable[[str], None], store: Store) -> dict:
    """Backtest and sweep the SMA-cross notebook's strategy on the daily bars, recorded."""
    from workbench.jobs.backtest import DataChoice, run_backtest
    from workbench.jobs.sweep import run_sweep

    notebook = paths.project_root() / DEMO_NOTEBOOK
    daily = DataChoice(timeframe="1Day")
    echo(f"== backtest: the strategy of {DEMO_NOTEBOOK} on the daily bars, its parameters cell's values")
    backtest = run_backtest(notebook, data=daily, store=store)
    echo(f"   {backtest.headline()}")
    echo(f"   record: {backtest.path}")
    grid = " x ".join(f"{k} in {v}" for k, v in DEMO_GRID.items())
    echo(f"== sweep: {grid} where {DEMO_CONSTRAINT}")
    sweep = run_sweep(notebook, DEMO_GRID, constraint=DEMO_CONSTRAINT, data=daily, store=store)
    for line in sweep.lines():
        echo(f"   {line}")
    echo(f"== runs: every record is under {paths.runs_dir()}; try "
         f"`workbench backtest {DEMO_NOTEBOOK} -p fast {sweep.best.params['fast']} "
         f"-p slow {sweep.best.params['slow']}`")
    return {"backtest": backtest, "sweep": sweep}


def _session(echo: Callable[[str], None], store: Store, sweep):
    """A replayed paper session with the sweep's best parameters, recorded."""
    from workbench.session.demo import run_demo_session
    from workbench.strategy.notebook import load_notebook_strategy

    strategy = load_notebook_strategy(paths.project_root() / DEMO_NOTEBOOK)[0]
    return run_demo_session(echo, store, strategy, dict(sweep.best.params), DEMO_NOTEBOOK)
