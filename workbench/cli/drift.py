"""``workbench drift RUN``: a paper session's drift against the replayed backtest, on demand.

The session's record names its notebook and the hash of its code; the notebook must still
have that code (else refused: the strategy that traded is gone), and its code cells that
define the ``@wb.strategy`` the session traded are executed here to hold the strategy (no
kernel: the rest of the notebook is not run). Then :func:`workbench.monitor.drift_hook.
after_session`: ``results/drift.json`` rewritten, the summary printed, an alert journaled
from "warn" up. Exits 1 when the drift is at "block" or "halt".
"""

from __future__ import annotations

import sys

import click

from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError

__all__ = ["drift"]


@click.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print drift.json's document.")
def drift(run: str, as_json: bool) -> None:
    """Replay RUN's day through the backtest and measure its drift (results/drift.json).

    RUN is a paper session's run id or folder. Everything comes from its record: the day,
    symbols, parameters, costs and sizing it traded with; the strategy from its notebook
    (unchanged since). Reports signal agreement, each fill's slippage against the cost
    model, missed and extra trades and the P&L difference to the cent; exits 1 when the
    drift is above [gates] max_drift (promotion to live blocked) or halt_drift.

    Example: workbench drift 20261120T150000Z-sma_cross-session-ab12
    """
    from workbench.journal.reader import replay
    from workbench.model import events as ev
    from workbench.monitor.drift_hook import after_session
    from workbench.runs.records import _run_dir, load_manifest

    manifest = load_manifest(run)
    run_dir = _run_dir(run, None)
    if manifest.get("kind") != "session":
        raise ConfigError(f"drift: {manifest.get('run_id', run)} is a {manifest.get('kind')} "
                          "run, not a session")
    starts = [e.payload for e in replay(run_dir).events if e.type == ev.SESSION_START]
    if not starts:
        raise ConfigError(f"drift: {run_dir.name} never started trading (no session_start)")
    notebook = manifest.get("notebook") or {}
    if not notebook.get("path"):
        raise ConfigError(f"drift: {run_dir.name} records no notebook: run `wb.run(..., "
                          "mode=\"paper\")` sessions measure their drift at their end")
    from workbench.execution.record_strategy import record_strategy

    strategy = record_strategy(run_dir, starts[0]["strategy"])
    if as_json:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            report = after_session(run_dir, strategy)
    else:
        report = after_session(run_dir, strategy)
    if report is None:
        echo(f"error: drift of {run_dir.name} not measured (see the warning above)", err=True)
        sys.exit(1)
    if as_json:
        echo_json(report.to_dict())
    if report.level in ("block", "halt"):
        echo(f"error: drift {report.level}: {report.pnl_difference} vs the backtest "
             f"({report.pnl_fraction:.3%} of capital, limit {report.limits['block']:g})",
             err=True)
        sys.exit(1)
