"""What ``workbench backtest``, ``sweep`` and ``parity`` share: the notebook run and its values.

    values, notes = notebook_values(notebook, parse_params(pairs),
                                    {"symbols": "5", "timeframe": "1Day"})
    run = execute(notebook, kind="backtest", mode="backtest", params=values, timeout=None)
    results(run, "stats.parquet")

The data options (``--symbols``, ``--timeframe``, ``--start``, ``--end``) are shorthands for
the notebook's parameters of those names: one given both ways is refused, a notebook
without such a parameter gets :func:`~workbench.execution.params.check_parameters`'s
refusal naming the closest one. ``--symbols A,B`` is a list; ``--symbols N`` the first N
stored symbols of the timeframe, resolved here, before any kernel starts, and said in
``notes``. The notebook then runs with papermill on the ``workbench`` kernel
(:mod:`workbench.execution.run`), and the commands print from its record's ``results/``.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click

from workbench.cli.output import echo
from workbench.errors import ConfigError, DataError

__all__ = [
    "DATA_NAMES",
    "CellProgress",
    "data_options",
    "execute",
    "finish",
    "first_symbols",
    "merge",
    "notebook_values",
    "read_result",
    "skipped_cells",
    "stored_symbols",
    "timeframe_of",
    "when",
]

DATA_NAMES = ("symbols", "timeframe", "start", "end")


def data_options(fn):
    """--symbols, --timeframe, --start, --end, -p, --timeout: shared by the three commands."""
    options = [
        click.option("--symbols", "-s", default=None,
                     help="The notebook's `symbols`: comma-separated names, or a count N (the "
                          "first N stored symbols of the timeframe, resolved before the run)."),
        click.option("--timeframe", "-t", default=None,
                     help="The notebook's `timeframe` (e.g. 1Day, 1Min)."),
        click.option("--start", default=None,
                     help="The notebook's `start`: first day (YYYY-MM-DD, New York) or time."),
        click.option("--end", default=None,
                     help="The notebook's `end`: last day, inclusive, or time."),
        click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
                     help="A value for a parameter of the notebook's `parameters` cell "
                          "(strategy parameters, costs such as fees_bps, ...); repeatable. "
                          "VALUE is JSON if it parses, else text."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     metavar="SECONDS",
                     help="A cell running longer ends the run (outcome timeout)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def merge(params: dict[str, Any], shorthands: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the options given (not None) added; a name given both as an option
    and as ``-p`` is refused, never one silently preferred."""
    out = dict(params)
    for name, value in shorthands.items():
        if value is None:
            continue
        if name in out:
            raise ConfigError(f"--{name} and -p {name} both given: give one")
        out[name] = value
    return out


def timeframe_of(notebook: Path, values: dict[str, Any]) -> str | None:
    """The run's timeframe: given, else the notebook's default; None if it has none."""
    from workbench.data.timeframe import Timeframe
    from workbench.execution.params import notebook_parameters

    value = values.get("timeframe")
    if value is None:
        value = notebook_parameters(notebook).get("timeframe")
    return None if value is None else str(Timeframe.parse(str(value)))


def stored_symbols(timeframe: str) -> list[str]:
    """The store's symbols of ``timeframe``, sorted."""
    from workbench.data.store import Store

    listing = Store().ls()
    return sorted(set(listing.loc[listing["timeframe"] == timeframe, "symbol"]))


def first_symbols(option: str, count: int, timeframe: str) -> tuple[list[str], str]:
    """``--symbols N`` for every command: the first ``count`` stored ``timeframe`` symbols of
    the default universe (short-history symbols left out, :mod:`workbench.data.universe`),
    and the line that says which. Fewer than ``count`` is refused: a run on another number
    of symbols than asked trades another book."""
    from workbench.data.store import Store
    from workbench.data.universe import default_universe

    if count < 1:
        raise ConfigError(f"{option}: a count is at least 1")
    eligible, short = default_universe(Store(), timeframe)
    left_out = (f"; short history left out: "
                f"{', '.join(f'{s} ({n} bars)' for s, n in sorted(short.items()))}"
                if short else "")
    if not eligible and not short:
        raise DataError(f"{option}: the store holds no {timeframe} bars (try "
                        "`workbench data synth`)")
    if len(eligible) < count:
        raise ConfigError(f"{option}: the store holds {len(eligible)} {timeframe} symbol(s) "
                          f"with enough history{left_out}; give 1 to {len(eligible)} or names")
    chosen = eligible[:count]
    return chosen, (f"{option}: the first {count} stored {timeframe} symbols: "
                    f"{', '.join(chosen)}{left_out}")


def _symbols(text: str, notebook: Path, values: dict[str, Any], notes: list[str]) -> list[str]:
    text = str(text).strip()
    if not text.isdigit():
        from workbench.data.store import symbol_list

        if not any(s.strip() for s in text.split(",")):
            raise ConfigError(f"--symbols {text!r}: give names (A,B) or a count N")
        try:
            return symbol_list(text)  # a name no store can hold is refused here, not in a kernel
        except ConfigError as e:
            raise ConfigError(f"--symbols {text!r}: {e}") from None
    timeframe = timeframe_of(notebook, values)
    if timeframe is None:
        raise ConfigError(f"--symbols {text}: {notebook.name} names no timeframe; give "
                          "--timeframe")
    chosen, note = first_symbols(f"--symbols {text}", int(text), timeframe)
    notes.append(note)
    return chosen


def _check_time(name: str, text: str):
    """``--start``/``--end`` by the one date rule (:func:`workbench.times.bound`): a day or
    a time pandas can hold, refused here (not in a kernel) otherwise."""
    from workbench.times import bound

    try:
        return bound(text, f"--{name}", end=name == "end", error=ConfigError)
    except ConfigError as e:
        if "outside the dates" in str(e):
            raise
        raise ConfigError(f"--{name} {text!r}: not a day (YYYY-MM-DD) or time") from None


def notebook_values(notebook: Path, params: dict[str, Any], shorthands: dict[str, Any]
                    ) -> tuple[dict[str, Any], list[str]]:
    """(the notebook's parameter values, notes for the user) from ``-p`` and the options.

    ``timeframe`` is normalized (``1d`` -> ``1Day``), as the store names it."""
    from workbench.data.timeframe import Timeframe
    from workbench.execution.params import check_parameters

    values = check_parameters(notebook, merge(params, shorthands))  # names, before all else
    notes: list[str] = []
    given = {name: _check_time(name, shorthands[name]) for name in ("start", "end")
             if shorthands.get(name) is not None}
    if len(given) == 2 and given["start"] > given["end"]:
        raise ConfigError(f"--start {shorthands['start']} is after --end {shorthands['end']}")
    if isinstance(values.get("timeframe"), str):
        values["timeframe"] = str(Timeframe.parse(values["timeframe"]))
    if shorthands.get("symbols") is not None:
        values["symbols"] = _symbols(shorthands["symbols"], notebook, values, notes)
    return values, notes


def start_kernel_early(notebook: Path) -> None:
    """Start the run's kernel now, while the command still checks its inputs (the run takes
    it only if it is the kernel it would start: :mod:`workbench.execution.kernels`)."""
    if notebook.is_file():
        from workbench.execution.kernels import start_early

        start_early(notebook.parent)


def execute(notebook: Path, *, kind: str, mode: str, params: dict[str, Any],
            timeout: float | None, notes: list[str] | None = None):
    """Prepare the run (parameters checked, the record created), say where its record is,
    then execute the notebook (:func:`workbench.execution.run.run_notebook`, in two steps so
    that the record's path is printed before the notebook runs)."""
    from workbench.execution.run import OUTPUT, execute_run, prepare_run

    record = prepare_run(notebook, kind=kind, mode=mode, params=params)
    for note in notes or ():
        echo(note, err=True)
    echo(f"{mode}: running {notebook.name} with papermill; record {record.path} (the "
         f"executed notebook, {OUTPUT}, is saved there as cells run)", err=True)
    skipped = skipped_cells(record.path)
    if skipped:
        echo(f"{mode}: {len(skipped)} cells tagged `research` are skipped in this mode (cells "
             f"{', '.join(str(i) for i in skipped)} of the notebook, counted from 0)", err=True)
    progress = CellProgress(record.path / OUTPUT)
    progress.start()
    try:
        return execute_run(record.path, timeout=timeout)
    finally:
        progress.stop()


class CellProgress(threading.Thread):
    """Per-cell progress lines on stderr, read from the executed notebook that the runner
    saves as each cell starts and completes (papermill's own cell status and duration):
    ``cell 8/12 running: result = wb.backtest(...)`` for a cell still running at a look,
    ``cell 8/12 done in 28.1 s`` (or ``failed``) when it ends."""

    def __init__(self, output: Path, every: float = 0.5) -> None:
        super().__init__(name="cell-progress", daemon=True)
        self.output, self.every = output, every
        self._halt = threading.Event()
        self._said: dict[int, str] = {}  # cell -> the last status told
        self._mtime: float | None = None

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.look()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.look()  # the last save: the cells that ended since the last look

    def look(self) -> None:
        try:
            mtime = self.output.stat().st_mtime
            if mtime == self._mtime:
                return
            cells = [c for c in json.loads(self.output.read_text(encoding="utf-8"))["cells"]
                     if c.get("cell_type") == "code"]
            self._mtime = mtime
        except (OSError, ValueError, KeyError, TypeError):  # not saved yet, or mid-replace
            return
        for i, cell in enumerate(cells):
            meta = (cell.get("metadata") or {}).get("papermill") or {}
            status = meta.get("status")
            if status not in ("running", "completed", "failed") or self._said.get(i) == status:
                continue
            source = "".join(cell.get("source") or "").strip().splitlines()
            first = source[0][:60] if source else ""
            if status == "running":
                echo(f"  cell {i + 1}/{len(cells)} running: {first}", err=True)
            else:
                ended = "done" if status == "completed" and not meta.get("exception") else "failed"
                what = "" if self._said.get(i) == "running" else f": {first}"
                echo(f"  cell {i + 1}/{len(cells)} {ended} in {meta.get('duration') or 0:.1f} s"
                     f"{what}", err=True)
            self._said[i] = status


def skipped_cells(run_dir: Path) -> list[int]:
    """The research-only cells the run's mode skips (its manifest's ``notebook.skipped_cells``)."""
    try:
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list((manifest.get("notebook") or {}).get("skipped_cells") or [])


def read_result(run, name: str):
    """``results/NAME`` of the run's record: a JSON file as a dict, Parquet as a DataFrame;
    None when the run did not write it."""
    path = Path(run.path) / "results" / name
    if not path.is_file():
        return None
    if name.endswith(".json"):
        return json.loads(path.read_text(encoding="utf-8"))
    import pandas as pd

    return pd.read_parquet(path)


def finish(run, what: str) -> None:
    """A run that did not succeed: its error on one line (stderr), the exit code by outcome."""
    from workbench.execution.run import exit_code

    code = exit_code(run.outcome)
    if not code:
        return
    error = run.error if run.error and run.error != run.outcome else run.outcome
    echo(f"error: {what} {run.outcome}: {error} (record {run.path})", err=True)
    sys.exit(code)  # (a click Exit would be swallowed by the group's non-standalone main)


def when(value: Any) -> str:
    """A recorded time in New York: the day alone when it is midnight (a daily bar)."""
    import pandas as pd

    from workbench.times import to_new_york

    try:
        ts = to_new_york(pd.Timestamp(value))
    except (TypeError, ValueError):
        return str(value)
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else ts.isoformat()
