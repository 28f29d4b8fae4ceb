"""Printing helpers shared by commands: tables for people, JSON for programs."""

from __future__ import annotations

import json
from typing import Any

import click
import pandas as pd

from workbench.secrets import redact

__all__ = ["echo", "echo_json", "echo_table", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def echo(text: str = "", err: bool = False) -> None:
    click.echo(redact(text), err=err)


def echo_json(value: Any) -> None:
    click.echo(redact(json.dumps(to_jsonable(value), indent=2)))


def echo_table(df: pd.DataFrame, empty: str = "(nothing)") -> None:
    if df.empty:
        echo(empty)
        return
    echo(df.to_string(index=False))
