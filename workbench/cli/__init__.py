"""The ``workbench`` command: thin wrappers that parse, call the package, and print.

Every command has ``--help``; a bad input prints one ``error: ...`` line on stderr and
exits non-zero (2 for configuration and usage, 3 for data problems, 1 otherwise).
Nothing printed ever contains a secret.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from workbench.errors import WorkbenchError
from workbench.secrets import redact

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A click group that turns errors into one redacted line and an exit code."""

    def main(self, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            click.echo(redact(f"error: {e.format_message()}"), err=True)
            if isinstance(e, click.UsageError) and e.ctx is not None:
                click.echo(f"see `{e.ctx.command_path} --help`", err=True)
            sys.exit(e.exit_code)
        except WorkbenchError as e:
            click.echo(redact(f"error: {e}"), err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except OSError as e:  # the system refused a read or a write: what and where, plainly
            click.echo(redact(f"error: {_os_error(e)}"), err=True)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - the last line of defence
            if os.environ.get("WORKBENCH_DEBUG"):
                import traceback

                click.echo(redact(traceback.format_exc()), err=True)
            click.echo(
                redact(f"error: unexpected {type(e).__name__}: {e} "
                       "(set WORKBENCH_DEBUG=1 for the traceback)"),
                err=True,
            )
            sys.exit(1)


_HINTS = {errno.ENOSPC: "the disk is full: free space and run again",
          errno.EDQUOT: "the disk quota is used up: free space and run again",
          errno.EFBIG: "over the file size this process may write: see `ulimit -f`"}


def _os_error(e: OSError) -> str:
    """One plain line: the system's reason, the file it concerns, what to do if obvious."""
    reason = e.strerror or str(e) or type(e).__name__
    where = f": {e.filename}" if e.filename is not None else f" (errno {e.errno})"
    hint = f" ({_HINTS[e.errno]})" if e.errno in _HINTS else ""
    return f"{reason}{where}{hint}"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workbench", prog_name="workbench")
def cli() -> None:
    """The workbench: research, backtest and trade US stocks from Jupyter notebooks.

    Data and runs live under the project root (data/, runs/); set WORKBENCH_HOME=DIR to
    keep them in DIR/data and DIR/runs instead. Settings come from workbench.toml and
    WORKBENCH__SECTION__KEY environment variables; credentials only from ALPACA_API_KEY
    and ALPACA_SECRET_KEY.
    """
    from workbench.config import load_settings
    from workbench.log import configure

    settings = load_settings()
    configure(settings.log.level, settings.log.format)


def _register() -> None:
    from workbench.cli import (
        backtest,
        config_cmd,
        control,
        dashboard,
        data,
        demo,
        deploy,
        drift,
        fake_alpaca,
        kernel,
        lab,
        parity,
        promote,
        run,
        session,
        status,
    )

    cli.add_command(data.data)
    cli.add_command(kernel.kernel)
    cli.add_command(lab.lab)
    cli.add_command(dashboard.dashboard)
    cli.add_command(config_cmd.config)
    cli.add_command(demo.demo)
    cli.add_command(backtest.backtest)
    cli.add_command(backtest.sweep)
    cli.add_command(parity.parity)
    cli.add_command(drift.drift)
    cli.add_command(fake_alpaca.fake_alpaca)
    cli.add_command(run.run)
    for command in (session.session, status.status, control.halt, control.resume):
        cli.add_command(command)
    for command in (promote.promote, deploy.deployments, deploy.retire, deploy.schedule,
                    deploy.supervise):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="workbench")
