"""The loopback fake Alpaca server (Starlette + uvicorn) for tests, demos and offline trying.

    from workbench.testing.alpaca import FakeAlpaca, Fault

Modules: ``server`` (``FakeAlpaca``: life cycle, auth, recording, the assembled app),
``faults`` (REST fault injection), ``market`` (bars and the market-data routes), ``book`` and
``trading`` (the order book and the trading routes), ``replay`` (the scaled clock and the
replay of a stored day), ``hub`` and ``streams`` (the two websockets).
"""

from __future__ import annotations

from workbench.testing.alpaca.faults import Fault
from workbench.testing.alpaca.server import FakeAlpaca, RecordedRequest

__all__ = ["FakeAlpaca", "Fault", "RecordedRequest"]
