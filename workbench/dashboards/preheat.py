"""A page in a preheated kernel: wait for its request, then re-read what changed.

    page = ResearchPage()
    page.widget
    on_request(page.renew)      # the notebook's last cell

Served by `workbench dashboard`, a page's notebook runs before anyone asks for it (Voila's
preheated kernels: imports, queries and widgets done ahead) and stops in its last cell until
a browser asks for the page. What it drew is as old as the kernel, so ``renew`` then re-reads
the catalog (a new run, a session's new events): a page never shows a preheat-time picture
as if it were current. Outside a preheated kernel (Voila without a pool, JupyterLab) it
returns at once and ``renew`` is not called: the page was just drawn.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["on_request", "preheated"]


def preheated() -> bool:
    """Whether this kernel was started ahead of its page by Voila."""
    return os.environ.get("VOILA_PREHEAT") == "True"


def on_request(renew: Callable[[], object]) -> bool:
    """Wait for the page's request (preheated kernels only), then ``renew()``: whether it did."""
    if not preheated():
        return False
    from voila.utils import wait_for_request

    wait_for_request()
    renew()
    return True
