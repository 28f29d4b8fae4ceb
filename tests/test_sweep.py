"""``wb.sweep``: equal to looping ``wb.backtest``, chunked, threaded, spawned, on Dask."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.backtesting.sweeps.chunks import Chunk, parse_bytes, plan_chunks
from workbench.backtesting.sweeps.result import cscv_splits
from workbench.backtesting.sweeps.worker import COLUMN_METRICS
from workbench.data.synth import synthesize
from workbench.errors import ConfigError, StrategyError

RANGES = {"fast": [3, 5, 8], "slow": range(6, 36, 10)}
FAST_LT_SLOW = {"constraint": lambda p: p["fast"] < p["slow"]}


@wb.strategy(warmup=10)
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


@wb.strategy
def both_ways(bars, fast: int = 5, slow: int = 20):
    fast_ma, slow_ma = wb.ta.EMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    up, down = wb.crossed_above(fast_ma, slow_ma), wb.crossed_below(fast_ma, slow_ma)
    return wb.Signals(entries=up, exits=down, short_entries=down, short_exits=up)


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    return wb.Bars.from_long(synthesize(5, 300, "1Day", seed=11), timeframe="1Day")


@pytest.fixture(scope="module")
def grid(bars):
    return wb.sweep(sma_cross, bars, **RANGES, **FAST_LT_SLOW, fees_bps=5, progress=False)


def _same(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-9, rtol: float = 0.0) -> None:
    for name in COLUMN_METRICS:
        np.testing.assert_allclose(a[name].to_numpy(float), b[name].to_numpy(float),
                                   rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def _loop(strategy, bars, result, **options) -> None:
    """Each combination's backtest equals the sweep's rows, per symbol and for the book."""
    for i, params in enumerate(result.params):
        bt = wb.backtest(strategy, bars, **params, **options)
        rows = result.table[result.table["combo"] == i].set_index("symbol")
        _same(bt.stats(per_symbol=True), rows.loc[bars.symbols])
        book = bt.stats()
        _same(pd.DataFrame([book[list(COLUMN_METRICS)]]), result.combos.iloc[[i]])


# -- the numbers ------------------------------------------------------------------------


def test_sweep_equals_looping_backtest(bars, grid):
    assert len(grid.combos) == 8 and len(grid.table) == 8 * 5
    _loop(sma_cross, bars, grid, fees_bps=5)


def test_fused_kernel_equals_backtest_longshort(bars):
    options = {"direction": "longshort", "fill": "next_open", "fee_per_share": 0.005,
               "shares": "whole", "size": 0.5}
    result = wb.sweep(both_ways, _gapped(bars), fast=[4, 9], slow=[13, 25], progress=False,
                      **options)
    assert result.info["kernel"] == "fused"
    _loop(both_ways, _gapped(bars), result, **options)


def test_sweep_equals_backtest_longshort_with_stops_and_close_fills(bars):
    options = {"direction": "longshort", "fill": "close", "sl_stop": 0.04, "tp_stop": 0.08,
               "fee_per_share": 0.005, "shares": "whole", "size": 0.5}
    result = wb.sweep(both_ways, bars, fast=[4, 9], slow=25, progress=False, **options)
    assert list(result.combos["slow"]) == [25, 25]
    _loop(both_ways, bars, result, **options)


def _gapped(bars: wb.Bars, scale: float = 1.0) -> wb.Bars:
    """``bars`` with prices times ``scale`` and holes: one symbol misses bars 40-59 (no
    open, high, low or close), another has no open on some bars (next_open waits)."""
    prices = {f: getattr(bars, f) * scale for f in ("open", "high", "low", "close")}
    for frame in prices.values():
        frame.iloc[40:60, 1] = np.nan
    prices["open"].iloc[100:140:3, 2] = np.nan
    return wb.Bars.from_wide(**prices, volume=bars.volume, timeframe="1Day")


@pytest.mark.parametrize("options", [
    {"fill": "next_open", "fees_bps": 7, "slippage_bps": 3, "size": 0.6},
    {"fill": "close", "fee_per_share": 0.01, "shares": "whole", "cash": 5_000.0},
])
def test_fused_kernel_equals_backtest_with_gaps_and_costs(bars, options):
    """The single compiled pass (long, no stops) against ``wb.backtest`` per combination."""
    gapped = _gapped(bars)
    result = wb.sweep(sma_cross, gapped, fast=[3, 5], slow=[8, 21], progress=False, **options)
    assert result.info["kernel"] == "fused"
    assert (result.table["trades"] > 0).all()
    _loop(sma_cross, gapped, result, **options)


@pytest.mark.parametrize("direction", ["long", "longshort"])
def test_fused_kernel_fees_beyond_the_proceeds(bars, direction):
    """Prices below the per-share fee: a sell's (or short sale's) fees exceed its proceeds
    (vectorbt would reject it); the fee the proceeds do not cover is taken from cash, as
    in wb.backtest."""
    cheap = _gapped(bars, scale=1e-4)
    strategy = sma_cross if direction == "long" else both_ways
    options = {"fill": "close", "fee_per_share": 0.02, "fees_bps": 1, "direction": direction}
    result = wb.sweep(strategy, cheap, fast=[3], slow=[8, 13], progress=False, **options)
    assert result.info["kernel"] == "fused"
    _loop(strategy, cheap, result, **options)


@wb.strategy
def coin(bars, seed: int = 0, p: float = 0.2):
    """Dense random entries and exits, long and short (conflicts on some bars: many
    orders, reversals, cancelled signals)."""
    rng, close = np.random.default_rng(seed), bars.close
    le, lx, se, sx = (pd.DataFrame(rng.random(close.shape) < p, index=close.index,
                                   columns=close.columns) for _ in range(4))
    return wb.Signals(entries=le, exits=lx, short_entries=se, short_exits=sx)


@pytest.mark.filterwarnings("ignore:the strategy returned short signals")
@pytest.mark.parametrize("options", [
    {"fill": "next_open", "fees_bps": 10, "slippage_bps": 5, "fee_per_share": 0.003},
    {"fill": "close", "fees_bps": 0, "slippage_bps": 0, "shares": "whole", "size": 0.3},
    {"direction": "longshort", "fill": "next_open", "fees_bps": 10, "slippage_bps": 5,
     "fee_per_share": 0.003},
    {"direction": "longshort", "fill": "close", "fees_bps": 3, "shares": "whole",
     "size": 0.7},
    {"direction": "longshort", "fill": "close", "fees_bps": 1, "fee_per_share": 2.0},
])
def test_fused_kernel_equals_the_general_path_on_dense_random_signals(bars, options,
                                                                      monkeypatch):
    gapped = _gapped(bars)
    if options.get("direction") == "longshort":  # prices up 6x: shorts covered on credit
        ramp = np.linspace(1.0, 6.0, len(bars))[:, None]
        gapped = wb.Bars.from_wide(**{f: getattr(gapped, f) * ramp
                                      for f in ("open", "high", "low", "close")},
                                   volume=gapped.volume, timeframe="1Day")
    kw = {"seed": range(6), "p": [0.01, 0.3], "progress": False, **options}
    fused = wb.sweep(coin, gapped, **kw)
    from workbench.backtesting.sweeps import runner

    monkeypatch.setattr(runner, "_kernel", lambda options: "general")
    general = wb.sweep(coin, gapped, **kw)
    assert (fused.info["kernel"], general.info["kernel"]) == ("fused", "general")
    assert fused.table["trades"].sum() > 500
    _same(fused.table, general.table, atol=1e-9)
    _same(fused.combos, general.combos, atol=1e-9)
    np.testing.assert_allclose(fused.returns, general.returns, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_fused_kernel_flat_stretches_and_bars_without_a_close(bars, fill, monkeypatch):
    """The pass skips a flat column's bars up to its next signal: the equity, the returns
    of 0, the drawdown and the mark (the last close) stay those of the bar-by-bar rules,
    also where a bar has an open and no close (a next-open entry there is marked at the
    last close seen, inside the skipped stretch)."""
    gapped = _gapped(bars)
    close = gapped.close.copy()
    close.iloc[41:200:6, 0] = np.nan  # opens kept: next_open fills there, marked before
    close.iloc[150:170, 3] = np.nan
    odd = wb.Bars.from_wide(open=gapped.open, high=gapped.high, low=gapped.low, close=close,
                            volume=gapped.volume, timeframe="1Day")
    kw = {"seed": range(8), "p": [0.005, 0.02, 0.1], "progress": False, "fill": fill,
          "fees_bps": 5, "slippage_bps": 2, "direction": "longshort"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = wb.sweep(coin, odd, **kw)
        from workbench.backtesting.sweeps import runner

        monkeypatch.setattr(runner, "_kernel", lambda options: "general")
        general = wb.sweep(coin, odd, **kw)
    assert (fused.info["kernel"], general.info["kernel"]) == ("fused", "general")
    _same(fused.table, general.table, atol=1e-9)
    _same(fused.combos, general.combos, atol=1e-9)
    np.testing.assert_allclose(fused.returns, general.returns, rtol=0, atol=1e-12)


def test_kernel_choice_and_timings(bars, grid):
    assert grid.info["kernel"] == "fused"
    assert grid.info["seconds_strategy"] > 0 and grid.info["seconds_simulation"] > 0
    for options in ({"sl_stop": 0.05}, {"tp_stop": 0.1}, {"direction": "longshort",
                                                         "sl_stop": 0.05}):
        general = wb.sweep(sma_cross, bars, fast=[3], slow=[16], progress=False, **options)
        assert general.info["kernel"] == "general"


def test_table_and_combos_layout(bars, grid):
    t = grid.table
    assert list(t.columns[:4]) == ["combo", "fast", "slow", "symbol"]
    assert set(COLUMN_METRICS) <= set(t.columns) and t["trades"].dtype == np.int64
    assert list(t["symbol"][:5]) == bars.symbols
    assert list(grid.combos.columns[:2]) == ["fast", "slow"] and grid.combos.index.name == "combo"
    assert grid.info["combos"] == 8 and grid.info["candidates"] == 9
    assert grid.returns.shape == (len(bars), 8)


def test_constraint_filters_combinations(bars):
    result = wb.sweep(sma_cross, bars, fast=range(2, 12, 3), slow=[6, 9, 12],
                      constraint=lambda p: p["slow"] - p["fast"] >= 4, progress=False)
    pairs = list(zip(result.combos["fast"], result.combos["slow"]))
    assert pairs == [(2, 6), (2, 9), (2, 12), (5, 9), (5, 12), (8, 12)]


def test_parameter_and_option_errors(bars):
    with pytest.raises(StrategyError, match="did you mean fast"):
        wb.sweep(sma_cross, bars, fsat=[3, 5], progress=False)
    with pytest.raises(StrategyError, match="parameter slow must be int"):
        wb.sweep(sma_cross, bars, slow=["x"], progress=False)
    with pytest.raises(ConfigError, match="no values"):
        wb.sweep(sma_cross, bars, fast=[], progress=False)
    with pytest.raises(ConfigError, match="rejects all"):
        wb.sweep(sma_cross, bars, fast=[30], slow=[10], **FAST_LT_SLOW, progress=False)
    with pytest.raises(ConfigError, match="fees_bps takes one value"):
        wb.sweep(sma_cross, bars, fees_bps=[1, 2], progress=False)
    with pytest.raises(ConfigError, match="fill must be one of"):
        wb.sweep(sma_cross, bars, fill="tomorrow", progress=False)
    with pytest.raises(ConfigError, match="unknown metric"):
        wb.sweep(sma_cross, bars, metric="alpha", progress=False)
    with pytest.raises(ConfigError, match="memory_budget"):
        wb.sweep(sma_cross, bars, memory_budget="lots", progress=False)
    with pytest.raises(ConfigError, match="too small"):
        wb.sweep(sma_cross, bars, memory_budget="8KB", progress=False)


# -- chunks -----------------------------------------------------------------------------


def test_parse_bytes():
    assert parse_bytes("4GB") == 4 * 2**30 and parse_bytes("512 MB") == 512 * 2**20
    assert parse_bytes("1.5g") == 3 * 2**29 and parse_bytes(1000) == 1000
    for bad in ("-1GB", "4 parsecs", 0, True, None):
        with pytest.raises(ConfigError):
            parse_bytes(bad)


def _covers(plan, n_symbols: int, n_combos: int) -> None:
    seen = np.zeros((n_combos, n_symbols), dtype=int)
    for c in plan.chunks:
        seen[c.combos, c.symbols] += 1
    assert (seen == 1).all()


def test_plan_chunks_fits_the_budget_and_covers_the_grid():
    kw = {"n_symbols": 1000, "n_combos": 200, "n_bars": 2500, "workers": 2, "cell_bytes": 100}
    big = plan_chunks(budget=4 * 2**30, **kw)
    assert big.symbols_per_chunk * big.combos_per_chunk * 2500 <= 2_000_000  # cache cap
    _covers(big, 1000, 200)
    small = plan_chunks(budget=200 * 2**20, fixed=20 * 2**20, per_worker=40 * 2**20, **kw)
    room = (200 - 20) * 2**20 // 2 - 40 * 2**20
    assert small.chunk_bytes <= room and small.combos_per_chunk == 1
    assert small.symbols_per_chunk < 1000
    _covers(small, 1000, 200)
    with pytest.raises(ConfigError, match="too small"):
        plan_chunks(budget=2**18, **kw)


def test_plan_chunks_keeps_workers_busy():
    few = plan_chunks(10, 3, 100, budget=2**30, workers=2)  # few combos: all in 3+ chunks
    assert len(few) == 3 and few.symbols_per_chunk == 10
    many = plan_chunks(10, 400, 100, budget=2**30, workers=2)
    assert len(many) >= 8 and many.combos_per_chunk == 50
    wide = plan_chunks(640, 1, 100, budget=2**30, workers=2)  # one combination: split symbols
    assert len(wide) == 8 and wide.symbols_per_chunk == 80
    assert wide.chunks[1] == Chunk(1, slice(80, 160), slice(0, 1))


def test_small_chunks_give_the_same_result(bars, grid):
    small = wb.sweep(sma_cross, bars, **RANGES, **FAST_LT_SLOW, fees_bps=5, progress=False,
                     memory_budget="400KB", threads=3)
    assert small.info["chunks"] > 8 and small.info["symbols_per_chunk"] < 5
    _same(small.table, grid.table, atol=0)  # each column: the same simulation
    _same(small.combos, grid.combos, atol=1e-12, rtol=1e-14)  # books summed by symbol block
    np.testing.assert_allclose(small.returns, grid.returns, rtol=0, atol=1e-14)


def test_processes_from_a_script_main_equal_in_process(tmp_path):
    """A strategy defined in ``__main__`` of an unguarded script, on 2 spawned processes."""
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import workbench as wb
        from workbench.data.synth import synthesize

        bars = wb.Bars.from_long(synthesize(4, 200, "1Day", seed=5), timeframe="1Day")

        @wb.strategy
        def cross(bars, fast: int = 5, slow: int = 20):
            f, s = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
            return wb.Signals(entries=wb.crossed_above(f, s), exits=wb.crossed_below(f, s))

        kw = dict(fast=[3, 6, 9], slow=[12, 24], fees_bps=3, progress=False)
        pooled = wb.sweep(cross, bars, processes=2, **kw)
        local = wb.sweep(cross, bars, processes=1, **kw)
        assert pooled.info["mode"] == "processes" and local.info["mode"] == "threads"
        cols = ["total_return", "sharpe", "trades", "turnover"]
        assert np.array_equal(pooled.table[cols].to_numpy(), local.table[cols].to_numpy(),
                              equal_nan=True)
        assert np.array_equal(pooled.returns, local.returns)
        print("SAME", len(pooled.table))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=240, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "SAME 24"


def test_local_dask_cluster_gives_the_same_result(bars, grid):
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    try:
        with distributed.Client(cluster) as client:
            remote = wb.sweep(sma_cross, bars, **RANGES, **FAST_LT_SLOW, fees_bps=5,
                              progress=False, cluster=client)
        by_address = wb.sweep(sma_cross, bars, fast=[3], slow=[16], fees_bps=5,
                              progress=False, cluster=cluster.scheduler_address)
    finally:
        cluster.close()
    assert remote.info["mode"] == "dask" and remote.info["workers"] == 2
    _same(remote.table, grid.table, atol=1e-12)
    _same(remote.combos, grid.combos, atol=1e-12)
    one = grid.combos[(grid.combos["fast"] == 3) & (grid.combos["slow"] == 16)]
    _same(by_address.combos, one)


# -- the result -------------------------------------------------------------------------


def test_best_reports_dsr_and_pbo(grid):
    best = grid.best()
    assert best.metric == "sharpe" and best.combo == int(np.nanargmax(grid.combos["sharpe"]))
    assert best.params == {"fast": grid.combos["fast"].iloc[best.combo],
                           "slow": grid.combos["slow"].iloc[best.combo]}
    assert 0 <= best.dsr <= 1 and 0 <= best.pbo <= 1
    assert best.deflated.n_trials == 8 and best.overfitting.n_splits == 16
    assert "DSR" in repr(best) and "PBO" in repr(best)
    worst_turnover = grid.best("turnover", lowest=True)
    assert worst_turnover.metrics["turnover"] == grid.combos["turnover"].min()
    with pytest.raises(ConfigError, match="unknown metric"):
        grid.best("fast")


def test_cscv_splits_shrink_with_few_bars():
    assert cscv_splits(2500) == 16 and cscv_splits(20) == 10 and cscv_splits(5) == 2
    assert cscv_splits(3) is None


def test_heatmap(grid):
    import plotly.graph_objects as go

    fig = grid.heatmap("fast", "slow", metric="sharpe")
    assert isinstance(fig, go.Figure)
    assert fig.layout.xaxis.title.text == "fast" and fig.layout.yaxis.title.text == "slow"
    heat = fig.data[0]
    assert list(heat.x) == [3, 5, 8] and list(heat.y) == [6, 16, 26]
    z = np.asarray(heat.z, dtype=float)
    row = grid.combos.query("fast == 5 and slow == 16")
    assert z[1, 1] == row["sharpe"].iloc[0] and np.isnan(z[0, 2])  # fast 8 >= slow 6
    mean = grid.heatmap("fast", "slow", metric="total_return", over="symbols")
    per_symbol = grid.table.query("fast == 3 and slow == 6")["total_return"].mean()
    assert np.asarray(mean.data[0].z, dtype=float)[0, 0] == pytest.approx(per_symbol)
    with pytest.raises(ConfigError, match="not a swept parameter"):
        grid.heatmap("fast", "warmup")


def test_display_and_save(grid, tmp_path):
    html = grid._repr_html_()
    assert "deflated Sharpe ratio" in html and "sma_cross" in html
    assert "SweepResult" in repr(grid)
    path = grid.save(tmp_path / "results")
    assert pd.read_parquet(path / "table.parquet").shape == grid.table.shape
    combos = pd.read_parquet(path / "combos.parquet")
    assert list(combos["combo"]) == list(range(8))
    doc = json.loads((path / "best.json").read_text())
    assert doc["best"]["params"] == grid.best().params
    assert doc["best"]["dsr"] == pytest.approx(grid.best().dsr)
