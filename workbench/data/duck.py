"""DuckDB queries over the Parquet store (in-memory connections: no file locks, ever)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from workbench.data.bars import FIELDS
from workbench.data.timeframe import Timeframe

__all__ = ["connect", "quarantined", "read_bars", "summarize"]

_HIVE = "hive_partitioning = true, hive_types = {'timeframe': VARCHAR, 'symbol': VARCHAR}"


_local = threading.local()


def connect() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory connection (no file, so no lock; reused: opening one costs ~20 ms).

    Keyed by process id too, so a forked child never shares its parent's connection.
    """
    con = getattr(_local, "con", None)
    if con is None or getattr(_local, "pid", None) != os.getpid():
        con = _local.con = duckdb.connect(":memory:")
        _local.pid = os.getpid()
    return con


def _file_list(files: Iterable[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def _partitioned(files: list[Path], select: str, rest: str, *,
                 filename: bool = False) -> pd.DataFrame:
    """``SELECT select`` over the store's partitioned ``files`` (timeframe and symbol read
    from their paths), then ``rest`` (GROUP BY, ORDER BY), as a DataFrame."""
    extra = ", filename = true" if filename else ""
    source = f"read_parquet({_file_list(files)}, {_HIVE}{extra})"
    return connect().execute(f"SELECT {select} FROM {source} {rest}").df()


def read_bars(files: list[Path], file_codes: list[int], lo: pd.Timestamp | None,
              hi: pd.Timestamp | None) -> dict:
    """Long columns of ``files``: ``ts`` (int64 ns), ``code`` (``file_codes`` of the row's file), OHLCV.

    Rows are tagged with DuckDB's ``file_index`` virtual column rather than the hive
    partition string: mapping a small per-file array is far cheaper than a string per row.
    """
    where, params = [], {}
    if lo is not None:
        where.append("epoch_ns(ts) >= $lo")
        params["lo"] = lo.value
    if hi is not None:
        where.append("epoch_ns(ts) <= $hi")
        params["hi"] = hi.value
    sql = (
        f"SELECT file_index, ts, {', '.join(FIELDS)} FROM read_parquet({_file_list(files)})"
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )
    con = connect()
    table = con.sql(sql, params=params or None).to_arrow_table()
    codes = np.asarray(file_codes, dtype=np.int64)
    out = {
        "ts": table.column("ts").to_numpy().view(np.int64),
        "code": codes[table.column("file_index").to_numpy()],
    }
    out.update({f: table.column(f) for f in FIELDS})  # chunked: scattered without a concat
    return out


def count_bars(files: list[Path], file_codes: list[int], n_codes: int,
               lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> list[int]:
    """Bars per code (``file_codes`` of each file) with ``lo <= ts <= hi``."""
    where, params = [], {}
    if lo is not None:
        where.append("epoch_ns(ts) >= $lo")
        params["lo"] = lo.value
    if hi is not None:
        where.append("epoch_ns(ts) <= $hi")
        params["hi"] = hi.value
    sql = (f"SELECT file_index, count(*) AS n FROM read_parquet({_file_list(files)})"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " GROUP BY file_index")
    rows = connect().sql(sql, params=params or None).fetchall()
    out = [0] * n_codes
    for index, n in rows:
        out[file_codes[index]] += int(n)
    return out


def summarize(root: Path) -> pd.DataFrame:
    """One row per (timeframe, symbol) of the store: first, last, rows, files, quarantined."""
    cols = ["timeframe", "symbol", "first", "last", "rows", "files", "quarantined"]
    bars = sorted((root / "bars").glob("timeframe=*/symbol=*/*.parquet"))
    if not bars:
        return pd.DataFrame(columns=cols)
    df = _partitioned(bars, "timeframe, symbol, min(ts) AS first, max(ts) AS last, "
                      "count(*) AS rows, count(DISTINCT filename) AS files",
                      "GROUP BY ALL ORDER BY timeframe, symbol", filename=True)
    bad = sorted((root / "quarantine").glob("timeframe=*/symbol=*/*.parquet"))
    if bad:
        q = _partitioned(bad, "timeframe, symbol, count(*) AS quarantined", "GROUP BY ALL")
        df = df.merge(q, on=["timeframe", "symbol"], how="left")
    else:
        df["quarantined"] = 0
    df["quarantined"] = df["quarantined"].fillna(0).astype(int)
    for c in ("first", "last"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df[cols]


def quarantined(root: Path, symbols=None, timeframe=None) -> pd.DataFrame:
    """Quarantined bars (``symbol, timeframe, ts, OHLCV, reason, source``)."""
    tf = f"timeframe={Timeframe.parse(timeframe)}" if timeframe else "timeframe=*"
    files = sorted((root / "quarantine").glob(f"{tf}/symbol=*/*.parquet"))
    if symbols is not None:
        wanted = {symbols} if isinstance(symbols, str) else set(symbols)
        files = [f for f in files if f.parent.name.split("=", 1)[1] in wanted]
    cols = ["symbol", "timeframe", "ts", *FIELDS, "reason", "source"]
    if not files:
        return pd.DataFrame(columns=cols)
    df = _partitioned(files, ", ".join(cols), "ORDER BY symbol, timeframe, ts")
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df
