"""`workbench dashboard` (fault 21 and 17 of the reference failure modes): Voilà on
notebooks/dashboards/ only, loopback and a token, tracebacks hidden, kernels bounded, and a
clean stop. The server is the real command; pages are opened in Debian's Chromium."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, wb_inline
from tests.dashboard_pages import Dashboard, DashboardPage, artifacts_dir, chromium

pytestmark = pytest.mark.slow  # kernels and a browser

READY = ".wb-monitor-ready"
CANARY = "PKCANARY0123456789"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str, follow: bool = False) -> tuple[int, str, str]:
    """(status, where it redirects or its URL, body) of a GET."""
    opener = urllib.request.build_opener(*(() if follow else (_NoRedirect,)))
    try:
        with opener.open(url, timeout=60) as r:
            return r.status, r.url, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", ""), e.read().decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory, jupyter_env):
    home = tmp_path_factory.mktemp("dash-home")
    with Dashboard.start(home, jupyter_env, "--max-kernels", "2", "--grace", "2",
                         env={"ALPACA_API_KEY": CANARY, "ALPACA_SECRET_KEY": CANARY}) as dash:
        yield dash


def test_non_loopback_bind_is_refused_without_allow_remote():
    out = wb_inline("dashboard", "--ip", "0.0.0.0", "--port", "0")
    assert out.returncode == 2
    assert out.stderr.startswith("error: --ip 0.0.0.0 is not a loopback address")
    assert out.stderr.count("\n") == 1, out.stderr
    bad = wb_inline("dashboard", "--ip", "example.com")
    assert bad.returncode == 2 and "not an IP address" in bad.stderr


def test_a_port_in_use_is_refused_in_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = wb_inline("dashboard", "--port", str(port))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert f"port {port} on 127.0.0.1 is in use" in out.stderr


def test_allow_remote_lets_an_address_through_the_check_but_never_drops_the_token():
    from workbench.dashboards.server import check_bind

    assert check_bind("localhost", False) == "127.0.0.1"
    assert check_bind("::1", False) == "::1"
    assert check_bind("0.0.0.0", True) == "0.0.0.0"
    # there is no option to serve without a token
    from workbench.cli.dashboard import dashboard

    assert not [o for p in dashboard.params for o in p.opts if "token" in o]


def test_runs_inside_the_served_root_are_refused(tmp_path, monkeypatch):
    from workbench.dashboards.server import served_root
    from workbench.errors import ConfigError

    (tmp_path / "notebooks" / "dashboards").mkdir(parents=True)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "notebooks" / "dashboards" / "h"))
    with pytest.raises(ConfigError, match="inside the served root"):
        served_root(tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "elsewhere"))
    assert served_root(tmp_path) == (tmp_path / "notebooks" / "dashboards").resolve()


def test_a_users_voila_config_cannot_turn_tracebacks_on(tmp_path, monkeypatch):
    from workbench.dashboards.server import ServeOptions, make_app

    conf = tmp_path / "jupyter-config"
    conf.mkdir()
    (conf / "voila.json").write_text(json.dumps({
        "VoilaConfiguration": {"show_tracebacks": True}, "Voila": {"token": ""}}))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(conf))
    monkeypatch.setenv("JUPYTER_PATH", os.environ.get("JUPYTER_PATH", ""))  # restored after
    root = (ROOT / "notebooks" / "dashboards").resolve()
    app = make_app(ServeOptions(), "127.0.0.1", root, "t0ken")  # checks what Voila read
    assert app.voila_configuration.show_tracebacks is False and app.token == "t0ken"


def test_no_token_or_a_wrong_one_is_refused_and_only_dashboards_render(server):
    for url in (server.url(token=False), server.url() .replace(server.token, "0" * 48)):
        status, where, body = _get(url)
        assert status == 302 and "/login" in where, (status, where)
        assert "wb-monitor" not in body
    status, _, body = _get(server.url())
    assert status == 200 and "monitor" in body
    # the pages' kernels never see a credential (said when the server started)
    (kernel, *_) = server.kernels()
    assert CANARY.encode() not in Path(f"/proc/{kernel}/environ").read_bytes()
    assert "Withheld from the pages' kernels: ALPACA_API_KEY, ALPACA_SECRET_KEY" in server.said
    t = server.token
    for escape in ("..%2Fstrategies%2Fsma_cross.ipynb", "../strategies/sma_cross.ipynb",
                   "%2E%2E/strategies/sma_cross.ipynb", "..%2F..%2Fpyproject.toml"):
        status, _, body = _get(f"{server.base}/voila/render/{escape}?token={t}", follow=True)
        assert status in (403, 404), (escape, status)
        assert "sma_cross" not in body and "[project]" not in body
    # the files route (images of the served root) does not leave the root either
    for escape in ("..%2F..%2Fdocs%2Fexample.png", "../../pyproject.toml", "monitor.ipynb"):
        status, _, _ = _get(f"{server.base}/voila/files/{escape}?token={t}")
        assert status in (403, 404), (escape, status)
    # the tree lists the served root only; no runs/, no other folder
    status, _, body = _get(f"{server.base}/voila/api/contents/?token={t}")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert status == 200 and "monitor.ipynb" in names and "runs" not in names
    assert names <= {p.name for p in (ROOT / "notebooks" / "dashboards").iterdir()}
    # the refused requests above (403/404) are logged without the token in their URL
    log = server.log.read_text()
    assert "/voila/files/" in log and "token=[masked]" in log
    assert t not in log


def _ws_status(url: str, headers: dict | None = None) -> int:
    """101 if a websocket opens at ``url``, else the HTTP status it was refused with."""
    import asyncio

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    async def connect() -> int:
        try:
            conn = await websocket_connect(HTTPRequest(url, headers=headers or {},
                                                       connect_timeout=30))
        except HTTPClientError as e:
            return e.code
        conn.close()
        return 101

    return asyncio.run(connect())


def test_the_kernels_request_socket_and_the_roots_files_need_a_key_or_the_token(server):
    """Voila registers ``/voila/query/<kernel id>`` (a preheated kernel waits there for its
    page's request, whose query string and URL carry the token) and ``/voila/files/`` with
    no token check: anyone on the machine who read a kernel's id in ``ps`` could take the
    kernel's place and read the token. The socket now opens with the server's key only (the
    kernels', in their environment), the files with the token."""
    import uuid

    query = f"{server.base.replace('http', 'ws', 1)}/voila/query/{uuid.uuid4()}"
    assert _ws_status(query) == 403
    assert _ws_status(f"{query}?token={server.token}") == 403  # the kernels' socket alone
    assert _ws_status(query, {"Authorization": "token " + "0" * 48}) == 403
    status, where, _ = _get(f"{server.base}/voila/files/wb.png")
    assert status == 302 and "/login" in where, (status, where)
    status, _, _ = _get(f"{server.base}/voila/files/wb.png?token={server.token}")
    assert status == 404  # past the token: there is no such image
    # the preheated kernels wait on the socket, opened with the key (pages render: above)
    from workbench.dashboards.guards import QUERY_KEY_ENV

    waiting = server.preheated()
    environ = Path(f"/proc/{waiting[0]}/environ").read_bytes().split(b"\0")
    [key] = [v.split(b"=", 1)[1].decode() for v in environ
             if v.startswith(QUERY_KEY_ENV.encode() + b"=")]
    assert _ws_status(query, {"Authorization": f"token {key}"}) == 101


def test_a_handler_not_reviewed_for_the_token_stops_the_server():
    from tornado.web import RequestHandler

    from workbench.dashboards.guards import guarded
    from workbench.errors import ConfigError

    class NewInVoila(RequestHandler):
        pass

    with pytest.raises(ConfigError, match=r"not reviewed for the token: /voila/new \(NewInVoila\)"):
        guarded([("/voila/new", NewInVoila)], "k3y")


def test_repeated_page_loads_keep_the_kernel_count_bounded(server, tmp_path_factory):
    """Three loads of the page, each abandoned (closed without its unload handler, as a
    killed tab): never more than the bound (2) of pages' kernels plus the preheated pool
    (one per page notebook: 3), the oldest one nobody is connected to evicted to make room.
    Without the bound: an earlier test's page and these three, 4 pages' kernels."""
    shots = artifacts_dir(tmp_path_factory)
    server.preheated()
    counts = []
    with chromium() as browser:
        for i in range(3):
            page = DashboardPage.open(browser, server.url(), shots, f"bounded-{i}")
            page.wait_for(READY)
            assert page.problems() == []
            time.sleep(2)  # the pool's refill started (it is what may evict)
            counts.append(len(server.kernels()))
            page.close()  # no beforeunload: the kernel is left without a connection
            time.sleep(2.5)  # past the grace: evictable by the next load
    assert max(counts) <= 2 + 3, counts
    assert "evicted (no connection" in server.log.read_text()
    assert server.log.read_text().count("Using pre-heated kernel") >= 3


def test_abandoned_kernels_are_culled_and_sigterm_leaves_no_kernel(tmp_path, jupyter_env):
    # grace: a page's kernel has no connection until the page has rendered (under load,
    # seconds): never culled before
    # the pool (one kernel per page notebook, preheated) is never culled: it has no
    # connection by design
    dash = Dashboard.start(tmp_path, jupyter_env, "--orphan-timeout", "5", "--grace", "15")
    with chromium() as browser:
        pool = set(dash.preheated())
        page = DashboardPage.open(browser, dash.url(), tmp_path, "abandoned")
        page.wait_for(READY)
        taken = pool - set(dash.waiting())  # the monitor's preheated kernel, now the page's
        assert len(taken) == 1 and taken <= set(dash.kernels())
        waiting = set(dash.preheated())  # refilled: a new monitor kernel waits
        page.close()  # abandoned: culled 5 s after its grace, without a connection
        deadline = time.monotonic() + 90
        while taken & set(dash.kernels()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not taken & set(dash.kernels())
        assert "culled: no connection" in dash.log.read_text()
        assert set(dash.kernels()) == waiting  # the pool, alone for > 20 s: kept
        page = DashboardPage.open(browser, dash.url(), tmp_path, "stop")
        page.wait_for(READY)
        assert len(dash.kernels()) >= 3
        assert dash.stop() == []  # SIGTERM: exit 0, every kernel shut down (the pool's too)


def test_the_pool_can_be_turned_off_and_what_voila_read_is_checked():
    from workbench.dashboards.server import ServeOptions, make_app

    root = (ROOT / "notebooks" / "dashboards").resolve()
    for pool in (0, 2):
        app = make_app(ServeOptions(pool=pool), "127.0.0.1", root, "t0ken")
        conf = app.voila_configuration
        assert (conf.preheat_kernel, conf.default_pool_size) == (pool > 0, pool)
