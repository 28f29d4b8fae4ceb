"""`workbench lab`: the project's JupyterLab in one command.

JupyterLab on 127.0.0.1 only, with a fresh token (printed in the URL, passed to the server
through ``JUPYTER_TOKEN``, never on its command line), the project as its root, opened on
``notebooks/``, and the `workbench` kernel as the default for new notebooks (installed
first if it is missing). The plotly and widget front-ends come with the environment's
packages. Ctrl-C stops it, as any Jupyter server.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys

import click

from workbench.cli.output import echo
from workbench.errors import ConfigError

__all__ = ["lab"]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@click.command()
@click.option("--port", type=click.IntRange(1024, 65535), default=8888, show_default=True,
              help="The port on 127.0.0.1 (refused if taken).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open a browser on the URL.")
def lab(port: int, open_browser: bool) -> None:
    """Start JupyterLab on this project (127.0.0.1, a token, the `workbench` kernel)."""
    from workbench.kernelspec import install, installed_path
    from workbench.paths import project_root

    root = project_root()
    if not (root / "notebooks").is_dir():
        raise ConfigError(f"no notebooks/ under {root}: run from the project's checkout")
    if not _free(port):
        raise ConfigError(f"port {port} on 127.0.0.1 is in use: give --port")
    if installed_path() is None:
        install("sys-prefix")
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}/lab/tree/notebooks?token={token}"
    echo(f"JupyterLab on {root} (the `workbench` kernel by default); open:\n  {url}")
    sys.stdout.flush()
    args = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}", "--LabApp.default_url=/lab/tree/notebooks",
            "--MappingKernelManager.default_kernel_name=workbench",
            f"--ServerApp.open_browser={open_browser}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container's root: Jupyter asks to be told
        args.append("--ServerApp.allow_root=True")
    os.execve(sys.executable, args, {**os.environ, "JUPYTER_TOKEN": token})
