"""Honesty statistics for a parameter sweep: how much of the best result is selection luck.

Two numbers belong next to the best configuration of any sweep:

* :func:`deflated_sharpe_ratio` -- the probability that the best configuration's true
  Sharpe ratio beats what the best of N worthless configurations would show by chance
  (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting, and Non-Normality", Journal of Portfolio Management, 2014).
* :func:`probability_of_backtest_overfitting` -- how often the in-sample winner ranks
  in the bottom half out of sample, by combinatorially symmetric cross-validation (CSCV)
  (Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting",
  Journal of Computational Finance, 2017).

Units: every Sharpe ratio here is **per period** (mean over standard deviation of
per-bar or per-day returns, not annualized) unless a name says ``annualized``. Pure
numpy/scipy; no vectorbt.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from workbench.errors import ConfigError, DataError

__all__ = [
    "DSR",
    "PBO",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sharpe_ratio",
]

Metric = Callable[[np.ndarray], np.ndarray]
_CHUNK_CELLS = 2_000_000  # combinations x configurations evaluated per vectorized step


def sharpe_ratio(returns, axis: int = 0) -> np.ndarray | float:
    """Per-period Sharpe ratio (mean / sample std, ddof=1) along ``axis``.

    A column with zero variance has Sharpe 0 if its mean is 0 (never traded), else
    +/-inf.
    """
    x = np.asarray(returns, dtype=float)
    mean = x.mean(axis=axis)
    std = x.std(axis=axis, ddof=1)
    return _safe_ratio(mean, std)


def _safe_ratio(mean, std):
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 0, mean / np.where(std > 0, std, 1.0), np.sign(mean) * np.inf)
    out = np.where((std <= 0) & (mean == 0), 0.0, out)
    return out if out.ndim else float(out)


# -- deflated Sharpe ratio ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DSR:
    """Deflated Sharpe ratio of the best configuration of a sweep (per-period Sharpes)."""

    dsr: float  # P(true Sharpe > expected_max_sharpe), in [0, 1]
    sharpe: float  # observed per-period Sharpe of the best configuration
    expected_max_sharpe: float  # per-period, the best of n_trials under the null (SR = 0)
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float  # Pearson kurtosis: 3 for normal returns
    trials_sharpe_std: float  # per-period standard deviation of the trials' Sharpes
    periods_per_year: float | None = None

    def annualized(self, per_period: float) -> float | None:
        """A per-period Sharpe ratio annualized, or None without ``periods_per_year``."""
        if self.periods_per_year is None:
            return None
        return per_period * math.sqrt(self.periods_per_year)

    def summary(self) -> str:
        unit = "/period"
        sr, sr0 = self.sharpe, self.expected_max_sharpe
        if self.periods_per_year is not None:
            sr, sr0, unit = self.annualized(sr), self.annualized(sr0), " annualized"
        return (
            f"DSR {self.dsr:.3f}: Sharpe {sr:.3f}{unit} vs {sr0:.3f} expected from the best "
            f"of {self.n_trials:,} null trials; {self.n_obs:,} obs, skew {self.skew:.2f}, "
            f"kurtosis {self.kurtosis:.2f}"
        )


def expected_max_sharpe(n_trials: int, sharpe_std: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios drawn with true Sharpe 0.

    Extreme-value approximation with the Euler-Mascheroni constant, as in the deflated
    Sharpe ratio paper; the result is in the units of ``sharpe_std``.
    """
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1, got {n_trials}")
    if n_trials == 1 or sharpe_std <= 0:
        return 0.0
    g = np.euler_gamma
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(sharpe_std * ((1.0 - g) * z1 + g * z2))


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int,
                               skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """P(true Sharpe > ``benchmark``) given an observed per-period ``sharpe``.

    Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier" (Journal of Risk,
    2012): the standard error of the Sharpe ratio widens with negative skew and fat tails.
    ``kurtosis`` is Pearson's (3 for normal returns).
    """
    if n_obs < 2:
        raise ConfigError(f"need at least 2 observations, got {n_obs}")
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    var = max(var, 1e-12)  # non-negative for sample moments; guard rounding
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return float(stats.norm.cdf(z))


def _clean_returns(returns_best) -> np.ndarray:
    r = np.asarray(returns_best, dtype=float).ravel()
    if np.isinf(r).any():
        raise DataError("returns_best holds infinite values")
    r = r[~np.isnan(r)]
    if r.size < 3:
        raise DataError(f"returns_best needs at least 3 non-NaN observations, got {r.size}")
    if np.ptp(r) == 0:
        raise DataError("returns_best is constant: its Sharpe ratio is undefined")
    return r


def deflated_sharpe_ratio(returns_best, sharpe_trials, periods_per_year: float | None = None,
                          n_trials: int | None = None) -> DSR:
    """Deflated Sharpe ratio of the best of a sweep's configurations.

    ``returns_best``: per-period returns of the selected configuration (NaN dropped).
    ``sharpe_trials``: the Sharpe ratio of every configuration tried, the best included.
    They are per-period, or annualized when ``periods_per_year`` is given (then divided
    by its square root). Non-finite trials count as trials but not toward the variance.
    ``n_trials``: the effective number of independent trials when known (for example
    after clustering correlated configurations); defaults to ``len(sharpe_trials)``.

    The null is that every trial has true Sharpe 0; the benchmark is the expected
    maximum of ``n_trials`` such Sharpes given the trials' observed dispersion, and the
    result is the probabilistic Sharpe ratio of the best configuration against it.
    """
    r = _clean_returns(returns_best)
    trials = np.asarray(sharpe_trials, dtype=float).ravel()
    if trials.size == 0:
        raise ConfigError("sharpe_trials is empty: pass the Sharpe ratio of every trial")
    if periods_per_year is not None:
        if periods_per_year <= 0:
            raise ConfigError(f"periods_per_year must be positive, got {periods_per_year}")
        trials = trials / math.sqrt(periods_per_year)
    n = int(n_trials) if n_trials is not None else trials.size
    finite = trials[np.isfinite(trials)]
    sd = float(finite.std(ddof=1)) if finite.size >= 2 else 0.0
    sr = float(sharpe_ratio(r))
    skew = float(stats.skew(r, bias=True))
    kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    sr0 = expected_max_sharpe(n, sd)
    prob = probabilistic_sharpe_ratio(sr, sr0, r.size, skew, kurt)
    return DSR(prob, sr, sr0, n, int(r.size), skew, kurt, sd,
               None if periods_per_year is None else float(periods_per_year))


# -- probability of backtest overfitting (CSCV) -------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class PBO:
    """Result of combinatorially symmetric cross-validation over a sweep."""

    pbo: float  # fraction of splits where the in-sample winner is at or below the OOS median
    logits: np.ndarray  # logit of the winner's relative OOS rank, one per split
    n_combinations: int
    n_splits: int
    n_configs: int
    n_obs: int  # rows used (the oldest T mod n_splits rows are dropped)
    is_best: np.ndarray  # in-sample metric of the in-sample winner, per split
    oos_best: np.ndarray  # out-of-sample metric of that same configuration, per split
    degradation_slope: float  # OLS slope of oos_best on is_best (negative: decay)
    prob_oos_loss: float  # fraction of splits where the winner's OOS metric is below 0

    def summary(self) -> str:
        return (
            f"PBO {self.pbo:.3f} over {self.n_combinations:,} CSCV splits "
            f"(S={self.n_splits}, {self.n_configs:,} configs, {self.n_obs:,} obs); "
            f"OOS-vs-IS slope {self.degradation_slope:.2f}, P(OOS loss) {self.prob_oos_loss:.3f}"
        )


def _check_perf(perf, n_splits: int) -> np.ndarray:
    x = np.asarray(perf, dtype=float)
    if x.ndim != 2:
        raise ConfigError(f"perf must be a T x M matrix (periods x configs), got {x.ndim} dims")
    t, m = x.shape
    if m < 2:
        raise ConfigError(f"PBO needs at least 2 configurations, got {m}")
    if n_splits < 2 or n_splits % 2:
        raise ConfigError(f"n_splits must be an even number >= 2, got {n_splits}")
    if t // n_splits < 2:
        raise ConfigError(
            f"{t} rows cannot make {n_splits} blocks of at least 2 rows; use fewer splits"
        )
    if not np.isfinite(x).all():
        raise DataError("perf holds NaN or infinite returns; fill periods out of the market with 0")
    return x[t % n_splits:]


def _split_masks(n_splits: int) -> np.ndarray:
    """Boolean (C, S) matrix: row c marks the in-sample blocks of combination c."""
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    mask = np.zeros((len(combos), n_splits), dtype=bool)
    mask[np.arange(len(combos))[:, None], combos] = True
    return mask


def _moment_metric(kind: str, blocks: np.ndarray, mask: np.ndarray):
    """In- and out-of-sample metric for every combination, from per-block sums."""
    mu = blocks.mean(axis=(0, 1))
    centered = blocks - mu  # centering keeps the sum-of-squares variance accurate
    s1, s2 = centered.sum(axis=1), (centered**2).sum(axis=1)  # (S, M)
    n = blocks.shape[1] * mask.shape[1] // 2  # rows per half
    w = mask.astype(float)

    def metric(weights: np.ndarray) -> np.ndarray:
        m1 = weights @ s1 / n
        if kind == "mean":
            return m1 + mu
        var = np.maximum((weights @ s2 - n * m1**2) / (n - 1), 0.0)
        return _safe_ratio(m1 + mu, np.sqrt(var))

    return metric(w), metric(1.0 - w)


def _callable_metric(fn: Metric, blocks: np.ndarray, mask: np.ndarray):
    """The slow general path: ``fn`` on the concatenated rows of each half."""
    m = blocks.shape[2]
    ins = np.empty((len(mask), m))
    oos = np.empty((len(mask), m))
    for c, row in enumerate(mask):
        ins[c] = np.asarray(fn(blocks[row].reshape(-1, m)), dtype=float)
        oos[c] = np.asarray(fn(blocks[~row].reshape(-1, m)), dtype=float)
    return ins, oos


def _winner_logits(ins: np.ndarray, oos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick the in-sample winner of each row; logit of its relative OOS rank (ties averaged)."""
    m = ins.shape[1]
    best = np.argmax(np.where(np.isnan(ins), -np.inf, ins), axis=1)
    rows = np.arange(len(ins))
    v = oos[rows, best][:, None]
    below = (oos < v).sum(axis=1)
    ties = (oos == v).sum(axis=1) - 1
    omega = (below + 1 + ties / 2.0) / (m + 1)
    return np.log(omega / (1.0 - omega)), ins[rows, best], oos[rows, best]


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def probability_of_backtest_overfitting(perf, n_splits: int = 16,
                                        metric: str | Metric = "sharpe") -> PBO:
    """Probability of backtest overfitting by CSCV.

    ``perf``: T x M per-period returns (rows: time, columns: the M configurations of a
    sweep; a DataFrame works). Rows are cut into ``n_splits`` contiguous equal blocks
    (the oldest ``T mod n_splits`` rows are dropped); every choice of half the blocks is
    in-sample once and its complement out-of-sample. The in-sample winner's relative
    out-of-sample rank w gives the logit ln(w / (1 - w)); PBO is the fraction of logits
    at or below 0 (the winner no better than the median out of sample).

    ``metric``: ``"sharpe"`` (per-period, default) or ``"mean"`` run vectorized; any
    callable mapping a (rows, M) array to M scores also works, one call per half and
    combination (12,870 pairs for 16 splits: slow).
    """
    x = _check_perf(perf, n_splits)
    blocks = x.reshape(n_splits, -1, x.shape[1])
    mask = _split_masks(n_splits)
    if callable(metric):
        fast = "sharpe" if metric is sharpe_ratio else None
    elif metric in ("sharpe", "mean"):
        fast = metric
    else:
        raise ConfigError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")
    step = max(1, _CHUNK_CELLS // x.shape[1])
    parts = []
    for start in range(0, len(mask), step):
        chunk = mask[start:start + step]
        ins, oos = (_moment_metric(fast, blocks, chunk) if fast
                    else _callable_metric(metric, blocks, chunk))
        parts.append(_winner_logits(ins, oos))
    logits, is_best, oos_best = (np.concatenate(p) for p in zip(*parts))
    return PBO(
        pbo=float((logits <= 0).mean()), logits=logits, n_combinations=len(mask),
        n_splits=n_splits, n_configs=x.shape[1], n_obs=x.shape[0], is_best=is_best,
        oos_best=oos_best, degradation_slope=_slope(is_best, oos_best),
        prob_oos_loss=float((oos_best < 0).mean()),
    )
