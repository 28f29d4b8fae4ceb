"""``wb.run`` called in this process: the values it accepts, what it refuses and records.
(Every mode also runs through papermill and the real kernel: tests/test_notebook_modes.py.)"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import workbench as wb
from tests.conftest import ROOT
from workbench.clock import LiveClock
from workbench.errors import ConfigError, StrategyError
from workbench.runs.records import RecordError, RunRecord, load_manifest

DAY = "2025-12-31"


@wb.strategy(warmup=lambda p: p["slow"])
def sma_cross(bars, fast: int = 10, slow: int = 30):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


@wb.strategy(warmup=2)
def peeks(bars, lag: int = 1):
    """Enters the bar before a rise: looks ahead, so the engine cannot agree."""
    up = bars.close.shift(-lag) > bars.close
    return wb.Signals(entries=up.fillna(False), exits=(~up).fillna(False))


@pytest.fixture
def minutes(store):
    from workbench.data.sources import synth_into_store

    synth_into_store(store, 3, 3, "1Min", 5, DAY)
    return store.load(None, "1Min")


def _record(mode: str, kind: str | None = None) -> RunRecord:
    return RunRecord.create(kind or mode, "sma_cross", {}, mode, None, LiveClock())


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_wb_run_is_the_notebook_api():
    from workbench.execution.modes import run

    assert wb.run is run and "run" in dir(wb)


def test_research_mode_does_nothing_but_still_catches_a_typo(minutes, workbench_home):
    assert wb.run(sma_cross, mode="research", bars=minutes, fast=5, grid={"fast": [1]},
                  replay_date=DAY) is None
    assert not (workbench_home / "runs").exists()
    with pytest.raises(StrategyError) as e:
        wb.run(sma_cross, mode="research", bars=minutes, fsat=5)
    assert "did you mean fast?" in _one_line(e)
    with pytest.raises(ConfigError, match="records nothing"):
        wb.run(sma_cross, mode="research", run_dir="runs/x", bars=minutes)


@pytest.mark.parametrize("mode", ["bakctest", "", None, "paper-live"])
def test_an_unknown_mode_is_one_line_listing_the_modes(mode, minutes):
    with pytest.raises(ConfigError) as e:
        wb.run(sma_cross, mode=mode, bars=minutes)
    assert "one of research, backtest, sweep, walk_forward, parity, paper, live" in _one_line(e)


def test_live_is_refused_never_a_paper_fallback(minutes):
    record = _record("live")
    with pytest.raises(ConfigError) as e:
        wb.run(sma_cross, mode="live", run_dir=str(record.path), bars=minutes,
               replay_date=DAY)
    assert "live trading needs the Alpaca broker" in _one_line(e)
    assert not record.results_dir.exists() and not (record.path / "events").exists()
    assert load_manifest(record.path)["status"] == "running"


def test_a_value_of_no_use_to_the_mode_is_refused_by_name(minutes):
    with pytest.raises(StrategyError) as e:
        wb.run(sma_cross, mode="backtest", bars=minutes, fees_bsp=1.0)
    assert "unknown value 'fees_bsp'" in _one_line(e) and "did you mean fees_bps?" in str(e.value)
    with pytest.raises(StrategyError) as e:
        wb.run(sma_cross, mode="backtest", bars=minutes, replay_date=DAY)
    assert "'replay_date' is a setting of mode paper, not of mode 'backtest'" in _one_line(e)
    with pytest.raises(StrategyError, match="setting of mode sweep and walk_forward"):
        wb.run(sma_cross, mode="parity", bars=minutes, grid={"fast": [5]})


def test_a_strategy_parameter_named_like_a_setting_is_refused(minutes):
    @wb.strategy(warmup=1)
    def fast_test(bars, test: int = 3):
        return wb.Signals(entries=bars.close > 0, exits=bars.close < 0)

    with pytest.raises(StrategyError) as e:
        wb.run(fast_test, mode="backtest", bars=minutes, test=4)
    assert "parameter(s) test have the name of a wb.run setting" in _one_line(e)


def test_a_required_setting_must_be_given(minutes):
    with pytest.raises(ConfigError) as e:
        wb.run(sma_cross, mode="paper", bars=minutes, replay_date=None)
    assert "mode 'paper' needs replay_date=" in _one_line(e)
    with pytest.raises(ConfigError, match="needs train=, test="):
        wb.run(sma_cross, mode="walk_forward", bars=minutes, grid={"fast": [5, 10]})
    with pytest.raises(Exception, match="needs bars=wb.Bars"):
        wb.run(sma_cross, mode="backtest", bars=None)


def test_backtest_without_a_record_is_wb_backtest(minutes, workbench_home):
    result = wb.run(sma_cross, mode="backtest", bars=minutes, fast=5, slow=20, fees_bps=2.0)
    direct = wb.backtest(sma_cross, minutes, fast=5, slow=20, fees_bps=2.0)
    pd.testing.assert_frame_equal(result.stats_table(), direct.stats_table())
    assert not (workbench_home / "runs").exists()


def test_a_closed_record_or_one_for_another_mode_is_refused(minutes):
    done = _record("backtest")
    done.finish("succeeded")
    with pytest.raises(RecordError, match="has ended"):
        wb.run(sma_cross, mode="backtest", run_dir=str(done.path), bars=minutes)
    other = _record("sweep")
    with pytest.raises(ConfigError) as e:
        wb.run(sma_cross, mode="backtest", run_dir=str(other.path), bars=minutes)
    assert "prepared for mode 'sweep'" in _one_line(e)
    assert not other.results_dir.exists()


def test_parity_records_the_mismatches_then_fails_the_run(minutes):
    from workbench.engine.parity import ParityError

    record = _record("parity")
    with pytest.raises(ParityError):
        wb.run(peeks, mode="parity", run_dir=str(record.path), bars=minutes)
    report = json.loads((record.results_dir / "parity.json").read_text())
    assert report["mismatches"] > 0 and report["ok"] is False and report["first"]
    assert load_manifest(record.path)["status"] == "running"  # the runner records the failure


@pytest.mark.parametrize("option", [{"fill": "close"}])
def test_paper_refuses_what_a_session_cannot_do_as_the_backtest(option, minutes):
    record = _record("paper", "session")
    with pytest.raises(ConfigError) as e:
        wb.run(sma_cross, mode="paper", run_dir=str(record.path), bars=minutes,
               replay_date=DAY, **option)
    assert f"{next(iter(option))}=" in _one_line(e)
    assert not record.results_dir.exists() and not (record.path / "events").exists()


def test_paper_places_the_backtests_stops_as_broker_orders(minutes):
    """sl_stop/tp_stop are no longer refused: recorded, journaled at the start, placed as
    one oco protection per filled entry (stop loss with a take-profit leg)."""
    from workbench.journal.reader import replay

    record = _record("paper", "session")
    result = wb.run(sma_cross, mode="paper", run_dir=str(record.path), bars=minutes,
                    fast=5, slow=20, sl_stop=0.003, tp_stop=0.004, replay_date=DAY)
    assert result.outcome == "succeeded"
    settings = json.loads((record.results_dir / "settings.json").read_text())
    assert (settings["options"]["sl_stop"], settings["options"]["tp_stop"]) == (0.003, 0.004)
    events = replay(record.path).events
    start = next(e for e in events if e.type == "session_start")
    assert start.payload["stops"] == {"sl_stop": 0.003, "tp_stop": 0.004}
    oco = [e.payload for e in events if e.type == "intent" and e.payload["order_type"] == "oco"]
    assert oco and all(p["client_order_id"].endswith("-stops") and p["side"] == "sell"
                       and p["time_in_force"] == "gtc" for p in oco)
    legs = [e.payload["client_order_id"] for e in events if e.type == "order_leg"]
    assert sorted(legs) == sorted(p["client_order_id"] + ".tp" for p in oco)


def test_paper_takes_costs_and_sizing_from_the_backtest_values(minutes, capsys):
    record = _record("paper", "session")
    result = wb.run(sma_cross, mode="paper", run_dir=str(record.path), bars=minutes,
                    fast=5, slow=20, fees_bps=3.0, slippage_bps=1.0, cash=50_000, size=0.5,
                    replay_date=DAY, accounts="shared")
    assert "NOTE: accounts='shared'" in capsys.readouterr().out
    assert result.outcome == "succeeded" and result.path == str(record.path)
    settings = json.loads((record.results_dir / "settings.json").read_text())
    assert settings["sizing"] == {"accounts": "shared", "cash": 50_000, "size": 0.5,
                                  "shares": "fractional"}
    assert settings["costs"] == {"fees_bps": 3.0, "fee_per_share": 0.0, "slippage_bps": 1.0}
    assert settings["settings"]["history_days"] == 1  # 21 warmup minutes: the day before
    assert load_manifest(record.path)["outcome"] == "succeeded"
    from workbench.journal.reader import replay

    start = next(e for e in replay(record.path).events if e.type == "session_start")
    assert float(start.payload["start_equity"]) == 50_000  # one shared account of `cash`


def test_sweep_refuses_a_bad_grid_or_constraint(minutes):
    with pytest.raises(ConfigError, match="give parameter -> values"):
        wb.run(sma_cross, mode="sweep", bars=minutes, grid=[5, 10])
    with pytest.raises(ConfigError, match="text rule"):
        wb.run(sma_cross, mode="sweep", bars=minutes, grid={"fast": [5, 10]},
               constraint=lambda p: True)
    with pytest.raises(ConfigError, match="not allowed"):
        wb.run(sma_cross, mode="sweep", bars=minutes, grid={"fast": [5, 10]},
               constraint="__import__('os')")


def test_foreign_settings_names_what_another_mode_would_use():
    from workbench.execution.modes import foreign_settings

    assert foreign_settings("backtest", ["fast", "replay_date", "grid", "fees_bps"]) == [
        "replay_date", "grid"]
    assert foreign_settings("sweep", ["grid", "constraint", "train"]) == ["train"]
    assert foreign_settings("paper", ["replay_date", "speed"]) == []


def test_the_runner_refuses_another_modes_setting_or_an_unknown_mode_before_any_kernel(
        workbench_home):
    from workbench.execution.run import prepare_run

    notebook = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
    with pytest.raises(ConfigError, match="-p replay_date: a setting of mode paper, not of "
                                          "mode 'backtest'; it would go unused"):
        prepare_run(notebook, kind="backtest", mode="backtest",
                    params={"replay_date": "2025-12-31"})
    with pytest.raises(ConfigError, match="unknown mode 'bactest'"):
        prepare_run(notebook, kind="backtest", mode="bactest", params={})
    assert not (workbench_home / "runs").exists() or not any((workbench_home / "runs").iterdir())
    record = prepare_run(notebook, kind="session", mode="paper",
                         params={"replay_date": "2025-12-31", "speed": "max"})
    assert record.manifest["mode"] == "paper"


def test_paper_trades_the_backtests_direction_and_records_its_settings(minutes):
    """direction="longshort" is no longer refused: the session trades it, and the manifest
    records every trading setting the session used (the backtest's)."""
    from workbench.journal.reader import replay

    record = _record("paper", "session")
    result = wb.run(sma_cross, mode="paper", run_dir=str(record.path), bars=minutes,
                    fast=5, slow=20, direction="longshort", size=0.5, shares="whole",
                    replay_date=DAY)
    assert result.outcome == "succeeded"
    start = next(e for e in replay(record.path).events if e.type == "session_start")
    assert start.payload["direction"] == "longshort"
    trading = load_manifest(record.path)["extra"]["trading"]
    settings = json.loads((record.results_dir / "settings.json").read_text())
    assert trading["direction"] == settings["options"]["direction"] == "longshort"
    assert (trading["size"], trading["shares"]) == (0.5, "whole")
    assert trading["timeframe"] == settings["data"]["timeframe"]
    assert trading["costs"] == settings["costs"] and trading["accounts"] == "per_symbol"
