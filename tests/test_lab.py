"""`workbench lab`: JupyterLab on 127.0.0.1 with a token, the project as root, the
`workbench` kernel by default; a taken port is refused in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import BIN, wb_inline


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except urllib.error.URLError:  # not listening yet
        return 0, b""


@pytest.mark.slow  # a Jupyter server start
def test_lab_serves_on_loopback_with_a_token_and_the_workbench_kernel():
    port = _port()
    proc = subprocess.Popen([str(BIN / "workbench"), "lab", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        url = proc.stdout.readline().strip()
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks?token=")
        token = url.split("token=")[1]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while _get(f"{base}/api/status?token={token}")[0] != 200:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not start within 90 s"
            time.sleep(0.5)
        assert _get(f"{base}/api/status")[0] == 403  # no token: refused
        status, body = _get(f"{base}/api/kernelspecs?token={token}")
        assert status == 200 and json.loads(body)["default"] == "workbench"
        status, body = _get(f"{base}/api/contents/notebooks?token={token}")
        assert status == 200 and json.loads(body)["type"] == "directory"
        ps = subprocess.run(["ps", "-o", "args=", "-p", str(proc.pid)], capture_output=True,
                            text=True, check=False).stdout
        assert token not in ps  # the token reaches the server by environment only
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_taken_port_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = wb_inline("lab", "--port", str(port))
    assert result.returncode != 0 and f"port {port} on 127.0.0.1 is in use" in result.stderr
