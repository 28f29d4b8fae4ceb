"""A page in a preheated kernel: wait for its request, then re-read what changed.

    page = ResearchPage()
    page.widget
    on_request(page.renew)      # the notebook's last cell

Served by `workbench dashboard`, a page's notebook runs before anyone asks for it (Voila's
preheated kernels: imports, queries and widgets done ahead) and stops in its last cell until
a browser asks for the page. What it drew is as old as the kernel, so ``renew`` then re-reads
the catalog (a new run, a session's new events): a page never shows a preheat-time picture
as if it were current. Outside a preheated kernel (Voila without a pool, JupyterLab) it
returns at once and ``renew`` is not called: the page was just drawn.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["apply_request", "on_request", "preheated"]


def preheated() -> bool:
    """Whether this kernel was started ahead of its page by Voila."""
    return os.environ.get("VOILA_PREHEAT") == "True"


def on_request(renew: Callable[[], object]) -> bool:
    """Wait for the page's request (preheated kernels only), then ``renew()``: whether it did."""
    if not preheated():
        return False
    _wait_for_request()
    renew()
    return True


def _wait_for_request() -> None:
    """Voilà's ``wait_for_request`` with the server's query key (``/voila/query`` refuses a
    connection without it: :mod:`workbench.dashboards.guards`): the request's variables
    (``QUERY_STRING``, ...) set in this kernel's environment once a browser asks for the page."""
    import asyncio
    import json
    import threading

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    from workbench.dashboards.guards import QUERY_KEY_ENV, query_headers

    key = os.environ.get(QUERY_KEY_ENV)
    if not key:
        raise RuntimeError(f"a preheated page's kernel needs {QUERY_KEY_ENV} (set by "
                           "`workbench dashboard`) to wait for its request")
    env = os.environ.get
    base = env("VOILA_WS_BASE_URL", env("VOILA_SERVER_URL", "/"))
    url = (f"{env('VOILA_WS_PROTOCOL', 'ws')}://{env('VOILA_APP_IP', '127.0.0.1')}:"
           f"{env('VOILA_APP_PORT', '8866')}{base}voila/query/{env('VOILA_KERNEL_ID')}")

    async def receive() -> str:
        conn = await websocket_connect(HTTPRequest(url, headers=query_headers(key),
                                                   connect_timeout=5))
        try:
            message = await conn.read_message()
        finally:
            conn.close()
        if message is None:
            raise RuntimeError(f"{url}: closed before the page's request came")
        return message

    got: list = []
    # a thread of its own: the kernel's event loop runs in this one
    thread = threading.Thread(target=lambda: got.append(_outcome(asyncio.run, receive)))
    thread.start()
    thread.join()
    ok, value = got[0]
    if not ok:
        raise RuntimeError(f"the page's request did not come: {value}") from value
    apply_request(json.loads(value))


def apply_request(variables: dict[str, str]) -> None:
    """The page's request variables into this kernel's environment, a credential in its URL
    masked (:func:`workbench.dashboards.guards.without_credentials`)."""
    from workbench.dashboards.guards import without_credentials

    for name, text in without_credentials(variables).items():
        os.environ[name] = text


def _outcome(run, make) -> tuple[bool, object]:
    try:
        return True, run(make())
    except Exception as e:  # noqa: BLE001 - raised again in the kernel's thread
        return False, e
