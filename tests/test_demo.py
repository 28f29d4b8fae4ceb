"""`make demo`'s job: data into the store, then a recorded backtest and sweep of the SMA notebook."""

from __future__ import annotations

import json
import re

import pandas as pd

from workbench.demo import DEMO_GRID, run_demo


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

    records = sorted(p for p in runs.iterdir())
    assert [p.name.split("-")[1] for p in records] == ["backtest", "sweep"]
    for path in records:
        assert f"record: {path}" in text
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["outcome"] == "ok" and manifest["strategy"] == "sma_cross"
        assert manifest["data_range"]["symbols_count"] == 20
    assert len(pd.read_parquet(records[0] / "results" / "trades.parquet")) > 0
    assert (records[1] / "results" / "heatmap.html").exists()
    assert out["sweep"].best.params == {"fast": fast, "slow": slow}
    assert f"every record is under {runs}" in text


def test_demo_twice_writes_no_bars_but_two_more_records(workbench_home):
    run_demo(echo=lambda _: None, end="2025-12-31")
    lines: list[str] = []
    out = run_demo(echo=lines.append, end="2025-12-31")
    assert all(r.written == 0 for r in out["reports"].values())
    assert len(list((workbench_home / "runs").iterdir())) == 4
