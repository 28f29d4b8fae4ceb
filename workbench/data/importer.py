"""Reading OHLCV files (CSV, gzipped CSV, Parquet) into long bars.

:func:`read_bars_file` only reshapes and parses: it returns long bars (``symbol``, ``ts``
in UTC, ``open``, ``high``, ``low``, ``close``, ``volume``) in file order, without
validating them. The store validates (``workbench.data.validate``) and quarantines bad
bars; that is why a price that cannot be read becomes NaN here instead of an error.

Column names are matched case-insensitively, ignoring spaces, ``_`` and ``-``:

========  ==============================================================
ts        ``ts``, ``timestamp``, ``datetime``, ``time``, ``date``, ``t``
          (first found in that order; separate ``date`` and ``time`` columns
          are joined when there is no ``ts``/``timestamp``/``datetime``)
open      ``open``, ``o``        high    ``high``, ``h``
low       ``low``, ``l``         close   ``close``, ``c`` (else ``adj close``)
volume    ``volume``, ``vol``, ``v``
symbol    ``symbol``, ``ticker`` (optional when ``symbol=`` is given)
========  ==============================================================
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from workbench.errors import ConfigError, DataError

__all__ = ["SUFFIXES", "read_bars_file"]

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_ALIASES = {
    "ts": ("ts", "timestamp", "datetime", "time", "date", "t"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "adjclose", "adjustedclose"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker"),
}
_NUMBERS = ("open", "high", "low", "close", "volume")
# Smallest |epoch| that means ms, us, ns (2026 is ~1.8e9 s, 1.8e12 ms, 1.8e15 us, 1.8e18 ns).
_EPOCH_UNITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"), (np.inf, "ns"))
# Integers in this range are read as YYYYMMDD dates (as epochs they would be August 1970).
_YYYYMMDD = (19000101, 21001231)


def read_bars_file(
    path: str | Path, symbol: str | None = None, tz: str | None = None
) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file as long bars.

    ``symbol`` names the file's symbol; without it the file needs a ``symbol`` or
    ``ticker`` column (which may hold several symbols). Given both, they must agree.
    Symbols are stripped and upper-cased.

    Timestamps are bar open times and come out as ``datetime64[ns, UTC]``:

    * timestamps that carry a zone or offset (``...-05:00``, ``...Z``, tz-aware Parquet)
      are converted to UTC. They win over ``tz``: when the data has its own zone, ``tz``
      is ignored;
    * integer epochs (seconds, milliseconds, microseconds or nanoseconds, told apart by
      magnitude) are UTC instants; ``tz`` is ignored. Integers from 19000101 to
      21001231 are read as naive ``YYYYMMDD`` dates instead;
    * naive timestamps are refused unless ``tz`` (an IANA zone such as
      ``America/New_York``) says where they were recorded; they are then localized in
      that zone, daylight saving included, and converted to UTC. A wall time that does
      not exist or is ambiguous there (DST changes) is an error, never shifted silently.

    Raises :class:`DataError` (one line) on a missing or empty file, a missing column,
    an unparseable timestamp (naming the first bad row and value) or conflicting
    symbols, and :class:`ConfigError` on an unsupported suffix or unknown ``tz``.
    """
    path = Path(path)
    _check_zone(tz)
    raw = _read_raw(path)
    cols = _match_columns(raw, path)
    ts = _parse_ts(_ts_source(raw, cols), path, tz)
    out = pd.DataFrame({"symbol": _symbols(raw, cols.get("symbol"), symbol, path), "ts": ts})
    for name in _NUMBERS:
        out[name] = pd.to_numeric(raw[cols[name]], errors="coerce").astype(np.float64)
    return out


def _read_raw(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if not name.endswith(SUFFIXES):
        raise ConfigError(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if name.endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path}: the file is empty") from e
    except (ValueError, OSError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read the file: {first}") from e
    if raw.empty:
        raise DataError(f"{path}: the file has no rows")
    plain = isinstance(raw.index, pd.RangeIndex) and raw.index.name is None
    return raw.reset_index(drop=plain)  # a stored index (e.g. timestamps) becomes a column


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).strip().lower())


def _match_columns(raw: pd.DataFrame, path: Path) -> dict[str, object]:
    """Map each field (``ts``, ``open``..., ``symbol``) to the file's column for it."""
    by_key: dict[str, object] = {}
    for col in raw.columns:
        other = by_key.setdefault(_key(col), col)
        if other != col:
            raise DataError(f"{path}: columns {other!r} and {col!r} have the same name")
    cols: dict[str, object] = {}
    for field, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_key:
                cols[field] = by_key[alias]
                break
    if "date" in by_key and "time" in by_key and not {"ts", "timestamp", "datetime"} & set(by_key):
        cols["ts"] = (by_key["date"], by_key["time"])
    missing = [f for f in ("ts", *_NUMBERS) if f not in cols]
    if missing:
        found = ", ".join(str(c) for c in raw.columns)
        raise DataError(f"{path}: no {'/'.join(missing)} column (found: {found})")
    return cols


def _ts_source(raw: pd.DataFrame, cols: dict[str, object]) -> pd.Series:
    source = cols["ts"]
    if isinstance(source, tuple):
        date, time = (raw[c].astype("str") for c in source)
        return (date.str.strip() + " " + time.str.strip()).where(
            raw[source[0]].notna() & raw[source[1]].notna()
        )
    return raw[source]


def _parse_ts(values: pd.Series, path: Path, tz: str | None) -> pd.Series:
    """Timestamps as ``datetime64[ns, UTC]``; see :func:`read_bars_file` for the rules."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        if not values.between(_YYYYMMDD[0], _YYYYMMDD[1]).all():
            return _from_epoch(values, path)
        values = values.astype("Int64").astype("str")  # 20260302: a date, not an epoch
    parsed = (
        values if pd.api.types.is_datetime64_any_dtype(values.dtype) else _from_text(values, path)
    )
    if parsed.dt.tz is None:
        parsed = _localize(parsed, path, tz)
    return parsed.dt.tz_convert("UTC").dt.as_unit("ns")


def _first_bad(path: Path, what: str, values: pd.Series, bad: np.ndarray) -> DataError:
    """The error for the first flagged row; rows count from 1, header excluded."""
    i = int(np.flatnonzero(bad)[0])
    value = values.iloc[i]
    shown = "(empty)" if pd.isna(value) else repr(value) if isinstance(value, str) else str(value)
    return DataError(f"{path}: {what} at row {i + 1}: {shown}")


def _from_epoch(values: pd.Series, path: Path) -> pd.Series:
    v = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(v) | (v != np.round(v))
    if bad.any():
        raise _first_bad(path, "not an integer epoch timestamp", values, bad)
    unit_index = np.searchsorted([u[0] for u in _EPOCH_UNITS], np.abs(v), side="right")
    mixed = unit_index != unit_index[0]
    if mixed.any():
        raise _first_bad(path, "epoch timestamps mix units (s/ms/us/ns)", values, mixed)
    unit = _EPOCH_UNITS[int(unit_index[0])][1]
    ints = values.to_numpy(dtype=np.int64)
    try:
        return pd.Series(pd.to_datetime(ints, unit=unit, utc=True)).dt.as_unit("ns")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime) as e:
        raise DataError(f"{path}: epoch timestamps out of range ({unit}): {e}") from e


def _from_text(values: pd.Series, path: Path) -> pd.Series:
    text = values.astype("str").str.strip().where(values.notna())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        try:
            parsed = pd.to_datetime(text, errors="coerce")
        except ValueError as e:  # several UTC offsets (e.g. across a DST change)
            if "timezone" not in str(e).lower():
                raise DataError(f"{path}: cannot parse timestamps: {str(e).splitlines()[0]}") from e
            parsed = pd.to_datetime(text, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _first_bad(path, "unparseable timestamp (or not in row 1's format)", values, bad)
    return parsed


def _check_zone(tz: str | None) -> None:
    if tz is None:
        return
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(
            f"unknown timezone {tz!r}: use an IANA name such as America/New_York"
        ) from e


def _localize(naive: pd.Series, path: Path, tz: str | None) -> pd.Series:
    if tz is None:
        raise DataError(
            f"{path}: timestamps have no timezone; pass the zone they were recorded in, "
            "e.g. --tz America/New_York"
        )
    local = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    bad = (local.isna() & naive.notna()).to_numpy()
    if bad.any():
        raise _first_bad(
            path, f"wall time does not exist or is ambiguous in {tz} (DST)", naive, bad
        )
    return local


def _symbols(raw: pd.DataFrame, column: object | None, symbol: str | None, path: Path) -> pd.Series:
    given = None if symbol is None else str(symbol).strip().upper()
    if given == "":
        raise ConfigError("the symbol must not be empty")
    if column is None:
        if given is None:
            raise DataError(f"{path}: no symbol or ticker column; pass the symbol (--symbol SYM)")
        return pd.Series([given] * len(raw), dtype="str")
    values = raw[column].astype("str").str.strip().str.upper().where(raw[column].notna())
    missing = (values.isna() | (values == "")).to_numpy()
    if missing.any():
        if given is None:
            raise _first_bad(path, "missing symbol", raw[column], missing)
        values = values.where(~missing, given)
    if given is not None and (values != given).any():
        found = ", ".join(sorted(set(values.unique()) - {given})[:5])
        raise DataError(
            f"{path}: symbol {given} was given but the file's {column} column holds {found}"
        )
    return values.astype("str").reset_index(drop=True)
