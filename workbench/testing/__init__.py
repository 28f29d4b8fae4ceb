"""Test helpers shipped with the package: a loopback fake Alpaca server and an event sink.

    from workbench.testing import FakeAlpaca, Fault

Nothing here is imported by the product (an import-linter contract; the one exception is the
``workbench fake-alpaca`` command, which serves the fake). The fake lives in
:mod:`workbench.testing.alpaca`; it exists for tests, offline demos and notebooks that want a
broker that answers on ``127.0.0.1``. Its names are bound on first use, so importing
``workbench.testing.sinks`` does not load Starlette and uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy import lazy_names

if TYPE_CHECKING:
    from workbench.testing.alpaca import FakeAlpaca, Fault, RecordedRequest

__all__ = ["FakeAlpaca", "Fault", "RecordedRequest"]

__getattr__, __dir__ = lazy_names(__name__, {name: "workbench.testing.alpaca" for name in __all__})
