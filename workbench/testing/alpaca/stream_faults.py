"""Fault injection on one of the fake's websocket streams: ``hub.faults.trading`` and
``hub.faults.data``.

    hub.faults.trading.drop()               # close the open connection(s) now (code 1011)
    hub.faults.data.drop(after=3)           # ... once 3 more data messages went out
    hub.faults.data.mute(seconds=None)      # connected, pings answered, no data sent
    hub.faults.data.mute(survives_reconnect=True)   # the whole stream mute, new connections too
    hub.faults.trading.delay(0.5)           # every data message leaves 0.5 s late
    hub.faults.trading.reorder(3)           # the next 3 trade updates go out in reverse order
    hub.faults.trading.duplicate(2)         # the next 2 trade updates are each sent twice
    hub.faults.data.auth_failure(times=1)   # the next authentication is refused (402)
    hub.faults.trading.slot_taken(times=1)  # the next authentication gets 406, as when
                                            # Alpaca still holds a half-dead connection
    hub.faults.trading.clear()

Each call is applied on the server's loop before it returns (so a trade update published
after it is affected, and one published before is not). ``drop`` and a non-sticky ``mute``
act on the connections open now and raise when there is none: a fault that hits nothing is
a test that proves nothing. Mute withholds data messages only (trade updates, bars): the
handshake replies still go out, since a silent handshake hangs alpaca-py for good.
Withheld and reordered messages are in ``hub.withheld`` / ``hub.sent_updates``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from workbench.testing.alpaca import streams

if TYPE_CHECKING:
    from workbench.testing.alpaca.hub import StreamHub
    from workbench.testing.alpaca.stream_messages import UpdateMessage
    from workbench.testing.alpaca.streams import Connection

FOREVER = None


class StreamFaults:
    """The faults of one stream (``"trading"`` or ``"data"``); public methods are safe
    from any thread."""

    def __init__(self, hub: StreamHub, stream: str) -> None:
        self._hub = hub
        self.stream = stream
        self._auth_failures: int | None = 0     # None: every attempt
        self._slot_refusals: int | None = 0
        self._slot_at = "auth"
        self._mute_until: float | None = None   # stream-wide (survives reconnects)
        self.latency = 0.0
        self._duplicates = 0
        self._reorder = 0
        self._held: list[UpdateMessage] = []

    # -- the faults ----------------------------------------------------------------------
    def drop(self, after: int | None = None) -> int:
        """Close the open connections now, or each once ``after`` more data messages were
        sent to it; returns how many connections. alpaca-py reconnects with backoff."""
        if after is not None and after < 1:
            raise ValueError("drop(after=N) needs N >= 1 (drop() drops now)")

        def apply() -> int:
            conns = self._open("drop")
            for conn in conns:
                if after is None:
                    conn.close(1011, "fault: drop")
                else:
                    conn.drop_after = after
            return len(conns)
        return self._hub.call(apply)

    def mute(self, seconds: float | None = None, *, survives_reconnect: bool = False) -> int:
        """Send no data for ``seconds`` (None: until `unmute`/`clear`), staying connected and
        answering pings. By default the connections open now go mute and a reconnect cures
        it; ``survives_reconnect=True`` mutes the stream, new connections included.
        Returns how many connections are mute now."""
        if seconds is not None and seconds <= 0:
            raise ValueError("mute(seconds) needs seconds > 0")
        until = math.inf if seconds is None else time.monotonic() + seconds

        def apply() -> int:
            if survives_reconnect:
                self._mute_until = until
                return len([c for c in self._hub.live.values() if c.stream == self.stream])
            conns = self._open("mute")
            for conn in conns:
                conn.muted_until = until
            return len(conns)
        return self._hub.call(apply)

    def unmute(self) -> None:
        def apply() -> None:
            self._mute_until = None
            for conn in self._hub.live.values():
                if conn.stream == self.stream:
                    conn.muted_until = None
        self._hub.call(apply)

    def delay(self, seconds: float) -> None:
        """Every data message published from now on leaves ``seconds`` late (order kept;
        ``delay(0)`` ends it)."""
        if seconds < 0:
            raise ValueError("delay(seconds) needs seconds >= 0")
        self._hub.call(lambda: setattr(self, "latency", float(seconds)))

    def auth_failure(self, times: int | None = 1) -> None:
        """Refuse the next ``times`` authentications (None: all until `clear`) as bad keys:
        trading ``unauthorized``, data ``402 auth failed``; the connection is closed."""
        _check_times(times)
        self._hub.call(lambda: setattr(self, "_auth_failures", times))

    def slot_taken(self, times: int | None = 1, *, at: str = "auth") -> None:
        """Refuse the next ``times`` connections (None: all until `clear`) with 406
        "connection limit exceeded", as Alpaca does while another connection (or a
        half-dead one it has not reaped yet) holds the account's slot. ``at="auth"``
        answers the authentication (Alpaca's documented shape); ``at="handshake"`` refuses
        the upgrade with HTTP 406."""
        _check_times(times)
        if at not in ("auth", "handshake"):
            raise ValueError("slot_taken(at=...) is 'auth' or 'handshake'")

        def apply() -> None:
            self._slot_refusals, self._slot_at = times, at
        self._hub.call(apply)

    def duplicate(self, n: int) -> None:
        """Send each of the next ``n`` trade updates twice (same execution_id)."""
        self._updates_only("duplicate", n, 1)
        self._hub.call(lambda: setattr(self, "_duplicates", n))

    def reorder(self, n: int) -> None:
        """Hold the next ``n`` trade updates and send them in reverse order once the
        ``n``-th arrives (`clear` releases a partial batch in order)."""
        self._updates_only("reorder", n, 2)

        def apply() -> None:
            self._release()
            self._reorder = n
        self._hub.call(apply)

    def clear(self) -> None:
        """Every fault of this stream off; held trade updates are released in order."""
        def apply() -> None:
            self._auth_failures = self._slot_refusals = 0
            self._mute_until, self.latency, self._duplicates, self._reorder = None, 0.0, 0, 0
            for conn in self._hub.live.values():
                if conn.stream == self.stream:
                    conn.muted_until, conn.drop_after = None, None
            self._release()
        self._hub.call(apply)

    # -- used by streams (loop thread) ---------------------------------------------------
    def take_auth_failure(self) -> bool:
        if self._auth_failures is None:
            return True
        if self._auth_failures > 0:
            self._auth_failures -= 1
            return True
        return False

    def take_slot(self, at: str) -> bool:
        if self._slot_at != at:
            return False
        if self._slot_refusals is None:
            return True
        if self._slot_refusals > 0:
            self._slot_refusals -= 1
            return True
        return False

    def muted(self, conn: Connection) -> bool:
        now = time.monotonic()
        return any(until is not None and now < until
                   for until in (self._mute_until, conn.muted_until))

    def shape(self, message: UpdateMessage) -> list[UpdateMessage]:
        """The trade updates to deliver now for one published: held for a reorder,
        doubled for a duplicate."""
        out = [message]
        if self._duplicates > 0:
            self._duplicates -= 1
            out = [message, message]
        if self._reorder > 0:
            self._held.extend(out)
            self._reorder -= 1
            if self._reorder > 0:
                return []
            out, self._held = list(reversed(self._held)), []
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _open(self, what: str) -> list[Connection]:
        conns = [c for c in self._hub.live.values() if c.stream == self.stream and not c.closing]
        if not conns:
            raise RuntimeError(f"{what}: no open {self.stream} connection to apply it to")
        return conns

    def _release(self) -> None:
        held, self._held, self._reorder = self._held, [], 0
        for message in held:
            streams.deliver_update(self._hub, message)

    def _updates_only(self, what: str, n: int, least: int) -> None:
        if self.stream != streams.TRADING:
            raise ValueError(f"{what} applies to trade updates (hub.faults.trading)")
        if not isinstance(n, int) or n < least:
            raise ValueError(f"{what}(n) needs an integer n >= {least}")


def _check_times(times: int | None) -> None:
    if times is not FOREVER and (not isinstance(times, int) or times < 1):
        raise ValueError("times is an integer >= 1, or None for every attempt")
