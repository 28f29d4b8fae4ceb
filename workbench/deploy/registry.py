"""The registry of deployments: a promoted notebook, its parameters, mode, broker and capital.

    report = evaluate(nb, "paper", parameters={"fast": 10, "slow": 30})  # deploy.gates
    dep = register(nb, mode="paper", broker="sim", capital={"cash": 100_000},
                   gates=report)     # the gates' GateReport, all passed; its parameters
    dep.id                                             # 'sma_cross-paper-3f9a1c'
    list_deployments(status="active"); get(dep.id); retire(dep.id, "replaced by v2")

One JSON file per deployment, ``<WORKBENCH_HOME>/deployments/<id>.json``, written atomically
(:func:`workbench.fsutil.atomic_write`) and never replaced except by :func:`retire`, which
rewrites the same deployment with its status. Registrations and retirements take the
registry's lock, so two promotions cannot both register the same deployment. A deployment
is keyed by what runs: the notebook's code hash (:func:`workbench.execution.hashing.
notebook_hash`), its parameters and its mode; a second *active* deployment of the same three
is refused. Editing the notebook changes its hash: a new deployment, through the gates again.

The registry checks the invariants it owns (every gate passed, live trades through Alpaca
with a canary fraction of the capital, parameters plain JSON); it does not run the gates.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field, field_validator

from workbench.clock import Clock, LiveClock
from workbench.deploy.gates import GateReport
from workbench.errors import ConfigError
from workbench.execution.hashing import notebook_hash as _hash_of
from workbench.fsutil import atomic_write, exclusive_lock
from workbench.paths import deployments_dir, project_root
from workbench.plain import NotPlain, plain
from workbench.runs.ids import sanitize_name
from workbench.times import to_utc
from workbench.values import Number, Value

__all__ = ["Capital", "Deployment", "Registry", "get", "list_deployments", "register", "retire"]

Mode = Literal["paper", "live"]
BrokerName = Literal["sim", "alpaca"]
Status = Literal["active", "retired"]
_LOCK = ".registry.lock"


class Capital(Value):
    """The money a deployment trades: ``cash``, and for live the ``canary`` fraction of it
    that the first sessions may use."""

    cash: Annotated[Number, Field(gt=0, description="the deployment's cash")]
    canary: Annotated[Number, Field(gt=0, le=1, description="fraction of cash, live")] | None \
        = None


class Deployment(Value):
    """One registered deployment (see the module doc); read it, never build it by hand."""

    id: str
    notebook: str
    notebook_hash: str
    parameters: dict[str, Any]
    mode: Mode
    broker: BrokerName
    capital: Capital
    created_at: datetime
    status: Status = "active"
    retired_at: datetime | None = None
    retired_reason: str | None = None
    gates: tuple[dict[str, Any], ...] = ()
    # its sessions' drift thresholds (fractions of capital: warn, block, halt), from
    # [gates] when promoted; None: [gates] when measured (workbench.monitor.drift)
    drift_limits: dict[str, float] | None = None

    @field_validator("created_at", "retired_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc(value).to_pydatetime()

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of the notebook hash (what tables show)."""
        return self.notebook_hash.split(":", 1)[-1][:12]

    @property
    def strategy(self) -> str:
        """The notebook's name without its folder and suffix."""
        return Path(self.notebook).stem

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: what the file holds and ``--json`` prints."""
        return self.model_dump(mode="json")

    def __hash__(self) -> int:
        return hash((self.id, self.status))


class Registry:
    """The deployments under ``root`` (default ``<WORKBENCH_HOME>/deployments``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else deployments_dir()

    def path(self, deployment_id: str) -> Path:
        return self.root / f"{deployment_id}.json"

    def register(self, notebook: str | Path, *, mode: str, capital: Capital | Mapping | float,
                 gates: GateReport, parameters: Mapping[str, Any] | None = None,
                 broker: str = "sim", clock: Clock | None = None,
                 drift_limits: Mapping[str, float] | None = None) -> Deployment:
        """Register ``notebook`` as a new active deployment and return it.

        ``gates`` is the promotion gates' :class:`~workbench.deploy.gates.GateReport` (no
        other form): it must hold at least one gate, every gate passed, for ``mode`` as its
        target, measured on this notebook's code (a notebook edited since is refused) and
        on these ``parameters`` (default: the report's; others are refused: the gates
        judged the report's). ``clock`` stamps ``created_at`` (default: wall time).
        ``drift_limits``: its sessions' drift thresholds (warn, block, halt).
        """
        path = Path(notebook)
        current = _hash_of(path)
        report = _report(gates, mode)
        if report.notebook_hash != current:
            raise ConfigError(f"{path} changed since the gates ran ({_short(report.notebook_hash)}"
                              f" -> {_short(current)}): promote it again")
        params = _parameters(report.parameters if parameters is None else parameters)
        if params != _parameters(report.parameters):
            raise ConfigError(f"the gate report judged parameters {_show(report.parameters)}, "
                              f"not {_show(params)}: promote with these parameters")
        fields = {"notebook": _notebook_text(path), "notebook_hash": current, "mode": mode,
                  "broker": broker, "parameters": params,
                  "capital": _capital(capital), "gates": _gates(gates),
                  "drift_limits": None if drift_limits is None else dict(drift_limits)}
        _check_mode(fields)
        created = to_utc((clock or LiveClock()).now()).to_pydatetime()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = exclusive_lock(self.root / _LOCK, wait=True)
        try:
            same = self._same(fields)
            if same is not None:
                raise ConfigError(
                    f"{same.id} already deploys this notebook ({same.short_hash}) with these "
                    f"parameters in {same.mode} mode (active since {_when(same.created_at)}); "
                    f"retire it first: workbench retire {same.id}")
            for _ in range(100):
                dep = Deployment(id=_new_id(path, mode), created_at=created, **fields)
                try:
                    self._write(dep, overwrite=False)
                except FileExistsError:
                    continue
                return dep
            raise ConfigError(f"no free deployment id under {self.root}")  # pragma: no cover
        finally:
            os.close(fd)

    def list(self, status: str | None = None) -> list[Deployment]:
        """Every deployment, oldest first; ``status`` ("active"/"retired") filters."""
        if status not in (None, "active", "retired"):
            raise ConfigError(f"status must be 'active' or 'retired', got {status!r}")
        if not self.root.is_dir():
            return []
        deps = [self._read(p) for p in sorted(self.root.glob("*.json"))]
        deps.sort(key=lambda d: (d.created_at, d.id))
        return [d for d in deps if status is None or d.status == status]

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def get(self, deployment_id: str) -> Deployment:
        """The deployment ``deployment_id``; unknown: one line naming the closest ids."""
        name = str(deployment_id)
        path = self.path(name)
        if "/" in name or name.startswith(".") or not path.is_file():
            raise ConfigError(f"no deployment {name!r}{_closest(name, self.ids())}")
        return self._read(path)

    def retire(self, deployment_id: str, reason: str = "retired by the operator", *,
               clock: Clock | None = None) -> Deployment:
        """End an active deployment: its status becomes ``retired`` (the schedule stops
        starting its sessions); retiring one twice is refused."""
        reason = str(reason).strip() or "retired by the operator"
        self.get(deployment_id)  # an unknown id: the closest ones, before any lock
        fd = exclusive_lock(self.root / _LOCK, wait=True)
        try:
            dep = self.get(deployment_id)
            if dep.status == "retired":
                raise ConfigError(f"{dep.id} was already retired at {_when(dep.retired_at)} "
                                  f"({dep.retired_reason})")
            when = to_utc((clock or LiveClock()).now()).to_pydatetime()
            done = dep.model_copy(update={"status": "retired", "retired_at": when,
                                          "retired_reason": reason})
            done = Deployment.model_validate(done.to_dict())
            self._write(done, overwrite=True)
            return done
        finally:
            os.close(fd)

    def _same(self, fields: Mapping[str, Any]) -> Deployment | None:
        key = _key(fields["notebook_hash"], fields["parameters"], fields["mode"])
        for dep in self.list(status="active"):
            if _key(dep.notebook_hash, dep.parameters, dep.mode) == key:
                return dep
        return None

    def _write(self, dep: Deployment, *, overwrite: bool) -> None:
        text = json.dumps(dep.to_dict(), indent=2, sort_keys=False) + "\n"
        atomic_write(self.path(dep.id), lambda tmp: tmp.write_text(text, encoding="utf-8"),
                     overwrite=overwrite)

    def _read(self, path: Path) -> Deployment:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"deployment file {path} is unreadable: {e}") from None
        try:
            return Deployment.model_validate(data)
        except ConfigError as e:
            raise ConfigError(f"deployment file {path} is invalid: {e}") from None


def register(notebook: str | Path, **kwargs: Any) -> Deployment:
    """:meth:`Registry.register` on the default registry."""
    return Registry().register(notebook, **kwargs)


def list_deployments(status: str | None = None) -> list[Deployment]:
    """:meth:`Registry.list` on the default registry."""
    return Registry().list(status)


def get(deployment_id: str) -> Deployment:
    """:meth:`Registry.get` on the default registry."""
    return Registry().get(deployment_id)


def retire(deployment_id: str, reason: str = "retired by the operator", *,
           clock: Clock | None = None) -> Deployment:
    """:meth:`Registry.retire` on the default registry."""
    return Registry().retire(deployment_id, reason, clock=clock)


def _new_id(notebook: Path, mode: str) -> str:
    name = sanitize_name(notebook.stem, 40).lower()
    return f"{name}-{mode}-{secrets.token_hex(3)}"


def _notebook_text(path: Path) -> str:
    """The notebook's path relative to the project root when under it, else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(project_root()))
    except ValueError:
        return str(full)


def _parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ConfigError(f"parameters must be a mapping of name to value, got "
                          f"{type(parameters).__name__}")
    try:
        return plain(dict(parameters), strict=True, where="parameters")
    except NotPlain as e:
        raise ConfigError(f"parameters must be plain JSON: {e}") from None


def _capital(capital: Capital | Mapping | float) -> Capital:
    if isinstance(capital, Capital):
        return capital
    if isinstance(capital, Mapping):
        return Capital(**capital)
    return Capital(cash=capital)


def _report(gates: Any, mode: str) -> GateReport:
    """The gates' report, for promotion to ``mode``; any other form is refused."""
    if not isinstance(gates, GateReport):
        raise ConfigError(f"gates must be the promotion gates' GateReport "
                          f"(workbench.deploy.gates.evaluate), not {type(gates).__name__}")
    if gates.target != mode:
        raise ConfigError(f"the gate report is for promotion to {gates.target}, not {mode}")
    return gates


def _show(parameters: Mapping[str, Any]) -> str:
    return json.dumps(dict(parameters), sort_keys=True) if parameters else "{} (the defaults)"


def _gates(report: GateReport) -> tuple[dict[str, Any], ...]:
    """The gate report as plain rows; refused unless every gate passed."""
    rows = [plain(r.to_dict()) for r in report.results]
    if not rows:
        raise ConfigError("not registered: the gate report holds no gate")
    failed = [r for r in rows if r["passed"] is not True]
    if failed:
        names = ", ".join(f"{r['gate']} ({r['value']} vs limit {r['limit']})" for r in failed)
        raise ConfigError(f"not registered: gates failed: {names}")
    return tuple(rows)


def _check_mode(fields: Mapping[str, Any]) -> None:
    mode, broker, capital = fields["mode"], fields["broker"], fields["capital"]
    if mode not in ("paper", "live"):
        raise ConfigError(f"mode must be 'paper' or 'live', got {mode!r}")
    if broker not in ("sim", "alpaca"):
        raise ConfigError(f"broker must be 'sim' or 'alpaca', got {broker!r}")
    if mode == "live" and broker != "alpaca":
        raise ConfigError(f"a live deployment trades through alpaca, not {broker!r}")
    if mode == "live" and capital.canary is None:
        raise ConfigError("a live deployment starts with a canary fraction of its capital "
                          "(capital={'cash': ..., 'canary': 0.1})")
    if mode == "paper" and capital.canary is not None:
        raise ConfigError("a canary fraction is for live deployments; paper trades its cash")


def _key(notebook_hash: str, parameters: Mapping[str, Any], mode: str) -> tuple:
    return notebook_hash, json.dumps(parameters, sort_keys=True), mode


def _closest(name: str, ids: list[str]) -> str:
    if not ids:
        return " (no deployments registered)"
    close = difflib.get_close_matches(name, ids, n=3, cutoff=0.5)
    close += [i for i in ids if i.startswith(name) and i not in close][: 3 - len(close)]
    if not close:
        return f" (registered: {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
    return f" (closest: {', '.join(close)})"


def _short(h: str) -> str:
    return h.split(":", 1)[-1][:12]


def _when(value: datetime | None) -> str:
    return "?" if value is None else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
