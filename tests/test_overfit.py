"""Deflated Sharpe ratio and probability of backtest overfitting (CSCV)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workbench.backtesting.overfit import (
    DSR,
    PBO,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)
from workbench.errors import ConfigError, DataError


def noise(seed: int, t: int, m: int, scale: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, (t, m))


def fixed_std_trials(n: int, std: float) -> np.ndarray:
    """n Sharpe ratios whose sample standard deviation is exactly ``std``."""
    z = stats.norm.ppf((np.arange(n) + 0.5) / n)
    return z / z.std(ddof=1) * std


# -- CSCV reference: a plain loop written from the paper's description --------------------


def slow_pbo(perf: np.ndarray, n_splits: int, metric) -> tuple[float, np.ndarray]:
    t, m = perf.shape
    perf = perf[t % n_splits:]
    blocks = np.split(perf, n_splits)
    logits = []
    for chosen in itertools.combinations(range(n_splits), n_splits // 2):
        ins = np.vstack([blocks[i] for i in chosen])
        oos = np.vstack([blocks[i] for i in range(n_splits) if i not in chosen])
        r_in = np.array([metric(ins[:, j]) for j in range(m)])
        r_out = np.array([metric(oos[:, j]) for j in range(m)])
        best = int(np.argmax(r_in))
        rank = stats.rankdata(r_out)[best]  # 1 = worst, m = best, ties averaged
        w = rank / (m + 1)
        logits.append(math.log(w / (1 - w)))
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits


def loop_sharpe(x: np.ndarray) -> float:
    return float(np.mean(x) / np.std(x, ddof=1))


@pytest.mark.parametrize("metric, loop", [("sharpe", loop_sharpe), ("mean", np.mean)])
def test_cscv_matches_a_slow_loop(metric, loop):
    perf = noise(3, 63, 7) + np.linspace(-0.002, 0.002, 7)  # 63 rows: 3 dropped for S=6
    fast = probability_of_backtest_overfitting(perf, n_splits=6, metric=metric)
    pbo, logits = slow_pbo(perf, 6, loop)
    assert fast.n_combinations == 20 == len(logits)
    assert fast.n_obs == 60
    np.testing.assert_allclose(fast.logits, logits, rtol=1e-9, atol=1e-12)
    assert fast.pbo == pytest.approx(pbo)


def test_callable_metric_matches_the_vectorized_path():
    perf = noise(5, 80, 9)
    fast = probability_of_backtest_overfitting(perf, n_splits=8)
    slow = probability_of_backtest_overfitting(
        perf, n_splits=8, metric=lambda x: x.mean(axis=0) / x.std(axis=0, ddof=1))
    np.testing.assert_allclose(fast.logits, slow.logits)
    np.testing.assert_allclose(fast.oos_best, slow.oos_best)
    same_fn = probability_of_backtest_overfitting(perf, n_splits=8, metric=sharpe_ratio)
    np.testing.assert_array_equal(same_fn.logits, fast.logits)


def test_pure_noise_gives_pbo_near_one_half():
    pbos = [probability_of_backtest_overfitting(noise(s, 480, 50), n_splits=8).pbo
            for s in range(40)]
    assert 0.38 < np.mean(pbos) < 0.62


def test_a_config_best_in_every_block_gives_pbo_near_zero():
    perf = noise(7, 1000, 30)
    perf[:, 11] += 0.006  # a real edge, visible in every block
    result = probability_of_backtest_overfitting(perf, n_splits=10)
    assert result.pbo < 0.01
    assert result.prob_oos_loss == 0.0
    assert (result.logits > 0).all()
    assert isinstance(result, PBO) and "PBO" in result.summary()


def test_sixteen_splits_are_complete():
    perf = pd.DataFrame(noise(1, 2500, 200))
    result = probability_of_backtest_overfitting(perf, n_splits=16)
    assert result.n_combinations == math.comb(16, 8) == 12_870
    assert result.logits.shape == result.is_best.shape == result.oos_best.shape == (12_870,)
    assert result.n_obs == 2496 and result.n_configs == 200
    assert np.isfinite(result.logits).all()
    assert math.isfinite(result.degradation_slope)


def test_flat_configurations_are_ranked_not_nan():
    perf = noise(2, 64, 4)
    perf[:, 0] = 0.0  # never traded
    result = probability_of_backtest_overfitting(perf, n_splits=4)
    assert np.isfinite(result.logits).all()


@pytest.mark.parametrize("perf, splits, error, match", [
    (np.zeros((100, 5)), 7, ConfigError, "even"),
    (np.zeros((100, 5)), 0, ConfigError, "even"),
    (np.zeros((100, 1)), 4, ConfigError, "at least 2 configurations"),
    (np.zeros((20, 5)), 16, ConfigError, "fewer splits"),
    (np.zeros(100), 4, ConfigError, "T x M"),
    (np.full((100, 5), np.nan), 4, DataError, "NaN"),
])
def test_cscv_rejects_bad_input(perf, splits, error, match):
    with pytest.raises(error, match=match):
        probability_of_backtest_overfitting(perf, n_splits=splits)


def test_cscv_rejects_an_unknown_metric():
    with pytest.raises(ConfigError, match="metric"):
        probability_of_backtest_overfitting(noise(0, 40, 3), n_splits=4, metric="sortino")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 12), splits=st.sampled_from([2, 4, 6]),
       power=st.integers(-4, 4))
def test_cscv_invariants(seed, m, splits, power):
    perf = noise(seed, 12 * splits + 5, m)
    base = probability_of_backtest_overfitting(perf, n_splits=splits)
    assert 0.0 <= base.pbo <= 1.0
    assert base.n_combinations == math.comb(splits, splits // 2)
    assert np.all(np.abs(base.logits) <= math.log(m) + 1e-9)  # rank in 1..m of m+1
    scaled = probability_of_backtest_overfitting(perf * 2.0**power, n_splits=splits)
    np.testing.assert_allclose(scaled.logits, base.logits)
    order = np.random.default_rng(seed).permutation(m)
    permuted = probability_of_backtest_overfitting(perf[:, order], n_splits=splits)
    np.testing.assert_allclose(permuted.logits, base.logits)


# -- deflated Sharpe ratio ---------------------------------------------------------------


def edge_returns(n: int = 1000, seed: int = 0, edge: float = 0.1) -> np.ndarray:
    """Returns with per-period Sharpe close to ``edge``."""
    return np.random.default_rng(seed).normal(edge * 0.01, 0.01, n)


def test_expected_max_sharpe_matches_simulation():
    rng = np.random.default_rng(0)
    for n in (10, 100, 1000):
        simulated = rng.normal(0.0, 0.05, (2000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, 0.05) == pytest.approx(simulated, rel=0.05)
    assert expected_max_sharpe(1, 0.05) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0
    with pytest.raises(ConfigError):
        expected_max_sharpe(0, 0.05)


def test_dsr_is_one_half_when_sharpe_equals_expected_max():
    r = edge_returns()
    sr = sharpe_ratio(r)
    unit = expected_max_sharpe(200, 1.0)
    result = deflated_sharpe_ratio(r, fixed_std_trials(200, sr / unit))
    assert result.expected_max_sharpe == pytest.approx(result.sharpe)
    assert result.dsr == pytest.approx(0.5, abs=1e-9)


def test_dsr_grows_with_observations():
    r = edge_returns(500)
    trials = fixed_std_trials(100, 0.02)
    values = [deflated_sharpe_ratio(np.tile(r, k), trials).dsr for k in (1, 2, 4, 8)]
    assert all(a < b for a, b in itertools.pairwise(values))


def test_dsr_falls_with_the_number_of_trials():
    r = edge_returns(1000)
    values = [deflated_sharpe_ratio(r, fixed_std_trials(n, 0.03)).dsr for n in (2, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(values))
    by_override = [deflated_sharpe_ratio(r, fixed_std_trials(50, 0.03), n_trials=n).dsr
                   for n in (2, 10, 100, 1000)]
    assert by_override == sorted(by_override, reverse=True)


def test_dsr_units_annualized_trials_are_converted():
    r = edge_returns(800)
    trials = fixed_std_trials(40, 0.03)
    per_period = deflated_sharpe_ratio(r, trials)
    annual = deflated_sharpe_ratio(r, trials * math.sqrt(252), periods_per_year=252)
    assert annual.dsr == pytest.approx(per_period.dsr)
    assert annual.sharpe == per_period.sharpe  # always per period
    assert annual.annualized(annual.sharpe) == pytest.approx(per_period.sharpe * math.sqrt(252))
    assert per_period.annualized(1.0) is None
    assert "annualized" in annual.summary() and "/period" in per_period.summary()


def test_dsr_reports_its_inputs():
    r = pd.Series(np.r_[edge_returns(300), np.nan])
    result = deflated_sharpe_ratio(r, [0.01, np.nan, 0.05, 0.02])
    assert isinstance(result, DSR)
    assert result.n_obs == 300 and result.n_trials == 4
    assert result.skew == pytest.approx(stats.skew(r.dropna()))
    assert result.kurtosis == pytest.approx(stats.kurtosis(r.dropna(), fisher=False))
    assert result.trials_sharpe_std == pytest.approx(np.std([0.01, 0.05, 0.02], ddof=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.dsr = 0.0  # type: ignore[misc]


def test_non_normal_returns_lower_the_probability():
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 500)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 500, skew=-1.0, kurtosis=8.0) < normal
    assert probabilistic_sharpe_ratio(0.0, 0.0, 500) == pytest.approx(0.5)


@pytest.mark.parametrize("returns, trials, error", [
    (np.full(100, 0.01), [0.1, 0.2], DataError),
    ([0.01, -0.01], [0.1, 0.2], DataError),
    ([0.01, np.inf, 0.02, 0.0], [0.1, 0.2], DataError),
    (edge_returns(50), [], ConfigError),
])
def test_dsr_rejects_bad_input(returns, trials, error):
    with pytest.raises(error):
        deflated_sharpe_ratio(returns, trials)


def test_dsr_rejects_bad_periods_per_year():
    with pytest.raises(ConfigError):
        deflated_sharpe_ratio(edge_returns(50), [0.1, 0.2], periods_per_year=0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 400), trials=st.integers(1, 500),
       edge=st.floats(-0.5, 0.5))
def test_dsr_is_a_probability(seed, n, trials, edge):
    r = edge_returns(n, seed, edge)
    sharpes = np.random.default_rng(seed).normal(0, 0.05, trials)
    result = deflated_sharpe_ratio(r, sharpes)
    assert 0.0 <= result.dsr <= 1.0
    assert result.expected_max_sharpe >= 0.0
    assert result.kurtosis >= 1.0 + result.skew**2 - 1e-9
