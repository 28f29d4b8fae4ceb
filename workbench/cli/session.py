"""``workbench session``: a paper session (``status``: :mod:`workbench.cli.status`;
``halt``/``resume``: :mod:`workbench.cli.control`).

``--broker alpaca``/``--feed alpaca``/``--live``: the notebook's ``broker``, ``feed``,
``live`` (:mod:`workbench.session.live`; part of the run's identity; keys: environment only).

``session NOTEBOOK --replay DATE`` executes the strategy notebook with papermill in mode
"paper" (kind "session", :func:`workbench.execution.run.prepare_run` and
:func:`~workbench.execution.run.execute_run`): the kernel is the session's runner, with the
notebook's own backtest settings (:mod:`workbench.execution.paper`). The options are
shorthands for notebook parameters (:data:`SHORTHANDS`); ``--symbols N`` is resolved to the
first N stored symbols before the kernel starts. The figures printed are the session's
``results/session.json``, never parsed notebook output. ``--run DIR`` restarts a crashed
run in the same record: notebook, hash and parameters come from its manifest and every
option given must equal the recorded value (:func:`_identity_differences`), else a
refusal (the session checks the identity again itself: :mod:`workbench.session.identity`);
the session then replays its journal and reconciles with the broker before it trades, and
what the reconciliation adopted with a word (an order canceled behind its back) is
printed here too. SIGTERM or Ctrl-C sends ``stop`` through the control channel (a second one
interrupts the kernel).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError, WorkbenchError

__all__ = ["SHORTHANDS", "session"]

#: option -> the notebook parameter it sets
SHORTHANDS = {"--replay": "replay_date", "--speed": "speed", "--symbols": "symbols",
              "--timeframe": "timeframe", "--accounts": "accounts",
              "--broker-path": "broker_path", "--broker": "broker", "--feed": "feed",
              "--live": "live"}
RUNNER_LOCK = "runner.lock"


class SessionHalted(WorkbenchError):
    """The session failed closed (reconciliation) or ended on an error."""

    exit_code = 6


def _speed(text: str):
    from workbench.session.pacing import parse_speed

    return parse_speed(text)


def _date(text: str) -> str:
    from workbench.cli.inputs import replay_day

    return replay_day(text)


def _stored_symbols(count: str, timeframe: Any) -> tuple[list[str], str]:
    """``--symbols N``: the rule every command shares (``notebook_run.first_symbols``)."""
    from workbench.cli.notebook_run import first_symbols

    return first_symbols(f"--symbols {count}", int(count), str(timeframe))


def _given(options: dict[str, Any], timeframe: Any) -> tuple[dict[str, Any], list[str]]:
    """The shorthand options given, as notebook parameters (and what to say about them);
    ``timeframe``: the one ``--symbols N`` counts stored symbols of."""
    values, notes = {}, []
    for option, text in options.items():
        if text is None:
            continue
        if option == "--replay":
            value = _date(text)
        elif option == "--speed":
            value = _speed(text)
        elif option == "--accounts":
            value = text.replace("-", "_")
        elif option == "--live":
            value = bool(text)
        elif option == "--broker-path":
            from workbench.cli.inputs import broker_path

            value = broker_path(text)
        elif option == "--symbols" and text.strip().isdigit():
            value, note = _stored_symbols(text.strip(), timeframe)
            notes.append(note)
        elif option == "--symbols":
            from workbench.data.store import symbol_list

            if not any(s.strip() for s in text.split(",")):
                raise ConfigError("--symbols: give names (A,B) or a count N")
            try:
                value = symbol_list(text)
            except ConfigError as e:
                raise ConfigError(f"--symbols {text!r}: {e}") from None
        else:
            value = text
        values[SHORTHANDS[option]] = value
    return values, notes


def _parameters(notebook: Path, options: dict[str, Any], pairs, recorded: dict[str, Any]):
    """``-p`` pairs and shorthand options as one dict of notebook parameters (+ notes); a
    parameter given twice, or one the notebook lacks, is refused before any kernel."""
    from workbench.cli.grid_args import parse_params
    from workbench.execution.params import notebook_parameters

    params = parse_params(pairs)
    defaults = notebook_parameters(notebook)
    for option, name in SHORTHANDS.items():
        if options.get(option) is None:
            continue
        if name not in defaults:
            raise ConfigError(f"{option}: {notebook.name} has no parameter {name!r}")
        if name in params:
            raise ConfigError(f"{option} and -p {name} both set {name}: give it once")
    timeframe = params.get("timeframe", options.get("--timeframe") or
                           {**defaults, **recorded}.get("timeframe"))
    values, notes = _given(options, timeframe)
    return {**params, **values}, notes, defaults


def _plain(value: Any) -> Any:
    from workbench.plain import plain

    return json.loads(json.dumps(plain(value)))


def _identity_differences(given: dict[str, Any], recorded: dict[str, Any],
                          labels: dict[str, str]) -> list[str]:
    """Each value given with ``--run`` that is not the run's recorded one (``recorded``: the
    notebook's defaults with the manifest's parameters over them)."""
    out = []
    for name, value in given.items():
        before = recorded.get(name)
        if _plain(value) != _plain(before):
            out.append(f"{labels.get(name, f'-p {name}')} {json.dumps(_plain(value))} "
                       f"(the run has {name}={json.dumps(_plain(before))})")
    return out


def _restart(run_dir: str, notebook: Path | None, options: dict[str, Any], pairs):
    """The run folder to resume: a running paper session of a notebook whose code is
    unchanged, and every value given equal to the recorded one (else one refusal line)."""
    from workbench.execution.hashing import hash_of, read_notebook
    from workbench.execution.params import check_parameters
    from workbench.runs.records import load_manifest

    path = Path(run_dir).expanduser().resolve()
    manifest = load_manifest(path)
    name, source = manifest.get("run_id"), manifest.get("notebook") or {}
    if manifest.get("kind") != "session" or manifest.get("mode") != "paper" or not source:
        raise ConfigError(f"run {name} is not a notebook's paper session (kind "
                          f"{manifest.get('kind')!r}, mode {manifest.get('mode')!r}); "
                          "--run restarts one")
    if manifest.get("status") != "running":
        raise ConfigError(f"run {name} has ended ({manifest.get('outcome')}); a finished run "
                          "is not restarted: start a new one")
    ran = Path(source["path"])
    if not ran.is_file():
        raise ConfigError(f"run {name}: its notebook {ran} is gone")
    if hash_of(read_notebook(ran)) != source.get("hash"):
        raise ConfigError(f"{ran.name} was edited since run {name} started (its code hash "
                          "differs): a restart runs the notebook it started with; start a "
                          "new run")
    recorded = manifest.get("params") or {}
    given, notes, defaults = _parameters(ran, options, pairs, recorded)
    check_parameters(ran, given)
    labels = {SHORTHANDS[o]: o for o, v in options.items() if v is not None}
    differences = _identity_differences(given, {**defaults, **recorded}, labels)
    if notebook is not None and Path(notebook).expanduser().resolve() != ran.resolve():
        differences.insert(0, f"NOTEBOOK {notebook} (the run ran {ran})")
    if differences:
        raise ConfigError(f"run {name} was started otherwise: {'; '.join(differences)}; a "
                          "restart keeps the run's identity (start a new run for other values)")
    return path, notes


def _new_run(notebook: Path | None, options: dict[str, Any], pairs):
    from workbench.execution.run import prepare_run

    if notebook is None:
        raise ConfigError("give a NOTEBOOK (or --run DIR to restart a run)")
    params, notes, defaults = _parameters(notebook, options, pairs, {})
    values = {**defaults, **params}
    if values.get("broker") == "alpaca" and "feed" not in params:
        params["feed"] = values["feed"] = "alpaca"  # the Alpaca account trades the live market
        notes.append("--broker alpaca: on Alpaca's live minutes (feed alpaca), today")
    if values.get("replay_date") is None and values.get("feed", "replay") == "replay":
        raise ConfigError(f"--replay DATE: the stored day to replay ({notebook.name}'s "
                          "replay_date is None), or --feed alpaca for today's live minutes")
    from workbench.cli.notebook_run import skipped_cells

    record = prepare_run(notebook, kind="session", mode="paper", params=params)
    skipped = skipped_cells(record.path)
    if skipped:
        echo(f"paper: {len(skipped)} cells tagged `research` are skipped in this mode", err=True)
    return record.path, notes


def _stop_gracefully(path: Path):
    """SIGTERM or Ctrl-C: a ``stop`` through the run's control channel (the session ends
    after its bar, outcome interrupted, and the kernel finishes); a second one interrupts
    the kernel at once."""
    sent = []

    def handler(signum, frame):
        from workbench.session.control import send

        if sent:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        sent.append(send(path, "stop", reason=f"{name} to workbench session",
                         operator="workbench session"))
        echo(f"{name}: the session stops after its bar ({name} again: at once)", err=True)
    return handler


def _execute(path: Path, timeout: float | None):
    """The run executed (a dead kernel leaves a session's run running, to be restarted with
    --run), one ``workbench session`` per run and none while its journal is held."""
    import os

    from workbench.clock import LiveClock
    from workbench.execution.run import execute_run
    from workbench.fsutil import exclusive_lock
    from workbench.journal import Journal, JournalLocked
    from workbench.session.start import SessionLocked

    try:
        lock = exclusive_lock(path / RUNNER_LOCK, wait=False)
    except BlockingIOError:
        raise SessionLocked(f"run {path.name} already has a session (another `workbench "
                            "session` runs it): this one starts nothing") from None
    try:
        try:
            Journal.open(path, LiveClock()).close()
        except JournalLocked:
            raise SessionLocked(f"run {path.name} already has a session (its journal is "
                                "locked): this one starts nothing") from None
        handler = _stop_gracefully(path)
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return execute_run(path, timeout=timeout, resumable=True)
        finally:
            for sig, before in previous.items():
                signal.signal(sig, before)
    finally:
        os.close(lock)


def _figures(path: Path) -> dict | None:
    """What the session recorded of itself (``results/session.json``), or None."""
    try:
        return json.loads((path / "results" / "session.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _cents(amount) -> str:
    """Money for people: to the cent, thousands separated (the record keeps every digit)."""
    from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

    try:
        return f"{Decimal(str(amount)).quantize(Decimal('0.01'), ROUND_HALF_EVEN):,}"
    except InvalidOperation:
        return str(amount)


def _positions_table(positions: dict) -> None:
    """The open positions at the end, one row per symbol (signed quantities)."""
    import pandas as pd

    from workbench.cli.output import echo_table

    rows = pd.DataFrame({"symbol": list(positions), "quantity": list(positions.values())})
    echo("positions:" if positions else "positions: none (flat)")
    if positions:
        echo_table(rows)


def _journal(path: Path) -> list:
    from workbench.journal import replay

    return replay(path).events if (path / "events").exists() else []


def _reconcile_alerts(path: Path, events: list | None = None) -> list[str]:
    """What the last start's reconciliation said (an open order canceled at the broker
    while the session was down, adopted): the kernel's own output is not this command's."""
    from workbench.model import events as ev

    events = _journal(path) if events is None else events
    last = [i for i, e in enumerate(events) if e.type == ev.RECONCILE][-1:]
    return [e.payload["message"] for e in events[last[0]:] if e.type == ev.ALERT
            and e.payload.get("source") == "reconcile"] if last else []


def _caps_said(events: list) -> list[str]:
    """What the last start said of its risk caps (``session_start``'s ``risk_caps``): the
    ones derived from the sizing (a note), the set ones it reaches (warnings)."""
    from workbench.model import events as ev

    starts = [e.payload.get("risk_caps") or {} for e in events if e.type == ev.SESSION_START]
    caps = starts[-1] if starts else {}
    return ([f"note: {caps['note']}"] if caps.get("note") else []) + [
        f"warning: {w}" for w in caps.get("warnings", [])]


def _report(run, as_json: bool) -> None:
    from workbench.execution.run import exit_code
    from workbench.runs.records import load_manifest

    events = _journal(run.path)
    for said in _caps_said(events) + [f"warning: {m}" for m in _reconcile_alerts(run.path,
                                                                                events)]:
        echo(said, err=True)
    figures = _figures(run.path)
    if as_json:
        echo_json({**run.to_dict(), "session": figures})
    else:
        detail = f": {run.error}" if run.error and run.error != run.outcome else ""
        echo(f"run {run.run_id}: {run.outcome}{detail}")
        if figures is not None:
            echo(f"bars {figures['bars']}  orders {figures['orders']}  fills "
                 f"{figures['fills']}  P&L {_cents(figures['pnl'])}  state {figures['state']}")
            _positions_table(figures.get("positions") or {})
        echo(f"record: {run.path}")
    if load_manifest(run.path).get("status") == "running":
        echo(f"the run is left running: restart it with `workbench session --run {run.path}` "
             "(it reconciles with the broker before it trades)", err=True)
    if run.outcome == "succeeded":
        return
    if run.outcome == "interrupted" and figures and figures["outcome"] == "interrupted":
        return  # stopped (stop command, SIGTERM) and closed by the session itself
    ended = (figures or {}).get("outcome")
    if ended in ("halted", "failed") or run.outcome == "halted":
        raise SessionHalted(f"session {ended or run.outcome}: "
                            f"{(figures or {}).get('message') or run.error}")
    sys.exit(exit_code(run.outcome))  # (a click Exit would be swallowed by the group's main)


@click.command()
@click.argument("notebook", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--broker", type=click.Choice(["sim", "alpaca"]), default=None, help="sim "
              "(default) or alpaca: the account of the keys in the environment (broker).")
@click.option("--feed", type=click.Choice(["replay", "alpaca"]), default=None, help="replay "
              "(the --replay day) or alpaca: today's live minutes (feed).")
@click.option("--live", is_flag=True, default=None, help="Real money: needs --broker alpaca, "
              "alpaca.paper=false, live keys, -p capital (live).")
@click.option("--replay", "replay_date", default=None,
              help="The stored day to replay (the notebook's replay_date).")
@click.option("--speed", default=None, help="max, or N x real time (speed).")
@click.option("--symbols", "-s", default=None,
              help="Comma-separated symbols, or a count N: the first N stored (symbols).")
@click.option("--timeframe", "-t", default=None, help="The bars' timeframe (timeframe).")
@click.option("--accounts", type=click.Choice(["per-symbol", "shared"]), default=None,
              help="Each symbol its own account of the cash, as the backtest, or one shared "
                   "account (accounts; the notebook's default: per_symbol).")
@click.option("--broker-path", default=None, help="A deployment's broker file (broker_path; "
              "default: runs/<id>/broker.sqlite, a fresh account).")
@click.option("--run", "run_dir", default=None,
              help="Restart this crashed run in its own record (same notebook and values).")
@click.option("-p", "--param", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Any other notebook parameter (e.g. -p fast 5); repeatable.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="A cell running longer ends the run (timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def session(notebook, broker, feed, live, replay_date, speed, symbols, timeframe, accounts,
            broker_path, run_dir, pairs, timeout, as_json) -> None:
    """Replay one stored trading day as a paper session: NOTEBOOK executed by papermill in
    mode "paper", its session on the simulated broker with the backtest's own settings.

    The options set notebook parameters (given twice, or one the notebook lacks: refused).
    SIGTERM or Ctrl-C stops the session after its bar (a second one: at once).
    Exit 0: the session succeeded (or was stopped); 6: it halted or failed; else by the
    run's outcome (1 failed, e.g. a dead kernel, which leaves the run to restart with --run).

    Example: workbench session notebooks/strategies/sma_cross.ipynb --replay 2026-11-20
    --timeframe 1Min --symbols 5 --speed max. Live market (keys in the environment): --broker
    alpaca (paper account, --feed alpaca implied) or --broker sim --feed alpaca.
    """
    options = {"--replay": replay_date, "--speed": speed, "--symbols": symbols,
               "--timeframe": timeframe, "--accounts": accounts, "--broker-path": broker_path,
               "--broker": broker, "--feed": feed, "--live": True if live else None}
    if run_dir is None:
        path, notes = _new_run(notebook, options, pairs)
    else:
        path, notes = _restart(run_dir, notebook, options, pairs)
    for note in notes:
        echo(note, err=as_json)
    _report(_execute(path, timeout), as_json)
