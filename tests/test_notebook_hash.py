"""notebook_hash: a notebook's code, not its outputs, markdown or injected parameters."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from workbench.errors import ConfigError
from workbench.execution.hashing import notebook_hash

SMA = Path(__file__).resolve().parents[1] / "notebooks" / "strategies" / "sma_cross.ipynb"


def _write(tmp_path: Path, nb: dict, name: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def test_outputs_markdown_and_injected_parameters_do_not_change_the_hash(tmp_path):
    nb = json.loads(SMA.read_text())
    base = notebook_hash(_write(tmp_path, nb, "a.ipynb"))
    run = copy.deepcopy(nb)
    code = [c for c in run["cells"] if c["cell_type"] == "code"]
    code[0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    code[0]["execution_count"] = 7
    run["cells"].insert(1, {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
                            "source": "fast = 5\n", "outputs": [], "execution_count": None})
    run["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "notes"})
    assert notebook_hash(_write(tmp_path, run, "b.ipynb")) == base
    assert base.startswith("sha256:") and len(base) == len("sha256:") + 64


def test_editing_code_or_moving_a_cell_boundary_changes_the_hash(tmp_path):
    nb = json.loads(SMA.read_text())
    base = notebook_hash(_write(tmp_path, nb, "a.ipynb"))
    edited = copy.deepcopy(nb)
    params = next(c for c in edited["cells"] if "parameters" in c["metadata"].get("tags", []))
    params["source"] = "".join(params["source"]).replace("fast = 10", "fast = 11")
    assert notebook_hash(_write(tmp_path, edited, "b.ipynb")) != base
    merged = copy.deepcopy(nb)
    code = [c for c in merged["cells"] if c["cell_type"] == "code"]
    code[0]["source"] = "".join(code[0]["source"]) + "".join(code[1]["source"])
    code[1]["source"] = ""
    assert notebook_hash(_write(tmp_path, merged, "c.ipynb")) != base


def test_a_missing_or_broken_notebook_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such notebook"):
        notebook_hash(tmp_path / "nope.ipynb")
    (tmp_path / "text.ipynb").write_text("not json")
    with pytest.raises(ConfigError, match="not a notebook"):
        notebook_hash(tmp_path / "text.ipynb")
