"""A run's identity, fixed in its first ``session_start`` event; a restart must equal it.

The identity is what decides the run's orders: the strategy and its parameters, the
symbols, the timeframe, the day, the history before the day that warms the strategy up
(``history_days``: indicators with memory, EMA, RSI, ATR, MACD, decide otherwise on another
history), the sizing (accounts, cash, size, shares, costs, stops, direction, a trailing
stop) and the broker account (a simulated account's file; a live session's broker, feed,
mode and clock speed). :func:`identity_of` gathers it,
:func:`refuse_other_identity` compares a restart's with the first start's and refuses (a
``ConfigError`` naming every difference) before the restart journals or sends anything.

Every restart path reaches it: ``workbench session --run DIR`` (which also compares its
options with the manifest before any kernel), a supervisor's restart
(``workbench.execution.child --resumable``), ``wb.run(..., mode="paper", run_dir=DIR)`` in
a notebook and ``run_session(..., run_dir=DIR)``. Without it a restart on another day
replayed nothing and ended "succeeded", and one with other parameters traded the rest of
the day on them while the manifest named the first ones.

Values are compared as the journal stores them (one encoding: an identity read back from
``session_start`` equals the one a restart with the same values builds). A key the first
start did not record (a run begun before the key existed) is not compared.

Not the identity, and allowed to change at a restart, but never silently: the replay's
``speed`` (how fast, not what is decided) and the ``[risk]`` settings the gateway uses (an
operator may tighten a cap before restarting a run). :func:`restart_changes` compares them
with the previous start's (its ``session_start``'s ``speed``, its ``config`` event's
``risk``), prints one ``NOTE`` line naming each ``old -> new`` and returns them for the
restart's ``session_start`` (``changed``). A previous start that did not record one is not
compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from workbench.errors import ConfigError
from workbench.journal.events import decode_event, encode_event
from workbench.model import events as ev

__all__ = ["IDENTITY", "identity_of", "refuse_other_identity", "restart_changes"]

#: the keys of ``session_start`` that make a run's identity (besides a live session's own)
IDENTITY = ("replay_date", "symbols", "strategy", "params", "timeframe", "broker",
            "accounts", "cash", "size", "shares", "costs", "stops", "direction", "sl_trail",
            "history_days")
_EPOCH = pd.Timestamp(0, tz="UTC")


def identity_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as the journal stores them (encoded and decoded as one event)."""
    line = encode_event(1, _EPOCH, "session_start", dict(values))
    return decode_event(line).payload


def refuse_other_identity(run_id: str, first: Mapping[str, Any] | None,
                          restart: Mapping[str, Any], keys=IDENTITY) -> None:
    """A ``ConfigError`` naming each of ``keys`` whose value in ``restart`` differs from the
    run's first ``session_start`` payload ``first`` (None: a new run, nothing to compare).
    ``sl_trail`` absent means False on both sides."""
    if first is None:
        return
    now = identity_of(restart)
    out = []
    for key in keys:
        if key not in first and key != "sl_trail":
            continue
        before, given = first.get(key), now.get(key)
        if key == "sl_trail":
            before, given = bool(before), bool(given)
        if before != given:
            out.append(f"{key} {_show(given)} (the run has {_show(before)})")
    if out:
        raise ConfigError(f"run {run_id} was started otherwise: {'; '.join(out)}; a restart "
                          "keeps the run's identity (start a new run for other values)")


def restart_changes(run_id: str, events, speed: str, risk: Mapping[str, Any]) -> dict:
    """What a restart of ``run_id`` changes of the settings outside the identity (see the
    module doc), against the previous start's in the run's journaled ``events``: ``{"speed":
    {"from", "to"}, "risk": {setting: {"from", "to"}}}`` with only what changed, said in one
    ``NOTE`` line ({} for a new run or nothing changed)."""
    starts = [e.payload for e in events if e.type == ev.SESSION_START]
    configs = [e.payload["risk"] for e in events if e.type == ev.CONFIG and "risk" in e.payload]
    out: dict[str, Any] = {}
    if starts and "speed" in starts[-1] and starts[-1]["speed"] != speed:
        out["speed"] = {"from": starts[-1]["speed"], "to": speed}
    if starts and configs:
        before, now = configs[-1], identity_of({"risk": dict(risk)})["risk"]
        risk_changed = {key: {"from": before.get(key), "to": now.get(key)}
                        for key in sorted({*before, *now}) if before.get(key) != now.get(key)}
        if risk_changed:
            out["risk"] = risk_changed
    if out:
        said = [f"speed {out['speed']['from']} -> {out['speed']['to']}"] if "speed" in out else []
        said += [f"[risk] {key} {_show(v['from'])} -> {_show(v['to'])}"
                 for key, v in out.get("risk", {}).items()]
        print(f"NOTE: run {run_id} restarts with other settings than its last start: "
              f"{'; '.join(said)} (recorded in its session_start: changed)", flush=True)
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
