"""Secrets: where they come from and how they are kept out of every output.

Credentials are read only from the environment (``ALPACA_API_KEY``,
``ALPACA_SECRET_KEY``). Anything the workbench prints, logs or records passes through
:func:`redact`, which replaces every secret value currently in the environment
(:func:`redact_tree` for plain JSON values: every string and key in it). A secret value is
one of those two, or the value of any variable whose name looks like a credential
(:func:`looks_secret`: ``TELEGRAM_BOT_TOKEN``, ``SMTP_PASSWORD``, ...) when it is at least
``_MIN_OTHER`` characters and not a plain number or boolean (masking ``true`` everywhere
would corrupt ordinary output).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "MASK",
    "SECRET_ENV_VARS",
    "SECRET_WORDS",
    "looks_secret",
    "redact",
    "redact_frame",
    "redact_tree",
    "secret_values",
]

SECRET_ENV_VARS = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
MASK = "**********"
_MIN_LEN = 4  # shorter values would redact ordinary words
_MIN_OTHER = 8  # a credential-named variable's value shorter than this is not masked
SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "credential")
_PLAIN = {"true", "false", "yes", "no", "none", "null", "on", "off"}


def looks_secret(name: str) -> bool:
    """Whether ``name`` (a parameter or an environment variable) looks like it holds a
    credential (``api_key``, ``SMTP_PASSWORD``, ...)."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def _other_secret(name: str, value: str) -> bool:
    plain = value.strip().lower()
    return (looks_secret(name) and len(value) >= _MIN_OTHER and plain not in _PLAIN
            and not plain.replace(".", "", 1).isdigit())


def secret_values() -> list[str]:
    """The secret values present in the environment, longest first."""
    values = {os.environ.get(name, "") for name in SECRET_ENV_VARS}
    values = {v for v in values if len(v) >= _MIN_LEN}
    values |= {v for k, v in os.environ.items() if k not in SECRET_ENV_VARS and _other_secret(k, v)}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every secret value from the environment replaced by a mask."""
    return _masked(text, secret_values())


def _masked(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_tree(tree: Any) -> Any:
    """Plain JSON ``tree`` with :func:`redact` applied to every string and mapping key (the
    environment read once for the whole tree: an executed notebook holds thousands)."""
    return _masked_tree(tree, secret_values())


def _masked_tree(tree: Any, values: list[str]) -> Any:
    if isinstance(tree, str):
        return _masked(tree, values)
    if isinstance(tree, dict):
        return {_masked(k, values): _masked_tree(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_masked_tree(v, values) for v in tree]
    return tree


def redact_frame(df):
    """A pandas frame with :func:`redact` applied to its column names, text columns and a
    text index (the frame itself when there is no secret in the environment)."""
    if not secret_values():
        return df
    import pandas as pd

    def clean(values):
        return values.map(lambda v: redact(v) if isinstance(v, str) else v)

    out = df.rename(columns=lambda c: redact(c) if isinstance(c, str) else c)
    for name in out.columns:
        col = out[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(object)
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            out[name] = clean(col)
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index.dtype):
        out.index = clean(out.index)
    return out
