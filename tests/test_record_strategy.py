"""``record_strategy``: the strategy of a record's notebook, only while its code is the run's."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from workbench.errors import DataError
from workbench.execution.hashing import notebook_hash
from workbench.execution.record_strategy import record_strategy

STRATEGY = """import workbench as wb

@wb.strategy
def cross(bars, fast: int = 5, slow: int = 20):
    f, s = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(f, s), exits=wb.crossed_below(f, s))
"""


def _record(tmp_path, source=STRATEGY, hashed=True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    book = tmp_path / "strategy.ipynb"
    nb = new_notebook(cells=[new_code_cell(source), new_code_cell("raise SystemExit('not run')")])
    nbformat.write(nb, str(book))
    run = tmp_path / "run"
    run.mkdir()
    notebook = {"path": str(book), "hash": notebook_hash(book) if hashed else None}
    (run / "manifest.json").write_text(json.dumps(
        {"run_id": "r1", "strategy": "cross", "notebook": notebook}))
    return run, book


def test_the_strategy_cells_alone_while_the_code_is_the_runs(tmp_path):
    run, _ = _record(tmp_path)
    strategy = record_strategy(run)
    assert strategy.name == "cross" and strategy.schema.names == ["fast", "slow"]
    with pytest.raises(DataError, match="0 strategies named 'other'"):
        record_strategy(run, "other")


def test_a_changed_gone_or_unhashed_notebook_is_refused(tmp_path):
    run, book = _record(tmp_path)
    book.write_text(book.read_text().replace("fast: int = 5", "fast: int = 6"))
    with pytest.raises(DataError, match="has changed since run r1"):
        record_strategy(run)
    book.unlink()
    with pytest.raises(DataError, match="is gone"):
        record_strategy(run)
    unhashed, _ = _record(tmp_path / "b", hashed=False)
    with pytest.raises(DataError, match="names no notebook and hash"):
        record_strategy(unhashed)
