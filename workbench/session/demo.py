"""``make demo``'s last step: a replayed paper session on the simulated broker.

The SMA-cross notebook's strategy, with the sweep's best parameters (counted in bars, so
on minute bars ``slow=40`` is a 40-minute average; the day before gives the warmup),
replays the last stored minute session of every stored symbol through the engine, the
risk gateway, the order manager and the simulated broker, as fast as it can
(``workbench session ... --broker sim --replay DATE --speed max``). Its P&L is split from
the catalog: unrealized is the open positions' market value less their cost (average
price x quantity); realized (fees included) is the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd

from workbench.data.store import Store
from workbench.strategy import Strategy
from workbench.times import ny_date

__all__ = ["last_minute_session", "run_demo_session"]


def last_minute_session(store: Store) -> pd.Timestamp:
    """The New York date of the last stored minute bar."""
    listing = store.ls()
    last = listing.loc[listing["timeframe"] == "1Min", "last"].max()
    return ny_date(last)


def _pnl_split(result) -> tuple[Decimal, Decimal]:
    """(realized incl. fees, unrealized) of a finished session, from the catalog."""
    from workbench.journal.catalog import catalog

    con = catalog(Path(result.path).parent)
    try:
        cost = con.execute("SELECT coalesce(sum(qty * avg_price), 0) FROM positions "
                           "WHERE run_id = ? AND qty <> 0", [result.run_id]).fetchone()[0]
    finally:
        con.close()
    unrealized = Decimal(result.equity) - Decimal(result.cash) - Decimal(cost)
    return Decimal(result.pnl) - unrealized, unrealized


def _money(value) -> str:
    return f"{Decimal(value):,.2f}"


def _report(echo: Callable[[str], None], result) -> None:
    start = Decimal(result.equity) - Decimal(result.pnl)
    realized, unrealized = _pnl_split(result)
    path = Path(result.path)
    echo(f"   {result.outcome}: {result.message}; {result.bars} bars")
    echo(f"   equity {_money(start)} -> {_money(result.equity)}: P&L {_money(result.pnl)} "
         f"(realized incl. fees {_money(realized)}, unrealized {_money(unrealized)})")
    echo(f"   orders {result.orders}, fills {result.fills}, open positions "
         f"{len([q for q in result.positions.values() if Decimal(q) != 0])}, "
         f"risk state {result.state}")
    echo(f"   record: {path}")
    echo(f"   journal: {path / 'events'}/*.jsonl")
    echo(f"   manifest: {path / 'manifest.json'}")
    echo(f"   broker: {result.broker_path}")
    echo("   query it: `workbench status`, or wb.catalog().sql(\"SELECT * FROM fills\") "
         "in a notebook")


def run_demo_session(echo: Callable[[str], None], store: Store, strategy: Strategy,
                     params: dict, notebook: Path | str):
    """Replay the last stored minute session of ``strategy`` with ``params``; print and return
    the result (a :class:`~workbench.session.runner.SessionResult`); ``notebook``: the path of
    the strategy's notebook, as printed."""
    from workbench.session.runner import run_session

    day = last_minute_session(store)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    echo(f"== session: paper, simulated broker, replaying {day:%Y-%m-%d} (1Min bars, "
         f"speed max) with {strategy.name} {shown}")
    result = run_session(strategy, params, replay_date=day, speed="max", store=store)
    _report(echo, result)
    flags = " ".join(f"-p {k} {v}" for k, v in params.items())
    echo(f"   replay it yourself: `workbench session {notebook} --broker sim "
         f"--replay {day:%Y-%m-%d} --speed max {flags}`")
    return result
