"""The store's bar rules applied to live bars, one batch at a time.

:func:`workbench.data.validate.validate` judges a batch; a live batch is a minute's bars
(or a poll's), too short for its spike rule. So each symbol's new bars are judged after
its context: its last four accepted closes and the spike-rejected run since. A single
spike is then rejected against the median of five closes, as in the store, and a genuine
level shift passes on its third bar at the new level (the two before it stay rejected;
they join the context so the new level holds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.data.bars import FIELDS
from workbench.data.validate import SPIKE, validate

__all__ = ["BarChecks"]

_CONTEXT = 4  # accepted closes kept per symbol
_RUN = 2      # spike-rejected bars kept per symbol (a third at their level passes)
_CLOSE = FIELDS.index("close")


class BarChecks:
    """Verdicts (None: good, else the reason) for batches of ``(minute, symbol, values)``;
    ``minute`` is any increasing key (the book's minute index), ``time`` its timestamp."""

    def __init__(self, spike_band: float | None, time_of) -> None:
        self.spike_band = spike_band
        self._time = time_of
        self._context: dict[str, list[tuple[int, np.ndarray]]] = {}
        self._spikes: dict[str, list[tuple[int, np.ndarray]]] = {}

    def fresh(self, items: list[tuple[int, str, np.ndarray]]) -> list[str | None]:
        """Bars new to their minute: every rule, spikes included. Accepted bars join the
        context; call in the order bars are filed."""
        order = sorted(range(len(items)), key=lambda k: (items[k][1], items[k][0]))
        items = [items[k] for k in order]
        first: dict[str, int] = {}
        for i, symbol, _ in items:
            first.setdefault(symbol, i)
        extra = []
        for symbol, m0 in first.items():
            ctx = [c for c in self._context.get(symbol, []) if c[0] < m0][-_CONTEXT:]
            after = ctx[-1][0] if ctx else -1
            run = [c for c in self._spikes.get(symbol, []) if after < c[0] < m0]
            extra += [(j, symbol, v) for j, v in sorted(ctx + run, key=lambda c: c[0])]
        checked = validate(self._long(extra + items), spike_band=self.spike_band)
        bad = checked.bad[checked.bad.index >= len(extra)]
        reasons = dict(zip((bad.index - len(extra)).tolist(), bad["reason"].tolist()))
        verdicts: list[str | None] = [None] * len(items)
        for k, (i, symbol, values) in enumerate(items):
            reason = reasons.get(k)
            if reason is None:
                self._accepted(symbol, i, values)
            elif reason == SPIKE:
                kept = [c for c in self._spikes.get(symbol, []) if c[0] != i]
                self._spikes[symbol] = sorted(kept + [(i, values)], key=lambda c: c[0])[-_RUN:]
            verdicts[order[k]] = reason
        return verdicts

    def rows(self, items: list[tuple[int, str, np.ndarray]]) -> list[str | None]:
        """The one-bar rules only (NaN, prices <= 0, negative volume, ranges): for bars of
        decided minutes and second bars, which are reported, not filed."""
        frame = self._long([(i, str(k), v) for k, (i, _, v) in enumerate(items)])
        checked = validate(frame, spike_band=None)  # each bar its own series
        reasons = dict(zip(checked.bad.index.tolist(), checked.bad["reason"].tolist()))
        return [reasons.get(k) for k in range(len(items))]

    def _accepted(self, symbol: str, i: int, values: np.ndarray) -> None:
        """The rejected spikes before an accepted bar that sit at its level (the start of
        a level shift) join the accepted context; the others are forgotten."""
        band, close = self.spike_band, values[_CLOSE]
        spikes = self._spikes.pop(symbol, [])
        agree = [c for c in spikes if c[0] < i and band is not None
                 and abs(c[1][_CLOSE] / close - 1) <= band]
        later = [c for c in spikes if c[0] > i]
        if later:
            self._spikes[symbol] = later
        ctx = self._context.setdefault(symbol, [])
        ctx.extend(agree + [(i, values)])
        ctx.sort(key=lambda c: c[0])
        del ctx[:-_CONTEXT]

    def _long(self, rows: list[tuple[int, str, np.ndarray]]) -> pd.DataFrame:
        values = np.array([np.asarray(v, dtype=float) for _, _, v in rows]).reshape(-1, len(FIELDS))
        frame = pd.DataFrame(values, columns=list(FIELDS))
        ts = pd.DatetimeIndex([self._time(i) for i, _, _ in rows]).tz_convert("UTC").as_unit("ns")
        frame.insert(0, "ts", ts)
        frame.insert(0, "symbol", pd.Series([s for _, s, _ in rows], dtype="str"))
        return frame
