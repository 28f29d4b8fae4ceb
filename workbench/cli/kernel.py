"""``workbench kernel ...``: the Jupyter kernelspec papermill and Voilà run notebooks with."""

from __future__ import annotations

import json
import sys

import click

from workbench.cli.output import echo

__all__ = ["kernel"]


@click.group()
def kernel() -> None:
    """The `workbench` Jupyter kernel (this project's Python environment)."""


@kernel.command()
@click.option("--user", "scope", flag_value="user", help="Install for the current user (~/.local/share/jupyter).")
@click.option("--sys-prefix", "scope", flag_value="sys-prefix", default=True,
              help="Install into this environment (default).")
def install(scope: str) -> None:
    """Install the kernelspec so `papermill -k workbench` and Voilà use this interpreter."""
    from workbench.kernelspec import install as do_install

    dest = do_install(scope)
    echo(f"installed kernel 'workbench' ({sys.executable}) in {dest}")


@kernel.command()
def show() -> None:
    """Print where the kernelspec is installed and what it runs."""
    from workbench.errors import ConfigError
    from workbench.kernelspec import installed_path

    where = installed_path()
    if where is None:
        raise ConfigError("kernel 'workbench' is not installed: run `workbench kernel install`")
    spec = json.loads((where / "kernel.json").read_text())
    echo(f"{where}: {' '.join(spec['argv'])}")
