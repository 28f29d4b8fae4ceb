"""Secrets: where they come from and how they are kept out of every output.

Credentials are read only from the environment (``ALPACA_API_KEY``,
``ALPACA_SECRET_KEY``). Anything the workbench prints, logs or records passes through
:func:`redact`, which replaces every secret value currently in the environment
(:func:`redact_tree` for plain JSON values: every string and key in it).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["SECRET_ENV_VARS", "MASK", "secret_values", "redact", "redact_tree"]

SECRET_ENV_VARS = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
MASK = "**********"
_MIN_LEN = 4  # shorter values would redact ordinary words


def secret_values() -> list[str]:
    """The secret values present in the environment, longest first."""
    values = {os.environ.get(name, "") for name in SECRET_ENV_VARS}
    return sorted((v for v in values if len(v) >= _MIN_LEN), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every secret value from the environment replaced by a mask."""
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_tree(tree: Any) -> Any:
    """Plain JSON ``tree`` with :func:`redact` applied to every string and mapping key."""
    if isinstance(tree, str):
        return redact(tree)
    if isinstance(tree, dict):
        return {redact(k): redact_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact_tree(v) for v in tree]
    return tree
