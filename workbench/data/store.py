"""The market-data store: an immutable Parquet dataset read through in-memory DuckDB.

Layout under the data directory::

    bars/timeframe=1Min/symbol=AAPL/<first>_<last>_<digest>.parquet   good bars
    quarantine/timeframe=1Min/symbol=AAPL/<...>.parquet                bad bars + reason
    tmp/                                                                files being written
    trash/<UTC time>-<pid>/bars/...                                     files moved aside
    .write.lock                                                         one writer at a time

A file is written under ``tmp/``, flushed to disk, then renamed into its partition, so a
reader sees a whole file or none. Files are never rewritten or deleted in place: an
append writes only the bars whose timestamps the symbol does not have yet, so
re-importing the same bars is a no-op and older bars are never lost; bars at stored
times with other values are another series and the symbol's write is refused (or, with
``replace``, the stored series is moved to the trash first); removal
(:mod:`workbench.data.removal`) moves files to the trash. Every write judges bars
against the exchange calendar first (:mod:`workbench.data.admission`). Any number of
processes may read while one writes (writers take ``.write.lock``). Bare dates in
``load`` follow the one date rule (:func:`workbench.times.bound`).

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

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench import paths
from workbench.data import duck
from workbench.data.admission import off_calendar, range_jump, splice_reason
from workbench.data.admission import timeframe_contradiction as contradiction
from workbench.data.bars import FIELDS, Bars, pivot_arrays
from workbench.data.timeframe import Timeframe
from workbench.data.universe import SHORT_HISTORY, ShortHistoryWarning, without_short_history
from workbench.data.validate import validate
from workbench.errors import ConfigError, DataError
from workbench.fsutil import exclusive_lock, fsync_dir, named_errors
from workbench.times import bounds

__all__ = ["SHORT_HISTORY", "ShortHistoryWarning", "Store", "WriteReport", "open_store", "symbol_list"]

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
    conflicts: int = 0  # new bars at stored times with other values, in refused symbols
    notes: list[str] = field(default_factory=list)  # said with the summary, e.g. provenance warnings
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> count
    symbols: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # symbol -> why nothing was written (a splice)
    replaced: dict[str, str] = field(default_factory=dict)  # symbol -> what was moved to the trash
    jumps: dict[str, str] = field(default_factory=dict)  # symbol -> the hole its range now spans

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def summary(self) -> str:
        q = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined.items())) or "none"
        return (
            f"{self.timeframe}: {len(self.symbols)} symbol(s), {self.received} bars received, "
            f"{self.written} written, {self.already_stored} already stored, "
            f"quarantined: {q}"
            + (f", {len(self.refused)} symbol(s) refused" if self.refused else "")
        ) + "".join(f"\nnote: {n}" for n in self.notes) \
          + "".join(f"\nREFUSED {r}" for r in self.refused.values()) \
          + "".join(f"\nREPLACED {s}: {r}" for s, r in self.replaced.items()) \
          + "".join(f"\nWARNING {r}" for r in self.jumps.values())

    def to_dict(self) -> dict:
        return {**self.__dict__, "quarantined_total": self.quarantined_total}


def symbol_list(symbols: str | Iterable[str]) -> list[str]:
    """Symbols given by a user or a setting as upper-case unique names (the fetch's and the
    live feed's rule). Only strings: a float NaN or None here is a ticker such as
    ``NA`` that YAML or pandas read as "missing"; it is refused, never turned into "NAN"."""
    raw = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    odd = [s for s in raw if not isinstance(s, str)]
    if odd:
        raise ConfigError(
            f"symbols must be names, got {odd[0]!r} ({type(odd[0]).__name__}): a ticker such as "
            f"NA read as missing by YAML or pandas? Quote it, or read with keep_default_na=False")
    names = list(dict.fromkeys(s.strip().upper() for s in raw if s.strip()))
    if not names:
        raise ConfigError("no symbols given: name at least one, e.g. AAPL")
    for name in names:
        try:
            check_symbol(name)
        except DataError as e:
            raise ConfigError(str(e)) from None
    return names


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
        with named_errors(directory / f"{stem}_<digest>.parquet", remove=tmp):  # disk full
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
              provenance: dict[str, str] | None = None, replace: bool = False) -> WriteReport:
        """Validate long bars and append the good ones; quarantine the bad with their reason.

        Per symbol (:mod:`workbench.data.admission`): bars off the exchange calendar are
        quarantined; new bars that differ from stored bars at the same times are another
        series, so the symbol is refused (``report.refused`` says why; nothing of it is
        written) unless ``replace``, which moves its stored series to the trash first
        (``report.replaced``); new bars that leave whole sessions missing between them and
        the stored range are written and reported (``report.jumps``).
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
                self._write_symbol(str(symbol), rows, tf, source, spike_band, report, meta, replace)
        return report

    def _write_symbol(self, symbol: str, rows: pd.DataFrame, tf: Timeframe, source: str,
                      spike_band: float, report: WriteReport, meta: dict | None = None,
                      replace: bool = False) -> None:
        report.symbols.append(symbol)
        stored, last_close = self._stored(tf, symbol, rows["ts"].min())
        ref = {symbol: last_close} if last_close is not None else None
        checked = validate(rows, spike_band=spike_band, reference_close=ref)
        if (why := contradiction(symbol, checked.good["ts"], tf)) is not None:
            report.refused[symbol] = why  # another timeframe's bars: nothing of them is stored
            return
        good, off = off_calendar(checked.good, tf)  # sound bars, judged against the calendar
        splice, same, differ = splice_reason(symbol, good, stored)
        if splice is not None and not replace:
            report.refused[symbol] = splice
            report.conflicts += differ
            return
        if splice is not None:  # replace: the stored series goes to the trash, the new one is judged alone
            moved = self.remove(symbol, tf, _locked=True)
            report.replaced[symbol] = f"{splice.split(', ', 1)[1].split(';')[0]}; {moved.summary()}"
            stored, same = None, 0
            checked = validate(rows, spike_band=spike_band)
            good, off = off_calendar(checked.good, tf)
        span = self.span(tf, symbol)
        bad = pd.concat([checked.bad, off], ignore_index=True) if len(off) else checked.bad
        for reason, n in bad["reason"].value_counts().items():
            report.quarantined[str(reason)] = report.quarantined.get(str(reason), 0) + int(n)
        if len(bad):
            bad = bad.assign(source=source)[list(_QUARANTINE_SCHEMA.names)]
            table = pa.Table.from_pandas(bad, schema=_QUARANTINE_SCHEMA, preserve_index=False)
            report.files.append(str(self._write_file(table, self.partition("quarantine", tf, symbol), _stem(bad["ts"]), meta)))
        if stored is not None and len(stored) and len(good):
            report.already_stored += same
            good = good[~good["ts"].isin(stored["ts"])]
        if len(good):
            jump = range_jump(symbol, tf, good["ts"].min(), good["ts"].max(), *span)
            if jump:
                report.jumps[symbol] = jump
            table = pa.Table.from_pandas(good[["ts", *FIELDS]], schema=_BAR_SCHEMA, preserve_index=False)
            report.files.append(str(self._write_file(table, self.partition("bars", tf, symbol), _stem(good["ts"]), meta)))
            report.written += len(good)

    def span(self, timeframe: str | Timeframe, symbol: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """First and last stored bar time of ``symbol`` (to the second, from the file names)."""
        files = self.files(Timeframe.parse(timeframe), [symbol])
        if not files:
            return None, None
        return min(_file_first(f) for f in files), max(_file_last(f) for f in files)

    # -- removing -------------------------------------------------------------------------
    def remove(self, symbol: str, timeframe: str | Timeframe | None = None, start=None, end=None,
               *, _locked: bool = False):
        """Remove ``symbol``'s bars (and quarantined bars) of ``timeframe`` (None: every
        timeframe), all or those with ``start <= ts <= end``, moved to the trash, never
        deleted in place: see :func:`workbench.data.removal.remove`."""
        from workbench.data.removal import remove

        return remove(self, symbol, timeframe, start, end, locked=_locked)

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
        """Bars for ``symbols`` with ``start <= ts <= end`` (the one date rule: a bare date
        is a New York trading day, the end day included whole).

        ``symbols=None`` is the default universe: every stored symbol except those with
        short history, fewer bars in the range than :data:`SHORT_HISTORY` (half) of the
        median symbol's; those are left out and named in a :class:`ShortHistoryWarning`
        (ask for them by name to get them)."""
        tf = Timeframe.parse(timeframe)
        lo, hi = bounds(start, end, error=DataError)  # the one date rule (workbench.times)
        for attempt in range(3):  # a file moved aside (data rm, --replace) between listing and reading
            catalog = self._bar_files(tf)
            wanted = self._resolve_symbols(symbols, tf, catalog)
            files = [f for s in wanted for f in catalog[s]]
            codes = [code for code, s in enumerate(wanted) for _ in catalog[s]]
            try:
                cols = duck.read_bars(files, codes, lo, hi) if files else None
                break
            except Exception:
                if attempt == 2 or all(f.exists() for f in files):
                    raise
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
        bars = Bars(**frames, timeframe=tf)
        return without_short_history(bars) if symbols is None else bars

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


def _file_first(path: Path) -> pd.Timestamp:
    """The first bar time a store file's name records, UTC, to the second."""
    return pd.Timestamp(path.stem.split("_")[0], tz="UTC")


def _file_last(path: Path) -> pd.Timestamp:
    """The last bar time a store file's name records (``<first>_<last>_<digest>``), UTC, to the second."""
    return pd.Timestamp(path.stem.split("_")[1], tz="UTC")


def _stem(ts: pd.Series) -> str:
    fmt = "%Y%m%dT%H%M%S"
    return f"{ts.min().strftime(fmt)}_{ts.max().strftime(fmt)}"


def _names(symbols: list[str]) -> str:
    return ", ".join(symbols[:8]) + (f" and {len(symbols) - 8} more" if len(symbols) > 8 else "")


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from workbench.progress import progress_bar

    return progress_bar(iterable, desc=desc, unit="symbol", total=getattr(iterable, "ngroups", None))
