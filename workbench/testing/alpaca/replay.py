"""The fake's clock and the replay of a stored day at a chosen speed.

:class:`FakeClock` is what ``/v2/clock``, order times and fills read: the wall clock, a time
set by hand (``fake.set_clock(ts)``), or during a replay a scaled clock running ``speed``
times faster than real time from ``start``.

:class:`Replay` plays one day's 1-minute bars: the clock starts ``lead`` (fake time, default
one minute) before the first bar of the window; when minute m closes on that clock (at
m + 1 min) it lets the book fill due orders against minute m's bars, publishes them to the
hub, records them in ``served``, and moves on. After the window the clock jumps to the
session's close (the market shows closed) and DAY orders expire. Minutes are published in
order and each once; a slow machine publishes late, never out of order or skipped.
``late[minute] = seconds`` publishes that minute (and so the ones after it, in order) that
many fake seconds after its close: market data behind the clock, deterministically.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable

import pandas as pd

from workbench.data import calendar
from workbench.errors import ConfigError
from workbench.times import NEW_YORK

__all__ = ["FakeClock", "Replay", "load_day", "replay_window"]

MINUTE = pd.Timedelta(minutes=1)


class FakeClock:
    """The fake's notion of now (UTC). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: pd.Timestamp | None = None
        self._origin: tuple[pd.Timestamp, float, float] | None = None  # (fake t0, real t0, speed)

    def now(self) -> pd.Timestamp:
        with self._lock:
            if self._fixed is not None:
                return self._fixed
            if self._origin is not None:
                t0, m0, speed = self._origin
                return t0 + pd.Timedelta(seconds=(_time.monotonic() - m0) * speed)
        return pd.Timestamp.now(tz="UTC")

    def set(self, ts) -> None:
        """Stop at ``ts`` (naive means UTC) until set again or scaled."""
        ts = pd.Timestamp(ts)
        with self._lock:
            self._fixed = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
            self._origin = None

    def run_scaled(self, start: pd.Timestamp, speed: float) -> None:
        """Run from ``start`` at ``speed`` x real time."""
        with self._lock:
            self._fixed, self._origin = None, (start, _time.monotonic(), float(speed))

    def seconds_until(self, ts: pd.Timestamp) -> float:
        """Real seconds until the clock shows ``ts`` (0 if past; inf if the clock is fixed)."""
        with self._lock:
            if self._origin is None:
                return 0.0 if self._fixed is None or self._fixed >= ts else float("inf")
            t0, m0, speed = self._origin
        return max(0.0, ((ts - t0).total_seconds() / speed) - (_time.monotonic() - m0))


def replay_window(day, start: str | None, end: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC bounds [first, last] of the bar starts replayed on ``day``: the session, cut by
    ``start``/``end`` (``HH:MM`` New York; ``end`` exclusive)."""
    if not calendar.is_session(day):
        raise ConfigError(f"{pd.Timestamp(day).date()} is not an NYSE session (weekend or "
                          "holiday): nothing to replay")
    open_, close = calendar.session_open(day), calendar.session_close(day)
    date = pd.Timestamp(day).date().isoformat()

    def at(hhmm: str, what: str) -> pd.Timestamp:
        try:
            ts = pd.Timestamp(f"{date} {hhmm}")
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: cannot read {hhmm!r} as HH:MM") from None
        if ts.normalize() != pd.Timestamp(date):
            raise ConfigError(f"{what}: {hhmm!r} is not a time of day")
        return ts.tz_localize(NEW_YORK).tz_convert("UTC")

    lo = open_ if start is None else max(open_, at(start, "start"))
    hi = close if end is None else min(close, at(end, "end"))
    if lo >= hi:
        raise ConfigError(f"the replay window {start or 'open'}..{end or 'close'} of {date} "
                          "holds no minute of the session")
    return lo, hi - MINUTE


def load_day(day, bars, store, symbols, start, end, history_days):
    """A replay's bars, from a long DataFrame ``bars`` or a ``store`` (its last
    ``history_days`` sessions and ``day``): (the bars REST serves, the window's bars to
    replay, the session's close). ConfigError for a day or window with nothing to replay."""
    lo, hi = replay_window(day, start, end)
    close = calendar.session_close(day)
    if bars is not None and store is not None:
        raise ConfigError("replay from bars or from a store, not both")
    if bars is None:
        if store is None:
            raise ConfigError("a replay needs bars=DataFrame or store=Store")
        first = calendar.last_sessions(int(history_days) + 1, day)[0]
        bars = store.load(symbols, "1Min", first.date().isoformat(),
                          pd.Timestamp(day).date().isoformat()).to_long()
        # the store's wide frames hold NaN where a symbol had no bar: no bar, not a bad one
        bars = bars.dropna(subset=["open", "high", "low", "close"])
    elif not isinstance(bars, pd.DataFrame):
        raise ConfigError("a replay's bars are one long DataFrame of 1-minute bars")
    frame = bars if symbols is None else bars[bars["symbol"].isin(list(symbols))]
    if symbols is not None:
        missing = sorted(set(symbols) - set(frame["symbol"].astype(str)))
        if missing:
            raise ConfigError(f"no bars to replay for {', '.join(missing)}")
    ts = pd.DatetimeIndex(frame["ts"])
    window = frame[(ts >= lo) & (ts <= hi)]
    if window.empty:
        raise ConfigError(f"no bars between {lo} and {hi} to replay")
    return frame, window, close


class Replay:
    """Publishes ``bars`` (long: symbol, ts, open, high, low, close, volume) minute by minute.

    ``publish(minute, rows)`` is called for each minute with that minute's bars as hub dicts;
    ``finish()`` once after the window. Runs on its own daemon thread; ``stop()`` ends it.
    """

    def __init__(self, bars: pd.DataFrame, *, clock: FakeClock, speed: float,
                 close: pd.Timestamp, publish: Callable[[pd.Timestamp, list[dict]], None],
                 finish: Callable[[], None], lead: pd.Timedelta = MINUTE) -> None:
        if not speed > 0:
            raise ConfigError(f"the replay speed must be positive, got {speed!r}")
        if bars is None or not len(bars):
            raise ConfigError("nothing to replay: no bars in the window")
        self.clock, self.speed, self.close, self.lead = clock, float(speed), close, lead
        self._publish, self._finish = publish, finish
        bars = bars.sort_values(["ts", "symbol"], kind="stable")
        self.minutes: list[tuple[pd.Timestamp, list[dict]]] = []
        for ts, rows in bars.groupby("ts", sort=True):
            ts = pd.Timestamp(ts).tz_convert("UTC")
            self.minutes.append((ts, [_hub_bar(ts, r) for r in rows.itertuples(index=False)]))
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published: pd.Timestamp | None = None
        self.late: dict[pd.Timestamp, float] = {}  # minute -> fake seconds after its close
        self.error: BaseException | None = None  # what ended the replay early, if anything

    @property
    def first(self) -> pd.Timestamp:
        return self.minutes[0][0]

    def start(self) -> None:
        self.clock.run_scaled(self.first - self.lead, self.speed)
        self._thread = threading.Thread(target=self._run, name="fake-alpaca-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        for minute, rows in self.minutes:
            due = minute + MINUTE + pd.Timedelta(seconds=self.late.get(minute, 0.0))
            while not self._stop.is_set():
                wait = self.clock.seconds_until(due)
                if wait <= 0:
                    break
                self._stop.wait(min(wait, 0.5))
            if self._stop.is_set():
                return
            try:
                self._publish(minute, rows)
            except BaseException as e:  # noqa: BLE001 - wait_until_done raises it (unless stopping)
                if not self._stop.is_set():
                    self.error = e
                    self.done.set()
                return
            self.published = minute
        if not self._stop.is_set():
            self.clock.set(max(self.close, self.clock.now()))
            self._finish()
            self.done.set()


def _hub_bar(ts: pd.Timestamp, r) -> dict:
    vw = getattr(r, "vw", None)
    n = getattr(r, "n", None)
    return {"S": str(r.symbol), "t": ts, "o": float(r.open), "h": float(r.high),
            "l": float(r.low), "c": float(r.close), "v": float(r.volume),
            "n": None if n is None or pd.isna(n) else int(n),
            "vw": None if vw is None or pd.isna(vw) else float(vw)}
