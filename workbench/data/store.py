"""The market-data store: an immutable Parquet dataset read through in-memory DuckDB.

Layout under the data directory::

    bars/timeframe=1Min/symbol=AAPL/<first>_<last>_<digest>.parquet   good bars
    quarantine/timeframe=1Min/symbol=AAPL/<...>.parquet                bad bars + reason
    tmp/                                                                files being written
    .write.lock                                                         one writer at a time

A file is written under ``tmp/``, flushed to disk, then renamed into its partition, so a
reader sees a whole file or none. Files are never rewritten or deleted: an append writes
only the bars whose timestamps the symbol does not have yet, so re-importing the same
bars is a no-op and older bars are never lost. Any number of processes may read while
one writes (writers take ``.write.lock``).

Provenance: a write may carry ``provenance`` (e.g. ``{"source": "alpaca:iex",
"adjustment": "raw"}``), stored in each file's Parquet key-value metadata under
``workbench.*`` keys; :meth:`Store.provenance` reads it back per file (files written
before it was recorded have none).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench import paths
from workbench.data import duck
from workbench.data.bars import FIELDS, Bars, pivot_arrays
from workbench.data.timeframe import Timeframe
from workbench.data.validate import validate
from workbench.errors import DataError
from workbench.fsutil import exclusive_lock, fsync_dir
from workbench.times import ny_midnight, to_utc

__all__ = ["Store", "WriteReport", "open_store"]

_META = "workbench."  # prefix of the provenance keys in a file's Parquet metadata
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")
_BAR_SCHEMA = pa.schema(
    [("ts", pa.timestamp("ns", tz="UTC"))] + [(f, pa.float64()) for f in FIELDS]
)
_QUARANTINE_SCHEMA = _BAR_SCHEMA.append(pa.field("reason", pa.string())).append(
    pa.field("source", pa.string())
)


@dataclass
class WriteReport:
    """What one write did, per symbol and in total."""

    timeframe: str
    received: int = 0
    written: int = 0
    already_stored: int = 0
    conflicts: int = 0  # same (symbol, ts) as a stored bar but different values: kept the stored
    notes: list[str] = field(default_factory=list)  # said with the summary, e.g. provenance warnings
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> count
    symbols: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def summary(self) -> str:
        q = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined.items())) or "none"
        return (
            f"{self.timeframe}: {len(self.symbols)} symbol(s), {self.received} bars received, "
            f"{self.written} written, {self.already_stored} already stored, "
            f"{self.conflicts} conflicting with stored bars (kept stored), quarantined: {q}"
        ) + "".join(f"\nnote: {n}" for n in self.notes)

    def to_dict(self) -> dict:
        return {**self.__dict__, "quarantined_total": self.quarantined_total}


def check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise DataError(
            f"invalid symbol {symbol!r}: use upper-case letters, digits, '.' or '-' (max 16)"
        )
    return symbol


class Store:
    """One data directory. Cheap to create; holds no open files between calls."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.data_dir()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths ----------------------------------------------------------------------------
    def partition(self, kind: str, timeframe: Timeframe, symbol: str) -> Path:
        return self.root / kind / f"timeframe={timeframe}" / f"symbol={symbol}"

    def files(self, timeframe: Timeframe, symbols: Iterable[str] | None = None,
              kind: str = "bars") -> list[Path]:
        base = self.root / kind / f"timeframe={timeframe}"
        if symbols is None:
            return sorted(base.glob("symbol=*/*.parquet"))
        return sorted(p for s in symbols for p in self.partition(kind, timeframe, s).glob("*.parquet"))

    def symbols(self, timeframe: str | Timeframe) -> list[str]:
        return sorted(self._bar_files(Timeframe.parse(timeframe)))

    def _bar_files(self, tf: Timeframe) -> dict[str, list[Path]]:
        """symbol -> its bar files (sorted), from one pass over the timeframe's folder."""
        base = self.root / "bars" / f"timeframe={tf}"
        out: dict[str, list[Path]] = {}
        try:
            partitions = [e for e in os.scandir(base) if e.name.startswith("symbol=")]
        except FileNotFoundError:
            return out
        for entry in partitions:
            files = sorted(Path(f.path) for f in os.scandir(entry.path) if f.name.endswith(".parquet"))
            if files:
                out[entry.name.split("=", 1)[1]] = files
        return out

    def timeframes(self) -> list[str]:
        return sorted(p.name.split("=", 1)[1] for p in (self.root / "bars").glob("timeframe=*"))

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = exclusive_lock(self.root / ".write.lock", wait=True)
        try:
            yield
        finally:
            os.close(fd)

    def _write_file(self, table: pa.Table, directory: Path, stem: str,
                    meta: dict | None = None) -> Path:
        if meta:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{directory.name}-{stem}.{os.getpid()}.tmp"
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        with open(tmp, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
            os.fsync(fh.fileno())
        final = directory / f"{stem}_{digest}.parquet"
        os.replace(tmp, final)
        fsync_dir(directory)
        return final

    def _stored(self, timeframe: Timeframe, symbol: str,
                since: pd.Timestamp) -> tuple[pd.DataFrame, float | None]:
        """Stored bars of ``symbol`` at or after ``since`` (all a new batch can collide with),
        and the last stored close (the validator's reference). Files are named by their
        first and last bar, so files that end before ``since`` are not opened at all."""
        files = self.files(timeframe, [symbol])
        empty = pd.DataFrame({f: pd.Series(dtype=float) for f in ("ts", *FIELDS)})
        if not files:
            return empty, None
        latest = max(files, key=_file_last)
        tail = pq.read_table(latest, columns=["ts", "close"]).to_pandas()
        ref = float(tail.loc[tail["ts"].idxmax(), "close"])
        overlap = [f for f in files if _file_last(f) >= since.floor("s")]
        if not overlap:
            return empty, ref
        table = pa.concat_tables(pq.read_table(f, schema=_BAR_SCHEMA) for f in overlap)
        return table.to_pandas().sort_values("ts", ignore_index=True), ref

    def write(self, bars: pd.DataFrame, timeframe: str | Timeframe, source: str = "import",
              spike_band: float = 0.5, progress: bool = False,
              provenance: dict[str, str] | None = None) -> WriteReport:
        """Validate long bars and append the good ones; quarantine the bad with their reason.

        ``provenance`` (string keys and values) is recorded in every file written."""
        tf = Timeframe.parse(timeframe)
        meta = {f"{_META}{k}".encode(): str(v).encode()
                for k, v in {"source": source, **(provenance or {})}.items()}
        report = WriteReport(timeframe=str(tf), received=len(bars))
        if len(bars) == 0:
            return report
        for symbol in bars["symbol"].unique():
            check_symbol(symbol)
        groups = bars.groupby("symbol", sort=True)
        with self._writer_lock():
            for symbol, rows in _progress(groups, progress, "writing"):
                self._write_symbol(str(symbol), rows, tf, source, spike_band, report, meta)
        return report

    def _write_symbol(self, symbol: str, rows: pd.DataFrame, tf: Timeframe, source: str,
                      spike_band: float, report: WriteReport, meta: dict | None = None) -> None:
        stored, last_close = self._stored(tf, symbol, rows["ts"].min())
        ref = {symbol: last_close} if last_close is not None else None
        checked = validate(rows, spike_band=spike_band, reference_close=ref)
        report.symbols.append(symbol)
        for reason, n in checked.counts.items():
            report.quarantined[reason] = report.quarantined.get(reason, 0) + n
        if len(checked.bad):
            bad = checked.bad.assign(source=source)[list(_QUARANTINE_SCHEMA.names)]
            table = pa.Table.from_pandas(bad, schema=_QUARANTINE_SCHEMA, preserve_index=False)
            stem = _stem(bad["ts"])
            report.files.append(str(self._write_file(table, self.partition("quarantine", tf, symbol), stem, meta)))
        good = checked.good
        if len(stored) and len(good):
            known = good["ts"].isin(stored["ts"])
            if known.any():
                merged = good[known].merge(stored, on="ts", suffixes=("", "_stored"))
                same = np.ones(len(merged), dtype=bool)
                for f in FIELDS:
                    same &= np.isclose(merged[f], merged[f + "_stored"], rtol=0, atol=0, equal_nan=True)
                report.already_stored += int(same.sum())
                report.conflicts += int((~same).sum())
                good = good[~known]
        if len(good):
            table = pa.Table.from_pandas(good[["ts", *FIELDS]], schema=_BAR_SCHEMA, preserve_index=False)
            report.files.append(str(self._write_file(table, self.partition("bars", tf, symbol), _stem(good["ts"]), meta)))
            report.written += len(good)

    def provenance(self, timeframe: str | Timeframe, symbol: str) -> list[dict[str, str]]:
        """What each stored bar file of ``symbol`` records about its origin, one dict per
        file (``{"file": name, "source": ..., "adjustment": ...}``; only ``file`` for files
        written before provenance was recorded)."""
        out = []
        for path in self.files(Timeframe.parse(timeframe), [symbol]):
            meta = pq.read_schema(path).metadata or {}
            found = {k.decode()[len(_META):]: v.decode() for k, v in meta.items()
                     if k.decode().startswith(_META)}
            out.append({"file": path.name, **found})
        return out

    # -- reading --------------------------------------------------------------------------
    def load(self, symbols: str | Iterable[str] | None, timeframe: str | Timeframe,
             start=None, end=None) -> Bars:
        """Bars for ``symbols`` (None: every stored symbol) with ``start <= ts <= end``."""
        tf = Timeframe.parse(timeframe)
        catalog = self._bar_files(tf)
        wanted = self._resolve_symbols(symbols, tf, catalog)
        files = [f for s in wanted for f in catalog[s]]
        codes = [code for code, s in enumerate(wanted) for _ in catalog[s]]
        lo, hi = _bound(start, "start"), _bound(end, "end", inclusive_day=True)
        if lo is not None and hi is not None and lo > hi:
            raise DataError(f"start {start} is after end {end}")
        cols = duck.read_bars(files, codes, lo, hi) if files else None
        if cols is None or cols["ts"].size == 0:
            raise DataError(
                f"no {tf} bars stored for {_names(wanted)} between {start or 'the start'} "
                f"and {end or 'the end'} in {self.root}"
            )
        frames = pivot_arrays(cols["ts"], cols["code"], wanted, {f: cols[f] for f in FIELDS})
        present = [s for s, frame_has in zip(wanted, frames["close"].notna().any().to_numpy()) if frame_has]
        if len(present) < len(wanted):
            missing = [s for s in wanted if s not in present]
            raise DataError(f"no {tf} bars in range for {_names(missing)}")
        return Bars(**frames, timeframe=tf)

    def _resolve_symbols(self, symbols, tf: Timeframe, stored: dict[str, list[Path]]) -> list[str]:
        if symbols is None:
            if not stored:
                raise DataError(f"the store at {self.root} holds no {tf} bars; try `workbench data synth`")
            return sorted(stored)
        wanted = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
        missing = [s for s in wanted if s not in stored]
        if missing:
            raise DataError(f"no {tf} bars stored for {_names(missing)} in {self.root}")
        return wanted

    def ls(self) -> pd.DataFrame:
        """One row per (timeframe, symbol): first, last, rows, files, quarantined."""
        return duck.summarize(self.root)

    def quarantine(self, symbols: str | Iterable[str] | None = None,
                   timeframe: str | Timeframe | None = None) -> pd.DataFrame:
        """The quarantined bars with their reason (and source)."""
        return duck.quarantined(self.root, symbols, timeframe)


def open_store(root: str | Path | None = None) -> Store:
    return Store(root)


def _file_last(path: Path) -> pd.Timestamp:
    """The last bar time a store file's name records (``<first>_<last>_<digest>``), UTC, to the second."""
    return pd.Timestamp(path.stem.split("_")[1], tz="UTC")


def _stem(ts: pd.Series) -> str:
    fmt = "%Y%m%dT%H%M%S"
    return f"{ts.min().strftime(fmt)}_{ts.max().strftime(fmt)}"


def _names(symbols: list[str]) -> str:
    return ", ".join(symbols[:8]) + (f" and {len(symbols) - 8} more" if len(symbols) > 8 else "")


def _bound(value, what: str, inclusive_day: bool = False) -> pd.Timestamp | None:
    """A UTC bound. A bare date is a New York calendar day (start of it, or end if inclusive);
    a naive time is UTC."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot read {value!r} as a date or time") from e
    if isinstance(value, str) and len(value.strip()) <= 10:  # a date: a New York trading day
        if inclusive_day:
            return ny_midnight(ts + pd.Timedelta(days=1)) - pd.Timedelta(1, "ns")
        return ny_midnight(ts)
    return to_utc(ts)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="symbol", total=getattr(iterable, "ngroups", None))
