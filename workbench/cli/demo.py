"""``workbench demo``: the main job on the embedded defaults (what ``make demo`` runs)."""

from __future__ import annotations

import click

from workbench.cli.output import echo

__all__ = ["demo"]


@click.command()
@click.option("--end", default=None, metavar="DATE",
              help="Last session of the synthetic bars (default 2025-12-31, fixed so that the "
                   "figures and the README's examples are the same on every day).")
def demo(end: str | None) -> None:
    """Issue 9's whole path on synthetic data, no credentials: the SMA-cross notebook
    backtested and swept by papermill, the gates' evidence run, promoted to paper, and a
    replayed paper session under the supervisor; then where every record is."""
    from workbench.demo import run_demo

    run_demo(echo=echo, end=end)
