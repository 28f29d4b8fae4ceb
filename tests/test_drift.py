"""Issue 14, point 2: drift that acts. A paper session on the simulated broker, replayed
through the backtest with the same settings: with the backtest's cost model the drift is 0
to the cent; with a harsher broker (more slippage than the model) every fill shows the
excess, the P&L difference is above the threshold and promotion to live is blocked."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import wb_inline
from tests.notebook_strategies import strategy_of
from workbench.clock import LiveClock
from workbench.config import GateSettings
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.deploy.gates import evaluate
from workbench.engine import load_sessions
from workbench.execution.hashing import notebook_hash
from workbench.journal.catalog import catalog
from workbench.journal.reader import replay
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.monitor.drift import read_drift
from workbench.monitor.drift_hook import after_session
from workbench.risk import RiskSettings
from workbench.runs.records import RunRecord
from workbench.session.runner import run_session

END = "2026-11-20"
FEES = {"fees_bps": 1.0, "fee_per_share": 0.0, "slippage_bps": 2.0}
HARSH = CostModel(fees_bps=1.0, fee_per_share=0.0, slippage_bps=12.0)  # 10 bps worse
CASH, SIZE = 50_000.0, 0.5
LIMITS = {"warn": 0.0001, "block": 0.0005, "halt": 0.05}
LOOSE = RiskSettings(
    daily_loss_reduce="0.98", daily_loss_halt="0.99", position_loss_exit="0.99",
    max_orders=1_000_000, latency_budget_ms=1e9, stale_bar_intervals=1e9,
    max_order_notional=10**12, max_symbol_exposure=10**12, max_total_exposure=10**12,
    max_gross_leverage=1000, price_band="0.99", max_exceptions=1000)
SMA = Path(__file__).resolve().parents[1] / "notebooks" / "strategies" / "sma_cross.ipynb"


@pytest.fixture
def home(workbench_home):
    Store(workbench_home / "data").write(synthesize(3, 2, "1Min", 11, END), "1Min",
                                         source="synth")
    return workbench_home


@pytest.fixture
def notebook(tmp_path) -> Path:
    path = tmp_path / "sma_cross.ipynb"
    shutil.copy(SMA, path)
    return path


def _session(notebook: Path, broker_costs: CostModel | None, broker_path=None,
             limits=LIMITS, risk=LOOSE, timeframe="1Min") -> Path:
    """A paper session of the notebook's code (its hash in the record, the settings wb.run
    records), on a simulated broker filling with ``broker_costs``, then its drift."""
    strategy = strategy_of("sma_cross")
    day = load_sessions(1, None, timeframe, end=END)
    symbols = list(day.symbols)
    record = RunRecord.create("session", "sma_cross", {"fast": 10, "slow": 30}, "paper", None,
                              LiveClock(), notebook={"path": str(notebook),
                                                     "hash": notebook_hash(notebook)})
    record.write_json("settings", {
        "mode": "paper", "params": {"fast": 10, "slow": 30},
        "options": {**FEES, "fill": "next_open", "shares": "fractional", "cash": CASH,
                    "size": SIZE, "direction": "long", "sl_stop": None, "tp_stop": None},
        "sizing": {"accounts": "per_symbol", "size": SIZE, "cash": CASH,
                   "shares": "fractional"},
        "data": {"timeframe": timeframe, "symbols": symbols,
                 "start": day.index[0].isoformat(), "end": day.index[-1].isoformat()},
        "settings": {"replay_date": END, "history_days": 1, "accounts": "per_symbol",
                     "broker_path": None if broker_path is None else str(broker_path)}})
    result = run_session(strategy, {"fast": 10, "slow": 30}, replay_date=END, symbols=symbols,
                         cash=CASH, size=SIZE, costs=CostModel(**FEES), risk=risk,
                         accounts="per_symbol", run_dir=record.path, broker_costs=broker_costs,
                         broker_path=broker_path, timeframe=timeframe)
    assert result.outcome == "succeeded", result.message
    assert after_session(record.path, strategy, limits=limits) is not None
    return record.path


def _gates(notebook: Path) -> dict:
    settings = GateSettings(min_paper_sessions=1, max_drift=LIMITS["block"])
    report = evaluate(notebook, "live", confirmed=True, settings=settings)
    return {r.gate: r for r in report.results}


def test_matching_models_drift_zero_to_the_cent(home, notebook):
    run = _session(notebook, None)
    doc = read_drift(run)
    assert doc["pnl_difference"] == "0.00" and doc["pnl_fraction"] == 0.0
    assert doc["session_pnl"] == doc["backtest_pnl"] != "0.00"  # it traded
    assert doc["missed"] == doc["extra"] == 0 and doc["level"] == "ok"
    assert doc["signals_differing"] == 0 and doc["signal_agreement"] == 1.0
    fills = doc["fills"]
    assert len(fills) >= 4 and all(f["status"] == "matched" for f in fills)
    assert all(f["excess_bps"] == pytest.approx(0, abs=1e-6) for f in fills)
    assert all(f["slippage_bps"] == pytest.approx(2.0, abs=1e-6) for f in fills)
    assert doc["excess_slippage_cost"] == "0.00"
    gate = _gates(notebook)["drift"]
    assert gate.passed and gate.value == 0.0
    alerts = [e for e in replay(run).events if e.type == ev.ALERT and
              e.payload.get("source") == "drift"]
    assert alerts == []


def test_a_harsher_broker_drifts_per_fill_and_blocks_live(home, notebook):
    run = _session(notebook, HARSH)
    doc = read_drift(run)
    fills = doc["fills"]
    assert len(fills) >= 4 and all(f["status"] == "matched" for f in fills)
    for f in fills:  # each fill: 12 bps paid against the model's 2, priced in dollars
        assert f["slippage_bps"] == pytest.approx(12.0, abs=1e-6), f
        assert f["excess_bps"] == pytest.approx(10.0, abs=1e-6), f
        assert f["cost"] > 0
        sign = 1 if f["side"] == "buy" else -1
        assert sign * (f["price"] - f["backtest_price"]) * f["quantity"] == pytest.approx(
            f["quantity"] * f["reference"] * 10e-4, rel=1e-9)
    assert doc["missed"] == doc["extra"] == 0 and doc["signals_differing"] == 0
    difference = float(doc["pnl_difference"])
    assert difference < 0 and abs(doc["pnl_fraction"]) > LIMITS["block"]
    assert doc["level"] == "block"
    assert abs(float(doc["excess_slippage_cost"]) + difference) < 0.05 * abs(difference)
    # the drift alert is journaled (and delivered by the monitor when channels are set)
    [alert] = [e.payload for e in replay(run).events if e.type == ev.ALERT
               and e.payload.get("source") == "drift"]
    assert alert["level"] == "error" and "promotion to live blocked" in alert["message"]
    # the gate and the command refuse live
    gate = _gates(notebook)["drift"]
    assert not gate.passed and gate.value == pytest.approx(abs(doc["pnl_fraction"]))
    assert f"worst {Path(run).name}: P&L {doc['pnl_difference']} vs the replayed" in gate.detail
    env = {"WORKBENCH__GATES__MIN_PAPER_SESSIONS": "1",
           "WORKBENCH__GATES__MAX_DRIFT": str(LIMITS["block"])}
    out = wb_inline("promote", str(notebook), "--to", "live", "--yes", env=env)
    assert out.returncode == 1
    assert any(line.strip().startswith("FAIL  drift") for line in out.stdout.splitlines()), \
        out.stdout
    assert "drift" in out.stderr and "nothing registered" in out.stderr
    # on demand, the same figures; and the catalog's drift view
    again = wb_inline("drift", str(run), "--json", env={
        "WORKBENCH__GATES__WARN_DRIFT": str(LIMITS["warn"]), **env})
    assert again.returncode == 1, again.stderr  # above the block threshold: non-zero
    assert json.loads(again.stdout)["pnl_difference"] == doc["pnl_difference"]
    con = catalog()
    rows = con.execute("SELECT run_id, level, pnl_difference, fills FROM drift").fetchall()
    con.close()
    assert [(r[0], r[1], float(r[2]), r[3]) for r in rows] == [
        (Path(run).name, "block", difference, len(fills))]


def test_trades_the_risk_gateway_refused_are_missed_with_its_reason(home, notebook):
    run = _session(notebook, None, risk=LOOSE.model_copy(update={"max_order_notional": Decimal(20_000)}))
    doc = read_drift(run)
    assert doc["extra"] == 0 and doc["missed"] == len(doc["fills"]) >= 4
    assert doc["signals_differing"] == 0  # the strategy said the same: the gateway refused
    buys = [f for f in doc["fills"] if f["side"] == "buy"]
    assert buys and all(f["why"].startswith("refused by risk (notional_cap): order notional")
                        for f in buys)
    assert doc["session_pnl"] == "0.00" and doc["pnl_difference"] == str(
        -Decimal(doc["backtest_pnl"]) + 0)
    assert doc["level"] in ("warn", "block", "halt")  # a missed trade is at least a warning


def test_a_deployment_drifting_past_its_halt_limit_is_retired(home, notebook):
    """The thresholds are the deployment's (set from [gates] when promoted); at "halt" the
    supervisor's last step retires it, said in a critical alert."""
    from tests.gate_reports import passed_report
    from workbench.deploy.drift_halt import halt_on_drift
    from workbench.deploy.launcher import broker_path
    from workbench.deploy.registry import Registry

    registry = Registry()
    dep = registry.register(notebook, mode="paper", capital={"cash": 150_000},
                            gates=passed_report(notebook),
                            drift_limits={"warn": 0.0001, "block": 0.0005, "halt": 0.002})
    run = _session(notebook, HARSH, broker_path=broker_path(registry, dep), limits=None)
    doc = read_drift(run)
    assert doc["limits"] == dep.drift_limits and doc["level"] == "halt"
    reason = halt_on_drift(registry, dep.id, run)
    assert reason is not None and reason.startswith(f"halted by drift: session {Path(run).name}")
    done = registry.get(dep.id)
    assert done.status == "retired" and done.retired_reason == reason
    alerts = [e.payload for e in replay(run).events if e.type == ev.ALERT
              and e.payload.get("source") == "drift"]
    assert [a["level"] for a in alerts] == ["critical", "critical"]
    assert "the deployment halts" in alerts[0]["message"] and dep.id in alerts[1]["message"]
    assert halt_on_drift(registry, dep.id, run) is None  # once


def test_bad_drift_limits_are_refused(home, notebook):
    from workbench.errors import ConfigError
    from workbench.monitor.drift import checked_limits

    with pytest.raises(ConfigError, match="0 < warn <= block <= halt"):
        checked_limits({"warn": 0.01, "block": 0.005, "halt": 0.03}, "[gates]")
    with pytest.raises(ConfigError, match="need warn, block and halt"):
        checked_limits({"warn": 0.01}, "deployment x")


def test_drift_of_a_run_that_is_no_session_is_one_line(home):
    record = RunRecord.create("backtest", "sma_cross", {}, "backtest", None, LiveClock())
    record.finish("succeeded")
    out = wb_inline("drift", str(record.path))
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        f"error: drift: {record.run_id} is a backtest run, not a session"]
    missing = wb_inline("drift", "no-such-run")
    assert missing.returncode != 0 and "no run record at" in missing.stderr


def test_target_weights_drift_zero_to_the_cent(home):
    """Weights are compared as weights; rebalances, shorts and reversals fill by fill."""
    from tests.test_session_weights import rsi_weights

    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)[:2]
    result = run_session(rsi_weights, {}, replay_date=END, symbols=symbols, cash=CASH,
                         size=SIZE, costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol",
                         direction="longshort")
    report = after_session(result.path, rsi_weights, limits=LIMITS)
    assert report.signals_differing == 0 and report.signals_compared > 0
    assert report.pnl_difference == "0.00" and report.level == "ok", report.lines()
    assert len(report.fills) >= 10 and {f.side for f in report.fills} == {"buy", "sell"}
    assert all(f.status == "matched" and abs(f.excess_bps) < 1e-6 for f in report.fills)


def test_a_carried_account_is_said_and_never_halts(home, notebook, tmp_path):
    """A deployment's later session starts from the account its earlier ones left; the
    flat replay cannot hold it: said, and the level stops at block."""
    from workbench.brokers.sim import SimBroker

    account = tmp_path / "carried.sqlite"
    SimBroker(account, costs=CostModel(**FEES), cash=200_000).close()  # not the 3 x 50,000
    run = _session(notebook, HARSH, broker_path=account,
                   limits={"warn": 0.0001, "block": 0.0002, "halt": 0.0003})
    doc = read_drift(run)
    assert doc["carried"] is True and doc["level"] == "block"
    assert any("carried account (equity 200000" in n for n in doc["notes"]), doc["notes"]
    # the drift page shows the recorded figures (what the gate acted on) beside its own
    from workbench.dashboards.drift_page import DriftPage

    page = DriftPage(Path(run).parent)
    shown = page.summary.value
    assert "level <b>block</b>" in shown and doc["pnl_difference"] in shown, page.status.value
    assert doc["excess_slippage_cost"] in shown
    (Path(run) / "results" / "drift.json").unlink()
    page.show(Path(run).name)
    assert "none recorded yet" in page.summary.value
    page.runs.close()


def test_an_aggregated_session_is_replayed_on_the_bars_it_traded(home, notebook):
    """A 5Min session replays the stored minutes aggregated (its ``bars_from``), never the
    store's own 5Min bars (here another source's, other prices): the report and the drift
    page, one computation, find the same figures, zero drift to the cent."""
    from workbench.dashboards.drift_page import DriftPage

    Store(home / "data").write(synthesize(3, 2, "5Min", 97, END), "5Min", source="other")
    run = _session(notebook, None, timeframe="5Min")
    [start] = [e.payload for e in replay(run).events if e.type == ev.SESSION_START]
    assert start["bars_from"] == "stored 1Min aggregated to 5Min"
    doc = read_drift(run)
    assert doc["pnl_difference"] == "0.00" and doc["session_pnl"] != "0.00", doc
    assert doc["missed"] == doc["extra"] == 0 and doc["signals_differing"] == 0
    assert doc["level"] == "ok" and len(doc["fills"]) >= 2
    assert doc["signals_compared"] == 78 * 3 * 2  # the day's 5Min bars, 3 symbols, 2 fields
    page = DriftPage(Path(run).parent)
    assert page.drift is not None, page.status.value
    s = page.drift.summary
    assert s["signals_compared"] == doc["signals_compared"] and s["signals_differing"] == 0
    assert s["matched"] == len(doc["fills"]) and s["missed"] == s["extra"] == 0
    assert f"{s['session_pnl']:.2f}" == doc["session_pnl"]
    assert f"{s['backtest_pnl']:.2f}" == doc["backtest_pnl"]
    assert "stored 1Min aggregated to 5Min" in page.summary.value
    assert "level <b>ok</b>" in page.summary.value
    page.runs.close()


def test_a_shared_account_session_is_compared_with_the_backtests_own_pnl(home):
    """The replay gives each symbol its own account of the session's cash (the backtest's
    rule) whatever the session's accounts: its P&L is the book less that start, so a
    shared-account session's replay has the per-symbol session's P&L, not the book less
    one account's cash (which read as a drift of twice the cash: a halt)."""
    strategy = strategy_of("sma_cross")
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    reports = {}
    for accounts in ("per_symbol", "shared"):
        result = run_session(strategy, {"fast": 10, "slow": 30}, replay_date=END,
                             symbols=symbols, cash=CASH, size=SIZE, costs=CostModel(**FEES),
                             risk=LOOSE, accounts=accounts)
        reports[accounts] = after_session(result.path, strategy, limits=LIMITS)
    own, shared = reports["per_symbol"], reports["shared"]
    assert own.pnl_difference == "0.00" and own.backtest_pnl != "0.00"
    assert shared.backtest_pnl == own.backtest_pnl
    assert abs(Decimal(shared.pnl_difference)) < Decimal(CASH) / 10, shared.lines()
    assert any("accounts='shared'" in n for n in shared.notes)
