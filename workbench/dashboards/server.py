"""The dashboard server: Voilà on ``notebooks/dashboards/`` only, behind a token.

    serve(ServeOptions(port=0), echo=print)   # what `workbench dashboard` runs

What it guarantees (fault 21 of the reference failure modes):

* the served root is ``notebooks/dashboards/`` of the project: no other notebook renders
  (Jupyter's contents manager refuses a path leaving the root), and the server refuses to
  start if the runs folder (``runs/`` or ``$WORKBENCH_HOME/runs``) lies inside that root;
* it binds 127.0.0.1 (or another loopback address); any other address is refused unless
  ``allow_remote`` is given, and even then the token stays: there is no way to turn it off;
* the token is generated here, in this process (no child's command line shows it: ``ps``
  never does), and printed only inside the URL;
* every handler that serves anything of the project asks for it: the two Voilà registers
  without a check (the preheated kernels' request socket, the root's image files) are
  guarded (:mod:`workbench.dashboards.guards`; the socket by a key of this server's own,
  given to the kernels in their environment);
* tracebacks are never sent to a page (``show_tracebacks`` False, checked after Voilà has
  read its configuration); Voilà's configuration files are not read at all, so a user's
  ``voila.json`` cannot loosen any of this;
* credential-like variables (``ALPACA_*`` keys, ``*TOKEN*``, ...) are removed from the
  environment the pages' kernels inherit, and their names said;
* kernels are bounded and the abandoned ones culled (:mod:`workbench.dashboards.kernels`);
* a page finds its kernel ready (``pool`` per page notebook, default 1): Voila's preheated
  kernels have imported and run the notebook before the request and wait there (in
  :func:`workbench.dashboards.preheat.on_request`) to re-read what changed since; the pool
  comes on top of ``max_kernels``;
* SIGINT/SIGTERM stop the loop, then every kernel is shut down before the process exits.

Port 0 binds a free port; the URL printed carries the port actually bound.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench import paths
from workbench.dashboards.guards import QUERY_KEY_ENV
from workbench.errors import ConfigError

__all__ = ["DASHBOARDS", "ServeOptions", "check_bind", "serve", "served_root"]

DASHBOARDS = Path("notebooks") / "dashboards"
KERNEL = "workbench"
TEMPLATE = "workbench"  # share/jupyter/voila/templates/workbench: lab without CDN links
UNUSED_EXTENSIONS = ("anywidget", "jupyterlab_pygments")
FILL_DELAY = 3.0  # seconds between a pooled kernel taken and its replacement's start
SHARE = Path(__file__).resolve().parent / "share" / "jupyter"


@dataclass(frozen=True)
class ServeOptions:
    """What `workbench dashboard` was given."""

    ip: str = "127.0.0.1"
    port: int = 8866
    allow_remote: bool = False
    max_kernels: int = 8
    cull_idle: int = 600  # seconds idle and unconnected before Jupyter's culler stops a kernel
    orphan_timeout: float = 120.0  # seconds without any connection, whatever the activity
    cull_interval: int = 30
    grace: float = 60.0  # a new kernel's page may take this long to connect
    pool: int = 1  # preheated kernels kept ready per page notebook (0: a kernel per request)


def check_bind(ip: str, allow_remote: bool) -> str:
    """The address to bind: a loopback one, or any address only with ``allow_remote``."""
    text = "127.0.0.1" if ip == "localhost" else ip
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"--ip {ip!r} is not an IP address (give 127.0.0.1 or an "
                          "address of this machine)") from None
    if not address.is_loopback and not allow_remote:
        raise ConfigError(f"--ip {ip} is not a loopback address: the dashboards would be "
                          "reachable from the network; refused without --allow-remote")
    return str(address)


def served_root(root: Path | None = None) -> Path:
    """``notebooks/dashboards/`` of the project; refused if missing or if it holds the runs."""
    base = (root or paths.project_root()) / DASHBOARDS
    if not base.is_dir():
        raise ConfigError(f"no {DASHBOARDS}/ under {base.parent.parent}: run from the "
                          "project's checkout")
    served = base.resolve()
    runs = paths.runs_dir().expanduser().resolve()
    if runs == served or served in runs.parents:
        raise ConfigError(f"the runs folder {runs} is inside the served root {served}: "
                          "move WORKBENCH_HOME out of notebooks/dashboards/")
    return served


def _port_free(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def _config(options: ServeOptions, ip: str, root: Path, token: str):
    from traitlets.config import Config

    c = Config()
    c.Voila.ip = ip
    c.Voila.port = options.port
    c.Voila.port_retries = 0
    c.Voila.open_browser = False
    c.Voila.root_dir = str(root)
    c.Voila.token = token
    c.Voila.config_file_paths = []  # no user voila.json: nothing may loosen the settings
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaConfiguration.template = TEMPLATE
    c.VoilaConfiguration.preheat_kernel = options.pool > 0
    c.VoilaConfiguration.default_pool_size = options.pool
    # a taken kernel's replacement starts once its page has mostly loaded: a kernel's start
    # (Python and the pages' imports, ~2.6 s of CPU) would compete with the browser's
    c.VoilaKernelManager.fill_delay = FILL_DELAY
    c.VoilaConfiguration.file_allowlist = [r".*\.(png|svg)"]
    # the browser loads only the extensions the pages use (widgets, plotly's renderer): no
    # anywidget (no FigureWidget in a page), no code highlighting (no code shown)
    c.VoilaConfiguration.extension_denylist = list(UNUSED_EXTENSIONS)
    c.VoilaConfiguration.multi_kernel_manager_class = \
        "workbench.dashboards.kernels.BoundedKernelManager"
    c.MappingKernelManager.default_kernel_name = KERNEL
    c.KernelManager.transport = "ipc"  # Unix sockets in Voila's private folder, no TCP port
    c.MappingKernelManager.cull_idle_timeout = options.cull_idle
    c.MappingKernelManager.cull_interval = options.cull_interval
    c.MappingKernelManager.cull_connected = False
    c.MappingKernelManager.cull_busy = False
    c.BoundedKernelManager.max_kernels = options.max_kernels
    c.BoundedKernelManager.orphan_timeout = options.orphan_timeout
    c.BoundedKernelManager.grace = options.grace
    return c


def _app_class():
    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil
    from voila.app import Voila

    class DashboardApp(Voila):
        """Voilà binding its socket first (port 0 works), telling the URL, then serving."""

        on_ready: Callable[[int], None] = staticmethod(lambda port: None)
        query_key: str = ""  # the preheated kernels' key of /voila/query (guards)

        def init_handlers(self) -> list:
            from workbench.dashboards.guards import guarded

            return guarded(super().init_handlers(), self.query_key)

        def start(self) -> None:
            # bound before Voila makes its kernel manager: the preheated kernels are given
            # the port (to ask for their page's request) when the manager is made
            self._sockets = tornado.netutil.bind_sockets(self.port, self.ip)
            self.port = self._sockets[0].getsockname()[1]
            super().start()

        def listen(self) -> None:  # Voilà's own picks ports by retrying and cannot bind 0
            from workbench.dashboards.guards import mask_tokens

            mask_tokens()  # no token in the log
            server = tornado.httpserver.HTTPServer(self.app)
            server.add_sockets(self._sockets)
            self.ioloop = tornado.ioloop.IOLoop.current()
            self.on_ready(self.port)
            try:
                self.ioloop.start()
            except KeyboardInterrupt:
                self.log.info("dashboard: interrupted")
            finally:
                server.stop()
                self.stop()  # every kernel shut down

    return DashboardApp


def _checked(app, ip: str, root: Path, token: str, pool: int) -> None:
    """What Voilà read agrees with what was asked (a silent default would be a hole)."""
    conf = app.voila_configuration
    problems = [name for name, ok in (
        ("show_tracebacks", conf.show_tracebacks is False), ("ip", app.ip == ip),
        ("root_dir", Path(app.root_dir) == root), ("token", app.token == token),
        ("template", str(SHARE) in " ".join(app.template_paths)),
        ("kernel manager", conf.multi_kernel_manager_class.__name__ == "BoundedKernelManager"),
        ("preheat_kernel", conf.preheat_kernel is (pool > 0)),
        ("extension_denylist", conf.extension_denylist == list(UNUSED_EXTENSIONS)),
        ("pool_size", conf.default_pool_size == pool),
    ) if not ok]
    if problems:
        raise ConfigError(f"the dashboard server's settings were changed: {problems}")


def withhold_secrets() -> list[str]:
    """Remove credential-like variables from this process's environment (the pages'
    kernels inherit it): their names, said when the server starts."""
    from workbench.secrets import SECRET_ENV_VARS, looks_secret

    names = sorted(n for n in os.environ if n in SECRET_ENV_VARS or looks_secret(n))
    for name in names:
        del os.environ[name]
    return names


def make_app(options: ServeOptions, ip: str, root: Path, token: str):
    """The Voila application, initialized and checked (not started)."""
    # our template is found on the Jupyter data path (Voila looks nowhere else)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(SHARE), os.environ.get("JUPYTER_PATH", "")) if p)
    app = _app_class()(config=_config(options, ip, root, token))
    app.query_key = secrets.token_hex(24)  # the kernels inherit this process's environment
    os.environ[QUERY_KEY_ENV] = app.query_key
    app.initialize([])
    _checked(app, ip, root, token, options.pool)
    return app


def serve(options: ServeOptions, echo: Callable[[str], None] = print) -> None:
    """Serve the dashboards until SIGINT/SIGTERM (see the module doc)."""
    from workbench.kernelspec import install, installed_path

    ip = check_bind(options.ip, options.allow_remote)
    root = served_root()
    if options.port and not _port_free(ip, options.port):
        raise ConfigError(f"port {options.port} on {ip} is in use: give --port (0: any free)")
    if installed_path() is None:
        install("sys-prefix")
    token = secrets.token_hex(24)
    withheld = withhold_secrets()
    app = make_app(options, ip, root, token)

    def ready(port: int) -> None:
        host = f"[{ip}]" if ":" in ip else ip
        base = f"http://{host}:{port}"
        echo(f"Dashboards of {root} (Voila, the `{KERNEL}` kernel); open:\n"
             f"  {base}/voila/render/monitor.ipynb?token={token}\n"
             f"  {base}/?token={token}   (every page)\n"
             + (f"Withheld from the pages' kernels: {', '.join(withheld)} (a dashboard never "
                "talks to a broker).\n" if withheld else "")
             + (f"{options.pool} kernel(s) per page kept ready (run before the request), on top "
                f"of the {options.max_kernels} pages' kernels.\n" if options.pool else
                "No kernel kept ready (--pool 0): each page starts its own, seconds to load.\n")
             + "Ctrl-C stops the server and its kernels.")

    app.on_ready = ready
    app.start()
