"""The strategy notebooks run in every mode: papermill and the real `workbench` kernel execute
the notebook with `mode` and `run_dir` injected, and its last call, `wb.run`, does the mode's
work into the open run record (which it never finishes, except a paper session its own).

The runs are independent (each in a home of its own, with its own record and data), so
``runs`` sets each up and starts it ahead of its test, a few at a time, in the tests' order:
their kernels overlap. Each test waits for its own run and judges it as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tests.conftest import ROOT

STRATEGIES = ROOT / "notebooks" / "strategies"
PLOTLY = "application/vnd.plotly.v1+json"
REPLAY_DAY = "2025-12-31"



def _record(kind: str, mode: str, strategy: str, root: Path):
    from workbench.clock import LiveClock
    from workbench.runs.records import RunRecord

    return RunRecord.create(kind, strategy, {}, mode, None, LiveClock(), root=root)


def _papermill(notebook: str, out: Path, env: dict, home: Path, params: dict):
    """papermill with the workbench kernel, started; ``params`` go in as YAML (JSON is YAML)."""
    cmd = [str(Path(sys.executable).parent / "papermill"), str(STRATEGIES / notebook), str(out),
           "-k", "workbench", "--cwd", str(STRATEGIES), "--log-level", "ERROR",
           "-y", json.dumps(params)]
    env = {k: v for k, v in env.items() if not k.startswith("WORKBENCH__")}
    return subprocess.Popen(cmd, env={**env, "WORKBENCH_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# name -> (notebook, its record (kind, mode, strategy) or None, minute bars to store first,
# the parameters papermill injects besides run_dir), in the order of the tests below
RUNS = {
    "sma_backtest": ("sma_cross.ipynb", ("backtest", "backtest", "sma_cross"), False,
                     {"mode": "backtest", "fast": 5, "slippage_bps": 3.0}),
    "rsi_backtest": ("rsi_reversion.ipynb", ("backtest", "backtest", "rsi_reversion"), False,
                     {"mode": "backtest", "oversold": 25.0}),
    "sma_paper": ("sma_cross.ipynb", ("session", "paper", "sma_cross"), True,
                  {"mode": "paper", "timeframe": "1Min", "replay_date": REPLAY_DAY, "fast": 5,
                   "slow": 20}),
    "rsi_paper": ("rsi_reversion.ipynb", ("session", "paper", "rsi_reversion"), True,
                  {"mode": "paper", "timeframe": "1Min", "replay_date": REPLAY_DAY}),
    "sma_sweep": ("sma_cross.ipynb", ("sweep", "sweep", "sma_cross"), False,
                  {"mode": "sweep", "grid": {"fast": [5, 10, 15], "slow": [10, 20, 40]},
                   "constraint": "fast < slow"}),
    "rsi_walk_forward": ("rsi_reversion.ipynb", ("walk_forward", "walk_forward",
                                                 "rsi_reversion"), False,
                         {"mode": "walk_forward",
                          "grid": {"oversold": [25.0, 30.0], "exit_level": [50.0, 60.0]},
                          "train": 120, "test": 40}),
    "sma_parity": ("sma_cross.ipynb", ("parity", "parity", "sma_cross"), False,
                   {"mode": "parity", "start": "2025-06-02"}),
    "live": ("sma_cross.ipynb", None, False, {"mode": "live"}),
    "grid_typo": ("sma_cross.ipynb", ("sweep", "sweep", "sma_cross"), False,
                  {"mode": "sweep", "grid": {"fsat": [5, 10]}}),
}
AHEAD = 3  # runs in flight at most


class Started:
    """One run of ``RUNS``: its home, record, executed notebook's path and process."""

    def __init__(self, name: str, env: dict, where: Path) -> None:
        from workbench.data.store import Store

        notebook, record, minutes, params = RUNS[name]
        self.home, self.out = where / "home", where / f"executed-{name}.ipynb"
        self.home.mkdir()
        if minutes:
            _synth_minutes(Store(self.home / "data"))
        self.record = _record(*record, root=self.home / "runs") if record else None
        if self.record is not None:
            params = {**params, "run_dir": str(self.record.path)}
        self.proc = _papermill(notebook, self.out, env, self.home, params)

    def wait(self, monkeypatch) -> subprocess.CompletedProcess:
        """The finished process; this test's WORKBENCH_HOME becomes the run's home."""
        out, err = self.proc.communicate(timeout=600)
        monkeypatch.setenv("WORKBENCH_HOME", str(self.home))
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)


@pytest.fixture(scope="module")
def runs(jupyter_env, tmp_path_factory):
    """``runs(name)``: that run, started (with the next ones, up to ``AHEAD`` in flight)."""
    started: dict[str, Started] = {}
    order = list(RUNS)

    def get(name: str) -> Started:
        for later in order[order.index(name):]:
            if later not in started:
                if sum(r.proc.poll() is None for r in started.values()) >= AHEAD \
                        and later != name:
                    break
                started[later] = Started(later, jupyter_env, tmp_path_factory.mktemp(later))
        return started[name]

    yield get
    for run in started.values():
        if run.proc.poll() is None:  # its test did not wait for it: it and its kernel go
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.communicate()


def _run(runs, name: str, monkeypatch):
    """The executed notebook of a run that must succeed, and its record."""
    run = runs(name)
    proc = run.wait(monkeypatch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return nbformat.read(run.out, as_version=4), run.record


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


def test_sma_cross_backtest_mode_records_what_wb_backtest_gives(runs, monkeypatch, tmp_path):
    import workbench as wb
    from tests.notebook_strategies import strategy_of

    nb, record = _run(runs, "sma_backtest", monkeypatch)
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


def test_rsi_reversion_backtest_mode_records_what_wb_backtest_gives(runs, monkeypatch,
                                                                   tmp_path):
    import workbench as wb
    from tests.notebook_strategies import strategy_of

    nb, record = _run(runs, "rsi_backtest", monkeypatch)
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


def test_paper_mode_runs_a_replayed_session_into_the_record(runs, monkeypatch):
    from workbench.journal.reader import replay

    _, record = _run(runs, "sma_paper", monkeypatch)  # on 3 x 3 stored minute days
    manifest = _manifest(record)
    assert manifest["status"] == "finished" and manifest["outcome"] == "succeeded"  # the session's own
    assert manifest["extra"]["bars"] == 390
    assert (record.path / "broker.sqlite").exists()
    events = replay(record.path).events
    types = [e.type for e in events]
    assert {"session_start", "bar", "signal", "fill"} <= set(types)
    end = types.index("session_end")  # then only its drift's alerts (workbench.monitor.drift)
    assert all(e.type == "alert" and e.payload["source"] == "drift" for e in events[end + 1:])
    assert manifest["extra"]["orders"] > 0 and (record.path / "results" / "drift.json").exists()
    settings = _settings(record)
    assert settings["sizing"]["accounts"] == "per_symbol"
    assert settings["costs"]["fees_bps"] == 1.0 and settings["costs"]["slippage_bps"] == 2.0
    assert settings["data"]["timeframe"] == "1Min" and len(settings["data"]["symbols"]) == 3
    assert settings["settings"]["replay_date"] == REPLAY_DAY
    assert settings["settings"]["speed"] == "max"


def test_paper_mode_places_rsi_reversions_atr_stop_at_the_broker(runs, monkeypatch):
    """The notebook's ATR-sized ``sl_stop`` is no longer refused in mode paper: each filled
    entry gets a broker-side stop at the backtest's level (from the entry's fill price)."""
    from decimal import Decimal

    from workbench.brokers.sim import SimBroker
    from workbench.journal.reader import replay

    _, record = _run(runs, "rsi_paper", monkeypatch)  # on 3 x 3 stored minute days
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


def test_sweep_mode_records_table_best_and_heatmap(runs, monkeypatch):
    nb, record = _run(runs, "sma_sweep", monkeypatch)  # fast 5,10,15 x slow 10,20,40
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


def test_walk_forward_mode_records_out_of_sample_stats(runs, monkeypatch):
    _, record = _run(runs, "rsi_walk_forward", monkeypatch)  # train 120, test 40
    oos = json.loads((record.results_dir / "oos_stats.json").read_text())
    assert oos["folds"] == 3  # 240 trading bars: train 120, then 3 x 40
    assert isinstance(oos["sharpe"], float) and -1 <= oos["max_drawdown"] <= 0
    folds = pd.read_parquet(record.results_dir / "folds.parquet")
    assert len(folds) == 3 and set(folds["oversold"]) <= {25.0, 30.0}
    assert (record.results_dir / "oos_equity.parquet").exists()
    assert _settings(record)["settings"]["train"] == 120


def test_parity_mode_records_zero_mismatches(runs, monkeypatch):
    _, record = _run(runs, "sma_parity", monkeypatch)  # from 2025-06-02
    report = json.loads((record.results_dir / "parity.json").read_text())
    assert report["mismatches"] == 0 and report["ok"] is True and report["compared"] > 0
    assert _settings(record)["data"]["start"].startswith("2025-06-02")


def test_live_mode_fails_the_run_with_one_line(runs, monkeypatch):
    proc = runs("live").wait(monkeypatch)
    assert proc.returncode != 0
    assert "ConfigError: mode 'live' is refused: live trading needs the Alpaca broker" in proc.stderr


def test_a_typo_in_the_grid_fails_the_run_naming_the_parameter(runs, monkeypatch):
    run = runs("grid_typo")
    proc, record = run.wait(monkeypatch), run.record
    assert proc.returncode != 0
    assert "unknown parameter 'fsat'" in proc.stderr and "did you mean fast?" in proc.stderr
    assert not record.results_dir.exists()  # refused before anything was written
