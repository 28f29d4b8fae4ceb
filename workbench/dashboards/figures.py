"""A plotly figure in an ipywidgets page, robust to a slow page load.

    slot = FigureSlot()
    page = VBox([..., slot.box])
    slot.draw(go.Figure(...))       # replaces the figure; the browser redraws it in place

The figure goes out as plotly's mime bundle (``application/vnd.plotly.v1+json``, drawn by
the jupyterlab-plotly renderer Voila loads) inside an Output widget, not as a FigureWidget:
each FigureWidget loads plotly's 4.6 MB widget module in the page, and anywidget rejects a
model whose module took over 2 s (an uncaught "[anywidget] Failed to initialize model." on
a busy machine). The bundle is the Output widget's synced ``outputs`` state, set directly
(not captured with ``with out: display(...)``, whose messages a page gets only while it is
connected): a figure drawn before any browser looks (a preheated kernel, the monitor's
refresh task) is in the state the page reads when it connects, and each later draw reaches
an open page as a state update, without reload.
"""

from __future__ import annotations

import json

import ipywidgets as widgets

__all__ = ["FigureSlot"]

MIME = "application/vnd.plotly.v1+json"


class FigureSlot:
    """An Output widget showing one plotly figure, replaced whole at each :meth:`draw`."""

    def __init__(self) -> None:
        self.figure = None
        self.box = widgets.Output()

    def draw(self, fig) -> None:
        self.figure = fig
        data = {MIME: json.loads(fig.to_json()),
                "text/plain": str(fig.layout.title.text or "figure")}
        self.box.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
