"""``workbench parity NOTEBOOK``: the notebook, executed by papermill in mode parity.

The notebook's ``wb.run`` call replays its bars through the live engine bar by bar and
compares every signal with the vectorized backtest's, and checks the strategy for
look-ahead (:func:`workbench.execution.recorded.run_parity`); this module resolves
``--days``, runs it (:mod:`workbench.cli.notebook_run`) and prints ``results/parity.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from workbench.cli.grid_args import parse_params
from workbench.cli.notebook_run import (
    data_options,
    execute,
    finish,
    notebook_values,
    read_result,
    start_kernel_early,
    when,
)
from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError, DataError

__all__ = ["parity"]


def _days_start(days: int, values: dict[str, Any], notebook: Path) -> tuple[str, str]:
    """(``start``: the first of the last ``days`` sessions, a note saying so): sessions of the
    NYSE calendar ending at ``end`` if given, else at the last stored bar of the timeframe
    (of the chosen symbols, if named)."""
    import pandas as pd

    from workbench.cli.notebook_run import timeframe_of
    from workbench.data import calendar
    from workbench.data.store import Store
    from workbench.times import ny_date

    if values.get("start") is not None:
        raise ConfigError("--days and start both given: --days sets start; give one")
    timeframe = timeframe_of(notebook, values)
    if timeframe is None:
        raise ConfigError(f"--days {days}: {notebook.name} names no timeframe; give --timeframe")
    if values.get("end") is not None:
        last, said = ny_date(pd.Timestamp(values["end"])), f"ending at end {values['end']}"
    else:
        listing = Store().ls()
        listing = listing[listing["timeframe"] == timeframe]
        symbols = values.get("symbols")
        if isinstance(symbols, list):
            listing = listing[listing["symbol"].isin(symbols)]
        if listing.empty:
            raise DataError(f"--days {days}: the store holds no {timeframe} bars"
                            f"{' of these symbols' if isinstance(symbols, list) else ''} "
                            "(try `workbench data synth`)")
        last = ny_date(pd.Timestamp(listing["last"].max()))
        said = f"to the last stored {timeframe} bar"
    sessions = calendar.last_sessions(days, last)
    start = f"{sessions[0]:%Y-%m-%d}"
    return start, (f"--days {days}: start {start}, the first of the last {days} sessions "
                   f"{said} ({sessions[-1]:%Y-%m-%d})")


def _lines(doc: dict[str, Any]) -> list[str]:
    params = ", ".join(f"{k}={v}" for k, v in (doc.get("params") or {}).items())
    by_field = ", ".join(f"{k} {v}" for k, v in (doc.get("by_field") or {}).items() if v)
    lines = [
        (f"parity {doc.get('strategy')}({params}) on {doc.get('timeframe') or '?'} bars, "
         f"{when(doc.get('start'))} .. {when(doc.get('end'))}"),
        f"  timestamps  {doc.get('timestamps')}",
        f"  symbols     {doc.get('symbols')}",
        f"  signals     {doc.get('compared')} compared ({', '.join(doc.get('fields') or ())})",
        f"  mismatches  {doc.get('mismatches')}" + (f" ({by_field})" if by_field else ""),
    ]
    examples = doc.get("examples") or ([doc["first"]] if doc.get("first") else [])
    for m in examples:
        lines.append(f"    {m['field']} of {m['symbol']} at {m['time']}: engine "
                     f"{m['engine']!r}, backtest {m['backtest']!r}")
    if doc.get("mismatches", 0) > len(examples) and examples:
        lines.append(f"    ... {doc['mismatches'] - len(examples)} more")
    clean = doc.get("lookahead_clean")
    lines.append("  look-ahead  " + ("clean" if clean else f"NOT clean: {doc.get('lookahead')}"))
    lat = doc.get("latency") or {}
    if lat.get("count"):
        lines.append(f"  latency     p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms per "
                     f"timestamp; replay {doc.get('seconds', 0):.1f} s")
    ok = doc.get("mismatches") == 0 and clean
    lines.append("OK: the engine's signals equal the backtest's, no look-ahead" if ok else
                 "MISMATCH: the engine and the backtest disagree" if doc.get("mismatches")
                 else "LOOK-AHEAD: the strategy's past signals change when the future is cut")
    return lines


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", "-d", type=click.IntRange(min=1), default=None,
              help="Sets `start` to the first of the last N sessions of the timeframe (ending "
                   "at --end, else at the last stored bar). Default: the notebook's start.")
@data_options
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: the run and parity.json.")
def parity(notebook: Path, days, symbols, timeframe, start, end, params, timeout,
           as_json: bool) -> None:
    """Execute NOTEBOOK with papermill in mode parity: the live engine against the backtest.

    The whole notebook runs on the `workbench` kernel with `mode` "parity" and the given
    values injected into its `parameters` cell (checked before the kernel starts). Its
    `wb.run` call computes the strategy's signals over the notebook's bars at once (as
    `wb.backtest` does) and again bar by bar through the live engine, compares every field
    for every symbol at every bar, and runs the look-ahead check; results/parity.json
    holds the counts and the first mismatches. Exits non-zero on any mismatch or
    look-ahead, naming the first one. The record keeps the executed notebook; each cell's
    progress goes to stderr.

    Example: workbench parity notebooks/strategies/sma_cross.ipynb --timeframe 1Min
    --days 5 --symbols 50
    """
    values, notes = notebook_values(notebook, parse_params(params), {
        "symbols": symbols, "timeframe": timeframe, "start": start, "end": end})
    start_kernel_early(notebook)
    if days is not None:
        values["start"], note = _days_start(days, values, notebook)
        notes.append(note)
    run = execute(notebook, kind="parity", mode="parity", params=values, timeout=timeout,
                  notes=notes)
    doc = read_result(run, "parity.json")
    if as_json:
        echo_json({"run": run.to_dict(), "notes": notes, "parity": doc})
    else:
        echo(f"parity {run.outcome} in {run.seconds:.1f} s: {notebook.name}")
        for line in _lines(doc) if doc else ["no parity.json recorded"]:
            echo(line)
        echo(f"record: {run.path}")
    if run.succeeded and doc and (doc.get("mismatches") or not doc.get("lookahead_clean")):
        echo(f"error: parity: the run succeeded but parity.json reports a mismatch or "
             f"look-ahead (record {run.path})", err=True)  # never exit 0 on a mismatch
        sys.exit(1)
    finish(run, "parity")
