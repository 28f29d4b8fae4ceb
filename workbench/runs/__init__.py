"""Runs: records of every backtest, sweep and session under ``runs/<run_id>/``.

    from workbench.runs import RunRecord, list_runs

    with RunRecord.create("backtest", "sma_cross", {"fast": 10}, "backtest", bars, clock) as rec:
        rec.write_json("stats", stats)
        rec.write_parquet("equity", equity)
    list_runs()
"""

from __future__ import annotations

from workbench.runs.ids import KINDS, RunIdParts, new_run_id, parse_run_id, sanitize_name
from workbench.runs.records import (
    MANIFEST,
    OUTCOMES,
    RecordError,
    RunRecord,
    list_runs,
    load_manifest,
)

__all__ = [
    "KINDS", "MANIFEST", "OUTCOMES", "RecordError", "RunIdParts", "RunRecord",
    "list_runs", "load_manifest", "new_run_id", "parse_run_id", "sanitize_name",
]
