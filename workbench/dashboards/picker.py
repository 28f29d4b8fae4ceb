"""What the research and drift pages share: a run picker over :class:`RunList`, a status
line, and every callback guarded (an error is shown on the page, never swallowed)."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets

from workbench.dashboards.queries import RunList

__all__ = ["RunPicker"]


class RunPicker:
    """``picker`` (a dropdown of runs), ``reload`` and ``status``; a page subclass says
    which runs (:meth:`labels`) and what to say when there is none (:meth:`none_text`)."""

    def __init__(self, root: str | Path | None, description: str, width: str) -> None:
        self.runs = RunList(root)
        self.picker = widgets.Dropdown(description=description, layout=widgets.Layout(width=width))
        self.reload = widgets.Button(description="Reload list", icon="refresh")
        self.status = widgets.HTML()

    def labels(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def none_text(self) -> str:
        raise NotImplementedError

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - shown on the page, never swallowed
            self._say(f"{type(e).__name__}: {e}", error=True)

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#333"
        self.status.value = f'<div style="color:{color}">{html.escape(text)}</div>'

    def refresh_list(self) -> None:
        """The runs again; the one shown stays picked, else the newest."""
        labels = self.labels()
        current = self.picker.value
        self.picker.options = labels
        if not labels:
            self._say(self.none_text())
        elif current not in [v for _, v in labels]:
            self.picker.value = labels[0][1]

    def renew(self) -> None:
        """The run list again and its newest run shown, as a new page would (a preheated
        kernel's page, at its request: :mod:`workbench.dashboards.preheat`)."""
        self._guard(self._renew)

    def _renew(self) -> None:
        self.refresh_list()
        newest = self.picker.options[0][1] if self.picker.options else None
        if newest is not None and newest != self.picker.value:
            self.picker.value = newest  # observed: shown
        else:
            self.same_run(newest)

    def same_run(self, run_id: str | None) -> None:
        """The run shown is still the newest: what it wrote since (the page's own)."""
