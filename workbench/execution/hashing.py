"""A notebook's identity for promotion: the hash of its code, not of its outputs.

    notebook_hash("notebooks/strategies/sma_cross.ipynb")   # 'sha256:3f0c…' (64 hex digits)

The hash covers every code cell's source, in order, except cells papermill injected
(tagged ``injected-parameters``): running a notebook, clearing or saving its outputs,
editing markdown, or passing other parameters leaves it unchanged; editing any code cell
(the parameters cell's defaults included) changes it, which sends the notebook back
through the promotion gates. Sources are normalized only for line endings and trailing
white space at the end of a cell.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench.errors import ConfigError

__all__ = ["INJECTED_TAG", "code_cells", "hash_of", "notebook_hash", "read_notebook"]

INJECTED_TAG = "injected-parameters"
_PREFIX = "sha256:"


def code_cells(notebook: dict) -> list[str]:
    """The sources of ``notebook``'s code cells that are its own (not injected), normalized."""
    sources = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        sources.append(text.replace("\r\n", "\n").rstrip())
    return sources


def read_notebook(path: str | Path) -> dict:
    """The notebook at ``path`` as JSON (a one-line ``ConfigError`` if it is not one)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no such notebook: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not a notebook (not JSON: {e})") from None


def notebook_hash(path: str | Path) -> str:
    """``"sha256:<hex>"`` of the notebook's own code cells (see the module doc)."""
    return hash_of(read_notebook(path))


def hash_of(notebook: dict) -> str:
    """:func:`notebook_hash` of a notebook already read (the very cells a run executes)."""
    digest = hashlib.sha256()
    for source in code_cells(notebook):
        encoded = source.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))  # cell boundaries are part of the code
        digest.update(encoded)
    return _PREFIX + digest.hexdigest()
