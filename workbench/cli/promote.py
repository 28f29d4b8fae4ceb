"""``workbench promote``: a notebook through the promotion gates, then registered.

The gates (:mod:`workbench.deploy.gates`) judge the recorded runs of the notebook's code;
the report (gate, measured value, limit) is printed and recorded under
``deployments/reports/`` whether or not the gates pass; only when every gate passed is a
deployment registered (:mod:`workbench.deploy.registry`).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.cli.output import echo, echo_json
from workbench.errors import WorkbenchError

__all__ = ["PromotionBlocked", "promote"]


class PromotionBlocked(WorkbenchError):
    """A gate failed: nothing was registered."""

    exit_code = 1


def _record(report) -> Path:
    from workbench.clock import LiveClock
    from workbench.fsutil import atomic_write
    from workbench.paths import deployments_dir
    from workbench.plain import plain

    stamp = LiveClock().now().strftime("%Y%m%dT%H%M%SZ")
    folder = deployments_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-{Path(report.notebook).stem}-{report.target}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{Path(report.notebook).stem}-{report.target}-{n}.json"
    text = json.dumps(plain(report.to_dict()), indent=2).encode()
    atomic_write(path, lambda tmp: tmp.write_bytes(text))
    return path


def _schedule_sets(given) -> None:
    """A deployment's sessions get their date, account and speed from the schedule."""
    from workbench.deploy.launcher import SCHEDULE_SETS
    from workbench.errors import ConfigError

    for name in given:
        if name in SCHEDULE_SETS:
            raise ConfigError(f"-p {name}: the schedule sets it for each session (replay_date: "
                              "the session's day; broker_path: the deployment's own account; "
                              "speed: `workbench schedule --speed`; capital: --cash); not a "
                              "deployment's parameter")


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["paper", "live"]), required=True,
              help="Where to promote: paper (the simulated or Alpaca paper account) or live.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter the deployment runs with (checked against the notebook's "
                   "parameters cell); repeatable. VALUE is JSON if it parses, else text.")
@click.option("--broker", type=click.Choice(["sim", "alpaca"]), default=None,
              help="The broker (default: sim for paper, alpaca for live).")
@click.option("--cash", type=float, default=100_000.0, show_default=True,
              help="The deployment's capital: its sessions' whole cash, split over their "
                   "per-symbol accounts.")
@click.option("--yes", "confirmed", is_flag=True,
              help="Confirm going live (the `confirmation` gate); never implied.")
@click.option("--json", "as_json", is_flag=True, help="Print the report (and deployment) as JSON.")
def promote(notebook: Path, target: str, params, broker, cash: float, confirmed: bool,
            as_json: bool) -> None:
    """Check NOTEBOOK against the promotion gates and register a deployment if all pass.

    The evidence is runs of this very code (its hash) with the parameters promoted: the
    -p values over the notebook's defaults, compared on the strategy parameters and costs
    each run recorded (results/settings.json); a run with other values is named, not counted.

    To paper: a backtest and a walk-forward run ended well,
    the walk-forward's out-of-sample Sharpe and drawdown are within limits, the newest
    parity run found no mismatch and its look-ahead check was clean. To live, also: enough
    paper sessions of this code, each within the drift tolerance, and --yes; live starts
    with the canary fraction of --cash. Thresholds: [gates] in workbench.toml. Editing any
    code cell changes the hash and sends the notebook back through every gate.

    Example: workbench promote notebooks/strategies/sma_cross.ipynb --to paper
    """
    from workbench.cli.grid_args import parse_params
    from workbench.config import load_settings
    from workbench.deploy.gates import evaluate
    from workbench.deploy.registry import register
    from workbench.execution.hashing import read_notebook
    from workbench.execution.params import check_parameters
    from workbench.execution.run import check_mode
    from workbench.monitor.drift import limits_of

    given = check_parameters(notebook, parse_params(params))
    _schedule_sets(given)
    check_mode(read_notebook(notebook), notebook.name, target, given)  # no unused setting
    settings = load_settings().gates
    report = evaluate(notebook, target, parameters=given, confirmed=confirmed,
                      settings=settings)
    where = _record(report)
    deployment = None
    if report.passed:
        capital = {"cash": cash}
        if target == "live":
            capital["canary"] = settings.canary_fraction
        deployment = register(notebook, mode=target, capital=capital, gates=report,
                              broker=broker or
                              ("alpaca" if target == "live" else "sim"),
                              drift_limits=limits_of(settings))
    if as_json:
        echo_json({**report.to_dict(), "report": str(where),
                   "deployment": deployment.to_dict() if deployment else None})
    else:
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in given.items()) or "none"
        echo(f"gates for {notebook} -> {target} (code {report.notebook_hash[:19]}; -p {shown} "
             "over the notebook's defaults; evidence must have run with these values):")
        for line in report.lines():
            echo(f"  {line}")
        echo(f"report: {where}")
        if deployment is not None:
            echo(f"deployed: {deployment.id} ({deployment.mode}, {deployment.broker}); "
                 "see `workbench deployments` and `workbench schedule --dry-run`")
    if not report.passed:
        names = ", ".join(r.gate for r in report.failed)
        raise PromotionBlocked(f"promotion to {target} blocked by {len(report.failed)} "
                               f"gate(s): {names}; nothing registered")
