"""``workbench run NOTEBOOK --mode MODE``: any notebook executed by papermill, recorded in runs/.

The notebook runs on the ``workbench`` kernel with ``-p`` values and ``mode``/``run_dir``
injected into its cell tagged ``parameters`` (see :mod:`workbench.execution.run`); the
record (manifest with the outcome, the executed notebook) goes to ``runs/<run_id>/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.grid_args import parse_params
from workbench.cli.output import echo, echo_json

__all__ = ["run"]

_SESSION_MODES = ("paper", "live")




@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mode", required=True,
              help="The mode injected as `mode` (research, backtest, sweep, parity, paper, ...).")
@click.option("--kind", default=None,
              help="The run's kind in its id and manifest. Default: session for paper and "
                   "live, else the mode.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A value for the notebook's parameters cell; repeatable. VALUE is JSON if "
                   "it parses, else text.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="A cell running longer ends the run (outcome timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def run(notebook: Path, mode: str, kind: str | None, params, timeout: float | None,
        as_json: bool) -> None:
    """Execute NOTEBOOK with papermill in --mode; the record goes to runs/<run_id>/.

    Parameters are checked against the notebook's `parameters` cell before the kernel
    starts (a typo is an error naming the closest parameter). The record holds
    manifest.json (outcome: succeeded, failed, timeout or interrupted) and notebook.ipynb,
    the executed notebook with its outputs, every credential masked. Exits 0 only when
    the run succeeded.

    Example: workbench run notebooks/strategies/sma_cross.ipynb --mode backtest -p fast 5
    """
    from workbench.execution.run import exit_code, run_notebook

    kind = kind or ("session" if mode in _SESSION_MODES else mode)
    result = run_notebook(notebook, kind=kind, mode=mode, params=parse_params(params),
                          timeout=timeout)
    if as_json:
        echo_json(result.to_dict())
    else:
        detail = f" ({result.error})" if result.error and result.error != result.outcome else ""
        echo(f"{result.outcome}{detail}: record {result.path}")
        if result.skipped:
            echo(f"{len(result.skipped)} cells tagged `research` were skipped in mode {mode} "
                 f"(cells {', '.join(map(str, result.skipped))}, counted from 0)")
    code = exit_code(result.outcome)
    if code:
        sys.exit(code)  # (a click Exit would be swallowed by the group's non-standalone main)
