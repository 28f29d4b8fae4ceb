"""Where the workbench keeps things.

The project root is the folder holding ``pyproject.toml`` next to the installed package
(an editable install); data and runs default to ``data/`` and ``runs/`` under it.
``WORKBENCH_HOME=DIR`` moves both to ``DIR/data`` and ``DIR/runs``; deployments (promoted
notebooks, their schedule state) live in ``deployments/`` beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "deployments_dir", "home", "project_root", "runs_dir"]


def project_root() -> Path:
    """The repository this package lives in (falls back to the current directory)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def home() -> Path:
    """``$WORKBENCH_HOME`` if set, else the project root."""
    env = os.environ.get("WORKBENCH_HOME")
    return Path(env).expanduser().resolve() if env else project_root()


def data_dir() -> Path:
    return home() / "data"


def runs_dir() -> Path:
    return home() / "runs"


def deployments_dir() -> Path:
    """Registered deployments: one JSON file each, and each one's schedule state."""
    return home() / "deployments"
