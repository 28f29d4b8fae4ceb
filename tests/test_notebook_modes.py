"""The strategy notebooks run in every mode: papermill and the real `workbench` kernel execute
the notebook with `mode` and `run_dir` injected, and its last call, `wb.run`, does the mode's
work into the open run record (which it never finishes, except a paper session its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd

from tests.conftest import ROOT

STRATEGIES = ROOT / "notebooks" / "strategies"
PLOTLY = "application/vnd.plotly.v1+json"
REPLAY_DAY = "2025-12-31"



def _record(kind: str, mode: str, strategy: str):
    from workbench.clock import LiveClock
    from workbench.runs.records import RunRecord

    return RunRecord.create(kind, strategy, {}, mode, None, LiveClock())


def _papermill(notebook: str, out: Path, env: dict, home: Path, params: dict):
    """papermill with the workbench kernel; ``params`` go in as YAML (JSON is YAML)."""
    cmd = [str(Path(sys.executable).parent / "papermill"), str(STRATEGIES / notebook), str(out),
           "-k", "workbench", "--cwd", str(STRATEGIES), "--log-level", "ERROR",
           "-y", json.dumps(params)]
    return subprocess.run(cmd, env={**env, "WORKBENCH_HOME": str(home)}, capture_output=True,
                          text=True, timeout=600, check=False)


def _run(notebook: str, tmp_path: Path, env: dict, home: Path, **params):
    out = tmp_path / f"executed-{params.get('mode')}-{notebook}"
    proc = _papermill(notebook, out, env, home, params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return nbformat.read(out, as_version=4)


def _last_outputs(nb) -> list[dict]:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "wb.run(" in code[-1].source
    return code[-1].get("outputs", [])


def _has_plotly(outputs) -> bool:
    return any(PLOTLY in o.get("data", {}) for o in outputs)


def _manifest(record):
    from workbench.runs.records import load_manifest

    return load_manifest(record.path)


def _settings(record) -> dict:
    return json.loads((record.results_dir / "settings.json").read_text())


def _assert_same_stats(record, direct, tmp_path):
    """The recorded stats equal ``direct``'s, both read back from Parquet."""
    path = tmp_path / "direct-stats.parquet"
    direct.stats_table().to_parquet(path)
    pd.testing.assert_frame_equal(pd.read_parquet(record.results_dir / "stats.parquet"),
                                  pd.read_parquet(path))


def _synth_minutes(store, symbols=3, days=3):
    from workbench.data.sources import synth_into_store

    synth_into_store(store, symbols, days, "1Min", 11, REPLAY_DAY)


# -- backtest -----------------------------------------------------------------------------


def test_sma_cross_backtest_mode_records_what_wb_backtest_gives(jupyter_env, workbench_home,
                                                               tmp_path):
    import workbench as wb
    from tests.notebook_strategies import strategy_of

    record = _record("backtest", "backtest", "sma_cross")
    nb = _run("sma_cross.ipynb", tmp_path, jupyter_env, workbench_home, mode="backtest",
              run_dir=str(record.path), fast=5, slippage_bps=3.0)
    assert _has_plotly(_last_outputs(nb))
    assert _manifest(record)["status"] == "running"  # the runner finishes it, not the kernel
    names = sorted(p.name for p in record.results_dir.iterdir())
    assert names == ["equity.parquet", "settings.json", "stats.parquet", "trades.parquet"]

    strategy = strategy_of(STRATEGIES / "sma_cross.ipynb")
    bars = wb.data.load(None, timeframe="1Day")
    direct = wb.backtest(strategy, bars, fast=5, slow=30, fees_bps=1.0, slippage_bps=3.0)
    _assert_same_stats(record, direct, tmp_path)
    assert len(pd.read_parquet(record.results_dir / "trades.parquet")) == len(direct.trades())
    settings = _settings(record)
    assert settings["params"] == {"fast": 5, "slow": 30}
    assert settings["options"]["slippage_bps"] == 3.0 and settings["options"]["fees_bps"] == 1.0
    assert settings["costs"] == {"fees_bps": 1.0, "fee_per_share": 0.0, "slippage_bps": 3.0}
    assert settings["sizing"] == {"accounts": "per_symbol", "cash": 100_000.0, "size": 1.0,
                                  "shares": "fractional"}
    assert settings["data"]["timeframe"] == "1Day"
    assert settings["data"]["symbols"] == list(bars.symbols)


def test_rsi_reversion_backtest_mode_records_what_wb_backtest_gives(jupyter_env, workbench_home,
                                                                   tmp_path):
    import workbench as wb
    from tests.notebook_strategies import strategy_of

    record = _record("backtest", "backtest", "rsi_reversion")
    nb = _run("rsi_reversion.ipynb", tmp_path, jupyter_env, workbench_home, mode="backtest",
              run_dir=str(record.path), oversold=25.0)
    assert _has_plotly(_last_outputs(nb))
    settings = _settings(record)
    sl_stop = settings["options"]["sl_stop"]
    assert isinstance(sl_stop, float) and sl_stop > 0  # the notebook's ATR-sized stop
    strategy = strategy_of(STRATEGIES / "rsi_reversion.ipynb")
    bars = wb.data.load(None, timeframe="1Day")
    trading = bars.iloc(slice(60, None))
    assert pd.Timestamp(settings["data"]["start"]) == trading.index[0]
    direct = wb.backtest(strategy, trading, rsi_period=14, oversold=25.0, exit_level=55.0,
                         sl_stop=sl_stop, fees_bps=1.0, slippage_bps=2.0)
    _assert_same_stats(record, direct, tmp_path)
    assert _manifest(record)["status"] == "running"


# -- the other modes ----------------------------------------------------------------------


def test_paper_mode_runs_a_replayed_session_into_the_record(jupyter_env, workbench_home, store,
                                                          tmp_path):
    from workbench.journal.reader import replay

    _synth_minutes(store)
    record = _record("session", "paper", "sma_cross")
    _run("sma_cross.ipynb", tmp_path, jupyter_env, workbench_home, mode="paper",
         run_dir=str(record.path), timeframe="1Min", replay_date=REPLAY_DAY, fast=5, slow=20)
    manifest = _manifest(record)
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"  # the session's own
    assert manifest["extra"]["bars"] == 390
    assert (record.path / "broker.sqlite").exists()
    types = [e.type for e in replay(record.path).events]
    assert {"session_start", "bar", "signal", "fill"} <= set(types)
    assert types[-1] == "session_end" and manifest["extra"]["orders"] > 0
    settings = _settings(record)
    assert settings["sizing"]["accounts"] == "per_symbol"
    assert settings["costs"]["fees_bps"] == 1.0 and settings["costs"]["slippage_bps"] == 2.0
    assert settings["data"]["timeframe"] == "1Min" and len(settings["data"]["symbols"]) == 3
    assert settings["settings"]["replay_date"] == REPLAY_DAY
    assert settings["settings"]["speed"] == "max"


def test_paper_mode_places_rsi_reversions_atr_stop_at_the_broker(jupyter_env, workbench_home,
                                                                  store, tmp_path):
    """The notebook's ATR-sized ``sl_stop`` is no longer refused in mode paper: each filled
    entry gets a broker-side stop at the backtest's level (from the entry's fill price)."""
    from decimal import Decimal

    from workbench.brokers.sim import SimBroker
    from workbench.journal.reader import replay

    _synth_minutes(store)
    record = _record("session", "paper", "rsi_reversion")
    _run("rsi_reversion.ipynb", tmp_path, jupyter_env, workbench_home, mode="paper",
         run_dir=str(record.path), timeframe="1Min", replay_date=REPLAY_DAY)
    manifest = _manifest(record)
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"
    sl_stop = _settings(record)["options"]["sl_stop"]
    assert isinstance(sl_stop, float) and sl_stop > 0  # sized from the ATR in the notebook
    events = replay(record.path).events
    assert next(e for e in events if e.type == "session_start").payload["stops"] == {
        "sl_stop": sl_stop, "tp_stop": None}
    broker = SimBroker(record.path / "broker.sqlite")
    orders = {o.client_order_id: o for o in broker.orders()}
    fills = {f.client_order_id: f for f in broker.fills()}
    broker.close()
    stops = [o for cid, o in orders.items() if cid.endswith("-stops")]
    assert stops and all(o.order_type == "oco" and o.take_profit is None for o in stops)
    for stop in stops:  # its level: the entry's fill price x (1 - sl_stop), as the backtest
        entry = fills[stop.client_order_id.removesuffix("-stops") + "-entry"]
        assert stop.stop_loss == Decimal(repr(float(entry.price) * (1.0 - sl_stop)))
    assert any(cid.endswith("-stops") for cid in fills)  # and some stop filled


def test_sweep_mode_records_table_best_and_heatmap(jupyter_env, workbench_home, tmp_path):
    record = _record("sweep", "sweep", "sma_cross")
    nb = _run("sma_cross.ipynb", tmp_path, jupyter_env, workbench_home, mode="sweep",
              run_dir=str(record.path), grid={"fast": [5, 10, 15], "slow": [10, 20, 40]},
              constraint="fast < slow")
    assert _has_plotly(_last_outputs(nb))  # the heatmap
    names = {p.name for p in record.results_dir.iterdir()}
    assert names == {"settings.json", "table.parquet", "combos.parquet", "best.json",
                     "heatmap.html"}
    combos = pd.read_parquet(record.results_dir / "combos.parquet")
    assert len(combos) == 7  # 9 pairs, 7 with fast < slow
    best = json.loads((record.results_dir / "best.json").read_text())
    assert best["constraint"] == "fast < slow" and best["params"]["fast"] < best["params"]["slow"]
    assert _settings(record)["settings"]["grid"] == {"fast": [5, 10, 15], "slow": [10, 20, 40]}
    assert _manifest(record)["status"] == "running"


def test_walk_forward_mode_records_out_of_sample_stats(jupyter_env, workbench_home, tmp_path):
    record = _record("walk_forward", "walk_forward", "rsi_reversion")
    _run("rsi_reversion.ipynb", tmp_path, jupyter_env, workbench_home, mode="walk_forward",
         run_dir=str(record.path), grid={"oversold": [25.0, 30.0], "exit_level": [50.0, 60.0]},
         train=120, test=40)
    oos = json.loads((record.results_dir / "oos_stats.json").read_text())
    assert oos["folds"] == 3  # 240 trading bars: train 120, then 3 x 40
    assert isinstance(oos["sharpe"], float) and -1 <= oos["max_drawdown"] <= 0
    folds = pd.read_parquet(record.results_dir / "folds.parquet")
    assert len(folds) == 3 and set(folds["oversold"]) <= {25.0, 30.0}
    assert (record.results_dir / "oos_equity.parquet").exists()
    assert _settings(record)["settings"]["train"] == 120


def test_parity_mode_records_zero_mismatches(jupyter_env, workbench_home, tmp_path):
    record = _record("parity", "parity", "sma_cross")
    _run("sma_cross.ipynb", tmp_path, jupyter_env, workbench_home, mode="parity",
         run_dir=str(record.path), start="2025-06-02")
    report = json.loads((record.results_dir / "parity.json").read_text())
    assert report["mismatches"] == 0 and report["ok"] is True and report["compared"] > 0
    assert _settings(record)["data"]["start"].startswith("2025-06-02")


def test_live_mode_fails_the_run_with_one_line(jupyter_env, workbench_home, tmp_path):
    out = tmp_path / "live.ipynb"
    proc = _papermill("sma_cross.ipynb", out, jupyter_env, workbench_home, {"mode": "live"})
    assert proc.returncode != 0
    assert "ConfigError: mode 'live' is refused: live trading needs the Alpaca broker" in proc.stderr


def test_a_typo_in_the_grid_fails_the_run_naming_the_parameter(jupyter_env, workbench_home,
                                                               tmp_path):
    out = tmp_path / "typo.ipynb"
    record = _record("sweep", "sweep", "sma_cross")
    proc = _papermill("sma_cross.ipynb", out, jupyter_env, workbench_home,
                      {"mode": "sweep", "run_dir": str(record.path), "grid": {"fsat": [5, 10]}})
    assert proc.returncode != 0
    assert "unknown parameter 'fsat'" in proc.stderr and "did you mean fast?" in proc.stderr
    assert not record.results_dir.exists()  # refused before anything was written
