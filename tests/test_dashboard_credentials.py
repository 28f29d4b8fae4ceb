"""A dashboard page's kernel never holds the server's token: Voilà gives it the page's whole
URL (``VOILA_REQUEST_URL``) and query (``QUERY_STRING``), token included; the server's kernel
manager (a page's own kernel) and the preheated page's request (a pooled kernel) mask it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jupyter_core.utils import run_sync

from workbench.dashboards.guards import without_credentials

TOKEN = "f00dfeed" * 6
URL = f"http://127.0.0.1:8866/voila/render/monitor.ipynb?run=r1&token={TOKEN}"


def test_the_request_variables_lose_their_credentials_and_nothing_else():
    given = {"QUERY_STRING": f"token={TOKEN}&run=r1", "VOILA_REQUEST_URL": URL,
             "SCRIPT_NAME": "/voila/render/monitor.ipynb", "OTHER": f"token={TOKEN}"}
    out = without_credentials(given)
    assert out["QUERY_STRING"] == "token=[masked]&run=r1"
    assert out["VOILA_REQUEST_URL"] == URL.replace(TOKEN, "[masked]")
    assert out["SCRIPT_NAME"] == given["SCRIPT_NAME"]
    assert out["OTHER"] == given["OTHER"]  # not a request variable: left as it is
    assert without_credentials({"QUERY_STRING": "run=r1"}) == {"QUERY_STRING": "run=r1"}


def test_a_preheated_pages_request_reaches_its_environment_masked(monkeypatch):
    from workbench.dashboards.preheat import apply_request

    for name in ("QUERY_STRING", "VOILA_REQUEST_URL"):
        monkeypatch.delenv(name, raising=False)
    apply_request({"QUERY_STRING": f"token={TOKEN}", "VOILA_REQUEST_URL": URL})
    assert TOKEN not in os.environ["QUERY_STRING"] + os.environ["VOILA_REQUEST_URL"]
    assert os.environ["VOILA_REQUEST_URL"].endswith("?run=r1&token=[masked]")


@pytest.mark.slow
def test_a_page_kernel_started_with_the_url_in_its_environment_never_holds_the_token(
        jupyter_env, monkeypatch, tmp_path):
    from workbench.dashboards.kernels import BoundedKernelManager

    for key in ("JUPYTER_DATA_DIR", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH"):
        monkeypatch.setenv(key, jupyter_env[key])
    manager = BoundedKernelManager(root_dir=str(tmp_path))
    env = {**os.environ, "QUERY_STRING": f"token={TOKEN}", "VOILA_REQUEST_URL": URL}

    async def started() -> str:
        return await manager.start_kernel(kernel_name="workbench", path=str(tmp_path), env=env)

    kernel_id = run_sync(started)()
    try:
        pid = manager.get_kernel(kernel_id).provisioner.pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert TOKEN.encode() not in environ
        assert b"VOILA_REQUEST_URL=" + URL.replace(TOKEN, "[masked]").encode() in environ
    finally:
        run_sync(manager.shutdown_kernel)(kernel_id, now=True)
