"""Progress bars that suit where the output goes: one rule for every long loop.

    for item in progress_bar(items, desc="walk-forward", unit="fold"):
        ...

* In a notebook (an IPython kernel): tqdm's widget bar.
* On a terminal (stderr is a TTY): tqdm's text bar, redrawn in place.
* Anywhere else (a log file, a pipe, CI, a supervisor's capture): one plain line every
  :data:`LOG_EVERY_S` seconds, and the first and last, instead of hundreds of ``\\r``
  redraws that a log keeps as one long line.

``disable=True`` gives the iterable back as is (or a no-op bar). Keyword arguments are
tqdm's (``total``, ``desc``, ``unit``).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["LOG_EVERY_S", "progress_bar"]

LOG_EVERY_S = 5.0


class _Lines:
    """A file for tqdm that writes each refresh as one line (for logs)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    ip = getattr(shell, "get_ipython", lambda: None)() if shell is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_bar(iterable=None, *, disable: bool = False, **kwargs: Any):
    """A tqdm bar for ``iterable`` (or a manual one, ``total=``) shaped by where it goes."""
    if disable and iterable is not None:
        return iterable
    if _in_kernel():
        from tqdm.auto import tqdm

        return tqdm(iterable, disable=disable, **kwargs)
    from tqdm import tqdm

    stream = kwargs.pop("file", None) or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, disable=disable, file=stream, **kwargs)
    return tqdm(iterable, disable=disable, file=_Lines(stream), mininterval=LOG_EVERY_S,
                maxinterval=LOG_EVERY_S * 2, ascii=True, dynamic_ncols=False, ncols=100,
                **kwargs)
