"""A deployment halted by its drift: after each of its sessions, the last step of acting.

    halt_on_drift(registry, "sma_cross-paper-3f9a1c", run_dir)   # supervise() calls it

Drift acts in three steps (:mod:`workbench.monitor.drift`, the thresholds: the
deployment's ``drift_limits``): "warn" is an alert; "block" keeps the notebook from going
live (the ``drift`` promotion gate reads every paper session's ``results/drift.json``);
"halt" stops the deployment here: once its session has ended and measured a drift at
"halt", the deployment is retired with the reason (``workbench deployments`` shows it, the
schedule starts none of its sessions again) and a critical alert is journaled in the run.
Bringing it back is the operator's: promote it again (through the gates).
"""

from __future__ import annotations

from pathlib import Path

from workbench.deploy.registry import Registry
from workbench.monitor.drift import read_drift

__all__ = ["halt_on_drift"]


def halt_on_drift(registry: Registry, deployment_id: str, run_dir: str | Path) -> str | None:
    """Retire ``deployment_id`` when its session ``run_dir`` drifted to "halt"; the reason,
    or None when it did not (or is already retired)."""
    from workbench.monitor.drift_hook import alert

    doc = read_drift(run_dir)
    if not doc or doc.get("level") != "halt":
        return None
    dep = registry.get(deployment_id)
    if dep.status != "active":
        return None
    limit = (doc.get("limits") or {}).get("halt")
    reason = (f"halted by drift: session {Path(run_dir).name} P&L {doc.get('pnl_difference')} "
              f"vs the replayed backtest ({doc.get('pnl_fraction', 0):.3%} of capital; halt "
              f"above {limit:g})" if isinstance(limit, (int, float)) else
              f"halted by drift: session {Path(run_dir).name}")
    registry.retire(deployment_id, reason)
    alert(run_dir, "critical", f"deployment {deployment_id} retired: {reason}")
    return reason
