"""Validation of long bars: every bar that enters the store or an engine passes here.

:func:`validate` splits a long-bars frame into ``good`` bars and ``bad`` bars, each bad
bar carrying the first reason (in :data:`REASONS` order) that applies to it. Rows are
quarantined, never dropped: ``len(good) + len(bad) == len(input)``.

Reasons, in the order they are tested:

``nan``                 any NaN or infinity in open, high, low, close or volume
``non_positive_price``  any of open, high, low, close is zero or negative
``absurd_magnitude``    a price above :data:`MAX_PRICE` ($10 million a share, over ten
                        times the dearest US share ever) or below :data:`MIN_PRICE` ($0.0001,
                        the smallest US price increment), or a volume above
                        :data:`MAX_VOLUME` (a trillion shares in one bar, ~100 times a
                        whole day of the US market): no bar of a US stock, a unit or
                        overflow error (1e308)
``negative_volume``     volume below zero
``high_below_low``      high < low
``open_outside_range``  open outside [low, high]
``close_outside_range`` close outside [low, high]
``duplicate_timestamp`` a (symbol, ts) already seen on an earlier row that passed the
                        checks above: the first such row is kept, later ones are bad
``out_of_order``        ts earlier than the running maximum ts of that symbol's earlier
                        rows that passed the checks above (input order)
``spike``               close deviates from a robust local reference by more than
                        ``spike_band``: ``|close / ref - 1| > spike_band``

Spike rule. For each symbol, the closes of the rows still good after the checks above are
put in time order, with ``reference_close[symbol]`` (the last stored close), when given,
in front as a trusted virtual close. ``ref`` is the median of a window of ``2 * 2 + 1 = 5``
consecutive closes of that sequence containing the row (centered, shifted inwards at
the ends of the sequence, shrunk to 3 or 1 closes when the sequence is shorter; the row's
own close is part of the window). A median of five cannot be moved by one or two bad
closes, so a single 100x spike or 0.01x drop never contaminates its neighbours.

A level shift (a price that jumps and stays there) is accepted once it persists: in a
sequence of five or more closes, a move lasting at least three consecutive bars passes as
a level shift, while an excursion of one or two bars is flagged as spikes; this holds at
the ends of the sequence too (one or two bars at a new level at the end of a batch are
flagged, three or more pass). In shorter sequences the majority of the three closes
decides; a batch of one bar is compared with ``reference_close`` alone, and a symbol with
only two bars and no reference is not judged (no majority either way). Consequence for
incremental use: a genuine jump arriving one bar at a time is flagged against the stored
close each time; re-validate the quarantined bars together with the new ones (same
``reference_close``) and, once three bars sit at the new level, they pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ConfigError, DataError

__all__ = [
    "ABSURD_MAGNITUDE",
    "CLOSE_OUTSIDE_RANGE",
    "DUPLICATE_TIMESTAMP",
    "HIGH_BELOW_LOW",
    "LONG_COLUMNS",
    "MAX_PRICE",
    "MAX_VOLUME",
    "MIN_PRICE",
    "NAN",
    "NEGATIVE_VOLUME",
    "NON_POSITIVE_PRICE",
    "OPEN_OUTSIDE_RANGE",
    "OUT_OF_ORDER",
    "REASONS",
    "SPIKE",
    "Validation",
    "check_long_frame",
    "validate",
]

LONG_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
_NUMBERS = LONG_COLUMNS[2:]

NAN = "nan"
NON_POSITIVE_PRICE = "non_positive_price"
ABSURD_MAGNITUDE = "absurd_magnitude"
NEGATIVE_VOLUME = "negative_volume"
HIGH_BELOW_LOW = "high_below_low"
OPEN_OUTSIDE_RANGE = "open_outside_range"
CLOSE_OUTSIDE_RANGE = "close_outside_range"
DUPLICATE_TIMESTAMP = "duplicate_timestamp"
OUT_OF_ORDER = "out_of_order"
SPIKE = "spike"
REASONS = (NAN, NON_POSITIVE_PRICE, ABSURD_MAGNITUDE, NEGATIVE_VOLUME, HIGH_BELOW_LOW)
REASONS += (OPEN_OUTSIDE_RANGE,)
REASONS += (CLOSE_OUTSIDE_RANGE, DUPLICATE_TIMESTAMP, OUT_OF_ORDER, SPIKE)  # tested in this order
_CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}  # 0 means good

MAX_PRICE = 1e7  # dollars a share (Berkshire Hathaway A, the dearest, has stayed under 1e6)
MIN_PRICE = 1e-4  # dollars a share: the smallest price increment of a US stock
MAX_VOLUME = 1e12  # shares in one bar

_HALF_WINDOW = 2  # spike reference: median of 2 * 2 + 1 closes
_CHUNK = 1 << 20  # rows per block when taking window medians (bounds memory)


@dataclass(frozen=True, eq=False)
class Validation:
    """The outcome of :func:`validate`.

    ``good``: long bars sorted by symbol and ts, index reset. ``bad``: the quarantined
    rows in input order, the long-bar columns plus ``reason``; its index is each row's
    position (0-based) in the input frame.
    """

    good: pd.DataFrame
    bad: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        """Quarantined rows per reason, in :data:`REASONS` order (only reasons seen)."""
        seen = Counter(self.bad["reason"].tolist())
        return {reason: seen[reason] for reason in REASONS if seen[reason]}

    def summary(self) -> str:
        """One line, e.g. ``"1000 bars: 997 good, 3 quarantined (nan 1, spike 2)"``."""
        total = len(self.good) + len(self.bad)
        line = f"{total} bars: {len(self.good)} good, {len(self.bad)} quarantined"
        if self.counts:
            line += " (" + ", ".join(f"{r} {n}" for r, n in self.counts.items()) + ")"
        return line


def check_long_frame(df: pd.DataFrame) -> None:
    """Raise a one-line :class:`DataError` unless ``df`` is a long-bars frame.

    Long bars hold exactly the columns ``symbol`` (strings, no missing values), ``ts``
    (``datetime64[ns, UTC]``, the bar open time) and ``open``, ``high``, ``low``,
    ``close``, ``volume`` (``float64``), in any column order.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"long bars must be a pandas DataFrame, not {type(df).__name__}")
    found = [str(c) for c in df.columns]
    missing = [c for c in LONG_COLUMNS if c not in found]
    if missing:
        raise DataError(
            f"bars are missing column(s) {', '.join(missing)} (found: {', '.join(found) or 'none'})"
        )
    extra = [c for c in found if c not in LONG_COLUMNS]
    if extra or len(found) != len(LONG_COLUMNS):
        raise DataError(
            f"bars have unexpected column(s) {', '.join(extra) or '(duplicates)'}: long bars "
            f"hold exactly {', '.join(LONG_COLUMNS)}"
        )
    _check_symbol(df["symbol"])
    _check_ts(df["ts"])
    wrong = [f"{c} ({df[c].dtype})" for c in _NUMBERS if df[c].dtype != np.float64]
    if wrong:
        raise DataError(f"bar column(s) {', '.join(wrong)} must be float64")


def _check_symbol(symbol: pd.Series) -> None:
    if not pd.api.types.is_string_dtype(symbol.dtype):
        raise DataError(f"bar column symbol must hold strings, not {symbol.dtype}")
    if symbol.isna().any():
        raise DataError(
            f"bar column symbol has a missing value at row {int(symbol.isna().argmax())}"
        )


def _check_ts(ts: pd.Series) -> None:
    dtype = ts.dtype
    if pd.api.types.is_datetime64_dtype(dtype):
        raise DataError(
            "bar column ts is timezone-naive: localize it and convert to UTC "
            "(e.g. .dt.tz_localize('America/New_York').dt.tz_convert('UTC'))"
        )
    if not isinstance(dtype, pd.DatetimeTZDtype):
        raise DataError(f"bar column ts must hold UTC timestamps, not {dtype}")
    if str(dtype.tz) != "UTC" or dtype.unit != "ns":
        raise DataError(
            f"bar column ts is {dtype}, expected datetime64[ns, UTC] "
            "(use .dt.tz_convert('UTC').dt.as_unit('ns'))"
        )


def validate(
    df: pd.DataFrame,
    spike_band: float | None = 0.5,
    reference_close: Mapping[str, float] | pd.Series | None = None,
) -> Validation:
    """Split long bars into good and quarantined (bad) rows; see the module docstring.

    ``spike_band`` is the largest accepted ``|close / ref - 1|`` (``None`` turns the
    spike check off). ``reference_close`` maps a symbol to its last stored close; it is
    used as a trusted close just before the symbol's first bar here. Raises
    :class:`DataError` if ``df`` is not a long-bars frame (:func:`check_long_frame`).
    """
    check_long_frame(df)
    if spike_band is not None and not (np.isfinite(spike_band) and spike_band > 0):
        raise ConfigError(f"spike_band must be a positive fraction, not {spike_band!r}")
    codes, symbols = pd.factorize(df["symbol"], sort=True)
    ts = df["ts"].array.asi8
    reason = _row_reasons(df)
    order = _sorted_rows(np.flatnonzero(reason == 0), codes, ts)
    _mark_duplicates(reason, order, codes, ts)
    _mark_out_of_order(reason, codes, ts)
    order = order[reason[order] == 0]
    if spike_band is not None and order.size:
        refs = _reference_array(reference_close, symbols)
        close = df["close"].to_numpy(dtype=np.float64)
        _mark_spikes(reason, order, codes, close, refs, float(spike_band))
    return _split(df, reason, order[reason[order] == 0])


def _row_reasons(df: pd.DataFrame) -> np.ndarray:
    """Reason code per row from the checks that look at one row only (0 = good)."""
    o, h, lo, c, v = (df[name].to_numpy(dtype=np.float64) for name in _NUMBERS)
    reason = np.zeros(len(df), dtype=np.int8)
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    with np.errstate(invalid="ignore"):
        tests = (
            (NAN, ~finite),
            (NON_POSITIVE_PRICE, (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
            (ABSURD_MAGNITUDE, _absurd(o, h, lo, c, v)),
            (NEGATIVE_VOLUME, v < 0),
            (HIGH_BELOW_LOW, h < lo),
            (OPEN_OUTSIDE_RANGE, (o < lo) | (o > h)),
            (CLOSE_OUTSIDE_RANGE, (c < lo) | (c > h)),
        )
    for name, mask in tests:
        _mark(reason, mask, name)
    return reason


def _absurd(o, h, lo, c, v) -> np.ndarray:
    """Rows with a price or volume no US stock's bar can hold (see the module docstring)."""
    big = (o > MAX_PRICE) | (h > MAX_PRICE) | (lo > MAX_PRICE) | (c > MAX_PRICE)
    small = (o < MIN_PRICE) | (h < MIN_PRICE) | (lo < MIN_PRICE) | (c < MIN_PRICE)
    return big | small | (v > MAX_VOLUME)


def _mark(reason: np.ndarray, mask: np.ndarray, name: str) -> None:
    """Give ``name`` to the rows in ``mask`` that have no reason yet."""
    reason[mask & (reason == 0)] = _CODE[name]


def _sorted_rows(rows: np.ndarray, codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``rows`` ordered by (symbol, ts), ties kept in input order (lexsort is stable)."""
    return rows[np.lexsort((ts[rows], codes[rows]))]


def _mark_duplicates(
    reason: np.ndarray, order: np.ndarray, codes: np.ndarray, ts: np.ndarray
) -> None:
    c, t = codes[order], ts[order]
    repeat = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    reason[order[1:][repeat]] = _CODE[DUPLICATE_TIMESTAMP]


def _mark_out_of_order(reason: np.ndarray, codes: np.ndarray, ts: np.ndarray) -> None:
    """Rows older than the latest earlier good-so-far row of their symbol."""
    ok = reason == 0
    floor = np.iinfo(np.int64).min
    running = pd.Series(np.where(ok, ts, floor)).groupby(codes).cummax().to_numpy()
    _mark(reason, ok & (ts < running), OUT_OF_ORDER)


def _reference_array(reference_close, symbols: pd.Index) -> np.ndarray:
    """Usable reference close per symbol code (NaN where none or not a positive number)."""
    if reference_close is None:
        return np.full(len(symbols), np.nan)
    if not isinstance(reference_close, (Mapping, pd.Series)):
        raise ConfigError("reference_close must map symbols to their last stored close")
    refs = pd.Series(reference_close, dtype="object")
    refs = pd.to_numeric(refs.reindex(symbols), errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(refs) & (refs > 0), refs, np.nan)


def _mark_spikes(
    reason: np.ndarray,
    order: np.ndarray,
    codes: np.ndarray,
    close: np.ndarray,
    refs: np.ndarray,
    band: float,
) -> None:
    """Flag the candidate rows in ``order`` whose close is far from the window median."""
    vals, row, group = _with_references(close[order], order, codes[order], refs)
    ref = _window_medians(vals, group, has_ref=row < 0)
    real = row >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.abs(vals[real] / ref[real] - 1.0) > band
    spike = np.zeros(reason.size, dtype=bool)
    spike[row[real][far]] = True
    _mark(reason, spike, SPIKE)


def _with_references(vals, rows, groups, refs):
    """Insert each group's reference close (row id -1) in front of its first close."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ref_at = refs[groups[starts]]
    keep = np.isfinite(ref_at)
    where = starts[keep]
    return (
        np.insert(vals, where, ref_at[keep]),
        np.insert(rows, where, -1),
        np.insert(groups, where, groups[where]),
    )


def _window_medians(vals: np.ndarray, group: np.ndarray, has_ref: np.ndarray) -> np.ndarray:
    """Median of each element's window inside its group (see the module docstring)."""
    n = vals.size
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    length = np.diff(np.r_[first, n])
    size = np.repeat(length, length)
    start_of_group = np.repeat(first, length)
    pos = np.arange(n) - start_of_group
    width = np.minimum(2 * _HALF_WINDOW + 1, size)
    width -= width % 2 == 0
    start = np.clip(pos - width // 2, 0, size - width)
    group_has_ref = np.repeat(has_ref[first], length)
    start = np.where((width == 1) & group_has_ref, 0, start)  # lone bar vs reference
    return _padded_median(vals, start_of_group + start, width)


def _padded_median(vals: np.ndarray, begin: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Median of ``vals[begin:begin + width]`` per element, for odd widths up to the window.

    Missing slots are filled with as many +inf as -inf, which leaves the median alone.
    """
    full = 2 * _HALF_WINDOW + 1
    out = np.empty(vals.size)
    for lo in range(0, vals.size, _CHUNK):
        b, w = begin[lo : lo + _CHUNK], width[lo : lo + _CHUNK]
        block = np.empty((b.size, full))
        for j in range(full):
            pad = np.inf if (j % 2) else -np.inf
            block[:, j] = np.where(j < w, vals[np.minimum(b + j, vals.size - 1)], pad)
        out[lo : lo + _CHUNK] = np.partition(block, _HALF_WINDOW, axis=1)[:, _HALF_WINDOW]
    return out


def _split(df: pd.DataFrame, reason: np.ndarray, good_order: np.ndarray) -> Validation:
    cols = list(LONG_COLUMNS)
    good = df[cols].take(good_order).reset_index(drop=True)
    bad_rows = np.flatnonzero(reason != 0)
    bad = df[cols].take(bad_rows)
    bad.index = pd.Index(bad_rows, name="row")
    labels = np.array(REASONS, dtype=object)
    bad["reason"] = pd.Series(labels[reason[bad_rows] - 1], index=bad.index, dtype="str")
    return Validation(good=good, bad=bad)
