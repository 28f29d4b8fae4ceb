"""The live feed's vocabulary: a minute bar, the timing options, the restart backoff."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data.bars import FIELDS
from workbench.errors import ConfigError

__all__ = ["FeedOptions", "MinuteBar", "backoff_delay"]

@dataclass(frozen=True, slots=True)
class MinuteBar:
    """One symbol's bar for the minute starting at ``time`` (UTC, tz-aware)."""

    symbol: str
    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def values(self) -> tuple[float, float, float, float, float]:
        return (self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True)
class FeedOptions:
    """The feed's timing; seconds. ``stale_s`` must exceed ``cutoff_s``."""

    cutoff_s: float = 5.0        # after a minute's close: decide it without its missing symbols
    stale_s: float = 60.0        # no stream bar this long after bars were due: poll instead
    poll_delay_s: float = 2.0    # after a minute's close: poll for it (REST has it by then)
    poll_retry_s: float = 5.0    # after a failed poll, or one that could not settle a minute
    empty_after_s: float = 30.0  # after a minute's close: no bar anywhere means it had none
    reconnect_min_s: float = 1.0     # stream restart backoff: first delay, doubling ...
    reconnect_max_s: float = 60.0    # ... up to this; each delay jittered to [d/2, d]
    spike_band: float | None = 0.5   # the store's spike rule (None: off)

    def __post_init__(self) -> None:
        for name in ("cutoff_s", "stale_s", "poll_delay_s", "poll_retry_s", "empty_after_s",
                     "reconnect_min_s", "reconnect_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"feed option {name} must be a positive number of seconds, "
                                  f"not {value!r}")
        if self.stale_s <= self.cutoff_s:
            raise ConfigError(f"feed option stale_s ({self.stale_s:g}) must exceed cutoff_s "
                              f"({self.cutoff_s:g})")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError("feed option reconnect_max_s is below reconnect_min_s")


def backoff_delay(attempt: int, options: FeedOptions, rng: random.Random) -> float:
    """Seconds before stream restart number ``attempt`` (1, 2, ...): ``min_s * 2**(attempt-1)``
    capped at ``max_s``, then a uniform draw in ``[d/2, d]`` (equal jitter)."""
    d = min(options.reconnect_max_s, options.reconnect_min_s * 2 ** min(attempt - 1, 30))
    return d / 2 + rng.random() * d / 2



def iso(ts) -> str:
    return pd.Timestamp(ts).isoformat()


def values_dict(values, prefix: str = "") -> dict:
    """OHLCV as JSON-ready floats (None for NaN), keys prefixed."""
    return {prefix + f: (None if not np.isfinite(v) else float(v))
            for f, v in zip(FIELDS, np.asarray(values, dtype=float))}
