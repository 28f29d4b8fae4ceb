"""``SweepResult``: what ``wb.sweep`` returns: tables, the best combination, a heatmap.

    grid.table                      # one row per combination x symbol: parameters, metrics
    grid.combos                     # one row per combination: its book's metrics
    grid.best("sharpe")             # params and metrics of the best book, with DSR and PBO
    grid.heatmap("fast", "slow", metric="sharpe")       # plotly
    grid.save("runs/x/results")     # table.parquet, combos.parquet, best.json

The book of a combination is all symbols' accounts together, exactly what
``wb.backtest(...).stats()`` reports for those parameters. Next to the best combination
stand two honesty numbers (see :mod:`workbench.backtesting.overfit`): the deflated Sharpe
ratio, with every combination's book Sharpe ratio as the trials, and the probability of
backtest overfitting by CSCV over the T x M per-bar returns of the books.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.errors import ConfigError, DataError
from workbench.plain import plain
from workbench.secrets import redact, redact_frame

if TYPE_CHECKING:  # scipy (under overfit) is imported only when best() needs it
    from workbench.backtesting import overfit

__all__ = ["MAX_SPLITS", "Best", "SweepResult", "cscv_splits"]

MAX_SPLITS = 16
_MEAN_METRICS = ("total_return", "cagr", "final_equity")  # PBO ranks these by mean return


def cscv_splits(n_bars: int, most: int = MAX_SPLITS) -> int | None:
    """The CSCV block count: ``most``, or fewer so that each block has 2+ bars (None: < 4)."""
    splits = min(most, n_bars // 2)
    splits -= splits % 2
    return splits if splits >= 2 else None


@dataclass(frozen=True)
class Best:
    """The best combination of a sweep by one metric of its book, with DSR and PBO."""

    metric: str
    combo: int
    params: dict[str, Any]  # every strategy parameter, ready for wb.backtest(**params)
    metrics: dict[str, Any]  # the book's metrics
    n_combos: int
    deflated: overfit.DSR | None = None
    overfitting: overfit.PBO | None = None
    notes: tuple[str, ...] = field(default=())  # why DSR or PBO is missing

    @property
    def dsr(self) -> float | None:
        """Deflated Sharpe ratio: P(the best book's true Sharpe beats the best of the null)."""
        return None if self.deflated is None else self.deflated.dsr

    @property
    def pbo(self) -> float | None:
        """Probability of backtest overfitting (CSCV) of picking the best by this metric."""
        return None if self.overfitting is None else self.overfitting.pbo

    def to_dict(self) -> dict[str, Any]:
        return plain({
            "metric": self.metric, "combo": self.combo, "params": self.params,
            "metrics": self.metrics, "n_combos": self.n_combos, "dsr": self.dsr, "pbo": self.pbo,
            "dsr_summary": self.deflated.summary() if self.deflated else None,
            "pbo_summary": self.overfitting.summary() if self.overfitting else None,
            "notes": list(self.notes),
        })

    def __repr__(self) -> str:
        value = self.metrics.get(self.metric)
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
        return (f"<Best by {self.metric} of {self.n_combos} combos: {self.params} "
                f"{self.metric}={value:.4g} DSR={fmt(self.dsr)} PBO={fmt(self.pbo)}>")


class SweepResult:
    """The metrics of every combination x symbol and of every combination's book."""

    def __init__(self, strategy: str, names: tuple[str, ...], params: tuple[dict, ...],
                 table: pd.DataFrame, combos: pd.DataFrame, returns: np.ndarray,
                 periods_per_year: float, metric: str = "sharpe",
                 info: dict[str, Any] | None = None) -> None:
        self.strategy = strategy
        self.names = names
        self.params = params
        self.table = table
        self.combos = combos
        self.returns = returns  # (T, M) per-bar returns of each combination's book
        self.periods_per_year = periods_per_year
        self.metric = metric
        self.info = dict(info or {})
        self._best: dict[tuple[str, bool], Best] = {}

    # -- the best combination -----------------------------------------------------------
    def _metric(self, metric: str | None) -> str:
        metric = self.metric if metric is None else metric
        if metric not in self.combos.columns or metric in self.names:
            have = [c for c in self.combos.columns if c not in self.names]
            raise ConfigError(f"unknown metric {metric!r}; have {', '.join(have)}")
        return metric

    def best(self, metric: str | None = None, lowest: bool = False) -> Best:
        """The combination whose book has the highest ``metric`` (the lowest with
        ``lowest=True``, e.g. for turnover), reported with its DSR and PBO."""
        metric = self._metric(metric)
        key = (metric, bool(lowest))
        if key not in self._best:
            self._best[key] = self._find_best(metric, bool(lowest))
        return self._best[key]

    def _find_best(self, metric: str, lowest: bool) -> Best:
        values = self.combos[metric].to_numpy(dtype=float)
        if np.isnan(values).all():
            raise DataError(f"no combination has a {metric} (all NaN): nothing traded?")
        i = int(np.nanargmin(values) if lowest else np.nanargmax(values))
        row = self.combos.iloc[i]
        metrics = {c: row[c] for c in self.combos.columns if c not in self.names}
        deflated, pbo, notes = self._honesty(i, metric)
        return Best(metric, i, dict(self.params[i]), metrics, len(self.combos), deflated, pbo,
                    tuple(notes))

    def _honesty(self, i: int, metric: str):
        """DSR of combination ``i`` against all combinations' Sharpe ratios; PBO of selecting
        by Sharpe ratio (by mean return for total_return and cagr) over the books' returns."""
        from workbench.backtesting import overfit

        notes: list[str] = []
        deflated = pbo = None
        try:
            deflated = overfit.deflated_sharpe_ratio(
                self.returns[:, i], self.combos["sharpe"].to_numpy(dtype=float),
                periods_per_year=self.periods_per_year)
        except (DataError, ConfigError) as e:
            notes.append(f"no DSR: {e}")
        splits = cscv_splits(len(self.returns))
        if len(self.combos) < 2 or splits is None:
            notes.append("no PBO: needs 2+ combinations and 4+ bars")
        else:
            kind = "mean" if metric in _MEAN_METRICS else "sharpe"
            try:
                pbo = overfit.probability_of_backtest_overfitting(self.returns, splits,
                                                                metric=kind)
            except (DataError, ConfigError) as e:
                notes.append(f"no PBO: {e}")
        return deflated, pbo, notes

    # -- pictures -----------------------------------------------------------------------
    def heatmap(self, x: str, y: str, metric: str | None = None, over: str = "book",
                agg: str = "mean"):
        """A plotly heatmap of ``metric`` over parameters ``x`` and ``y``.

        ``over="book"``: each combination's book; ``"symbols"``: the mean over symbols of
        the per-symbol metric. Other swept parameters are aggregated with ``agg``
        (``"mean"``, ``"max"``, ``"min"``, ``"median"``)."""
        import plotly.graph_objects as go

        from workbench.backtesting.plots import masked, offline_notebook_html

        offline_notebook_html()
        metric = self._metric(metric)
        for name in (x, y):
            if name not in self.names:
                raise ConfigError(f"heatmap: {name!r} is not a swept parameter "
                                  f"({', '.join(self.names)})")
        if over not in ("book", "symbols"):
            raise ConfigError(f"heatmap: over must be 'book' or 'symbols', got {over!r}")
        if agg not in ("mean", "max", "min", "median"):
            raise ConfigError(f"heatmap: agg must be mean, max, min or median, got {agg!r}")
        if over == "book":
            data = self.combos
        else:
            data = self.table.groupby("combo", sort=True)[[*self.names, metric]].agg(
                {**{n: "first" for n in self.names}, metric: "mean"})
        z = data.groupby([y, x], sort=True)[metric].agg(agg).unstack(x)
        fig = go.Figure(go.Heatmap(
            z=z.to_numpy(dtype=float), x=list(z.columns), y=list(z.index),
            colorbar={"title": {"text": metric}},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.4g}}<extra></extra>"))
        what = "book" if over == "book" else "mean over symbols"
        fig.update_layout(title=f"{self.strategy}: {metric} ({what})",
                          xaxis_title=x, yaxis_title=y)
        return masked(fig)  # a credential swept as a value never reaches a picture

    # -- records ------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``table.parquet``, ``combos.parquet`` and ``best.json`` into ``directory``
        (secrets of the environment masked in every text)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        redact_frame(self.table).to_parquet(path / "table.parquet", index=False)
        redact_frame(self.combos.reset_index()).to_parquet(path / "combos.parquet", index=False)
        doc = {"strategy": self.strategy, "best": self.best().to_dict(),
               "info": plain(self.info)}
        (path / "best.json").write_text(redact(json.dumps(doc, indent=2, default=str)) + "\n")
        return path

    # -- display ------------------------------------------------------------------------
    def top(self, n: int = 10, metric: str | None = None) -> pd.DataFrame:
        """The ``n`` best combinations by their book's ``metric``."""
        metric = self._metric(metric)
        return self.combos.sort_values(metric, ascending=False, na_position="last").head(n)

    def _headline(self) -> str:
        i = self.info
        return (f"{self.strategy}: {len(self.combos):,} combinations x {i.get('symbols', '?')} "
                f"symbols x {len(self.returns):,} bars")

    def __repr__(self) -> str:
        try:
            best = repr(self.best())
        except DataError as e:
            best = str(e)
        return f"<SweepResult {self._headline()}; best {best}>"

    def _repr_html_(self) -> str:
        try:
            b = self.best()
            fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
            best = (f"<p>Best by <b>{html.escape(b.metric)}</b>: "
                    f"<code>{html.escape(str({n: b.params[n] for n in self.names}))}</code>, "
                    f"{html.escape(b.metric)} {b.metrics[b.metric]:.4g}; deflated Sharpe ratio "
                    f"{fmt(b.dsr)}, probability of backtest overfitting {fmt(b.pbo)}</p>")
        except DataError as e:
            best = f"<p>{html.escape(str(e))}</p>"
        seconds = self.info.get("seconds")
        took = f" in {seconds:.1f} s" if seconds else ""
        return (f"<div><p><b>{html.escape(self._headline())}</b>{took}</p>{best}"
                f"{self.top(10).to_html(float_format=lambda v: f'{v:.4g}')}</div>")
