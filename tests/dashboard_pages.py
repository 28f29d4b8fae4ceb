"""Dashboards in a real browser: the served `workbench dashboard` process, a project home with
a real catalog, and Voilà pages opened in Debian's Chromium by Playwright.

    home = synthetic_home(tmp_path_factory.mktemp("dash"))          # a store to replay
    run = replayed_session(home, jupyter_env)                       # a finished session
    with Dashboard.start(home, jupyter_env) as server, chromium() as browser:
        page = DashboardPage.open(browser, server.url("monitor.ipynb"), artifacts, "monitor")
        page.wait_for(".wb-monitor-ready"); page.shot("monitor")
        assert page.problems() == []      # JS console errors, widget "not registered" errors

The server is the installed command, a real process (``--port 0``; the URL with its token
read from its first lines); ``stop()`` sends SIGTERM and checks it exits 0 with none of its
kernels left. Screenshots go to ``$WORKBENCH_TEST_ARTIFACTS`` when set (CI keeps them), else
to the test session's temporary folder (printed at the end of the test that made them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import BIN, ROOT

__all__ = ["ARGS", "CHROMIUM", "Dashboard", "DashboardPage", "artifacts_dir", "chromium",
           "paced_session", "replayed_session", "session_run", "synthetic_home"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
DAY = "2026-11-20"  # the replayed day of the synthetic store (a Friday)
_URL = re.compile(r"(http://\S+?)/voila/render/monitor\.ipynb\?token=(\w+)")


def artifacts_dir(tmp_path_factory) -> Path:
    """Where screenshots go: ``$WORKBENCH_TEST_ARTIFACTS`` or a temporary folder."""
    given = os.environ.get("WORKBENCH_TEST_ARTIFACTS")
    if given:
        path = Path(given) / "dashboards"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("dashboard-artifacts")


def synthetic_home(home: Path, symbols: int = 6, days: int = 2) -> Path:
    """``home`` with a synthetic minute store ending on :data:`DAY` (what a session replays)."""
    from workbench.data.store import Store
    from workbench.data.synth import synthesize

    home.mkdir(parents=True, exist_ok=True)
    Store(home / "data").write(synthesize(symbols, days, "1Min", 7, DAY), "1Min",
                               source="synth")
    return home


def _env(home: Path, jupyter_env: dict) -> dict:
    from tests.early_runs import clean_env

    return clean_env(jupyter_env, home)


def paced_session(home: Path, jupyter_env: dict, speed: str, out: Path) -> subprocess.Popen:
    """`workbench session` (sma_cross, the sim broker) replaying :data:`DAY` at ``speed``."""
    cmd = [str(BIN / "workbench"), "session", str(NOTEBOOK), "--broker", "sim", "--replay",
           DAY, "--timeframe", "1Min", "--speed", speed, "--json"]
    return subprocess.Popen(["nice", "-n", "5", *cmd], stdout=open(out, "w"),
                            stderr=open(out.with_suffix(".err"), "w"), cwd=ROOT,
                            env=_env(home, jupyter_env), start_new_session=True)


def replayed_session(home: Path, jupyter_env: dict) -> Path:
    """A whole replayed session (speed max) in ``home``: its run folder."""
    out = home / "replayed-session.json"
    proc = paced_session(home, jupyter_env, "max", out)
    code = proc.wait(timeout=600)
    assert code == 0, out.with_suffix(".err").read_text()[-3000:]
    return Path(json.loads(out.read_text())["path"])


def session_run(home: Path, timeout: float = 120) -> Path:
    """The run folder of the (one) session being written in ``home``, once it journals."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in sorted((home / "runs").glob("*-session-*"))
                 if (p / "events").is_dir() and (p / "manifest.json").exists()
                 and json.loads((p / "manifest.json").read_text()).get("status") == "running"]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no running session in {home / 'runs'} after {timeout} s")


@dataclass
class Dashboard:
    """A `workbench dashboard --port 0` process serving ``home``'s catalog."""

    proc: subprocess.Popen
    base: str
    token: str
    log: Path
    said: str = ""  # what it printed before serving

    @classmethod
    def start(cls, home: Path, jupyter_env: dict, *extra: str, timeout: float = 60,
              env: dict | None = None) -> Dashboard:
        """``env``: more variables for the server (on top of the test's clean one)."""
        log = home / "dashboard.log"
        with open(log, "w") as err:  # the child keeps its own descriptor
            proc = subprocess.Popen([str(BIN / "workbench"), "dashboard", "--port", "0", *extra],
                                    stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
                                    env={**_env(home, jupyter_env), **(env or {})})
        deadline, seen, found = time.monotonic() + timeout, "", None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            found = found or _URL.search(line)
            if found and line.startswith("Ctrl-C stops"):  # the last line it prints
                return cls(proc, found.group(1), found.group(2), log, seen)
        proc.kill()
        raise AssertionError(f"no URL from `workbench dashboard`: {seen}\n{log.read_text()}")

    def url(self, page: str = "monitor.ipynb", token: bool = True) -> str:
        query = f"?token={self.token}" if token else ""
        return f"{self.base}/voila/render/{page}{query}"

    def kernels(self) -> list[int]:
        """Pids of the server's kernels alive now."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children if _is_kernel(c)]

    def waiting(self) -> list[int]:
        """Pids of the preheated kernels waiting for their page: their notebook ran up to
        its last cell, which holds a websocket to the server (the kernels' own channels are
        Unix sockets, so a TCP connection to the server's port is that wait)."""
        import psutil

        port = int(self.base.rsplit(":", 1)[1])
        found = []
        for pid in self.kernels():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                   for c in conns):
                found.append(pid)
        return found

    def preheated(self, count: int = 3, timeout: float = 300) -> list[int]:
        """Once ``count`` kernels wait for their page (one per page notebook): their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.waiting()
            if len(found) >= count:
                return found
            time.sleep(0.3)
        raise AssertionError(f"{len(self.waiting())} of {count} kernels preheated after "
                             f"{timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> list[int]:
        """SIGTERM; the server must exit 0 and take its kernels along: the kernels left."""
        import psutil

        kernels = self.kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        assert code == 0, f"dashboard exited {code}: {self.log.read_text()[-3000:]}"
        deadline = time.monotonic() + 20
        alive = kernels
        while alive and time.monotonic() < deadline:
            alive = [p for p in kernels if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)
        return alive

    def __enter__(self) -> Dashboard:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            left = self.stop()
            assert left == [], f"kernels left by the dashboard: {left}"


def _is_kernel(proc) -> bool:
    try:
        return "kernel_launcher" in " ".join(proc.cmdline())  # ipykernel's or workbench's
    except Exception:  # noqa: BLE001 - gone meanwhile
        return False


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make chromium` as root"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


_WIDGET_ERRORS = ("not registered", "Error displaying widget", "Failed to load model class",
                  "Could not create a model")


@dataclass
class DashboardPage:
    """A page opened on a dashboard, with what went wrong in it collected as it happens."""

    page: object
    artifacts: Path
    name: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    off_loopback: list[str] = field(default_factory=list)  # requests aborted: pages are offline

    @classmethod
    def open(cls, browser, url: str, artifacts: Path, name: str,
             timeout_ms: int = 120_000) -> DashboardPage:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self = cls(page, artifacts, name)
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

        def route(r):
            if r.request.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:")):
                r.continue_()
            else:
                self.off_loopback.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        return self

    def wait_for(self, selector: str, timeout_ms: int = 120_000):
        """The first element of ``selector`` once attached and visible."""
        self.page.wait_for_selector(selector, state="visible", timeout=timeout_ms)
        return self.page.locator(selector).first

    def text(self, selector: str) -> str:
        return self.page.locator(selector).first.inner_text()

    def shot(self, label: str = "") -> Path:
        path = self.artifacts / f"{self.name}{'-' + label if label else ''}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught page errors, requests that left loopback (aborted), and
        widget errors shown in the page."""
        body = self.page.locator("body").inner_text()
        shown = [w for w in _WIDGET_ERRORS if w in body]
        said = [e for e in self.console_errors + self.page_errors
                if any(w in e for w in _WIDGET_ERRORS)]
        return [*self.console_errors, *self.page_errors,
                *[f"asked off loopback: {u}" for u in self.off_loopback],
                *[f"shown in the page: {w}" for w in shown], *said]

    def close(self) -> None:
        self.page.close()
