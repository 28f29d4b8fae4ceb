"""The dashboard server's handlers that Voilà registers without a token check, guarded.

    handlers = guarded(app.init_handlers(), key)    # what DashboardApp serves

Voilà (0.5) checks the token on its pages, the tree, the contents and kernel APIs and the
kernels' websockets, but not on two handlers:

* ``/voila/query/<kernel id>`` (registered with preheated kernels, our default): the
  websocket a preheated kernel opens to wait for its page's request; the server sends on it
  that request's query string and URL, which carry the token. Anyone on the machine could
  open it (a kernel's id shows in ``ps``: its connection file's name), take the kernel's
  place as the waiter (the page's kernel never learns its request) and read the token.
  Guarded: opened only with the server's own key (:data:`QUERY_KEY_ENV`, made per server,
  given to the kernels in their environment, sent by :mod:`workbench.dashboards.preheat` in
  the ``Authorization`` header), 403 otherwise, the user's token included (the socket is the
  kernels').
* ``/voila/files/<path>``: images (png, svg) of the served root, a plain static file
  handler. Guarded: the token (or the login cookie a page's first request sets), as the
  pages.

Left open on purpose (no user data: the package's own assets, as Jupyter serves them):
``/voila/static``, ``/voila/templates``, ``/voila/api/themes``, ``/voila/labextensions``,
and the login and logout pages. Voilà checks the token itself on the others (:data:`CHECKED`).
A handler in none of these lists (a Voilà upgrade adding one) stops the server at its
start, naming it, until it is reviewed here.

A page's kernel: Voilà gives it the page's whole URL and query (``VOILA_REQUEST_URL``,
``QUERY_STRING``), token included; :func:`without_credentials` masks the token there, in the
environment a page's kernel starts with (:mod:`workbench.dashboards.kernels`) and in the
request a preheated kernel receives (:mod:`workbench.dashboards.preheat`).

The log: tornado writes a request's whole URL (its access line, and a refused request's
warning), token included; :func:`mask_tokens` masks it in the server's loggers.
"""

from __future__ import annotations

import hmac
import logging
import re

from workbench.errors import ConfigError

__all__ = [
    "CHECKED",
    "LOGGERS",
    "OPEN",
    "QUERY_KEY_ENV",
    "REQUEST_URL_VARIABLES",
    "TokenMask",
    "guarded",
    "mask_tokens",
    "query_headers",
    "without_credentials",
]

#: handlers that check the token themselves (Voilà's pages, tree, contents, kernels, shutdown)
CHECKED = frozenset({"TornadoVoilaHandler", "TornadoVoilaTreeHandler", "VoilaContentsHandler",
                     "KernelHandler", "VoilaKernelWebsocketHandler",
                     "VoilaShutdownKernelHandler", "ExecutionRequestHandler"})
#: handlers left open: the package's assets, logging in and out
OPEN = frozenset({"TemplateStaticFileHandler", "MultiStaticFileHandler", "ThemesHandler",
                  "FileFindHandler", "VoilaLoginHandler", "LogoutHandler"})

#: the kernels' environment variable holding the key of ``/voila/query``
QUERY_KEY_ENV = "WORKBENCH_DASHBOARD_QUERY_KEY"


#: a URL's query parameters that carry a credential (the token, a key, the XSRF value)
#: (also at the start of a bare query string: ``token=...&run=...``)
_SECRET_PARAM = re.compile(r"((?:^|[?&])(?:token|key|_xsrf)=)[^&#]*", re.IGNORECASE)

#: the variables Voilà gives a page's kernel that hold the page's request URL or query
REQUEST_URL_VARIABLES = frozenset({"QUERY_STRING", "VOILA_REQUEST_URL"})


def without_credentials(variables: dict) -> dict:
    """A page kernel's environment (or its request's variables) with a credential in the
    request's URL masked (``token=[masked]``): Voilà puts the page's whole URL, token
    included, in the kernel's ``VOILA_REQUEST_URL`` and ``QUERY_STRING``, where the page's
    code and every process it starts could read it."""
    return {name: _SECRET_PARAM.sub(r"\1[masked]", value)
            if name in REQUEST_URL_VARIABLES and isinstance(value, str) else value
            for name, value in variables.items()}


class TokenMask(logging.Filter):
    """Masks a credential in a URL of a log record's message (``token=[masked]``): tornado's
    access log and its error lines write the whole URL, so a refused request (a 403 or 404,
    logged as a warning on the dashboard's stderr) wrote the token into the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _SECRET_PARAM.sub(r"\1[masked]", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


#: the loggers whose lines carry request URLs: tornado's, and Voilà's (the app's own)
LOGGERS = ("tornado.access", "tornado.general", "tornado.application", "DashboardApp", "Voila")


def mask_tokens() -> None:
    """Install :class:`TokenMask` on the server's loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMask) for f in logger.filters):
            logger.addFilter(TokenMask())


def query_headers(key: str) -> dict[str, str]:
    """The headers a preheated kernel opens ``/voila/query`` with."""
    return {"Authorization": f"token {key}"}


def guarded(handlers: list, key: str) -> list:
    """``handlers`` (Voilà's ``init_handlers()``) with the two unguarded ones replaced (see
    the module doc)."""
    from voila.request_info_handler import RequestInfoSocketHandler
    from voila.static_file_handler import AllowListFileHandler

    swap = {RequestInfoSocketHandler: _query_handler(key),
            AllowListFileHandler: _files_handler()}
    unknown = sorted(f"{rule[0]} ({rule[1].__name__})" for rule in handlers
                     if rule[1] not in swap and rule[1].__name__ not in CHECKED | OPEN)
    if unknown:
        raise ConfigError(f"the dashboard server registers handler(s) not reviewed for the "
                          f"token: {', '.join(unknown)} (see workbench.dashboards.guards)")
    return [(rule[0], swap.get(rule[1], rule[1]), *rule[2:]) for rule in handlers]


def _query_handler(key: str):
    from tornado.web import HTTPError
    from voila.request_info_handler import RequestInfoSocketHandler

    expected = query_headers(key)["Authorization"].encode()
    if not key:
        raise ValueError("the query key is empty")

    class KeyedRequestInfoHandler(RequestInfoSocketHandler):
        """Voilà's request info websocket, opened only with the server's query key."""

        def prepare(self):  # before the upgrade: a refusal is a plain 403
            given = self.request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise HTTPError(403, "the request info socket is the preheated kernels'")

    return KeyedRequestInfoHandler


def _files_handler():
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web
    from voila.static_file_handler import AllowListFileHandler

    class AuthenticatedAllowListFileHandler(JupyterHandler, AllowListFileHandler):
        """Voilà's files of the served root (allowlisted), for a logged-in user only."""

        @web.authenticated
        def head(self, path):
            return AllowListFileHandler.head(self, path)

        @web.authenticated
        def get(self, path, include_body=True):
            return AllowListFileHandler.get(self, path, include_body)

        def write_error(self, status_code, **kwargs):  # tornado's plain page: Jupyter's
            web.RequestHandler.write_error(self, status_code, **kwargs)  # needs static_path

    return AuthenticatedAllowListFileHandler
