"""``workbench session``, ``status``, ``halt`` and ``resume``: a replayed paper session and
its control channel.

``session`` runs one replayed day on the simulated broker (:func:`workbench.session.runner.
run_session`); ``status`` reads the catalog (never the broker); ``halt`` and ``resume``
write command files to ``runs/<id>/control/`` (never to the broker), which the session
carries out at its next bar.
"""

from __future__ import annotations

import click

from workbench.cli.output import echo, echo_json
from workbench.cli.parity import _params, _symbols, load_target
from workbench.errors import ConfigError, WorkbenchError

__all__ = ["halt", "resume", "session", "status"]


class SessionHalted(WorkbenchError):
    """The session failed closed (reconciliation) or ended on an error."""

    exit_code = 6


def _speed(text: str):
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--speed: 'max' or a positive number, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"--speed must be positive, got {text}")
    return value


@click.command()
@click.argument("target", metavar="NOTEBOOK_OR_STRATEGY")
@click.option("--broker", type=click.Choice(["sim"]), default="sim", show_default=True)
@click.option("--replay", "replay_date", required=True, help="The stored day to replay.")
@click.option("--speed", default="max", show_default=True, help="max, or N x real time.")
@click.option("--symbols", "-s", default=None, help="Comma-separated symbols or a count N.")
@click.option("--timeframe", "-t", default="1Min", show_default=True)
@click.option("--run", "run_dir", default=None, help="Restart this (crashed) run's folder.")
@click.option("--broker-path", default=None, help="A deployment's broker file (default: "
              "runs/<id>/broker.sqlite, a fresh account).")
@click.option("--size", type=float, default=0.1, show_default=True,
              help="Fraction of cash per entry.")
@click.option("--accounts", type=click.Choice(["shared", "per-symbol"]), default="shared",
              show_default=True, help="One account for all symbols, or each symbol its own "
              "account of the cash, as wb.backtest (entries then notional, sized at the fill).")
@click.option("--strategy", "name", default=None, help="The strategy, when several.")
@click.option("-p", "--param", "pairs", nargs=2, multiple=True, metavar="NAME VALUE")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def session(target, broker, replay_date, speed, symbols, timeframe, run_dir, broker_path,
            size, accounts, name, pairs, as_json) -> None:
    """Replay one stored trading day as a paper session on the simulated broker.

    Example: workbench session notebooks/strategies/sma_cross.ipynb --broker sim
    --replay 2026-11-20 --speed max --symbols 5
    """
    from workbench.session.runner import run_session

    strategy, cell = load_target(target, name)
    result = run_session(strategy, _params(strategy, cell, pairs), replay_date=replay_date,
                         speed=_speed(speed), symbols=_symbols(symbols, cell, timeframe),
                         timeframe=timeframe, broker_path=broker_path, run_dir=run_dir,
                         size=size, accounts=accounts.replace("-", "_"))
    if as_json:
        echo_json(result.to_dict())
    else:
        echo(f"run {result.run_id}: {result.outcome}: {result.message}")
        echo(f"bars {result.bars}  orders {result.orders}  fills {result.fills}  "
             f"P&L {result.pnl}  state {result.state}")
        echo(f"record: {result.path}")
    if result.outcome in ("halted", "failed"):
        raise SessionHalted(f"session {result.outcome}: {result.message}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json) -> None:
    """Sessions from the catalog: status, heartbeat age, positions, P&L, risk state."""
    from workbench.runs.status import session_status

    rows = session_status()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo("(no sessions)")
    for r in rows:
        age = "-" if r["heartbeat_age_s"] is None else f"{r['heartbeat_age_s']:.0f}s"
        echo(f"{r['run_id']}  {r['status']}/{r['outcome']}  heartbeat {age}  "
             f"state {r['risk_state']}  P&L {r['pnl']}  positions {r['positions']}")


def _send_all(command: str, run, all_runs: bool, reason: str) -> None:
    from workbench.runs.records import _run_dir, list_runs
    from workbench.session.control import send

    if all_runs == (run is not None):
        raise ConfigError(f"{command}: give a RUN or --all")
    if all_runs:
        runs = list_runs()
        targets = list(runs.loc[(runs["kind"] == "session") & (runs["status"] == "running"),
                                "path"])
    else:
        targets = [_run_dir(run, None)]
    for path in targets:
        send(path, command, reason=reason)
        echo(f"{command} sent to {path}")
    if not targets:
        echo("(no running session)")


@click.command()
@click.argument("run", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Every running session.")
@click.option("--reason", default="operator halt", show_default=True)
def halt(run, all_runs, reason) -> None:
    """Halt a session's trading at its next bar (control channel, never the broker)."""
    _send_all("halt", run, all_runs, reason)


@click.command()
@click.argument("run")
@click.option("--reason", default="operator resume", show_default=True)
def resume(run, reason) -> None:
    """Resume a halted session at its next bar (control channel)."""
    _send_all("resume", run, False, reason)
