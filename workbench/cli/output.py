"""Printing helpers shared by commands: tables for people, JSON for programs."""

from __future__ import annotations

import json
from typing import Any

import click
import pandas as pd

from workbench.plain import plain
from workbench.secrets import redact

__all__ = ["echo", "echo_json", "echo_table"]


def echo(text: str = "", err: bool = False) -> None:
    click.echo(redact(text), err=err)


def echo_json(value: Any) -> None:
    click.echo(redact(json.dumps(plain(value), indent=2)))


def echo_table(df: pd.DataFrame, empty: str = "(nothing)") -> None:
    if df.empty:
        echo(empty)
        return
    echo(df.to_string(index=False))
