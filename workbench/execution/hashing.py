"""A notebook's identity for promotion: the hash of its code, not of its outputs.

    notebook_hash("notebooks/strategies/sma_cross.ipynb")   # 'sha256:3f0c…' (64 hex digits)

The hash covers every code cell's source, in order, except cells papermill injected
(tagged ``injected-parameters``): running a notebook, clearing or saving its outputs,
editing markdown, or passing other parameters leaves it unchanged; editing any code cell
(the parameters cell's defaults included) changes it, which sends the notebook back
through the promotion gates. Sources are normalized only for line endings and trailing
white space at the end of a cell.

A code cell tagged ``research`` runs only in mode "research" (:func:`research_cells`: the
runner skips it in every other mode), so the tag decides what a paper or live session
executes: tagging or untagging a cell changes the hash too. A notebook without such a tag
hashes as it always did.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench.errors import ConfigError

__all__ = ["INJECTED_TAG", "RESEARCH_MODE", "RESEARCH_TAG", "code_cells", "hash_of",
           "notebook_hash", "read_notebook", "research_cells"]

INJECTED_TAG = "injected-parameters"
RESEARCH_TAG = "research"  # a research-only cell: run in mode RESEARCH_MODE only
RESEARCH_MODE = "research"
_PREFIX = "sha256:"
_RESEARCH_MARK = b"\x00research\x00"  # no source starts with NUL: no clash with code


def _tags(cell: dict) -> list:
    return cell.get("metadata", {}).get("tags", []) or []


def research_cells(notebook: dict, mode: str) -> list[int]:
    """Indexes (0-based, in ``notebook.cells``) of the code cells a run in ``mode`` skips:
    those tagged ``research``, in any mode but "research" (none in mode research)."""
    if mode == RESEARCH_MODE:
        return []
    return [i for i, cell in enumerate(notebook.get("cells", []))
            if cell.get("cell_type") == "code" and RESEARCH_TAG in _tags(cell)]


def code_cells(notebook: dict) -> list[str]:
    """The sources of ``notebook``'s code cells that are its own (not injected), normalized."""
    return [source for source, _ in _own_code(notebook)]


def _own_code(notebook: dict) -> list[tuple[str, bool]]:
    """(normalized source, tagged research) of each code cell not injected."""
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code" or INJECTED_TAG in _tags(cell):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cells.append((text.replace("\r\n", "\n").rstrip(), RESEARCH_TAG in _tags(cell)))
    return cells


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
    for source, research in _own_code(notebook):
        encoded = (_RESEARCH_MARK if research else b"") + source.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))  # cell boundaries are part of the code
        digest.update(encoded)
    return _PREFIX + digest.hexdigest()
