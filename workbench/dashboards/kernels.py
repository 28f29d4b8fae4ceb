"""The dashboard server's kernel manager: a bound on kernels and culling of abandoned ones.

Each page load starts a kernel (Voilà shuts it down when the page unloads). Two things can
still pile kernels up: pages closed without an unload (a browser killed, a network cut)
and a storm of page loads. So:

* ``max_kernels``: a new page beyond the bound first evicts the oldest kernel nobody is
  connected to (older than ``grace`` seconds, so a page being rendered keeps its kernel);
  with none to evict, the page is refused (HTTP 503, said in one line).
* the idle culler of Jupyter (``cull_idle_timeout``) does not see an abandoned monitor: its
  refresh task keeps the kernel "active". ``orphan_timeout``: a kernel with no connection
  for that long is shut down whatever its activity, checked every ``cull_interval``.

With Voila's preheated kernels (``preheat_kernel``: Voila makes its ``VoilaKernelManager`` a
subclass of this one), the kernels waiting in a pool have no connection by design: they are
neither evicted nor culled, and they are not counted in ``max_kernels`` (the pool, its size
per notebook, comes on top). A page taking a pooled kernel does not start one; the pool's
refill does, and that refill obeys the bound as a page would (evicting, or refused: the next
page of that notebook is then refused with the 503, and the pool refilled by the culler's
next round once there is room).
"""

from __future__ import annotations

import time

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Float, Integer

from workbench.dashboards.guards import without_credentials

__all__ = ["BoundedKernelManager"]


class BoundedKernelManager(AsyncMappingKernelManager):
    """At most ``max_kernels`` kernels; kernels without a connection culled."""

    max_kernels = Integer(8, config=True, help="The most kernels (pages) at once.")
    orphan_timeout = Float(120.0, config=True,
                           help="Seconds a kernel may stay without any connection.")
    grace = Float(60.0, config=True,
                  help="Seconds a new kernel is never evicted (its page is rendering).")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._started: dict[str, float] = {}
        self._alone_since: dict[str, float] = {}
        self._waiting: set[str] = set()  # started for a pool, not yet seen taken by a page

    def _connections(self, kernel_id: str) -> int:
        return self._kernel_connections.get(kernel_id, 0)

    def _pooled(self) -> set[str]:
        """Kernels waiting in Voila's preheated pools (none without preheating)."""
        ids = set()
        for pool in getattr(self, "_pools", {}).values():
            for task in pool:
                if task.done() and not task.cancelled() and task.exception() is None:
                    ids.add(task.result()["kernel_id"])
        return ids

    def _pages(self) -> list[str]:
        """Kernels of pages (every kernel but the pooled ones). A pooled kernel seen taken
        by a page gets its grace from now (its page is connecting)."""
        pooled = self._pooled()
        for taken in self._waiting - pooled:
            if taken in self._started:
                self._started[taken] = time.monotonic()
        self._waiting &= pooled
        return [k for k in self.list_kernel_ids() if k not in pooled]

    def _evictable(self, now: float) -> list[str]:
        """Pages' kernels past their grace with no connection, the longest alone first."""
        alone = [k for k in self._pages() if self._connections(k) == 0
                 and now - self._started.get(k, now) > self.grace]
        return sorted(alone, key=lambda k: self._alone_since.get(k, self._started.get(k, now)))

    async def start_kernel(self, **kwargs):  # type: ignore[override]
        if kwargs.get("kernel_id") not in self:  # a new kernel (not a reused one)
            now = time.monotonic()
            while len(self._pages()) >= self.max_kernels:
                spare = self._evictable(now)
                if not spare:
                    self.log.warning("dashboard: %d kernels, the bound: page refused",
                                     self.max_kernels)
                    raise HTTPError(503, f"{self.max_kernels} dashboard pages are open "
                                         "(the bound): close one and reload")
                self.log.warning("dashboard: kernel %s evicted (no connection, the bound "
                                 "of %d reached)", spare[0], self.max_kernels)
                await self.shutdown_kernel(spare[0])
        if kwargs.get("env"):
            kwargs["env"] = without_credentials(kwargs["env"])  # no token in the page's env
        kernel_id = await super().start_kernel(**kwargs)
        self._started.setdefault(kernel_id, time.monotonic())
        if (kwargs.get("env") or {}).get("VOILA_PREHEAT") == "True":
            self._waiting.add(kernel_id)
        self.initialize_culler()
        return kernel_id

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):  # type: ignore[override]
        self._started.pop(kernel_id, None)
        self._alone_since.pop(kernel_id, None)
        self._waiting.discard(kernel_id)
        return await super().shutdown_kernel(kernel_id, now=now, restart=restart)

    async def cull_kernels(self):
        """Jupyter's idle culling, then the kernels alone for longer than ``orphan_timeout``."""
        await super().cull_kernels()
        now = time.monotonic()
        pooled = self._pooled()
        for kernel_id in list(self.list_kernel_ids()):
            if kernel_id in pooled:
                continue
            if self._connections(kernel_id) or \
                    now - self._started.get(kernel_id, now) <= self.grace:
                self._alone_since.pop(kernel_id, None)
                continue
            since = self._alone_since.setdefault(kernel_id, now)
            if now - since > self.orphan_timeout:
                self.log.warning("dashboard: kernel %s culled: no connection for %.0f s",
                                 kernel_id, now - since)
                try:
                    await self.shutdown_kernel(kernel_id)
                except Exception:
                    self.log.exception("dashboard: culling kernel %s failed", kernel_id)
        self._refill()

    def _refill(self) -> None:
        """Pools emptied by a refused refill (the bound), filled again once there is room."""
        pools = getattr(self, "_pools", None)
        if not pools or len(self._pages()) >= self.max_kernels:
            return
        for name, pool in pools.items():
            pool[:] = [t for t in pool if not (t.done() and (t.cancelled() or t.exception()))]
            if not pool:
                self.log.info("dashboard: pool of %s filled again", name)
                self.fill_if_needed(delay=0, notebook_name=name)
