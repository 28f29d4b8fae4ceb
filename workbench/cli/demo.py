"""``workbench demo``: the main job on the embedded defaults (what ``make demo`` runs)."""

from __future__ import annotations

import click

from workbench.cli.output import echo

__all__ = ["demo"]


@click.command()
@click.option("--end", default=None, help="Last session date of the synthetic data (default: last completed).")
def demo(end: str | None) -> None:
    """Synthesize data, show the store, then backtest and sweep the SMA-cross notebook and
    replay a paper session on the simulated broker (records in runs/). No credentials needed."""
    from workbench.demo import run_demo

    run_demo(echo=echo, end=end)
