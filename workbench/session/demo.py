"""``make demo``'s session report: what a finished session run did, read from the catalog.

The demo's paper session runs in a notebook kernel under the supervisor (another process),
so its figures are read back the way ``workbench status`` and a dashboard read them: from
the journal through the catalog (:func:`workbench.journal.catalog.catalog`), never from the
process that traded. The P&L is split: unrealized is the open positions' market value less
their cost (average price x quantity); realized (fees included) is the rest.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd

from workbench.data.store import Store
from workbench.times import ny_date

__all__ = ["last_minute_session", "session_figures", "session_lines"]


def last_minute_session(store: Store) -> pd.Timestamp:
    """The New York date of the last stored minute bar."""
    listing = store.ls()
    last = listing.loc[listing["timeframe"] == "1Min", "last"].max()
    return ny_date(last)


def session_figures(run_dir: str | Path) -> dict:
    """A session run's figures from the catalog: bars, orders, fills, equity at the start
    and the end, P&L (realized incl. fees, unrealized), open positions, risk state."""
    from workbench.journal.catalog import catalog
    from workbench.runs.status import session_status

    run_dir = Path(run_dir)
    run_id = run_dir.name
    rows = [r for r in session_status(run_dir.parent) if r["run_id"] == run_id]
    if not rows or rows[0]["equity"] is None:
        return {"run_id": run_id, "recorded": False}
    row = rows[0]
    con = catalog(run_dir.parent)
    try:
        orders = con.execute("SELECT count(*) FROM orders WHERE run_id = ?", [run_id]).fetchone()[0]
        fills = con.execute("SELECT count(*) FROM fills WHERE run_id = ?", [run_id]).fetchone()[0]
        cash = con.execute("SELECT arg_max(cash, seq) FROM equity WHERE run_id = ?",
                           [run_id]).fetchone()[0]
        cost = con.execute("SELECT coalesce(sum(qty * avg_price), 0) FROM positions "
                           "WHERE run_id = ? AND qty <> 0", [run_id]).fetchone()[0]
    finally:
        con.close()
    equity, pnl = Decimal(str(row["equity"])), Decimal(str(row["pnl"]))
    unrealized = equity - Decimal(str(cash)) - Decimal(str(cost))
    return {"run_id": run_id, "path": run_dir, "recorded": True, "bars": row["bars"], "orders": int(orders),
            "fills": int(fills), "start_equity": equity - pnl, "equity": equity, "pnl": pnl,
            "realized": pnl - unrealized, "unrealized": unrealized,
            "positions": row["positions"], "risk_state": row["risk_state"],
            "outcome": row["outcome"]}


def _money(value) -> str:
    return f"{Decimal(value):,.2f}"


def session_lines(figures: dict) -> list[str]:
    """The figures as the demo prints them."""
    if not figures.get("recorded"):
        return [f"run {figures['run_id']}: no equity in its journal (the session traded no bar)"]
    f = figures
    settings = _settings(f["path"])
    return [
        f"{f['bars']} bars of {settings}" if settings else f"{f['bars']} bars",
        (f"equity {_money(f['start_equity'])} -> {_money(f['equity'])}: P&L {_money(f['pnl'])} "
         f"(realized incl. fees {_money(f['realized'])}, unrealized {_money(f['unrealized'])})"),
        (f"orders {f['orders']}, fills {f['fills']}, open positions {len(f['positions'])}, "
         f"risk state {f['risk_state']}"),
    ]


def _settings(run_dir: Path) -> str:
    """'N symbols at TF' from the session's results/settings.json, when it wrote one."""
    try:
        data = json.loads((run_dir / "results" / "settings.json").read_text())["data"]
        return f"{len(data['symbols'])} symbols at {data['timeframe']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
