"""Figures that read well and open anywhere: titles, New York time axes, offline HTML, PNG.

    title("sma_cross", {"fast": 10, "slow": 30})   # 'sma_cross (fast=10, slow=30)'
    ny_axis(index)                                 # UTC index -> naive New York wall time
    offline_notebook_html()                        # in a kernel: figures also carry text/html
    write_html(fig, "results/heatmap.html")        # one file, plotly.js inlined, no CDN
    write_png(fig, "equity.png")                   # kaleido driving Debian's Chromium

**Notebooks.** In a Jupyter kernel plotly's default renderer emits only the plotly mime type
(``application/vnd.plotly.v1+json``), which JupyterLab draws but ``nbconvert --to html``,
GitHub and other viewers do not. :func:`offline_notebook_html` (called by every workbench
figure and by the run modes' ``show``) makes the kernel's default renderer
``plotly_mimetype+workbench_offline``: each figure keeps the mime type (JupyterLab) and also
carries a ``text/html`` form; the first figure of the kernel inlines plotly.js (~4.8 MB) and
the later ones reuse it, so an executed notebook holds plotly.js once, not per figure.
Re-running cells in JupyterLab can drop the output that held it; re-run the notebook (or
``Restart Kernel and Run All``) before converting it. No MathJax and no CDN are referenced.
To keep a notebook you save from JupyterLab small (mime type only), choose plotly's
renderer yourself first: ``plotly.io.renderers.default = "jupyterlab"`` is left alone.

**PNG.** plotly's ``fig.write_image`` uses kaleido 1.x, which drives a Chrome-family
browser; kaleido reads the browser's path from the ``BROWSER_PATH`` environment variable.
:func:`write_png` points it at Debian's ``/usr/bin/chromium`` (``make test`` installs it)
unless ``BROWSER_PATH`` is already set, and says what to install when no browser is found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import ConfigError
from workbench.times import NEW_YORK

__all__ = ["CHROMIUM", "RENDERER", "masked", "ny_axis", "offline_notebook_html", "title",
           "write_html", "write_png"]

RENDERER = "workbench_offline"
CHROMIUM = "/usr/bin/chromium"
TIME_AXIS = "New York time"


def title(name: str, params: dict[str, Any] | None = None) -> str:
    """``name (a=1, b=2)``: a strategy and its parameters as text, not a dict's repr."""
    if not params:
        return name
    return f"{name} (" + ", ".join(f"{k}={_value(v)}" for k, v in params.items()) + ")"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def ny_axis(index: pd.Index) -> pd.Index:
    """A time index as New York wall-clock time without a zone (plotly draws a zone-aware
    time in whatever way the browser likes; a naive one exactly as written). A naive index
    is UTC (the workbench's rule); a non-time index is returned as is."""
    if not isinstance(index, pd.DatetimeIndex):
        return index
    aware = index.tz_localize("UTC") if index.tz is None else index
    return aware.tz_convert(NEW_YORK).tz_localize(None)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the kernel
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__module__.startswith("ipykernel.")


def _renderer_class():
    from plotly.io.base_renderers import MimetypeRenderer

    class OfflineHtml(MimetypeRenderer):
        """``text/html`` for a figure: a div and its script; plotly.js inlined the first
        time this kernel shows a figure, referenced afterwards."""

        def __init__(self) -> None:
            # plotly copies a renderer before each use (a shallow copy): the flag lives in a
            # dict the copies share
            self.state = {"shipped": False}

        def to_mimebundle(self, fig_dict):
            from plotly.io import to_html

            from workbench.secrets import redact_tree

            fig_dict = redact_tree(fig_dict)  # plain lists and strings here: masked in place
            first = not self.state["shipped"]
            html = to_html(fig_dict, include_plotlyjs=first, include_mathjax=False,
                           full_html=False, default_width="100%", default_height=525,
                           validate=False)
            self.state["shipped"] = True
            return {"text/html": html}

    return OfflineHtml


def masked(fig):
    """``fig`` with every secret value of the environment masked in every text it holds
    (titles, axis labels, category values, hover templates, ...): a new figure, or ``fig``
    itself when there is no secret to mask or none appears. Every figure written or shown
    here passes through it (a credential swept as a string once reached heatmap.html)."""
    from workbench.secrets import redact, secret_values

    if not secret_values():
        return fig
    import plotly.io as pio

    text = pio.to_json(fig, validate=False)
    clean = redact(text)
    return fig if clean == text else pio.from_json(clean, skip_invalid=True)


def offline_notebook_html() -> bool:
    """In a Jupyter kernel whose plotly renderer is still plotly's kernel default
    (``plotly_mimetype``), add :data:`RENDERER` so figures also carry offline HTML. Does
    nothing outside a kernel or when the user chose a renderer; True when it is active."""
    if not _in_kernel():
        return False
    import plotly.io as pio

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = _renderer_class()()
    if pio.renderers.default == "plotly_mimetype":
        pio.renderers.default = f"plotly_mimetype+{RENDERER}"
    return RENDERER in pio.renderers.default.split("+")


def write_html(fig, path) -> Path:
    """``fig`` as one self-contained HTML page at ``path`` (written atomically): plotly.js
    inlined, no CDN, no MathJax, so it opens offline; secrets :func:`masked`."""
    from workbench.fsutil import atomic_write

    path = Path(path)
    fig = masked(fig)
    atomic_write(path, lambda p: fig.write_html(p, include_plotlyjs=True, include_mathjax=False,
                                               full_html=True))
    return path


def write_png(fig, path, *, width: int | None = None, height: int | None = None,
              scale: float = 1) -> Path:
    """``fig`` as a PNG at ``path`` through kaleido and a Chrome-family browser (Debian's
    Chromium unless ``BROWSER_PATH`` names another); secrets :func:`masked` before drawing."""
    if "BROWSER_PATH" not in os.environ and Path(CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = CHROMIUM
    try:
        import kaleido  # noqa: F401
    except ImportError as e:
        raise ConfigError("PNG export needs kaleido: pip install kaleido "
                          "(it is in the workbench's dependencies)") from e
    path = Path(path)
    fig = masked(fig)
    try:
        fig.write_image(str(path), format="png", width=width, height=height, scale=scale)
    except RuntimeError as e:  # kaleido's ChromeNotFoundError is one (plotly may re-wrap it)
        if "chrome" not in str(e).lower():
            raise
        raise ConfigError(f"PNG export found no browser for kaleido ({e}); install Debian's "
                          f"chromium (apt-get install chromium, or `make test` as root) or set "
                          f"BROWSER_PATH to a Chrome") from e
    return path
