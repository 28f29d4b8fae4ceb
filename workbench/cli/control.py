"""`workbench halt` / `resume`: an operator's command to a running session, through its
control channel (never the broker); the session obeys at its next bar."""

from __future__ import annotations

import click

from workbench.cli.output import echo
from workbench.errors import ConfigError

__all__ = ["halt", "resume"]


def _send_all(command: str, run, all_runs: bool, reason: str) -> None:
    from workbench.runs.records import _run_dir, list_runs
    from workbench.session.control import send

    if all_runs == (run is not None):
        raise ConfigError(f"{command}: give a RUN or --all")
    if all_runs:
        runs = list_runs()
        targets = []
        for path in runs.loc[(runs["kind"] == "session") & (runs["status"] == "running"), "path"]:
            try:
                targets.append(_running_session(command, path))
            except ConfigError as e:  # a record that says running of a process that died
                echo(f"skipped: {e}")
    else:
        if not str(run).strip():
            raise ConfigError(f"{command}: RUN is empty; give a run id or its folder under runs/")
        targets = [_running_session(command, _run_dir(run, None))]
    for path in targets:
        send(path, command, reason=reason)
        echo(f"{command} sent to {path}")
    if not targets:
        echo("(no running session)")


def _running_session(command: str, path):
    """``path`` if it is a live running session's record under ``runs/``; else a one-line
    refusal (nothing sent: a command no session will read must not look delivered). Alive
    by the run's locks (:func:`workbench.runs.status.liveness`), not by its manifest."""
    from workbench.runs.records import load_manifest
    from workbench.session.control import inside_runs, running_session

    load_manifest(path)  # not a record: said before the folder is judged
    return running_session(inside_runs(path, command), command)


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
