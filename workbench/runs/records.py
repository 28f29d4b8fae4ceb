"""Run records: one folder per run, ``runs/<run_id>/``, never rewritten after the run ends.

``RunRecord.create`` makes the folder and writes ``manifest.json`` at once (status
"running"); results go to ``results/`` through :meth:`RunRecord.write_json` and
:meth:`RunRecord.write_parquet`; :meth:`RunRecord.finish` rewrites the manifest once
with the outcome and closes the record. Every file is written to a temporary name,
fsynced and renamed, so a reader sees a whole file or none; no file is overwritten
except the manifest by ``finish``. Everything written passes through
:func:`workbench.secrets.redact`, and parameters named like secrets are refused.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import pandas as pd

from workbench import paths
from workbench.clock import Clock
from workbench.errors import ConfigError, WorkbenchError
from workbench.fsutil import atomic_write
from workbench.model.outcomes import LEGACY_OUTCOMES, OUTCOMES, canonical_outcome
from workbench.plain import NotPlain, plain
from workbench.runs.ids import new_run_id
from workbench.runs.provenance import describe_data_range, git_state, package_versions
from workbench.secrets import redact, redact_frame, redact_tree

__all__ = [
    "LEGACY_OUTCOMES",
    "MANIFEST",
    "OUTCOMES",
    "RecordError",
    "RunRecord",
    "canonical_outcome",
    "describe_data_range",
    "git_state",
    "list_runs",
    "load_manifest",
    "package_versions",
]

MANIFEST = "manifest.json"
RESULTS = "results"
SCHEMA_VERSION = 1
_CREATE_ATTEMPTS = 8
_SECRET_WORDS = ("key", "secret", "token", "password")


class RecordError(WorkbenchError):
    """A run record refused a write: records are write-once and closed when the run ends."""


# -- values -------------------------------------------------------------------------------


def _plain(value: Any, where: str, strict: bool) -> Any:
    """``value`` as plain JSON (:func:`workbench.plain.plain`). ``strict`` (parameters):
    only JSON-like values, finite numbers, text keys. Otherwise (results): arrays,
    timestamps, paths, dataclasses and pandas objects are converted too, and NaN/inf
    become None. ConfigError for what cannot be written."""
    try:
        return plain(value, strict=strict, where=where)
    except NotPlain as e:
        raise ConfigError(str(e)) from None


def _plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as plain JSON; ConfigError for a name that looks like a secret."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping, got {type(params).__name__}")
    values = _plain(dict(params), "params", strict=True)

    def check(tree: Any, where: str) -> None:
        if isinstance(tree, list):
            for i, v in enumerate(tree):
                check(v, f"{where}[{i}]")
        for k, v in tree.items() if isinstance(tree, dict) else ():
            if any(w in k.lower() for w in _SECRET_WORDS):
                raise ConfigError(f"parameter {where}.{k} looks like a secret; secrets come "
                                  "from the environment, never from parameters")
            check(v, f"{where}.{k}")

    check(values, "params")
    return values


# -- files --------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], Any], *, overwrite: bool = False) -> None:
    try:
        atomic_write(path, write, overwrite=overwrite)
    except FileExistsError:
        raise RecordError(f"{path} exists; run records are never rewritten") from None


def _write_json(path: Path, obj: Any, *, overwrite: bool = False) -> None:
    data = _dumps(obj)
    _atomic_write(path, lambda p: p.write_bytes(data), overwrite=overwrite)


def _dumps(obj: Any) -> bytes:
    text = json.dumps(redact_tree(obj), indent=2, allow_nan=False, ensure_ascii=False)
    return (redact(text) + "\n").encode("utf-8")


def _file_name(name: str, ext: str) -> str:
    base = str(name)
    if not base or base.startswith(".") or "/" in base or "\\" in base or base in ("..",):
        raise ConfigError(f"{name!r} is not a plain file name")
    return base if base.endswith(ext) else base + ext


# -- the record ---------------------------------------------------------------------------


class RunRecord:
    """One run's folder. Use :meth:`create` (new run) or :meth:`open` (finish a run)."""

    def __init__(self, path: Path, manifest: dict[str, Any], clock: Clock) -> None:
        self._path = Path(path)
        self._manifest = manifest
        self._clock = clock

    @classmethod
    def create(cls, kind: str, strategy: Any, params: Mapping[str, Any] | None, mode: str,
               data_range: Any, clock: Clock, root: str | Path | None = None,
               notebook: Mapping[str, Any] | None = None) -> RunRecord:
        """Make ``<root>/<run_id>/`` and write its manifest with status "running".

        ``strategy``: a name or anything with ``.name``. ``params``: plain JSON values,
        none named like a secret. ``data_range``: :class:`~workbench.data.bars.Bars`, a
        mapping (symbols, timeframe, start/first, end/last) or None. ``notebook``: what a
        notebook run records of its notebook (path, hash), kept under "notebook".
        """
        name = _strategy_name(strategy)
        plain = _plain_params(params or {})
        mode = str(mode).strip()
        if not mode:
            raise ConfigError("a run needs a mode (backtest, paper, live, ...)")
        data = describe_data_range(data_range)
        commit, dirty = git_state(paths.project_root())
        base = Path(root) if root is not None else paths.runs_dir()
        base.mkdir(parents=True, exist_ok=True)
        for _ in range(_CREATE_ATTEMPTS):
            run_id = new_run_id(kind, name, clock)
            try:
                (base / run_id).mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - needs the random suffix to collide eight times
            raise RecordError(f"could not find a free run id under {base}")
        manifest = {
            "schema_version": SCHEMA_VERSION, "run_id": run_id, "kind": run_id.split("-")[1],
            "mode": mode, "strategy": name, "params": plain,
            "git_commit": commit, "git_dirty": dirty, "packages": package_versions(),
            "data_range": data,
            "notebook": (None if notebook is None
                         else _plain(dict(notebook), "notebook", strict=True)),
            "status": "running", "started_at": clock.now().isoformat(),
            "ended_at": None, "outcome": None, "error": None, "extra": None,
        }
        _write_json(base / run_id / MANIFEST, manifest)
        return cls(base / run_id, manifest, clock)

    @classmethod
    def open(cls, run_id_or_path: str | Path, clock: Clock,
             root: str | Path | None = None, *, finished: bool = False) -> RunRecord:
        """An unfinished record from another process (a supervisor finishing a dead run);
        ``finished=True`` also opens an ended one (only :meth:`overrule` can write it)."""
        manifest = load_manifest(run_id_or_path, root=root)
        if manifest.get("status") != "running" and not finished:
            raise RecordError(f"run {manifest.get('run_id')} has ended; its record is closed")
        return cls(_run_dir(run_id_or_path, root), manifest, clock)

    # -- views --
    @property
    def path(self) -> Path:
        return self._path

    @property
    def run_id(self) -> str:
        return self._manifest["run_id"]

    @property
    def results_dir(self) -> Path:
        return self._path / RESULTS

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._manifest))

    @property
    def closed(self) -> bool:
        return self._manifest["status"] != "running"

    def __repr__(self) -> str:
        return f"RunRecord({self.run_id!r}, {self._manifest['status']})"

    # -- writes --
    def _check_open(self) -> None:
        if self.closed:
            raise RecordError(f"run {self.run_id} has ended; its record is closed")

    def _result_path(self, name: str, ext: str) -> Path:
        self._check_open()
        self.results_dir.mkdir(exist_ok=True)
        return self.results_dir / _file_name(name, ext)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` to ``results/<name>.json`` (NaN and inf become null)."""
        path = self._result_path(name, ".json")
        _write_json(path, _plain(obj, name, strict=False))
        return path

    def write_parquet(self, name: str, df: pd.DataFrame) -> Path:
        """Write ``df`` to ``results/<name>.parquet`` (index kept)."""
        if isinstance(df, pd.Series):
            df = df.to_frame()
        if not isinstance(df, pd.DataFrame):
            raise ConfigError(f"write_parquet takes a DataFrame, got {type(df).__name__}")
        path = self._result_path(name, ".parquet")
        clean = redact_frame(df)
        _atomic_write(path, clean.to_parquet)
        return path

    def finish(self, outcome: str = "succeeded", error: Any = None,
               extra: Mapping[str, Any] | None = None) -> None:
        """Record the end of the run and close the record (a second finish raises)."""
        self._check_open()
        if outcome not in OUTCOMES:
            raise ConfigError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        manifest = dict(self._manifest)
        manifest.update(
            status="finished", ended_at=self._clock.now().isoformat(), outcome=outcome,
            error=_error_text(error),
            extra=None if extra is None else _plain(dict(extra), "extra", strict=False),
        )
        _write_json(self._path / MANIFEST, manifest, overwrite=True)
        self._manifest = manifest

    def overrule(self, outcome: str, error: Any) -> None:
        """A finished run whose process then failed (a notebook that finished its session's
        record, then raised or died): record ``outcome`` and ``error`` in place of the
        success it wrote, which stays in ``extra["recorded_outcome"]``. Only a success is
        overruled, only by a failure; anything else raises."""
        if not self.closed or self._manifest.get("outcome") != "succeeded":
            raise RecordError(f"run {self.run_id}: only a finished success can be overruled")
        if outcome not in OUTCOMES or outcome == "succeeded":
            raise ConfigError(f"a success is overruled by a failure, not {outcome!r}")
        manifest = dict(self._manifest)
        extra = dict(manifest.get("extra") or {})
        extra["recorded_outcome"] = manifest["outcome"]
        manifest.update(outcome=outcome, error=_error_text(error), extra=extra,
                        ended_at=self._clock.now().isoformat())
        _write_json(self._path / MANIFEST, manifest, overwrite=True)
        self._manifest = manifest

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.closed:
            return
        if exc is None:
            self.finish("succeeded")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", error=exc)
        else:
            self.finish("failed", error=exc)


def _error_text(error: Any) -> str | None:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return None if error is None else str(error)


def _strategy_name(strategy: Any) -> str:
    name = strategy if isinstance(strategy, str) else (
        getattr(strategy, "name", None) or getattr(strategy, "__name__", None))
    if not name:
        raise ConfigError(f"cannot tell the strategy name of {strategy!r}")
    return str(name)


# -- reading ------------------------------------------------------------------------------


def _run_dir(run_id_or_path: str | Path, root: str | Path | None) -> Path:
    p = Path(run_id_or_path)
    if p.name == MANIFEST:
        return p.parent
    if p.is_dir() and (p / MANIFEST).exists():
        return p
    return (Path(root) if root is not None else paths.runs_dir()) / str(run_id_or_path)


def load_manifest(run_id_or_path: str | Path, root: str | Path | None = None) -> dict[str, Any]:
    """A run's manifest, from its id (under ``root``, default ``runs/``) or its folder
    (an old "ok" outcome read as "succeeded")."""
    path = _run_dir(run_id_or_path, root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and "outcome" in manifest:
            manifest["outcome"] = canonical_outcome(manifest["outcome"])
        return manifest
    except FileNotFoundError:
        raise ConfigError(f"no run record at {path.parent}") from None
    except (OSError, ValueError) as e:
        raise RecordError(f"unreadable manifest {path}: {e}") from e


_COLUMNS = ["run_id", "kind", "mode", "strategy", "status", "outcome", "started_at",
            "ended_at", "timeframe", "symbols_count", "git_commit", "git_dirty", "params",
            "error", "notebook", "notebook_hash", "path"]


def _row(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    data = manifest.get("data_range") or {}
    row = {k: manifest.get(k) for k in _COLUMNS}
    notebook = manifest.get("notebook") or {}
    row.update(outcome=canonical_outcome(manifest.get("outcome")),
               notebook=notebook.get("path"), notebook_hash=notebook.get("hash"),
               timeframe=data.get("timeframe"), symbols_count=data.get("symbols_count"),
               path=str(path))
    return row


def list_runs(root: str | Path | None = None) -> pd.DataFrame:
    """One row per run folder, sorted by run id (start time).

    Unreadable manifests are skipped, listed in ``df.attrs["unreadable"]`` as
    ``(path, reason)`` and reported with a warning.
    """
    base = Path(root) if root is not None else paths.runs_dir()
    rows, bad = [], []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or "run_id" not in manifest:
                raise ValueError("not a run manifest")
            rows.append(_row(manifest, d))
        except (OSError, ValueError) as e:
            bad.append((str(d), f"{type(e).__name__}: {e}"))
    df = pd.DataFrame(rows, columns=_COLUMNS)
    for col in ("started_at", "ended_at"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    df.attrs["unreadable"] = bad
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable run record(s): "
                      + "; ".join(f"{p} ({r})" for p, r in bad), RuntimeWarning, stacklevel=2)
    return df
