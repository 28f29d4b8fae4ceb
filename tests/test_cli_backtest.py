"""`workbench backtest` and `workbench sweep` as real processes, plus grid/constraint parsing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import BIN, ROOT
from workbench.backtesting.sweeps.grid import Constraint
from workbench.cli.grid_args import parse_grid, parse_value
from workbench.errors import ConfigError

SMA = str(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb")
RSI = str(ROOT / "notebooks" / "strategies" / "rsi_reversion.ipynb")
WB = str(BIN / "workbench")


def run(*args, home: Path):
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    return subprocess.run([WB, *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def ok(*args, home: Path):
    proc = run(*args, home=home)
    assert proc.returncode == 0, proc.stderr
    return proc


def runs(home: Path) -> list[Path]:
    return sorted((home / "runs").iterdir()) if (home / "runs").exists() else []


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def one_line_error(proc, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: ")
    return first


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A store with 6 symbols x 160 daily bars."""
    home = tmp_path_factory.mktemp("bt")
    ok("data", "synth", "--symbols", "6", "--days", "160", "--timeframe", "1Day",
       "--end", "2025-12-31", home=home)
    return home


def notebook(path: Path, *sources: tuple[str, str | None]) -> str:
    cells = []
    for source, tag in sources:
        c = new_code_cell(source)
        if tag:
            c.metadata["tags"] = [tag]
        cells.append(c)
    nbformat.write(new_notebook(cells=cells), path)
    return str(path)


# -- backtest -----------------------------------------------------------------------------


def test_backtest_writes_a_record(home):
    before = set(runs(home))
    proc = ok("backtest", SMA, "-p", "fast", "5", "-p", "fees_bps", "1.5", home=home)
    (path,) = set(runs(home)) - before
    assert f"record: {path}" in proc.stdout and "sharpe" in proc.stdout
    m = manifest(path)
    assert m["outcome"] == "succeeded" and m["kind"] == "backtest" and m["mode"] == "backtest"
    assert m["strategy"] == "sma_cross" and "git_commit" in m
    assert m["params"]["fast"] == 5 and m["params"]["slow"] == 30
    assert m["params"]["fees_bps"] == 1.5
    assert m["data_range"]["symbols_count"] == 6 and m["data_range"]["timeframe"] == "1Day"
    stats = pd.read_parquet(path / "results" / "stats.parquet")
    assert list(stats["scope"]) == ["book"] + ["symbol"] * 6
    trades = pd.read_parquet(path / "results" / "trades.parquet")
    assert len(trades) == stats.loc[0, "trades"] > 0
    equity = pd.read_parquet(path / "results" / "equity.parquet")
    assert len(equity) == 160 and "total" in equity.columns


def test_backtest_json_and_data_options(home):
    proc = ok("backtest", RSI, "--symbols", "2", "--start", "2025-09-02", "-p", "sl_stop", "0.05",
              "--json", home=home)
    out = json.loads(proc.stdout)
    assert out["strategy"] == "rsi_reversion" and out["params"]["sl_stop"] == 0.05
    assert out["stats"]["symbols"] == 2 and out["stats"]["start"].startswith("2025-09-02")
    assert manifest(Path(out["path"]))["outcome"] == "succeeded"


def test_unknown_param_exits_4_with_a_suggestion(home):
    before = runs(home)
    line = one_line_error(run("backtest", SMA, "-p", "fsat", "5", home=home), 4)
    assert "did you mean fast?" in line
    line = one_line_error(run("backtest", SMA, "-p", "fees_bsp", "5", home=home), 4)
    assert "did you mean fees_bps?" in line
    assert runs(home) == before  # bad input: no record


def test_bad_values_exit_without_a_record(home):
    before = runs(home)
    assert "fast must be int" in one_line_error(run("backtest", SMA, "-p", "fast", "x",
                                                    home=home), 4)
    assert "fill must be one of" in one_line_error(run("backtest", SMA, "-p", "fill", "bogus",
                                                       home=home), 2)
    assert "no 1Day bars stored for ZZZ" in one_line_error(
        run("backtest", SMA, "--symbols", "ZZZ", home=home), 3)
    assert runs(home) == before


def test_notebook_without_a_strategy_exits_2(home, tmp_path):
    nb = notebook(tmp_path / "empty.ipynb", ("a = 1", "parameters"), ("print(a)", None))
    assert "no cell tagged 'strategy'" in one_line_error(run("backtest", nb, home=home), 2)
    assert "no such notebook" in one_line_error(run("backtest", str(tmp_path / "no.ipynb"),
                                                    home=home), 2)


def test_a_failing_run_is_recorded_as_failed(home, tmp_path):
    source = ("import workbench as wb\n\n@wb.strategy\ndef broken(bars, n: int = 1):\n"
              "    raise ValueError('boom')\n")
    nb = notebook(tmp_path / "broken.ipynb", (source, "strategy"))
    before = set(runs(home))
    line = one_line_error(run("backtest", nb, home=home), 4)
    (path,) = set(runs(home)) - before
    assert "broken raised ValueError: boom" in line and str(path) in line
    m = manifest(path)
    assert m["outcome"] == "failed" and "boom" in m["error"]


@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_help(command, home):
    proc = ok(command, "--help", home=home)
    assert "NOTEBOOK" in proc.stdout and "-p, --param NAME VALUE" in proc.stdout


# -- sweep --------------------------------------------------------------------------------

def test_sweep_writes_a_record_with_best_dsr_pbo_and_heatmap(home):
    before = set(runs(home))
    proc = ok("sweep", SMA, "--grid", "fast=5:15:5", "--grid", "slow=20,30,40",
              "--constraint", "fast < slow", home=home)
    (path,) = set(runs(home)) - before
    assert "DSR" in proc.stdout and "PBO" in proc.stdout and str(path) in proc.stdout
    m = manifest(path)
    assert m["outcome"] == "succeeded" and m["kind"] == "sweep" and "git_commit" in m
    assert m["params"]["fast"] == [5, 10, 15] and m["params"]["slow"] == [20, 30, 40]
    results = path / "results"
    combos = pd.read_parquet(results / "combos.parquet")
    assert len(combos) == 9
    assert len(pd.read_parquet(results / "table.parquet")) > 0
    best = json.loads((results / "best.json").read_text())
    assert set(best["params"]) >= {"fast", "slow"} and best["metric"] == "sharpe"
    assert 0 <= best["dsr"] <= 1 and 0 <= best["pbo"] <= 1 and best["constraint"] == "fast < slow"
    assert "cdn.plot.ly" in (results / "heatmap.html").read_text()


def test_sweep_json_one_parameter_has_no_heatmap(home):
    proc = ok("sweep", RSI, "--grid", "oversold=20,25,30", "-p", "sl_stop", "0.05", "--json",
              home=home)
    out = json.loads(proc.stdout)
    assert "heatmap.html" not in out["files"] and "best.json" in out["files"]
    assert out["best"]["params"]["oversold"] in (20.0, 25.0, 30.0)


@pytest.mark.parametrize("grid", ["fast", "fast=5:1:1"])
def test_bad_grid_exits_2(home, grid):
    line = one_line_error(run("sweep", SMA, "--grid", grid, home=home), 2)
    assert "--grid" in line


@pytest.mark.parametrize("constraint", ["__import__('os').system('true')", "fats < slow"])
def test_disallowed_constraint_exits_2(home, constraint):
    before = runs(home)
    proc = run("sweep", SMA, "--grid", "fast=5,10", "--constraint", constraint, home=home)
    assert "--constraint" in one_line_error(proc, 2)
    assert runs(home) == before


def test_sweep_of_an_unknown_parameter_exits_4(home):
    line = one_line_error(run("sweep", SMA, "--grid", "fsat=5,10", home=home), 4)
    assert "did you mean fast?" in line


# -- parsing ------------------------------------------------------------------------------


def test_parse_grid():
    assert parse_grid("fast=5:25:5") == ("fast", [5, 10, 15, 20, 25])
    assert parse_grid("x=0.01:0.05:0.01") == ("x", [0.01, 0.02, 0.03, 0.04, 0.05])
    assert parse_grid("x=1:2:0.5") == ("x", [1.0, 1.5, 2.0])
    assert parse_grid(" kind = a, b ,a") == ("kind", ["a", "b"])
    assert parse_grid("flag=true,false") == ("flag", [True, False])
    for bad in ("fast", "fast=", "fast=5:1:1", "fast=1:5", "fast=1:5:0", "fast=a:b:c", "5=1,2",
                "x=1,,2", "x=1:1000000000:1"):
        with pytest.raises(ConfigError, match="--grid"):
            parse_grid(bad)


def test_parse_value():
    assert parse_value("10") == 10 and parse_value("0.5") == 0.5 and parse_value("null") is None
    assert parse_value("next_open") == "next_open" and parse_value("[1, 2]") == [1, 2]


def test_constraint_evaluates_without_eval():
    c = Constraint("fast < slow and not (slow - fast) % 20 == 0 or fast == 1", ["fast", "slow"])
    assert c({"fast": 5, "slow": 20}) and not c({"fast": 20, "slow": 5})
    assert not c({"fast": 10, "slow": 30}) and c({"fast": 1, "slow": 0})
    assert Constraint("1 < fast <= 3", ["fast"])({"fast": 3})
    for bad in ("fast ** 99", "~fast", "fast if slow else 1", "(fast, slow)", "fast in [1]",
                "__import__('os')", "fast.real < 3", "slow[0] > 1", "lambda: 1", "fats < 1",
                "fast <", "slow == b'x'"):
        with pytest.raises(ConfigError, match="--constraint"):
            Constraint(bad, ["fast", "slow"])
    with pytest.raises(ConfigError, match="--constraint"):
        Constraint("fast / slow > 1", ["fast", "slow"])({"fast": 1, "slow": 0})
