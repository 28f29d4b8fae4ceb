"""Run records under runs/<run_id>/: manifest, results, write-once, no secrets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench import paths
from workbench.clock import SimClock
from workbench.data.bars import Bars
from workbench.errors import ConfigError
from workbench.runs import (
    MANIFEST,
    RecordError,
    RunRecord,
    list_runs,
    load_manifest,
    new_run_id,
    parse_run_id,
)
from workbench.secrets import MASK

ROOT = Path(__file__).resolve().parent.parent
CANARY = "CanarySecret7f3a9d1c42"  # alphanumeric: survives name sanitizing
RANGE = {"symbols": ["AAPL", "MSFT"], "timeframe": "1Min",
         "start": "2026-01-02T14:30:00Z", "end": "2026-03-31T21:00:00Z"}


@pytest.fixture
def clock() -> SimClock:
    return SimClock("2026-11-21 05:12:00")


def make(clock, params=None, **kw) -> RunRecord:
    args = {"kind": "backtest", "strategy": "sma_cross", "mode": "backtest",
            "params": params or {"fast": 10, "slow": 30}, "data_range": RANGE, "clock": clock}
    args.update(kw)
    return RunRecord.create(**args)


def all_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_create_then_finish_round_trip(clock):
    rec = make(clock, params={"fast": np.int64(10), "slow": 30, "band": 0.5, "on": True,
                              "symbols": ["AAPL"], "nested": {"a": None}})
    assert rec.path == paths.runs_dir() / rec.run_id
    assert rec.results_dir == rec.path / "results"
    started = load_manifest(rec.run_id)
    assert started["status"] == "running"
    assert started["run_id"] == rec.run_id and started["kind"] == "backtest"
    assert started["mode"] == "backtest" and started["strategy"] == "sma_cross"
    assert started["params"] == {"fast": 10, "slow": 30, "band": 0.5, "on": True,
                                 "symbols": ["AAPL"], "nested": {"a": None}}
    assert started["started_at"] == "2026-11-21T05:12:00+00:00"
    assert started["ended_at"] is None and started["outcome"] is None
    assert started["data_range"] == {"symbols_count": 2, "symbols": ["AAPL", "MSFT"],
                                     "timeframe": "1Min", "first": "2026-01-02T14:30:00+00:00",
                                     "last": "2026-03-31T21:00:00+00:00"}
    packages = started["packages"]
    assert packages["numpy"] == np.__version__ and packages["pandas"] == pd.__version__
    assert packages["python"] and packages["workbench"]
    assert {"vectorbt", "duckdb", "talib", "alpaca-py", "papermill"} <= set(packages)

    clock.advance("90s")
    rec.finish("succeeded", extra={"trades": np.int64(12), "sharpe": float("nan")})
    done = load_manifest(rec.path)
    assert done["status"] == "finished" and done["outcome"] == "succeeded"
    assert done["ended_at"] == "2026-11-21T05:13:30+00:00"
    assert done["extra"] == {"trades": 12, "sharpe": None}
    assert done["started_at"] == started["started_at"] and done["params"] == started["params"]
    assert load_manifest(rec.path / MANIFEST) == done
    assert rec.closed and rec.manifest["outcome"] == "succeeded"


def test_results_are_written_once_and_atomically(clock):
    rec = make(clock)
    equity = pd.DataFrame({"equity": [100.0, 101.5]},
                          index=pd.date_range("2026-01-02", periods=2, tz="UTC"))
    path = rec.write_parquet("equity", equity)
    pd.testing.assert_frame_equal(pd.read_parquet(path), equity, check_freq=False)
    stats = rec.write_json("stats", {"sharpe": np.float64(1.2), "end": pd.Timestamp("2026-01-02"),
                                     "curve": np.arange(3), "bad": float("inf")})
    assert json.loads(stats.read_text()) == {"sharpe": 1.2, "end": "2026-01-02T00:00:00",
                                             "curve": [0, 1, 2], "bad": None}
    before = stats.read_bytes()
    with pytest.raises(RecordError, match="never rewritten"):
        rec.write_json("stats.json", {"sharpe": 9.9})
    with pytest.raises(RecordError):
        rec.write_parquet("equity", equity)
    assert stats.read_bytes() == before
    rec.finish()
    names = [p.name for p in all_files(rec.path)]
    assert sorted(names) == ["equity.parquet", "manifest.json", "stats.json"]
    assert not [n for n in names if n.startswith(".") or "tmp" in n]


def test_a_finished_record_is_closed(clock):
    rec = make(clock)
    rec.finish("failed", error="it broke")
    snapshot = {p: p.read_bytes() for p in all_files(rec.path)}
    with pytest.raises(RecordError, match="closed"):
        rec.write_json("late", {})
    with pytest.raises(RecordError, match="closed"):
        rec.write_parquet("late", pd.DataFrame({"a": [1]}))
    with pytest.raises(RecordError, match="closed"):
        rec.finish("succeeded")
    with pytest.raises(RecordError, match="ended"):
        RunRecord.open(rec.run_id, clock)
    assert {p: p.read_bytes() for p in all_files(rec.path)} == snapshot


def test_another_process_can_finish_a_running_record(clock):
    rec = make(clock)
    clock.advance("5min")
    other = RunRecord.open(rec.path, clock)
    other.finish("interrupted", error="kernel died")
    manifest = load_manifest(rec.run_id)
    assert manifest["outcome"] == "interrupted" and manifest["error"] == "kernel died"


def test_context_manager_records_the_outcome(clock):
    with make(clock) as rec:
        rec.write_json("stats", {"n": 1})
    assert load_manifest(rec.run_id)["outcome"] == "succeeded"
    with pytest.raises(ValueError), make(clock) as failed:
        raise ValueError("bad signal")
    manifest = load_manifest(failed.run_id)
    assert manifest["outcome"] == "failed" and manifest["error"] == "ValueError: bad signal"


def test_canary_secret_never_lands_in_the_record(clock, monkeypatch):
    monkeypatch.setenv("ALPACA_SECRET_KEY", CANARY)
    rec = make(clock, params={"note": f"copied {CANARY} by mistake", "list": [CANARY]},
               strategy=f"strat {CANARY}")
    rec.write_json("stats", {"msg": CANARY, CANARY: 1})
    trades = pd.DataFrame({"comment": [CANARY, "fine"], CANARY: [1, 2]},
                          index=pd.Index([CANARY, "x"]))
    trades["tag"] = pd.Categorical([CANARY, "a"])
    rec.write_parquet("trades", trades)
    rec.finish("failed", error=RuntimeError(f"auth failed with {CANARY}"),
               extra={"detail": CANARY})
    files = all_files(rec.path)
    assert len(files) == 3
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path
        assert CANARY not in path.name
    assert CANARY not in rec.path.name
    assert MASK in (rec.path / MANIFEST).read_text()
    trades = pd.read_parquet(rec.results_dir / "trades.parquet")
    assert trades["comment"].tolist() == [MASK, "fine"]


@pytest.mark.parametrize("params", [
    {"api_key": "x"}, {"ALPACA_SECRET_KEY": "x"}, {"token": 1}, {"db_password": "x"},
    {"nested": {"secret": "x"}}, {"legs": [{"apikey": "x"}]},
])
def test_parameters_named_like_secrets_are_refused(clock, params):
    with pytest.raises(ConfigError, match="secret"):
        make(clock, params=params)
    assert not paths.runs_dir().exists() or not any(paths.runs_dir().iterdir())


@pytest.mark.parametrize("params", [{"f": float("nan")}, {"obj": object()}, {1: 2}, [1, 2]])
def test_parameters_must_be_plain_json(clock, params):
    with pytest.raises(ConfigError):
        make(clock, params=params)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""])
def test_result_names_are_plain_file_names(clock, name):
    rec = make(clock)
    with pytest.raises(ConfigError):
        rec.write_json(name, {})


def test_run_ids_sort_by_time_and_are_unique(clock):
    ids = []
    for _ in range(1000):
        ids.append(new_run_id("backtest", "sma_cross", clock))
        clock.advance("1s")
    assert ids == sorted(ids) and len(set(ids)) == 1000
    frozen = [new_run_id("sweep", "sma_cross", clock) for _ in range(1000)]
    assert len(set(frozen)) == 1000
    for run_id in ids[:5] + frozen[:5]:
        assert re.fullmatch(r"[0-9A-Za-z_\-]+", run_id)
    parts = parse_run_id(ids[0])
    assert parts.started == pd.Timestamp("2026-11-21 05:12:00", tz="UTC")
    assert (parts.kind, parts.name) == ("backtest", "sma_cross")


def test_run_ids_are_filesystem_safe(clock):
    run_id = new_run_id("Walk-Forward", "../my strat/v2-β", clock)
    assert re.fullmatch(r"20261121T051200Z-walk_forward-my_strat_v2-[0-9a-f]+", run_id)
    assert parse_run_id(run_id).name == "my_strat_v2"
    with pytest.raises(ConfigError):
        new_run_id("", "x", clock)
    with pytest.raises(ConfigError):
        parse_run_id("not-a-run-id")


def test_created_runs_sort_like_their_start(clock):
    made = []
    for _ in range(5):
        made.append(make(clock).run_id)
        clock.advance("1h")
    assert list_runs()["run_id"].tolist() == made


def test_git_commit_is_recorded_inside_the_checkout(clock):
    rec = make(clock)
    manifest = load_manifest(rec.run_id)
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("git or the checkout is not available")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    if head.returncode != 0:
        pytest.skip(f"git cannot read the checkout: {head.stderr.strip()}")
    assert manifest["git_commit"] == head.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["git_commit"])
    assert isinstance(manifest["git_dirty"], bool)


def test_data_range_from_bars_and_long_symbol_lists(clock):
    index = pd.date_range("2026-01-02 14:30", periods=3, freq="1min", tz="UTC")
    bars = Bars.from_wide(pd.DataFrame(1.0, index=index, columns=["AAPL", "MSFT"]),
                          timeframe="1Min")
    data = load_manifest(make(clock, data_range=bars).run_id)["data_range"]
    assert data == {"symbols_count": 2, "symbols": ["AAPL", "MSFT"], "timeframe": "1Min",
                    "first": "2026-01-02T14:30:00+00:00", "last": "2026-01-02T14:32:00+00:00"}
    many = {"symbols": [f"S{i}" for i in range(30)], "timeframe": "1Day"}
    data = load_manifest(make(clock, data_range=many).run_id)["data_range"]
    assert data["symbols_count"] == 30 and data["symbols"] is None
    assert load_manifest(make(clock, data_range=None).run_id)["data_range"] is None
    with pytest.raises(ConfigError):
        make(clock, data_range=42)


def test_list_runs_reads_every_manifest_and_reports_bad_ones(clock):
    assert list_runs().empty
    ok = make(clock)
    ok.finish()
    clock.advance("1min")
    running = make(clock, strategy="other", kind="sweep")
    broken = paths.runs_dir() / "20260101T000000Z-backtest-broken-000000"
    broken.mkdir()
    (broken / MANIFEST).write_text("{not json")
    (paths.runs_dir() / "README.md").write_text("not a run")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        runs = list_runs()
    assert runs["run_id"].tolist() == [ok.run_id, running.run_id]
    assert runs["status"].tolist() == ["finished", "running"]
    assert runs["outcome"].tolist()[0] == "succeeded"
    assert runs["kind"].tolist() == ["backtest", "sweep"]
    assert str(runs["started_at"].dt.tz) == "UTC"
    assert runs.attrs["unreadable"][0][0] == str(broken)
    with pytest.raises(ConfigError, match="no run"):
        load_manifest("20260101T000000Z-backtest-missing-000000")
    with pytest.raises(RecordError):
        load_manifest(broken)


def test_explicit_root(tmp_path, clock):
    root = tmp_path / "elsewhere"
    rec = make(clock, root=root)
    assert rec.path.parent == root
    assert load_manifest(rec.run_id, root=root)["run_id"] == rec.run_id
    assert list_runs(root)["run_id"].tolist() == [rec.run_id]
    assert list_runs().empty
