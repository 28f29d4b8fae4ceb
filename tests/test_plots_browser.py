"""Plots open offline in a real browser: Debian's Chromium, driven by playwright, with every
request that is not a local file aborted.

The demo's real sweep (`workbench sweep` on the sma_cross notebook: papermill, the workbench
kernel) makes the record; then its ``results/heatmap.html`` and its executed notebook
converted by ``jupyter nbconvert --to html`` are opened, the plotly graph must be drawn
(the heatmap's image in the SVG), and a screenshot of it must not be blank. No browser is
downloaded: playwright launches ``/usr/bin/chromium`` (``make test`` installs it)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import nbformat
import pytest

from tests.conftest import BIN, ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SMA = str(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb")
PLOTLYJS = "* plotly.js v"  # plotly.js's banner: once per copy


@pytest.fixture(scope="module")
def sweep_record(jupyter_env, tmp_path_factory) -> Path:
    """A real sweep record (two parameters vary: a heatmap): the one `workbench demo` made
    (a `workbench sweep` of the sma_cross notebook), read only; the demo runs once per test
    session, in the background from its start (tests/early_runs.py)."""
    import json

    from tests.demo_run import demo_run

    run = demo_run(jupyter_env, tmp_path_factory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (record,) = [p for p in sorted((run.home / "runs").iterdir())
                 if json.loads((p / "manifest.json").read_text())["kind"] == "sweep"]
    assert (record / "results" / "heatmap.html").exists()
    return record


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make chromium` as root"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _open_offline(browser, path: Path):
    """A page with ``path`` loaded and every non-file request aborted; (page, blocked URLs)."""
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, blocked


def _drawn_heatmap(page):
    """The first plotly graph div once its heatmap is drawn (an <image> in its SVG)."""
    page.wait_for_selector(".js-plotly-plot .heatmaplayer image", state="attached",
                           timeout=15_000)
    return page.locator(".js-plotly-plot").first


def _not_blank(png: bytes) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) one colour"
    white = sum(n for n, c in colors if c == (255, 255, 255))
    assert white < 0.9 * img.width * img.height, "the screenshot is mostly blank"


def test_sweep_heatmap_record_opens_offline_and_shows_the_heatmap(sweep_record, browser,
                                                                   tmp_path):
    html = sweep_record / "results" / "heatmap.html"
    text = html.read_text()
    assert text.count(PLOTLYJS) == 1  # plotly.js inlined
    page, blocked = _open_offline(browser, html)
    try:
        graph = _drawn_heatmap(page)
        assert blocked == []  # nothing asked of the network: no CDN
        assert page.evaluate("typeof window.Plotly") == "object"
        title = page.locator(".js-plotly-plot .gtitle").first.text_content()
        assert title.startswith("sma_cross: ")
        shot = tmp_path / "heatmap.png"
        graph.screenshot(path=str(shot))
        _not_blank(shot.read_bytes())
    finally:
        page.close()


def test_executed_notebook_converted_to_html_shows_the_chart_offline(sweep_record, browser,
                                                                      tmp_path):
    executed = sweep_record / "notebook.ipynb"
    raw = executed.read_text()
    assert raw.count(PLOTLYJS) == 1  # plotly.js once per notebook, not per figure
    assert len(raw) < 8_000_000, f"the executed notebook is {len(raw):,} bytes"
    nb = nbformat.read(executed, as_version=4)
    figures = [o for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert figures and all("text/html" in o["data"] for o in figures)  # both forms
    out = tmp_path / "notebook.html"
    proc = subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", str(executed),
                           "--output", str(out)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page, blocked = _open_offline(browser, out)
    try:
        graph = _drawn_heatmap(page)
        shot = tmp_path / "notebook-heatmap.png"
        graph.screenshot(path=str(shot))
        _not_blank(shot.read_bytes())
        # only nbconvert's own page furniture (require.js, MathJax) asked for the network
        assert all("plot.ly" not in url and "plotly" not in url for url in blocked), blocked
    finally:
        page.close()
