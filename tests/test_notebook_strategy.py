"""load_notebook_strategy: only the cells tagged parameters/strategy run, errors are one line."""

from __future__ import annotations

import pickle

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.conftest import ROOT
from workbench.errors import ConfigError, StrategyError
from workbench.strategy.notebook import load_notebook_strategy, plain_value

STRATEGY = '''import workbench as wb

@wb.strategy(warmup=3)
def momo(bars, lookback: int = 3, level: float = 0.0):
    change = bars.close.pct_change(lookback)
    return wb.Signals(entries=change > level, exits=change < level)
'''


def cell(source: str, *tags: str):
    c = new_code_cell(source)
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def write(path, *cells):
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def test_sma_cross_notebook_loads_with_its_parameters():
    strategy, params = load_notebook_strategy(ROOT / "notebooks/strategies/sma_cross.ipynb")
    assert strategy.name == "sma_cross"
    assert strategy.schema.names == ["fast", "slow"]
    assert params["timeframe"] == "1Day" and params["fast"] == 10 and params["slow"] == 30


def test_only_tagged_cells_run(tmp_path):
    nb = write(tmp_path / "x.ipynb",
               new_markdown_cell("# title"),
               cell("lookback = 5\nsymbols = ['AAA']\nfrom math import pi\n_private = 1", "parameters"),
               cell("raise RuntimeError('untagged cells must not run')"),
               cell(STRATEGY, "strategy"),
               cell("open('/nonexistent/file')"))
    strategy, params = load_notebook_strategy(nb)
    assert strategy.name == "momo"
    assert params == {"lookback": 5, "symbols": ["AAA"]}  # no modules, no _private


def test_injected_parameters_override_the_parameters_cell(tmp_path):
    nb = write(tmp_path / "x.ipynb", cell("lookback = 5\nlevel = 0.0", "parameters"),
               cell("lookback = 8", "injected-parameters"), cell(STRATEGY, "strategy"))
    _, params = load_notebook_strategy(nb)
    assert params == {"lookback": 8, "level": 0.0}


def test_no_strategy_cell_is_a_config_error(tmp_path):
    nb = write(tmp_path / "x.ipynb", cell("a = 1", "parameters"), cell(STRATEGY))
    with pytest.raises(ConfigError, match="no cell tagged 'strategy'"):
        load_notebook_strategy(nb)


def test_strategy_cell_without_a_strategy(tmp_path):
    nb = write(tmp_path / "x.ipynb", cell("def f(bars):\n    return None", "strategy"))
    with pytest.raises(ConfigError, match="defines no wb.Strategy"):
        load_notebook_strategy(nb)


def test_several_strategies_need_a_name(tmp_path):
    other = STRATEGY.replace("def momo", "def other")
    nb = write(tmp_path / "x.ipynb", cell(STRATEGY, "strategy"), cell(other, "strategy"))
    with pytest.raises(ConfigError, match=r"several strategies \(momo, other\)"):
        load_notebook_strategy(nb)
    assert load_notebook_strategy(nb, "other")[0].name == "other"
    with pytest.raises(ConfigError, match=r"no strategy named 'nope' \(found: momo, other\)"):
        load_notebook_strategy(nb, "nope")


def test_a_failing_cell_names_the_notebook_and_cell(tmp_path):
    nb = write(tmp_path / "bad.ipynb", cell("a = 1", "parameters"),
               cell("import workbench as wb\nx = 1 / 0", "strategy"))
    with pytest.raises(StrategyError) as info:
        load_notebook_strategy(nb)
    message = str(info.value)
    assert "bad.ipynb cell 2 (strategy)" in message and "ZeroDivisionError" in message
    assert "\n" not in message


def test_magics_are_refused_with_a_reason(tmp_path):
    nb = write(tmp_path / "m.ipynb", cell("%matplotlib inline\n" + STRATEGY, "strategy"))
    with pytest.raises(StrategyError, match="cell 1 .*no magics"):
        load_notebook_strategy(nb)


def test_not_a_notebook(tmp_path):
    with pytest.raises(ConfigError, match="no such notebook"):
        load_notebook_strategy(tmp_path / "missing.ipynb")
    (tmp_path / "text.ipynb").write_text("hello")
    with pytest.raises(ConfigError, match="not a readable notebook"):
        load_notebook_strategy(tmp_path / "text.ipynb")


def test_helpers_of_the_strategy_cell_pickle_by_reference(tmp_path):
    helper = "def level_of(x):\n    return x\n"
    nb = write(tmp_path / "x.ipynb", cell(helper + STRATEGY, "strategy"))
    strategy, _ = load_notebook_strategy(nb)
    fn = strategy.fn.__globals__["level_of"]
    assert pickle.loads(pickle.dumps(fn)) is fn


def test_plain_value():
    assert plain_value({"a": [1, 2.5, None, "x", True]})
    assert not plain_value(object()) and not plain_value({1: 2}) and not plain_value([print])
