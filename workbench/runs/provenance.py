"""Where a run came from: package versions, the git commit, the data it ran on."""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import ConfigError

__all__ = ["describe_data_range", "git_state", "package_versions"]

_SHORT_SYMBOLS = 20  # data_range lists the symbols when there are at most this many
_PACKAGES = {"workbench": "workbench", "pandas": "pandas", "numpy": "numpy",
             "vectorbt": "vectorbt", "duckdb": "duckdb", "talib": "TA-Lib",
             "alpaca-py": "alpaca-py", "papermill": "papermill"}


def package_versions() -> dict[str, str | None]:
    """Python's and the key packages' versions (None when a package is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _PACKAGES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, tree dirty) of the checkout at ``root``; (None, None) if none."""
    git = shutil.which("git")
    if git is None:
        return None, None

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True,
                              timeout=20, check=False)

    try:
        head, status = run("rev-parse", "HEAD"), run("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None, None
    if head.returncode != 0:
        return None, None
    return head.stdout.strip(), (bool(status.stdout.strip()) if status.returncode == 0 else None)


def _iso(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def describe_data_range(data_range: Any) -> dict[str, Any] | None:
    """Symbols, timeframe, first and last timestamps of ``Bars`` or a mapping."""
    if data_range is None:
        return None
    if hasattr(data_range, "symbols") and hasattr(data_range, "index"):  # Bars
        index, symbols = data_range.index, list(data_range.symbols)
        tf = getattr(data_range, "timeframe", None)
        first, last = (index[0], index[-1]) if len(index) else (None, None)
    elif isinstance(data_range, Mapping):
        symbols = data_range.get("symbols") or []
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        tf = data_range.get("timeframe")
        first = data_range.get("first", data_range.get("start"))
        last = data_range.get("last", data_range.get("end"))
    else:
        raise ConfigError(f"data_range must be Bars, a mapping or None, "
                          f"got {type(data_range).__name__}")
    symbols = [str(s) for s in symbols]
    return {"symbols_count": len(symbols),
            "symbols": symbols if len(symbols) <= _SHORT_SYMBOLS else None,
            "timeframe": None if tf is None else str(tf), "first": _iso(first), "last": _iso(last)}
