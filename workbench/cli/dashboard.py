"""`workbench dashboard`: the Voilà dashboards of ``notebooks/dashboards/`` (monitor, ...),
on 127.0.0.1 with a fresh token printed in the URL; see :mod:`workbench.dashboards.server`."""

from __future__ import annotations

import sys

import click

from workbench.cli.output import echo

__all__ = ["dashboard"]


def _say(text: str) -> None:
    echo(text)
    sys.stdout.flush()  # the URL is read by whoever started us, at once


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8866, show_default=True,
              help="The port (0: any free port; the URL printed says which).")
@click.option("--ip", default="127.0.0.1", show_default=True,
              help="The address to bind; not a loopback one only with --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --ip (the token is still required).")
@click.option("--max-kernels", type=click.IntRange(1, 64), default=8, show_default=True,
              help="The most pages (kernels) open at once.")
@click.option("--cull-idle", type=click.IntRange(10, 86400), default=600, show_default=True,
              help="Seconds an idle page's kernel with no connection lives.")
@click.option("--orphan-timeout", type=click.FloatRange(5, 86400), default=120.0,
              show_default=True,
              help="Seconds a kernel with no connection lives, whatever it is doing.")
@click.option("--grace", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="Seconds a new page's kernel is never evicted to make room (its render).")
@click.option("--pool", type=click.IntRange(0, 4), default=1, show_default=True,
              help="Kernels kept ready per page (notebook run before the request; on top "
                   "of --max-kernels); 0: each page starts its own kernel (slow).")
def dashboard(port, ip, allow_remote, max_kernels, cull_idle, orphan_timeout, grace,
              pool) -> None:
    """Serve the dashboards (Voila) of notebooks/dashboards/ with a token; Ctrl-C stops."""
    from workbench.dashboards.server import ServeOptions, serve

    interval = max(1, min(30, int(min(cull_idle, orphan_timeout) // 4)))
    serve(ServeOptions(ip=ip, port=port, allow_remote=allow_remote, max_kernels=max_kernels,
                       cull_idle=cull_idle, orphan_timeout=orphan_timeout,
                       cull_interval=interval, grace=grace, pool=pool), echo=_say)
