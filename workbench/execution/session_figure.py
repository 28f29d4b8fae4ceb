"""The figure a paper session leaves in its executed notebook: equity through the day from
the run's journal, each fill marked on it (buys up, sells down, hover: side, quantity,
symbol, price), New York time on the axis. Read from the journal, never from the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["session_figure"]


def _points(run_dir: Path) -> tuple[list, list, list]:
    from workbench.journal.reader import read_events
    from workbench.model import events as ev
    from workbench.times import to_new_york

    equity, fills = [], []
    for event in read_events(run_dir, warn=False):
        if event.type == ev.EQUITY:
            equity.append((to_new_york(event.ts), float(event.payload["equity"])))
        elif event.type == ev.FILL:
            fill = event.model()
            fills.append((to_new_york(fill.time), fill))
    times = [t for t, _ in equity]
    return times, [v for _, v in equity], fills


def _equity_at(times: list, values: list, ts: Any) -> float | None:
    """The last equity at or before ``ts`` (a fill's marker sits on the line)."""
    import bisect

    i = bisect.bisect_right(times, ts) - 1
    return values[i] if i >= 0 else (values[0] if values else None)


def session_figure(run_dir: str | Path):
    """A plotly figure of the session's equity and fills (``None`` when nothing was journaled)."""
    import plotly.graph_objects as go

    times, values, fills = _points(Path(run_dir))
    if not times:
        return None
    fig = go.Figure(go.Scatter(x=times, y=values, mode="lines", name="equity",
                               line={"color": "#1f77b4"}))
    for side, symbol, color in (("buy", "triangle-up", "#2ca02c"),
                                ("sell", "triangle-down", "#d62728")):
        mine = [(t, f) for t, f in fills if str(getattr(f.side, "value", f.side)) == side]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            x=[t for t, _ in mine], y=[_equity_at(times, values, t) for t, _ in mine],
            mode="markers", name=f"{side} fills", marker={"symbol": symbol, "size": 9,
                                                          "color": color},
            text=[f"{side} {f.quantity} {f.symbol} @ {f.price}" for _, f in mine],
            hoverinfo="text+x"))
    fig.update_layout(title=f"Session equity and fills ({len(fills)} fills)",
                      xaxis_title="New York time", yaxis_title="equity ($)",
                      height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig
