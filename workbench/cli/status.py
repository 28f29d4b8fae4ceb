"""``workbench status``: every session run as the catalog sees it (never the broker)."""

from __future__ import annotations

import click

from workbench.cli.output import echo, echo_json

__all__ = ["status"]


@click.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json) -> None:
    """Sessions from the catalog: status (a run no process holds: died), last heartbeat,
    positions, P&L, risk state. A damaged journal: a warning, and exit 3."""
    from workbench.errors import DataError
    from workbench.runs.status import describe_damage, session_status

    rows = session_status()
    if as_json:
        echo_json(rows)
    elif not rows:
        echo("(no sessions)")
    for r in [] if as_json else rows:
        age = "-" if r["heartbeat_age_s"] is None else f"{r['heartbeat_age_s']:.0f}s"
        partial = " (partial: journal damaged)" if r["damaged"] else ""
        echo(f"{r['run_id']}  {r['status']}/{r['outcome']}  heartbeat {age}  "
             f"state {r['risk_state']}  P&L {r['pnl']}{partial}  "
             f"positions{partial} {r['positions']}")
        if r["status"] == "died":
            beat = (f"last heartbeat {r['last_heartbeat']}" if r["last_heartbeat"]
                    else "no heartbeat")
            echo(f"  died: no process holds the run ({beat}); its manifest still says "
                 f"running: restart it with `workbench session --run {r['path']}`", err=True)
    damaged = [r for r in rows if r["damaged"]]
    for r in damaged:
        echo(f"warning: {describe_damage(r)}", err=True)
    if damaged:
        raise DataError(f"{len(damaged)} session run(s) with a damaged journal: "
                        f"{', '.join(r['run_id'] for r in damaged)}")
