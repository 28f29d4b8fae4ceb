"""Getting bars into the store: the synthetic generator, file import and Alpaca, all validated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.clock import Clock, LiveClock
from workbench.data import calendar
from workbench.data.importer import read_bars_file
from workbench.data.store import Store, WriteReport
from workbench.data.synth import synthesize
from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError
from workbench.times import ny_date

__all__ = ["fetch_into_store", "import_into_store", "last_completed_session", "synth_into_store"]


def last_completed_session(clock: Clock | None = None) -> pd.Timestamp:
    """The date of the most recent NYSE session whose regular close has passed."""
    return calendar.last_completed_session((clock or LiveClock()).now())


def synth_into_store(store: Store, symbols: int | list[str], days: int, timeframe: str,
                     seed: int, end=None, spike_band: float = 0.5,
                     progress: bool = False, replace: bool = False) -> WriteReport:
    """Synthesize bars (ending at ``end`` or the last completed session) and store them
    (``replace``: see :meth:`Store.write`). An ``end`` that is not a date, or after the last
    completed session (its bars would be dated in the future), is refused."""
    tf = Timeframe.parse(timeframe)
    end_date = _synth_end(end)
    bars = synthesize(symbols, days, str(tf), seed=seed, end=end_date, progress=progress)
    return store.write(bars, tf, source=f"synth:seed={seed}", spike_band=spike_band,
                       progress=progress, replace=replace)


def _synth_end(end, clock: Clock | None = None) -> pd.Timestamp:
    """The last session date of a synthesis: ``end`` (a date) or the last completed one."""
    last = last_completed_session(clock)
    if end is None:
        return last
    try:
        day = pd.Timestamp(end.strip() if isinstance(end, str) else end)
        if day is pd.NaT:
            raise ValueError("empty")
        day.as_unit("ns")
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"end: cannot read {end!r} as a session date (YYYY-MM-DD, "
                          f"{pd.Timestamp.min.year + 1} .. {pd.Timestamp.max.year - 1})") from None
    day = (ny_date(day) if day.tz is not None else day).normalize()
    if day > last:
        raise ConfigError(f"end {day.date()} is after the last completed NYSE session "
                          f"({last.date()}): synthetic bars of a session not over yet would be "
                          f"dated in the future")
    return day


def import_into_store(store: Store, path: Path, symbol: str | None, timeframe: str,
                      tz: str | None, spike_band: float = 0.5, replace: bool = False) -> WriteReport:
    """Read a CSV or Parquet file of bars and store it (bad bars quarantined)."""
    tf = Timeframe.parse(timeframe)
    bars = read_bars_file(path, symbol=symbol, tz=tz)
    return store.write(bars, tf, source=f"import:{Path(path).name}", spike_band=spike_band,
                       replace=replace)


def fetch_into_store(store: Store, symbols, start, end, timeframe: str, *, settings=None,
                     credentials=None, spike_band: float | None = None,
                     progress=False, adjustment: str = "raw", replace: bool = False) -> WriteReport:
    """Fetch bars from Alpaca (see :func:`workbench.data.alpaca_history.fetch_bars`) and store
    them validated, with source ``alpaca:<feed>`` and the ``adjustment`` recorded in the
    files' provenance; ``spike_band`` defaults to the setting.

    Never mixes adjustments: a symbol whose stored bars record another adjustment is
    refused before anything is fetched (ConfigError naming both); stored bars that record
    none (imported, synthetic, or fetched before it was recorded) are kept and the report
    carries a note saying so.
    """
    from workbench.config import load_settings
    from workbench.data.alpaca_history import _adjustment, fetch_bars
    from workbench.data.store import symbol_list

    settings = settings or load_settings()
    tf = Timeframe.parse(timeframe)
    _adjustment(adjustment)
    names = symbol_list(symbols)
    notes = _check_adjustment(store, tf, names, adjustment)
    bars = fetch_bars(names, start, end, tf, settings=settings, credentials=credentials,
                      progress=progress, adjustment=adjustment)
    bars, skipped = _not_quarantined_yet(store, tf, names, bars)
    band = settings.data.spike_band if spike_band is None else spike_band
    report = store.write(bars, tf, source=f"alpaca:{settings.alpaca.feed}", spike_band=band,
                         progress=bool(progress is True), provenance={"adjustment": adjustment},
                         replace=replace)
    report.notes.extend(notes)
    if skipped:
        report.notes.append(f"{skipped} bar(s) quarantined by an earlier fetch came again and "
                            f"were not quarantined twice (`workbench data quarantine` lists them)")
    return report


def _not_quarantined_yet(store: Store, tf: Timeframe, symbols: list[str],
                         bars: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``bars`` without those already in quarantine with the same values (a re-run of a
    fetch adds nothing), and how many were dropped."""
    known = store.quarantine(symbols, tf)
    if known.empty or bars.empty:
        return bars, 0
    keys = ["symbol", "ts", "open", "high", "low", "close", "volume"]
    known = known[keys].astype({"symbol": "str", "ts": "datetime64[ns, UTC]"}).drop_duplicates()
    marked = bars.merge(known, on=keys, how="left", indicator=True)["_merge"].to_numpy()
    again = marked == "both"
    return bars[~again].reset_index(drop=True), int(again.sum())


def _check_adjustment(store: Store, tf: Timeframe, symbols: list[str], adjustment: str) -> list[str]:
    """Refuse a fetch that would mix adjustments; notes for stored bars that record none."""
    clashes, unknown = [], []
    for symbol in symbols:
        files = store.provenance(tf, symbol)
        recorded = {f["adjustment"] for f in files if "adjustment" in f}
        if recorded - {adjustment}:
            clashes.append(f"{symbol} ({', '.join(sorted(recorded))})")
        if any("adjustment" not in f for f in files):
            unknown.append(symbol)
    if clashes:
        raise ConfigError(
            f"the store's {tf} bars of {', '.join(clashes)} hold another price adjustment than "
            f"the {adjustment!r} asked for; mixing them would splice differently adjusted prices "
            f"into one series. Fetch with --adjustment matching the stored bars, or into another "
            f"workbench home (WORKBENCH_HOME)")
    if unknown:
        return [(f"stored {tf} bars of {', '.join(unknown)} record no price adjustment "
                 f"(imported, synthetic or fetched by an older version); new bars are "
                 f"{adjustment!r} and were appended beside them")]
    return []
