"""Test helpers shipped with the package: a loopback fake Alpaca server.

    from workbench.testing import FakeAlpaca, Fault

Nothing here is imported by the rest of the workbench; it exists for tests, offline
demos and notebooks that want a broker that answers on ``127.0.0.1``.
"""

from __future__ import annotations

from workbench.testing.fake_alpaca import FakeAlpaca
from workbench.testing.fake_http import FakeRequest, Fault, RecordedRequest, Response, Router

__all__ = ["FakeAlpaca", "FakeRequest", "Fault", "RecordedRequest", "Response", "Router"]
