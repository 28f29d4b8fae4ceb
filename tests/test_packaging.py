"""environment.yml and pyproject.toml list the same dependency set, with the same bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI names
CONDA_TO_PIP = {"ta-lib": "ta-lib", "python-duckdb": "duckdb", "python-kaleido": "kaleido"}
_REQ = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def _split(req: str) -> tuple[str, str]:
    m = _REQ.match(req.split("#")[0].strip())
    assert m, f"cannot parse requirement {req!r}"
    name = m.group(1).lower().replace("_", "-")
    return CONDA_TO_PIP.get(name, name), m.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(_split(r) for r in reqs)


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pairs = dict(_split(d) for d in deps)
    pairs.pop("python"), pairs.pop("pip")
    return pairs


def test_same_dependency_set_and_bounds():
    pip, conda = _pyproject(), _conda()
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject: {sorted(set(pip) - set(conda))}; "
        f"only in environment.yml: {sorted(set(conda) - set(pip))}"
    )
    assert {k: pip[k] for k in pip} == {k: conda[k] for k in pip}


def test_required_components_are_listed():
    names = set(_pyproject())
    for needed in ("jupyterlab", "papermill", "ipywidgets", "voila", "pandas", "numpy",
                   "ta-lib", "vectorbt", "duckdb", "alpaca-py", "plotly"):
        assert needed in names, needed


def test_constraints_pin_every_dependency():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = version
    missing = [n for n in _pyproject() if n not in pins]
    assert not missing, f"constraints.txt lacks pins for {missing}: run `make lock`"
