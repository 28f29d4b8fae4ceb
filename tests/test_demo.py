"""`make demo`'s job: data into the store, then a recorded backtest and sweep of the SMA
notebook, then a replayed paper session on the simulated broker with the sweep's best."""

from __future__ import annotations

import json
import re

import pandas as pd

from workbench.demo import DEMO_GRID, run_demo
from workbench.journal.catalog import catalog


def test_demo_prints_the_best_parameters_and_where_the_records_are(workbench_home):
    lines: list[str] = []
    out = run_demo(echo=lines.append, end="2025-12-31")
    text = "\n".join(lines)
    runs = workbench_home / "runs"

    best = re.search(r"best by sharpe: fast=(\d+), slow=(\d+)", text)
    assert best, text
    fast, slow = int(best.group(1)), int(best.group(2))
    assert fast in DEMO_GRID["fast"] and slow in DEMO_GRID["slow"] and fast < slow
    assert re.search(r"DSR \d\.\d{3}", text) and re.search(r"PBO \d\.\d{3}", text)

    records = {p.name.split("-")[1]: p for p in runs.iterdir()}
    assert sorted(records) == ["backtest", "session", "sweep"]
    for path in records.values():
        assert f"record: {path}" in text
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["outcome"] == "succeeded" and manifest["strategy"] == "sma_cross"
        assert manifest["data_range"]["symbols_count"] == 20
    assert len(pd.read_parquet(records["backtest"] / "results" / "trades.parquet")) > 0
    assert (records["sweep"] / "results" / "heatmap.html").exists()
    assert out["sweep"].best.params == {"fast": fast, "slow": slow}
    assert f"every record is under {runs}" in text
    _assert_session(text, out["session"], records["session"], fast, slow)


def _assert_session(text: str, result, path, fast: int, slow: int) -> None:
    """The session replayed the last stored day with the sweep's best and printed its
    P&L, orders, risk state and where its record is."""
    assert result.outcome == "succeeded" and result.bars == 390 and result.orders > 0
    assert f"replaying 2025-12-31 (1Min bars, speed max) with sma_cross fast={fast}, " \
           f"slow={slow}" in text
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "session" and manifest["params"] == {"fast": fast, "slow": slow}
    pnl = re.search(r"equity 100,000\.00 -> ([\d,.-]+): P&L ([\d,.-]+) \(realized incl\. "
                    r"fees ([\d,.-]+), unrealized ([\d,.-]+)\)", text)
    assert pnl, text
    end, total, realized, unrealized = (float(g.replace(",", "")) for g in pnl.groups())
    assert abs(end - 100_000 - total) < 0.011 and abs(realized + unrealized - total) < 0.011
    assert abs(total - float(result.pnl)) < 0.006
    assert f"orders {result.orders}, fills {result.fills}" in text
    assert "risk state active" in text
    assert f"journal: {path / 'events'}" in text and f"manifest: {path / 'manifest.json'}" in text
    fills = catalog().execute("SELECT count(*) FROM fills WHERE run_id = ?", [path.name])
    assert fills.fetchone()[0] == result.fills > 0


def test_demo_twice_writes_no_bars_but_two_more_records(workbench_home):
    run_demo(echo=lambda _: None, end="2025-12-31")
    lines: list[str] = []
    out = run_demo(echo=lines.append, end="2025-12-31")
    assert all(r.written == 0 for r in out["reports"].values())
    assert len(list((workbench_home / "runs").iterdir())) == 6
