"""A sweep's size is known before it starts; what would not finish is refused at once with
the number, the limit and how to go past it (issue 12: a 1e10-combination grid hung)."""

from __future__ import annotations

import itertools

import pytest

import workbench as wb
from tests.conftest import wb_inline
from workbench import paths
from workbench.backtesting.sweeps.grid import Grid, values_of
from workbench.data.synth import synthesize
from workbench.errors import ConfigError


@wb.strategy
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


def test_a_ten_billion_combination_grid_is_refused_before_any_is_made():
    with pytest.raises(ConfigError) as e:
        Grid.build(sma_cross, {"fast": range(1, 100_001), "slow": range(1, 100_001)})
    text = str(e.value)
    assert "10,000,000,000 combinations (fast 100,000 x slow 100,000)" in text
    assert "limit of 1,000,000" in text and "--max-combinations" in text
    assert "\n" not in text


def test_one_huge_or_endless_parameter_is_refused_without_being_listed():
    with pytest.raises(ConfigError, match="10,000,000,000 combinations"):
        values_of("fast", range(10**10), limit=1_000_000)
    with pytest.raises(ConfigError, match="fast alone, at least"):
        values_of("fast", itertools.count(), limit=1_000)  # a generator without end
    assert values_of("fast", range(3), limit=3) == [0, 1, 2]


def test_the_limit_can_be_moved_or_lifted(monkeypatch):
    ranges = {"fast": range(1, 5), "slow": range(10, 13)}  # 12 combinations
    monkeypatch.setenv("WORKBENCH_SWEEP_MAX_COMBINATIONS", "10")
    with pytest.raises(ConfigError, match="12 combinations .* limit of 10"):
        Grid.build(sma_cross, ranges)
    assert len(Grid.build(sma_cross, ranges, max_combinations=None)) == 12
    assert len(Grid.build(sma_cross, ranges, max_combinations=12)) == 12
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ConfigError, match="max_combinations"):
            Grid.build(sma_cross, ranges, max_combinations=bad)


def test_a_sweep_of_too_many_bar_combinations_is_refused_before_it_runs():
    bars = wb.Bars.from_long(synthesize(3, 40, "1Day", seed=3, end="2026-11-20"), "1Day")
    with pytest.raises(ConfigError) as e:
        wb.sweep(sma_cross, bars, fast=[3, 5], slow=[10, 20], progress=False, max_cells=100)
    text = str(e.value)
    assert f"{3 * len(bars) * 4:,} bar-combinations (3 symbols x {len(bars)} bars x 4 " \
           f"combinations) is more than the limit of 100" in text
    assert "max_cells=N" in text and "--max-cells" in text
    result = wb.sweep(sma_cross, bars, fast=[3, 5], slow=[10, 20], progress=False,
                      max_cells=None)
    assert len(result.combos) == 4


def test_the_sweep_command_refuses_a_huge_grid_before_the_kernel_starts():
    notebook = paths.project_root() / "notebooks" / "strategies" / "sma_cross.ipynb"
    result = wb_inline("sweep", notebook, "--grid", "fast=1:100000:1", "--grid",
                       "slow=1:100000:1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: sweep: 10,000,000,000 combinations")
    assert result.stderr.count("\n") == 1
    assert not paths.runs_dir().exists() or not any(paths.runs_dir().iterdir())
    for option, value in (("--max-combinations", "-5"), ("--max-combinations", "1e3"),
                          ("--max-cells", "abc"), ("--max-cells", "0")):
        result = wb_inline("sweep", notebook, option, value)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {option} ")
