"""What the research and drift pages read: the run list from the catalog, one run's
results, and one run's journal followed from a byte offset.

    runs = RunList()                       # the catalog's ``runs`` view (manifests only)
    runs.table(kinds=("backtest", "sweep"))  # a DataFrame, newest first; each call re-reads
    journal = RunJournal(run_dir)          # a session's fills, equity, signals, intents
    journal.refresh()                      # only the bytes appended since the last call

Nothing here writes, locks or talks to a broker. The run list is a query of the catalog
(:func:`workbench.journal.catalog.catalog`) that reads the manifests and never the
journals, so its cost grows with the number of runs, not of events. A page shows one run
at a time: :class:`RunJournal` reads that run's journal only, once whole at first and
then what was appended since (a :class:`~workbench.journal.tail.JournalTail`), so a
refresh costs what changed, however large the catalog (``bench/dashboard.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import paths
from workbench.errors import DataError

__all__ = ["RESEARCH_KINDS", "SESSION_KINDS", "RunJournal", "RunList", "read_json",
           "read_parquet", "record_dir"]

RESEARCH_KINDS = ("backtest", "sweep", "walk_forward", "session")
SESSION_KINDS = ("session",)
_COLUMNS = ("run_id", "kind", "mode", "strategy", "status", "outcome", "started_at",
            "ended_at", "timeframe", "notebook", "notebook_hash", "params", "path")


class RunList:
    """The catalog's ``runs`` view over ``root`` (default ``runs/``), kept open: each
    :meth:`table` reads the manifests as they are then (new runs appear)."""

    def __init__(self, root: str | Path | None = None) -> None:
        from workbench.journal.catalog import catalog

        self.root = Path(root) if root is not None else paths.runs_dir()
        self._con = catalog(self.root)

    def table(self, kinds: tuple[str, ...] = RESEARCH_KINDS, mode: str | None = None
              ) -> pd.DataFrame:
        """Runs of ``kinds`` (and ``mode``), newest first; ``params`` as dicts."""
        where = ["kind IN (SELECT unnest(?))"]
        args: list[Any] = [list(kinds)]
        if mode is not None:
            where.append("mode = ?")
            args.append(mode)
        frame = self._con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY started_at DESC NULLS LAST, run_id DESC", args).df()
        frame["params"] = [json.loads(p) if isinstance(p, str) else (p or {})
                           for p in frame["params"]]
        return frame

    def close(self) -> None:
        self._con.close()


def record_dir(run_id: str, root: str | Path | None = None) -> Path:
    """``runs/<run_id>``; DataError when there is no such record."""
    base = Path(root) if root is not None else paths.runs_dir()
    path = base / run_id
    if not (path / "manifest.json").is_file():
        raise DataError(f"run {run_id!r}: no record under {base}")
    return path


def read_json(run_dir: Path, name: str) -> dict | None:
    """``results/<name>.json`` (or ``manifest.json`` for ``"manifest"``), None if absent."""
    path = run_dir / "manifest.json" if name == "manifest" else run_dir / "results" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def read_parquet(run_dir: Path, name: str) -> pd.DataFrame | None:
    """``results/<name>.parquet``, None if absent."""
    path = run_dir / "results" / f"{name}.parquet"
    return pd.read_parquet(path) if path.is_file() else None


class RunJournal:
    """One run's journal as the pages need it, read incrementally (see the module doc):
    ``fills``, ``equity``, ``signals`` and ``intents`` as DataFrames, plus the session's
    start payload and the last seq read."""

    def __init__(self, run_dir: str | Path) -> None:
        from workbench.journal.tail import JournalTail

        self.run_dir = Path(run_dir)
        self._tail = JournalTail(self.run_dir)
        self.start: dict | None = None  # the session_start payload
        self.end: dict | None = None  # the session_end payload
        self.events = 0
        self._rows: dict[str, list[dict]] = {"fill": [], "equity": [], "signal": [],
                                             "intent": []}
        self._frames: dict[str, pd.DataFrame] = {}

    @property
    def bytes_read(self) -> int:
        return self._tail.bytes_read

    def refresh(self) -> int:
        """Read what was appended since the last call; the number of new events."""
        from workbench.model import events as ev

        new = self._tail.read()
        for event in new:
            kind = ev.canonical_type(event.type)
            if kind in self._rows:
                self._rows[kind].append({"seq": event.seq, "ts": event.ts, **event.payload})
                self._frames.pop(kind, None)
            elif kind == ev.SESSION_START:
                self.start = dict(event.payload)
            elif kind == ev.SESSION_END:
                self.end = dict(event.payload)
        self.events += len(new)
        return len(new)

    def _frame(self, kind: str, numbers: tuple[str, ...], times: tuple[str, ...]) -> pd.DataFrame:
        if kind not in self._frames:
            frame = pd.DataFrame(self._rows[kind])
            for column in numbers:
                if column in frame:
                    frame[column] = pd.to_numeric(frame[column], errors="coerce")
            for column in times:
                if column in frame:
                    frame[column] = pd.to_datetime(frame[column], utc=True)
            self._frames[kind] = frame
        return self._frames[kind]

    def fills(self) -> pd.DataFrame:
        return self._frame("fill", ("quantity", "price", "fee"), ("time",))

    def equity(self) -> pd.DataFrame:
        return self._frame("equity", ("equity", "cash", "pnl"), ())

    def signals(self) -> pd.DataFrame:
        return self._frame("signal", (), ("bar_time",))

    def intents(self) -> pd.DataFrame:
        return self._frame("intent", ("quantity", "notional"), ("bar_time",))
