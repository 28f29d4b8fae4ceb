"""The research explorer and the drift page (issue 13): their data against the demo's real
records (a backtest, a sweep, a walk-forward and a supervised replayed paper session, made by
`workbench demo`), then both pages served by `workbench dashboard` in Debian's Chromium: no
console or widget error, screenshots kept, and a click on a heatmap cell draws that
combination's equity, backtested again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.dashboard_pages import Dashboard, DashboardPage, artifacts_dir, chromium

pytestmark = pytest.mark.slow  # the demo's records, kernels and a browser

LOAD_MS = 300_000


@pytest.fixture(scope="module")
def demo_home(jupyter_env, tmp_path_factory) -> Path:
    """A copy of the demo's home (its store and records), so that the dashboard's own files
    never land in the home other tests read."""
    from tests.demo_run import demo_run

    run = demo_run(jupyter_env, tmp_path_factory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    home = tmp_path_factory.mktemp("research-home") / "home"
    shutil.copytree(run.home / "runs", home / "runs")
    shutil.copytree(run.home / "data", home / "data")
    return home


def _record(home: Path, kind: str) -> Path:
    found = [p for p in sorted((home / "runs").iterdir())
             if json.loads((p / "manifest.json").read_text())["kind"] == kind]
    assert found, f"the demo left no {kind} record"
    return found[0]


@pytest.fixture
def at_demo(demo_home, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(demo_home))
    return demo_home


def test_the_run_list_reads_the_manifests_newest_first(at_demo):
    from workbench.dashboards.queries import RunList

    runs = RunList()
    table = runs.table()
    assert set(table["kind"]) == {"backtest", "sweep", "walk_forward", "session"}
    assert list(table["started_at"]) == sorted(table["started_at"], reverse=True)
    assert list(runs.table(("session",), mode="paper")["kind"]) == ["session"]
    runs.close()


def test_the_demo_session_agrees_with_the_replay_of_its_day(at_demo):
    """The comparison the drift page shows (the recorded drift report's own), on a real
    supervised replayed session: the core's parity (same signals, same fills, same P&L)
    must show as agreement, and a changed fill price as slippage of the right sign."""
    from decimal import Decimal

    from workbench.dashboards.recompute import record_strategy
    from workbench.monitor.drift import SessionRecord, compare, read_drift, replay_session

    session = _record(at_demo, "session")
    record = SessionRecord.read(session)
    replay = replay_session(session, record_strategy(session), record)
    drift = compare(record, replay)
    s = drift.summary
    assert s["session_fills"] > 10 and s["signals_either"] > 10  # a real comparison
    assert s["signal_agreement"] == 1.0 and s["signals_differing"] == 0
    assert s["matched"] == s["session_fills"] == s["backtest_fills"]
    assert s["excess_bps_worst"] == pytest.approx(0, abs=1e-6)
    assert abs(s["pnl_difference"]) < 0.005  # to the cent
    assert len(drift.pnl) == len(record.equity)
    doc = read_drift(session)  # measured at the session's end: the same figures
    assert doc is not None and doc["signals_compared"] == s["signals_compared"]
    assert doc["backtest_pnl"] == f"{s['backtest_pnl']:.2f}"
    # a buy filled 1% dearer than the replay's: 100 bps more than the model's, not dropped
    buy = next(p for p in record.fills if str(p["side"]).lower() == "buy")
    key = (buy["symbol"], buy["side"], buy["time"])
    record.fills = [{**p, "price": str(Decimal(str(p["price"])) * Decimal("1.01"))}
                    if (p["symbol"], p["side"], p["time"]) == key else p for p in record.fills]
    [row] = [f for f in compare(record, replay).fills
             if (f.symbol, f.side, f.time)
             == (buy["symbol"], "buy", pd.Timestamp(buy["time"]).isoformat())]
    model = replay.result.costs.slippage
    assert row.status == "matched" and row.cost > 0
    assert row.excess_bps == pytest.approx(100 * (1 + model), rel=1e-6)


def test_a_sweep_cell_backtested_again_has_the_sweeps_figures(at_demo):
    from workbench.dashboards.recompute import backtest_of
    from workbench.dashboards.research import RunView, heatmap_table

    view = RunView(_record(at_demo, "sweep"))
    combos = view.combos()
    table = heatmap_table(combos, "fast", "slow", "sharpe", view.best()["params"])
    assert table.shape == (5, 4) and table.isna().sum().sum() == 1  # fast < slow leaves one
    result = backtest_of(view.path, {"fast": 10, "slow": 40})
    assert result.stats()["sharpe"] == pytest.approx(table.loc[40, 10], rel=1e-9)


def test_a_record_whose_notebook_changed_is_not_backtested_again(at_demo, tmp_path):
    from workbench.dashboards.recompute import backtest_of
    from workbench.errors import DataError

    record = tmp_path / "runs" / "x"
    shutil.copytree(_record(at_demo, "sweep"), record)
    manifest = json.loads((record / "manifest.json").read_text())
    manifest["notebook"]["hash"] = "sha256:" + "0" * 64
    (record / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="has changed since run"):
        backtest_of(record, {"fast": 10, "slow": 40})


def test_a_journal_refresh_reads_only_what_was_appended(at_demo, tmp_path):
    from workbench.dashboards.queries import RunJournal
    from workbench.journal.events import encode_event

    run = tmp_path / "run"
    shutil.copytree(_record(at_demo, "session"), run)
    journal = RunJournal(run)
    first = journal.refresh()
    size = sum(p.stat().st_size for p in (run / "events").glob("*.jsonl"))
    assert first > 100 and journal.bytes_read == size
    fills = len(journal.fills())
    segment = max((run / "events").glob("*.jsonl"))
    last = json.loads(segment.read_text().splitlines()[-1])
    line = next(x for x in segment.read_text().splitlines() if x.startswith('{"type":"fill"'))
    fill = json.loads(line)
    fill["payload"]["execution_id"] = "appended-1"
    added = encode_event(last["seq"] + 1, fill["ts"], "fill", fill["payload"])  # checksummed
    with open(segment, "ab") as f:
        f.write(added + b'{"type":"fill","seq":')  # and a torn line: not read
    assert journal.refresh() == 1
    assert journal.bytes_read == size + len(added) + len(b'{"type":"fill","seq":')
    assert len(journal.fills()) == fills + 1
    assert journal.fills()["execution_id"].iloc[-1] == "appended-1"


def _newer_copy(home: Path, kind: str) -> Path:
    """A copy of the demo's ``kind`` record under a new run id, started after every other."""
    source = _record(home, kind)
    run_id = f"29990101T000000Z-{kind}-renewed"
    target = home / "runs" / run_id
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(run_id=run_id, started_at="2999-01-01T00:00:00+00:00")
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_research_and_drift_pages_render_and_a_heatmap_click_draws_that_equity(
        demo_home, jupyter_env, tmp_path_factory):
    shots = artifacts_dir(tmp_path_factory)
    with Dashboard.start(demo_home, jupyter_env) as server, chromium() as browser:
        # the pages' notebooks ran ahead of any request (preheated kernels); a record made
        # since is what the page shows first, as a new kernel would: nothing preheat-old
        server.preheated(timeout=LOAD_MS / 1000)
        newer = _newer_copy(demo_home, "backtest")
        try:
            page = DashboardPage.open(browser, server.url("research.ipynb"), shots,
                                      "research", timeout_ms=LOAD_MS)
            page.wait_for(".wb-stats")
            select = page.page.locator("select").first
            page.page.wait_for_function(
                "(id) => { const s = document.querySelector('select');"
                " return s.options[s.selectedIndex].text.startsWith(id); }",
                arg=newer.name, timeout=60_000)
            assert "session" in select.inner_text()
        finally:
            shutil.rmtree(newer)
        page.wait_for(".js-plotly-plot")
        page.shot("newest")
        select = page.page.locator("select").first
        sweep = next(t for t in select.locator("option").all_inner_texts() if "sweep" in t)
        select.select_option(label=sweep)
        from workbench.dashboards.research import RunView, heatmap_table

        view = RunView(_record(demo_home, "sweep"))
        sharpe = heatmap_table(view.combos(), "fast", "slow", "sharpe", view.best()["params"])
        cell = page.wait_for('button.wb-cell[title="fast=10, slow=40"]')
        assert cell.inner_text() == f"{sharpe.loc[40, 10]:,.3f}"  # the sweep's own figure
        page.shot("sweep")
        cell.click()
        combo = page.wait_for(".wb-combo")
        assert combo.inner_text() == "fast=10, slow=40"
        page.page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(t => t.textContent === 'Equity of fast=10, slow=40')", timeout=60_000)
        page.shot("sweep-clicked")
        assert page.problems() == []
        page.close()

        drift = DashboardPage.open(browser, server.url("drift.ipynb"), shots, "drift",
                                   timeout_ms=LOAD_MS)
        summary = drift.wait_for(".wb-drift-summary", LOAD_MS)
        assert "100.0%" in summary.inner_text()
        drift.wait_for(".js-plotly-plot")
        drift.shot()
        assert drift.problems() == []
        drift.close()
    print(f"screenshots in {shots}")


def test_the_drift_page_follows_a_growing_session(at_demo, tmp_path, monkeypatch, capsys):
    """A session half journaled: the page compares what it reached (the replay's later fills
    are not counted as missing); the rest appended, a refresh reads it and agrees in full."""
    from workbench.dashboards.drift_page import DriftPage

    runs = tmp_path / "runs"
    run = runs / _record(at_demo, "session").name
    shutil.copytree(_record(at_demo, "session"), run)
    segment = max((run / "events").glob("*.jsonl"))
    lines = segment.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    fills = sum(1 for line in lines if line.startswith(b'{"type":"fill",'))
    segment.write_bytes(b"".join(lines[:half]))
    page = DriftPage(runs)
    assert "error" not in page.status.value.lower(), page.status.value
    assert "running or stopped early" in page.status.value
    first = page.drift.summary
    assert 0 < first["session_fills"] < fills and first["signal_agreement"] == 1.0
    assert first["matched"] == first["session_fills"] == first["backtest_fills"]
    assert first["missed"] == first["extra"] == 0
    with open(segment, "ab") as f:
        f.write(b"".join(lines[half:]))
    page.refresh()
    s = page.drift.summary
    assert "(ended)" in page.status.value
    assert s["session_fills"] == s["matched"] == s["backtest_fills"] == fills
    assert "100.0%" in page.summary.value
    capsys.readouterr()  # the figures' bundles printed outside a kernel
