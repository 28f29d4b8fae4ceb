"""Processes for the concurrency test: one writer appending, readers loading meanwhile.

Run as ``python -m tests.store_procs writer|reader DATA_DIR OUT_JSON``.
"""

from __future__ import annotations

import json
import sys
import time

import duckdb
import pandas as pd

from workbench.data.store import Store
from workbench.data.synth import synthesize

SYMBOLS = [f"S{i:02d}" for i in range(10)]
DAYS, END = 15, "2026-06-30"


def expected() -> pd.DataFrame:
    bars = synthesize(SYMBOLS, DAYS, "1Min", seed=11, end=END)
    return bars.assign(day=bars["ts"].dt.tz_convert("America/New_York").dt.date)


def writer(root: str, out: str) -> None:
    bars = expected()
    store = Store(root)
    for i, (_, day) in enumerate(bars.groupby("day", sort=True)):
        store.write(day.drop(columns="day"), "1Min", source="writer")
        if i % 3 == 0:  # re-import a day: must change nothing
            store.write(day.drop(columns="day"), "1Min", source="writer-again")
        time.sleep(0.05)
    json.dump({"ok": True}, open(out, "w"))


def reader(root: str, out: str) -> None:
    want = expected().groupby(["symbol", "day"]).size()
    store = Store(root)
    loads, errors, partial, deadline, last = 0, [], [], time.time() + 120, 0
    while time.time() < deadline:
        try:
            try:
                # every stored symbol by name: a default universe (None) would leave out
                # the symbols still short of history while the writers run
                long = store.load(store.symbols("1Min") or None, "1Min").to_long()
            except Exception as e:  # an empty store at the very start is fine
                if "holds no 1Min bars" in str(e):
                    continue
                raise
            con = duckdb.connect()
            n = con.execute(f"SELECT count(*) FROM read_parquet('{root}/bars/*/*/*.parquet')").fetchone()[0]
            con.close()
            got = long.assign(day=long["ts"].dt.tz_convert("America/New_York").dt.date)
            counts = got.groupby(["symbol", "day"]).size()
            bad = counts[counts != want.reindex(counts.index)]
            if len(bad) or len(long) > n or len(long) < last:
                partial.append(f"load {loads}: {len(bad)} partial (symbol, day) groups")
            last = len(long)
            loads += 1
            if len(long) == want.sum():
                break
        except Exception as e:  # noqa: BLE001 - the test reports every error
            errors.append(f"{type(e).__name__}: {e}")
    json.dump({"loads": loads, "errors": errors, "partial": partial, "rows": last}, open(out, "w"))


if __name__ == "__main__":
    {"writer": writer, "reader": reader}[sys.argv[1]](sys.argv[2], sys.argv[3])
