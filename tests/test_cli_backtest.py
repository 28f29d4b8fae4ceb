"""`workbench backtest` and `workbench sweep`: the notebook executed by papermill, printed from
its record. Refusals before any kernel run in-process (fast); two real runs start a kernel."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import BIN, ROOT
from workbench.backtesting.sweeps.grid import Constraint
from workbench.cli import cli
from workbench.cli.backtest import format_value
from workbench.cli.grid_args import parse_grid, parse_value
from workbench.errors import ConfigError

SMA = str(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb")
WB = str(BIN / "workbench")


def invoke(*args: str):
    """The command in this process (refusals happen before any kernel)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def refused(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    return lines[0]


def runs(home: Path) -> list[Path]:
    return sorted((home / "runs").iterdir()) if (home / "runs").exists() else []


def notebook(path: Path, params: str, *cells: str) -> str:
    first = new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nbformat.write(new_notebook(cells=[first, *(new_code_cell(c) for c in cells)]), path)
    return str(path)


# -- refused before any kernel --------------------------------------------------------------


def test_a_typo_in_p_is_refused_with_the_closest_name(workbench_home):
    assert "did you mean 'fast'?" in refused(invoke("backtest", SMA, "-p", "fsat", "5"), 2)
    assert "did you mean 'fees_bps'?" in refused(
        invoke("sweep", SMA, "-p", "fees_bsp", "1"), 2)
    assert runs(workbench_home) == []  # nothing recorded, no kernel


def test_an_option_and_p_of_the_same_name_are_refused(workbench_home):
    line = refused(invoke("backtest", SMA, "--timeframe", "1Day", "-p", "timeframe", "1Min"), 2)
    assert "--timeframe and -p timeframe both given" in line
    line = refused(invoke("sweep", SMA, "--grid", "fast=5,10", "-p", "grid", '{"fast": [5]}'), 2)
    assert "--grid and -p grid" in line
    line = refused(invoke("sweep", SMA, "--grid", "fast=5,10", "-p", "fast", "7"), 2)
    assert "--grid fast and -p fast" in line
    assert runs(workbench_home) == []


def test_symbols_n_needs_stored_bars_of_the_timeframe(workbench_home):
    line = refused(invoke("backtest", SMA, "--symbols", "3"), 3)
    assert "--symbols 3: the store holds no 1Day bars" in line
    line = refused(invoke("backtest", SMA, "--symbols", "3", "--timeframe", "1min"), 3)
    assert "no 1Min bars" in line  # the timeframe as the store names it
    assert runs(workbench_home) == []


def test_a_data_option_the_notebook_lacks_is_refused(workbench_home, tmp_path):
    nb = notebook(tmp_path / "few.ipynb", 'symbol = "A"\nmode = "research"\nrun_dir = None',
                  "print(symbol)")
    assert "unknown parameter 'symbols' for few.ipynb (did you mean 'symbol'?)" in refused(
        invoke("backtest", nb, "--symbols", "A,B"), 2)
    assert "no such notebook" in refused(invoke("backtest", str(tmp_path / "no.ipynb")), 2)
    assert "--start 'soon': not a day" in refused(invoke("backtest", SMA, "--start", "soon"), 2)


def test_a_setting_of_another_mode_is_refused(workbench_home):
    line = refused(invoke("backtest", SMA, "-p", "metric", "sortino"), 2)
    assert "-p metric: a setting of mode sweep" in line


@pytest.mark.parametrize("args, words", [
    (("--grid", "fast"), "--grid"),
    (("--grid", "fast=5:1:1"), "stop 1 is below start 5"),
    (("--grid", "fast=5,10", "--grid", "fast=1,2"), "given twice"),
    (("--metric", "sharpness"), "--metric 'sharpness': one of"),
    (("-p", "metric", "sharpness"), "--metric 'sharpness'"),
    (("--constraint", "__import__('os').system('true')"), "--constraint"),
    (("--constraint", "fast <"), "not an expression"),
])
def test_bad_sweep_input_is_refused(workbench_home, args, words):
    assert words in refused(invoke("sweep", SMA, *args), 2)
    assert runs(workbench_home) == []


def test_a_sweep_names_only_the_strategy_parameters_before_any_kernel(workbench_home, tmp_path):
    # the grid's and the constraint's names come from the strategy, not the parameters
    # cell: read from the notebook's code (its @wb.strategy), refused with the closest name
    assert "unknown parameter 'fsat' in grid" in refused(
        invoke("sweep", SMA, "--grid", "fsat=5,10"), 4)
    assert "did you mean fast?" in refused(invoke("sweep", SMA, "-p", "grid", '{"fsat": [5]}'), 4)
    assert "unknown name 'fats'" in refused(
        invoke("sweep", SMA, "--grid", "fast=5,10", "--constraint", "fats < slow"), 2)
    assert "give parameter -> values" in refused(invoke("sweep", SMA, "-p", "grid", "fast"), 2)
    assert "did you mean slow?" in refused(invoke(  # every command running a sweep
        "run", SMA, "--mode", "walk_forward", "-p", "grid", '{"slwo": [20]}'), 4)
    assert runs(workbench_home) == []  # nothing recorded, no kernel
    from workbench.execution.strategy_names import strategy_parameters

    assert strategy_parameters(SMA) == ("sma_cross", ("fast", "slow"))
    two = notebook(tmp_path / "two.ipynb", "fast = 1",
                   "import workbench as wb\n@wb.strategy\ndef a(bars, x=1): pass",
                   "@strategy(warmup=3)\ndef b(bars, y=1): pass")
    assert strategy_parameters(two) is None  # which one runs is the kernel's to say


def test_strategy_option_is_gone_and_help_says_papermill(workbench_home):
    assert invoke("backtest", SMA, "--strategy", "x").exit_code == 2
    for command in ("backtest", "sweep"):
        text = invoke(command, "--help").output
        assert "papermill" in text and "-p, --param NAME VALUE" in text
        assert "tagged" not in text and "--strategy" not in text


def test_cell_progress_reads_the_saved_notebook(tmp_path, capsys):
    from workbench.cli.notebook_run import CellProgress

    out = tmp_path / "notebook.ipynb"
    cells = [new_code_cell("a = 1"), new_code_cell("slow()\nmore()"), new_code_cell("b = 2")]

    def save(*statuses):
        for cell, status in zip(cells, statuses):
            cell.metadata["papermill"] = {"status": status, "duration": 2.5}
        nbformat.write(new_notebook(cells=cells), out)

    progress = CellProgress(out)
    progress.look()  # nothing saved yet: nothing said
    save("completed", "running", "pending")
    progress.look()
    save("completed", "completed", "failed")
    os.utime(out, (1, 1))  # a new save, whatever the clock's resolution
    progress.look()
    assert capsys.readouterr().err.splitlines() == [
        "  cell 1/3 done in 2.5 s: a = 1", "  cell 2/3 running: slow()",
        "  cell 2/3 done in 2.5 s", "  cell 3/3 failed in 2.5 s: b = 2"]


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


# -- real runs: papermill on the workbench kernel ---------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A store with 6 symbols x 160 daily bars."""
    from workbench.data.sources import synth_into_store
    from workbench.data.store import Store

    home = tmp_path_factory.mktemp("bt")
    synth_into_store(Store(home / "data"), 6, 160, "1Day", 7, "2025-12-31")
    return home


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    return subprocess.run([WB, *args], capture_output=True, text=True, env=env, timeout=600,
                          check=False)


def test_backtest_runs_the_notebook_and_prints_its_record(home):
    before = set(runs(home))
    proc = run("backtest", SMA, "--symbols", "4", "-p", "fast", "5", "-p", "fees_bps", "1.5",
               home=home)
    assert proc.returncode == 0, proc.stderr
    (path,) = set(runs(home)) - before
    assert f"record: {path}" in proc.stdout and "backtest succeeded" in proc.stdout
    m = json.loads((path / "manifest.json").read_text())
    assert m["outcome"] == "succeeded" and m["kind"] == "backtest" and m["mode"] == "backtest"
    assert "--symbols 4: the first 4 stored 1Day symbols" in proc.stderr
    settings = json.loads((path / "results" / "settings.json").read_text())
    assert settings["params"] == {"fast": 5, "slow": 30}
    assert settings["options"]["fees_bps"] == 1.5 and len(settings["data"]["symbols"]) == 4
    assert m["params"]["symbols"] == settings["data"]["symbols"]
    assert "strategy: sma_cross (parameters: fast=5, slow=30)" in proc.stdout
    # every stat printed is the record's book row
    stats = pd.read_parquet(path / "results" / "stats.parquet")
    book = stats.loc[stats["scope"] == "book"].iloc[0]
    for key in ("sharpe", "total_return", "max_drawdown", "trades", "fees"):
        assert f"  {key:<16}{format_value(book[key], key)}\n" in proc.stdout
    assert list(stats["scope"]) == ["book"] + ["symbol"] * 4
    # the executed notebook, with its outputs, is in the record
    executed = nbformat.read(path / "notebook.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    assert executed.metadata["papermill"]["parameters"]["mode"] == "backtest"


def test_sweep_runs_the_notebook_and_prints_best_json(home):
    before = set(runs(home))
    proc = run("sweep", SMA, "--grid", "fast=5,10", "--grid", "slow=20:30:10", "--symbols",
               "3", "--constraint", "fast < slow", "--metric", "sortino", home=home)
    assert proc.returncode == 0, proc.stderr
    (path,) = set(runs(home)) - before
    best = json.loads((path / "results" / "best.json").read_text())
    assert best["metric"] == "sortino" and best["constraint"] == "fast < slow"
    assert best["grid"] == {"fast": [5, 10], "slow": [20, 30]} and best["n_combos"] == 4
    assert 0 <= best["dsr"] <= 1 and 0 <= best["pbo"] <= 1
    assert len(pd.read_parquet(path / "results" / "combos.parquet")) == 4
    assert (path / "results" / "heatmap.html").is_file()
    # what is printed is best.json
    from workbench.cli.backtest import _sweep_lines

    lines = _sweep_lines(best)
    assert all(f"{line}\n" in proc.stdout for line in lines), proc.stdout
    assert f"record: {path}" in proc.stdout
    assert lines[0].startswith("sweep sma_cross: 4 combinations")
    assert lines[3] == f"best by sortino: fast={best['params']['fast']}, " \
                       f"slow={best['params']['slow']}"
    assert lines[5].startswith("DSR", 2) and lines[6].startswith("PBO", 2)


def test_symbols_n_is_one_rule_short_history_left_out_and_fewer_refused(workbench_home):
    """`--symbols N` (every command: notebook_run.first_symbols): the first N of the default
    universe, a short-history symbol named and left out; fewer than N eligible is refused."""
    from workbench.cli.notebook_run import first_symbols
    from workbench.data.store import Store
    from workbench.data.synth import synthesize
    from workbench.errors import ConfigError

    store = Store()
    store.write(synthesize(["AAA", "BBB", "CCC"], 200, "1Day", seed=3, end="2026-11-20"), "1Day")
    store.write(synthesize(["ABC"], 21, "1Day", seed=4, end="2026-11-20"), "1Day")
    chosen, note = first_symbols("--symbols 3", 3, "1Day")
    assert chosen == ["AAA", "BBB", "CCC"]
    assert "short history left out: ABC (21 bars)" in note
    with pytest.raises(ConfigError, match=r"holds 3 1Day symbol\(s\) with enough history; "
                                          r"short history left out: ABC \(21 bars\)"):
        first_symbols("--symbols 4", 4, "1Day")


def test_money_is_printed_to_the_cent_not_in_exponent_form():
    assert format_value(2_100_000.0, "initial_equity") == "2,100,000.00"
    assert format_value(2_098_765.4321, "final_equity") == "2,098,765.43"
    assert format_value(12.5, "fees") == "12.50"
    assert format_value(0.1234, "total_return") == "12.34%"
    assert format_value(1.23456, "sharpe") == "1.235"
