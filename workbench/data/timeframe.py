"""Bar timeframes: ``1Min``, ``5Min``, ``15Min``, ``1Hour``, ``1Day`` (Alpaca's spelling).

Bars are stamped at their *open* time, in UTC, as Alpaca stamps them. Daily bars are
stamped at midnight America/New_York of their session date, expressed in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from workbench.errors import ConfigError

__all__ = ["Timeframe"]

_UNITS = {"min": "Min", "t": "Min", "m": "Min", "hour": "Hour", "h": "Hour", "day": "Day", "d": "Day"}
_SECONDS = {"Min": 60, "Hour": 3600, "Day": 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Timeframe:
    amount: int
    unit: str  # "Min" | "Hour" | "Day"

    @classmethod
    def parse(cls, text: str | Timeframe) -> Timeframe:
        if isinstance(text, Timeframe):
            return text
        m = _PATTERN.match(str(text))
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if not m or unit is None or int(m.group(1)) <= 0:
            raise ConfigError(
                f"unknown timeframe {text!r}: use e.g. 1Min, 5Min, 15Min, 1Hour or 1Day"
            )
        amount = int(m.group(1))
        if unit == "Day" and amount != 1:
            raise ConfigError(f"unsupported timeframe {text!r}: only 1Day is supported for days")
        return cls(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def seconds(self) -> int:
        return self.amount * _SECONDS[self.unit]

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds)

    @property
    def is_intraday(self) -> bool:
        return self.unit != "Day"
