"""``workbench config``: the effective settings (secrets masked)."""

from __future__ import annotations

import click

from workbench.cli.output import echo, echo_json

__all__ = ["config"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config(as_json: bool) -> None:
    """Show the effective settings and where they come from; credentials only as present/absent."""
    from workbench import paths
    from workbench.config import config_file, load_settings
    from workbench.risk.caps import CAPS

    settings = load_settings()
    derived = [c for c in CAPS if c not in settings.risk.model_fields_set]
    info = {
        "home": str(paths.home()),
        "data_dir": str(paths.data_dir()),
        "runs_dir": str(paths.runs_dir()),
        "config_file": str(config_file()) + ("" if config_file().exists() else " (absent)"),
        "settings": settings.model_dump(mode="json"),
        "alpaca_credentials": "present" if settings.credentials.present else "absent",
    }
    if as_json:
        echo_json({**info, "risk_caps_from_sizing": derived})
        return
    for key, value in info.items():
        echo(f"{key}: {value}")
    if derived:
        echo(f"note: [risk] {', '.join(derived)} not set: each session derives them from its "
             "sizing at its start (2x what it can reach; see its session_start's risk_caps)")
