"""Synthetic OHLCV bars on the real NYSE calendar: seeded, reproducible, realistic enough.

Each symbol gets its own random stream, seeded from ``(seed, crc32(symbol))``, so its
bars depend only on the seed, its name and the dates asked for, never on the other
symbols. A symbol has a starting price (5..500), a volatility, a drift and a liquidity;
its price is a geometric random walk (fat-tailed minute returns, volatility higher at the
open, day-to-day volatility regimes, overnight gaps) rounded to the cent. Volume follows
the U-shaped intraday profile (heavy at the open and the close) with noise, and minutes
without a trade are dropped, more often for illiquid symbols and in quiet hours.

Intraday timeframes are aggregated from simulated minutes (by
:func:`workbench.data.aggregate.aggregate_minutes`, the session's rule too); ``1Day`` bars are simulated
per session directly (same per-symbol parameters), so long daily histories stay cheap.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data import calendar
from workbench.data.aggregate import aggregate_minutes
from workbench.data.timeframe import Timeframe
from workbench.errors import ConfigError

__all__ = ["COLUMNS", "DEFAULT_END", "synthesize", "tickers"]

DEFAULT_END = "2026-11-20"  # the last session when ``end`` is None: output never drifts
COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
MAX_GENERATED = 10_000
_TICKER_SEED = 20_261_120
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_LETTER_WEIGHTS = np.array(
    [8, 4, 5, 4, 7, 3, 3, 3, 5, 1, 2, 5, 5, 5, 5, 4, 1, 5, 6, 6, 3, 2, 2, 1, 1, 1], dtype=float
)
_FULL_DAY = 390  # minutes in a regular session


def tickers(n: int) -> list[str]:
    """``n`` unique tickers (3-4 capital letters); the first ``n`` of one fixed sequence."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_GENERATED:
        raise ConfigError(f"the number of symbols must be 1..{MAX_GENERATED}, got {n!r}")
    rng = np.random.default_rng(_TICKER_SEED)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        lengths = rng.integers(3, 5, size=512)
        letters = rng.choice(26, size=(512, 4), p=_LETTER_WEIGHTS / _LETTER_WEIGHTS.sum())
        for length, row in zip(lengths, letters):
            name = "".join(_LETTERS[row[:length]])
            if name not in seen and len(names) < n:
                seen.add(name)
                names.append(name)
    return names


def _symbol_list(symbols) -> list[str]:
    if isinstance(symbols, (int, np.integer)) and not isinstance(symbols, bool):
        names = tickers(int(symbols))
    elif isinstance(symbols, str):
        names = [symbols.strip()]
    elif isinstance(symbols, Iterable):
        names = [str(s).strip() for s in symbols]
    else:
        raise ConfigError(f"symbols must be a count or a list of names, got {symbols!r}")
    if not names or not all(names):
        raise ConfigError("symbols: give at least one non-empty symbol name")
    dupes = sorted({s for s in names if names.count(s) > 1})
    if dupes:
        raise ConfigError(f"symbols: duplicate name(s) {dupes}")
    return sorted(names)


def _rng(seed: int, symbol: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(symbol.encode("utf-8")), stream])


@dataclass(frozen=True)
class _Params:
    """One symbol's character: drawn from its own stream, shared by every timeframe."""

    price: float  # first open
    vol: float  # annualized volatility
    drift: float  # annualized log drift
    adv: float  # average daily volume, shares
    miss: float  # base probability that a minute has no trade

    @classmethod
    def draw(cls, seed: int, symbol: str) -> _Params:
        rng = _rng(seed, symbol, 0)
        illiquid = rng.random()  # 0 = mega cap, 1 = thin small cap
        return cls(
            price=float(np.exp(rng.uniform(np.log(5.0), np.log(500.0)))),
            vol=float(rng.uniform(0.15, 0.45) + 0.35 * illiquid * rng.random()),
            drift=float(rng.normal(0.05, 0.15)),
            adv=float(2e7 * 0.01**illiquid * np.exp(rng.normal(0.0, 0.2))),
            miss=float(0.15 * illiquid**3),
        )


def _u_shape(x: np.ndarray, open_w: float, close_w: float) -> np.ndarray:
    """1 plus decaying bumps at the open (x=0) and the close (x=1), mean 1 over a day."""

    def shape(t: np.ndarray) -> np.ndarray:
        return 1.0 + open_w * np.exp(-t / 0.05) + close_w * np.exp(-(1 - t) / 0.04)

    return shape(x) / shape(np.arange(_FULL_DAY) / _FULL_DAY).mean()


@dataclass(frozen=True)
class _Grid:
    """The minutes of the sessions asked for; the same for every symbol."""

    ts: np.ndarray  # int64 ns, UTC
    session: np.ndarray  # session position of each minute
    minute: np.ndarray  # minutes since its session's open
    first: np.ndarray  # bool: first minute of its session
    vol_shape: np.ndarray  # intraday volatility profile
    volume_shape: np.ndarray  # intraday volume profile (the U)
    n_sessions: int

    @classmethod
    def build(cls, table: pd.DataFrame) -> _Grid:
        times, session = calendar.bar_grid(table, "1Min")
        counts = np.bincount(session, minlength=len(table))
        k = np.arange(len(times)) - np.repeat(np.cumsum(counts) - counts, counts)
        x = k / counts[session]  # fraction of the session elapsed: early closes end at 1
        return cls(
            ts=times.asi8,
            session=session,
            minute=k,
            first=k == 0,
            vol_shape=np.sqrt(_u_shape(x, 1.5, 0.6)),
            volume_shape=_u_shape(x, 3.0, 2.2),
            n_sessions=len(table),
        )


def _ticks(prices: np.ndarray) -> np.ndarray:
    """Round to the cent (to 1/100 cent under a dollar): monotone, so OHLC order holds."""
    return np.where(prices < 1.0, np.maximum(np.round(prices, 4), 1e-4), np.round(prices, 2))


def _excursions(rng, move: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log high/low above/below the open of a Brownian bridge from 0 to ``move``."""
    spread_hi = np.sqrt(move**2 - 2 * sigma**2 * np.log(rng.random(move.size)))
    spread_lo = np.sqrt(move**2 - 2 * sigma**2 * np.log(rng.random(move.size)))
    return (move + spread_hi) / 2, (move - spread_lo) / 2


def _day_regimes(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-session volatility and volume multipliers (busy days are volatile days)."""
    z = rng.normal(0.0, 0.25, n)
    vol_mult = np.exp(z - 0.25**2 / 2)
    volume_mult = np.exp(1.5 * z + rng.normal(0.0, 0.2, n) - (1.5**2 * 0.25**2 + 0.04) / 2)
    return vol_mult, volume_mult


def _minutes(p: _Params, grid: _Grid, rng) -> dict[str, np.ndarray]:
    """One symbol's minute bars (traded minutes only) as arrays."""
    n = grid.ts.size
    vol_mult, volume_mult = _day_regimes(rng, grid.n_sessions)
    gaps = rng.standard_t(3, grid.n_sessions) / np.sqrt(3) * 0.5 * p.vol / np.sqrt(252)
    gaps[0] = 0.0
    sigma = p.vol / np.sqrt(252 * _FULL_DAY) * grid.vol_shape * vol_mult[grid.session]
    z = rng.standard_t(4, n) / np.sqrt(2)
    move = sigma * z + p.drift / (252 * _FULL_DAY)
    step = move + np.where(grid.first, gaps[grid.session], 0.0)
    close = np.log(p.price) + np.cumsum(step)
    open_ = close - move
    up, down = _excursions(rng, move, sigma)
    noise = np.exp(rng.normal(0.0, 0.5, n) - 0.125) * (1 + 0.4 * np.abs(z)) / 1.28
    volume = p.adv / _FULL_DAY * grid.volume_shape * volume_mult[grid.session] * noise
    traded = rng.random(n) >= np.minimum(p.miss / grid.volume_shape, 0.5)
    return {
        "ts": grid.ts[traded],
        "open": _ticks(np.exp(open_[traded])),
        "high": _ticks(np.exp(open_[traded] + up[traded])),
        "low": _ticks(np.exp(open_[traded] + down[traded])),
        "close": _ticks(np.exp(close[traded])),
        "volume": np.maximum(np.round(volume[traded]), 1.0),
    }


def _days(p: _Params, table: pd.DataFrame, stamps: np.ndarray, rng) -> dict[str, np.ndarray]:
    """One symbol's daily bars, simulated per session with the intraday model's scales."""
    n = len(table)
    minutes = ((table["close"] - table["open"]).dt.total_seconds() / 60).to_numpy()
    share = minutes / _FULL_DAY
    vol_mult, volume_mult = _day_regimes(rng, n)
    gaps = rng.standard_t(3, n) / np.sqrt(3) * 0.5 * p.vol / np.sqrt(252)
    gaps[0] = 0.0
    sigma = p.vol / np.sqrt(252) * vol_mult * np.sqrt(share)
    z = rng.standard_t(4, n) / np.sqrt(2)
    move = sigma * z + p.drift / 252 * share
    close = np.log(p.price) + np.cumsum(gaps + move)
    open_ = close - move
    up, down = _excursions(rng, move, sigma)
    noise = np.exp(rng.normal(0.0, 0.25, n) - 0.03125)
    volume = p.adv * share * volume_mult * noise
    return {
        "ts": stamps,
        "open": _ticks(np.exp(open_)),
        "high": _ticks(np.exp(open_ + up)),
        "low": _ticks(np.exp(open_ + down)),
        "close": _ticks(np.exp(close)),
        "volume": np.maximum(np.round(volume), 100.0),
    }


def _each(names: list[str], progress) -> Iterator[str]:
    """Iterate over symbols, showing a tqdm bar or calling ``progress(done, total)``."""
    if progress is True:
        from workbench.progress import progress_bar

        yield from progress_bar(names, desc="synthesize", unit="symbol")
        return
    for done, name in enumerate(names, 1):
        yield name
        if callable(progress):
            progress(done, len(names))


def _check(days, seed, progress) -> None:
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ConfigError(f"days must be a positive integer, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise ConfigError("progress must be True/False or a callable(done, total)")


def synthesize(
    symbols: int | str | Iterable[str],
    days: int,
    timeframe: str | Timeframe = "1Min",
    seed: int = 0,
    end=None,
    progress: bool | Callable[[int, int], None] = False,
) -> pd.DataFrame:
    """Synthetic long bars for ``days`` NYSE sessions ending on or before ``end``.

    ``symbols`` is a count (that many generated tickers, see :func:`tickers`) or names.
    ``end`` is a date; ``None`` means :data:`DEFAULT_END`, so output is reproducible.
    Returns columns ``symbol, ts, open, high, low, close, volume`` (``ts`` is the bar's
    UTC open time, prices and volume float64), sorted by symbol then ts. ``progress``:
    ``True`` shows a tqdm bar over symbols, a callable gets ``(done, total)``.
    """
    tf = Timeframe.parse(timeframe)
    _check(days, seed, progress)
    names = _symbol_list(symbols)
    dates = calendar.last_sessions(int(days), DEFAULT_END if end is None else end)
    table = calendar.sessions(dates[0], dates[-1])
    make = _simulator(tf, table, int(seed))
    parts = [make(name) for name in _each(names, progress)]
    counts = np.array([part["ts"].size for part in parts])
    data = {
        "symbol": pd.array(np.repeat(np.array(names, dtype=object), counts), dtype="str"),
        "ts": pd.DatetimeIndex(
            np.concatenate([p["ts"] for p in parts]).view("datetime64[ns]")
        ).tz_localize("UTC"),
    }
    for field in COLUMNS[2:]:
        data[field] = np.concatenate([p[field] for p in parts]).astype(np.float64)
    return pd.DataFrame(data, columns=list(COLUMNS))


def _simulator(tf: Timeframe, table: pd.DataFrame, seed: int) -> Callable[[str], dict]:
    """A function from a symbol name to its bars as arrays, for this timeframe and dates."""
    if not tf.is_intraday:
        stamps = calendar.bar_grid(table, "1Day")[0].asi8
        return lambda name: _days(_Params.draw(seed, name), table, stamps, _rng(seed, name, 2))
    grid = _Grid.build(table)
    if tf.seconds == 60:
        return lambda name: _minutes(_Params.draw(seed, name), grid, _rng(seed, name, 1))
    bar_ts, bar_session = calendar.bar_grid(table, tf)
    per_session = np.bincount(bar_session, minlength=len(table))
    first_bar = np.cumsum(per_session) - per_session
    minute_bar = first_bar[grid.session] + grid.minute // (tf.seconds // 60)
    bar_ns = bar_ts.asi8

    def make(name: str) -> dict:
        bars = _minutes(_Params.draw(seed, name), grid, _rng(seed, name, 1))
        bar_id = minute_bar[np.searchsorted(grid.ts, bars["ts"])]
        return aggregate_minutes(bars, bar_id, bar_ns)

    return make
