"""The main job on the embedded defaults (``make demo``): no credentials, no network.

Step by step, each printing what it did: synthesize minute and daily bars on the NYSE
calendar into the store, then show what the store holds and where.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from workbench.data import calendar
from workbench.data.sources import last_completed_session, synth_into_store
from workbench.data.store import Store

__all__ = ["run_demo", "DEMO_SYMBOLS", "DEMO_SEED"]

DEMO_SYMBOLS = 20
DEMO_SEED = 7
DEMO_MINUTE_DAYS = 10
DEMO_DAILY_DAYS = 500


def run_demo(echo: Callable[[str], None] = print, store: Store | None = None, end=None) -> dict:
    """Run the demo; returns what it did (for tests), printing as it goes."""
    store = store or Store()
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
