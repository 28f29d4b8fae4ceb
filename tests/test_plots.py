"""Readable figures (titles as text, New York time axes, a buy-and-hold benchmark), the
offline HTML forms (a self-contained page; a kernel's figures carrying text/html with
plotly.js once) and PNG export through kaleido and Debian's Chromium."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.backtesting import plots
from workbench.data.synth import synthesize
from workbench.errors import ConfigError


@wb.strategy(warmup=20)
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma = bars.close.rolling(fast, min_periods=fast).mean()
    slow_ma = bars.close.rolling(slow, min_periods=slow).mean()
    above = (fast_ma > slow_ma).fillna(False)
    was = above.shift(1, fill_value=False)
    return wb.Signals(entries=above & ~was, exits=~above & was)


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    return wb.Bars.from_long(synthesize(3, 60, "1Day", seed=7), timeframe="1Day")


@pytest.fixture(scope="module")
def result(bars):
    return wb.backtest(sma_cross, bars, fast=5, slow=20, fees_bps=1.0)


def test_title_is_text_not_a_dict(result):
    assert plots.title("sma_cross", {"fast": 5, "slow": 20.0}) == "sma_cross (fast=5, slow=20)"
    assert plots.title("x", {}) == "x"
    text = result.plot().layout.title.text
    assert text == "sma_cross (fast=5, slow=20)" and "{" not in text


def test_ny_axis_shows_new_york_wall_time():
    utc = pd.DatetimeIndex(["2026-07-01 13:30", "2026-12-01 14:30"], tz="UTC")
    assert list(plots.ny_axis(utc)) == [pd.Timestamp("2026-07-01 09:30"),
                                        pd.Timestamp("2026-12-01 09:30")]
    assert plots.ny_axis(utc.tz_localize(None)).equals(plots.ny_axis(utc))  # naive is UTC
    assert plots.ny_axis(pd.Index([1, 2])).equals(pd.Index([1, 2]))


def test_plot_axes_are_new_york_dates(result, bars):
    fig = result.plot(bars.symbols[0])
    close = next(t for t in fig.data if t.name == f"{bars.symbols[0]} close")
    first = pd.Timestamp(close.x[0])
    # daily bars are stamped at New York midnight (UTC 04:00/05:00): drawn on their date
    assert first.tz is None and first == pd.Timestamp(bars.index[0].tz_convert(
        "America/New_York").date())
    assert fig.layout.xaxis3.title.text == "New York time"
    entries = [t for t in fig.data if t.name and t.name.endswith("entry")]
    assert entries and all(pd.Timestamp(x).hour == 0 for t in entries for x in t.x)


def test_benchmark_is_buy_and_hold_from_the_same_cash(result, bars):
    cash = result.options.cash
    fig = result.plot(benchmark=True)
    line = next(t for t in fig.data if t.name == "buy and hold (all symbols)")
    expected = sum(cash * bars.close[s] / bars.close[s].iloc[0] for s in bars.symbols)
    np.testing.assert_allclose(np.asarray(line.y, float), expected.to_numpy())
    assert line.y[0] == pytest.approx(cash * len(bars.symbols))
    sym = bars.symbols[1]
    one = next(t for t in result.plot(sym, benchmark=True).data if t.name.startswith("buy"))
    np.testing.assert_allclose(np.asarray(one.y, float),
                               (cash * bars.close[sym] / bars.close[sym].iloc[0]).to_numpy())
    # a named symbol on the book's plot: the whole book's cash in it
    named = next(t for t in result.plot(benchmark=sym).data if t.name.startswith("buy"))
    assert named.y[0] == pytest.approx(cash * len(bars.symbols))
    assert len(result.plot().data) == 2  # no benchmark unless asked
    with pytest.raises(ConfigError, match="benchmark 'SPY' is not a symbol"):
        result.plot(benchmark="SPY")
    with pytest.raises(ConfigError, match="benchmark must be"):
        result.plot(benchmark=3)


def test_benchmark_holds_cash_before_a_symbols_first_price():
    long = synthesize(2, 30, "1Day", seed=3)
    first = min(long["symbol"].unique())  # listed from the 11th session on
    day11 = long["ts"].drop_duplicates().sort_values().iloc[10]
    late = long[(long["symbol"] != first) | (long["ts"] >= day11)]
    b = wb.Bars.from_long(late, timeframe="1Day")
    res = wb.backtest(sma_cross, b, fast=3, slow=5)
    line = res.benchmark(first)
    assert (line.iloc[:10] == res.options.cash).all()
    close = b.close[first]
    assert line.iloc[-1] == pytest.approx(res.options.cash * close.iloc[-1] / close.iloc[10])
    assert not line.isna().any()


def test_write_html_is_self_contained(tmp_path, result):
    path = plots.write_html(result.plot(), tmp_path / "fig.html")
    page = path.read_text()
    assert not re.findall(r"<script[^>]*\bsrc=", page)  # nothing loaded from elsewhere
    assert page.count("* plotly.js v") == 1 and len(page) > 3_000_000  # plotly.js inlined


@pytest.mark.slow
def test_a_kernel_figure_carries_html_with_plotlyjs_once():
    """In a (real, in-process) ipykernel shell: the first figure's text/html inlines
    plotly.js, the second's does not; both keep plotly's mime type for JupyterLab."""
    code = r"""
import json
from ipykernel.inprocess.manager import InProcessKernelManager
km = InProcessKernelManager(); km.start_kernel()
shell = km.kernel.shell
shell.run_cell('''
import plotly.graph_objects as go, plotly.io as pio
from workbench.backtesting.plots import offline_notebook_html
pio.renderers.default = "plotly_mimetype"   # plotly's default in a Jupyter kernel
active = offline_notebook_html()
f = go.Figure(go.Scatter(y=[1, 3, 2]))
b1 = pio.renderers._build_mime_bundle(f.to_dict())
b2 = pio.renderers._build_mime_bundle(f.to_dict())
''')
ns = shell.user_ns
print(json.dumps({"active": ns["active"], "default": ns["pio"].renderers.default,
                  "keys": sorted(ns["b1"]), "len1": len(ns["b1"]["text/html"]),
                  "len2": len(ns["b2"]["text/html"]),
                  "cdn": "cdn" in ns["b2"]["text/html"]}))
"""
    import json

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["active"] and got["default"] == "plotly_mimetype+workbench_offline"
    assert got["keys"] == ["application/vnd.plotly.v1+json", "text/html"]
    assert got["len1"] > 3_000_000 and got["len2"] < 20_000 and not got["cdn"]


def test_outside_a_kernel_the_renderer_is_left_alone():
    import plotly.io as pio

    before = pio.renderers.default
    assert plots.offline_notebook_html() is False
    assert pio.renderers.default == before


@pytest.mark.slow
def test_png_export_through_kaleido_and_chromium(tmp_path, result):
    path = plots.write_png(result.plot(), tmp_path / "equity.png", width=500, height=400)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_png_export_without_a_browser_says_what_to_install(tmp_path, monkeypatch, result):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chrome"))
    with pytest.raises(ConfigError, match="install Debian's chromium"):
        plots.write_png(result.plot(), tmp_path / "x.png")
