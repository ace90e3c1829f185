"""Keepalive pings for every connection of a server, from one task.

``websockets`` gives each connection a keepalive task that sleeps ``ping_interval``
between pings. With tens of thousands of stations that is a task per station plus, per
ping, a sleeping coroutine, a future and a timer that live for the whole interval: the
garbage collector promotes them through its generations, and its pauses stretch the
latency of every station (see the performance page of the docs). :class:`Keepalive`
pings the same connections from a single task instead: each connection sits in one of
a ring of slots, one slot is pinged per tick, and only the pings themselves (answered
in milliseconds) create objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConcurrencyError, ConnectionClosed
from websockets.protocol import State

from csms_kit.stopping import cancel_and_wait

__all__ = ["CLOSE_PING_TIMEOUT", "Keepalive"]

logger = logging.getLogger("csms_kit.keepalive")

#: Close code for a station that did not answer a ping in time (as websockets uses).
CLOSE_PING_TIMEOUT = 1011
#: Longest time between two ticks: pings and timeouts are this precise at worst.
MAX_TICK = 0.05


class Keepalive:
    """Ping each connection every ``interval`` seconds; close it if no pong comes.

    A connection whose pong has not arrived ``timeout`` seconds after a ping is closed
    with 1011 "keepalive ping timeout" (``timeout=None``: never). A connection whose
    writes are paused (the station is not reading) is not pinged, since the ping would
    wait rather than probe; if it is still paused at its next turn, an interval later,
    it is closed the same way (unless ``timeout`` is ``None``). A connection still
    waiting for a pong is not pinged again.

    ``on_timeout(connection, why)``, if given, is called as such a connection is closed.
    """

    def __init__(
        self,
        interval: float,
        timeout: float | None,
        on_timeout: Callable[[Connection, str], None] | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError("the ping interval must be positive")
        if timeout is not None and not timeout > 0:
            raise ValueError("the ping timeout must be positive or None")
        self.interval = interval
        self.timeout = timeout
        self.on_timeout = on_timeout
        # Many small slots: a few pings per tick, so that few pongs are awaited at once.
        self.tick = min(MAX_TICK, interval / 4)
        slots = max(1, round(interval / self.tick))
        self._slots: list[set[Connection]] = [set() for _ in range(slots)]
        self._slot_of: dict[Connection, int] = {}
        self._current = 0
        # A slot's pings are checked this many ticks after they were sent.
        self._check_after = 0 if timeout is None else math.ceil(timeout / self.tick - 1e-9)
        # Connections found not reading at their last turn.
        self._stalled: set[Connection] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def add(self, connection: Connection) -> None:
        """Start pinging ``connection``; its first ping comes about ``interval`` later."""
        # The slot pinged last: its next turn is a whole interval away.
        slot = (self._current - 1) % len(self._slots)
        self._slots[slot].add(connection)
        self._slot_of[connection] = slot
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="csms_kit keepalive"
            )

    def discard(self, connection: Connection) -> None:
        """Stop pinging ``connection`` (it ended)."""
        slot = self._slot_of.pop(connection, None)
        if slot is not None:
            self._slots[slot].discard(connection)
        self._stalled.discard(connection)

    async def stop(self) -> None:
        """Stop pinging; wait for the closes of timed-out connections already under way."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        count = len(self._slots)
        while self._slot_of:  # nothing to ping: the task ends, add() starts another
            next_tick += self.tick
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            now = loop.time()
            if self.timeout is not None:
                self._expire(self._slots[(self._current - self._check_after) % count], now)
            # A copy: a connection may end while an earlier one is pinged.
            for connection in list(self._slots[self._current]):
                await self._ping(connection)
            self._current = (self._current + 1) % count
            if now - next_tick > self.interval:
                next_tick = now  # the loop was stalled: do not catch up in a burst
        self._task = None

    async def _ping(self, connection: Connection) -> None:
        if connection.state is not State.OPEN:
            return  # closing already
        if getattr(connection, "paused", False):
            # The station is not reading: a ping would wait, not probe.
            if connection not in self._stalled:
                self._stalled.add(connection)
            elif self.timeout is not None:
                self._close(connection, "not reading for a whole ping interval")
            return
        self._stalled.discard(connection)
        if connection.pending_pings:
            return  # the previous ping is still within its timeout
        # websockets keeps the ping, with the time it was sent, in pending_pings until
        # its pong arrives: nothing to hold on our side.
        with contextlib.suppress(ConnectionClosed, ConcurrencyError):
            await connection.ping()

    def _expire(self, slot: set[Connection], now: float) -> None:
        assert self.timeout is not None
        # Half a tick of slack: the check runs on a tick, the ping ran a little after one.
        oldest_allowed = now - self.timeout + self.tick / 2
        late = [
            connection
            for connection in slot
            if any(sent < oldest_allowed for _, sent in connection.pending_pings.values())
        ]
        for connection in late:
            self._close(connection, f"no pong within {self.timeout:g} s")

    def _close(self, connection: Connection, why: str) -> None:
        self.discard(connection)
        logger.info("closing %s: %s", connection.remote_address, why)
        if self.on_timeout is not None:
            self.on_timeout(connection, why)
        task = asyncio.get_running_loop().create_task(_close_or_abort(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close_or_abort(connection: Connection) -> None:
    """Close with 1011; drop the TCP connection if that takes longer than close_timeout.

    ``close()`` first waits until its close frame can be written, which a station that
    reads nothing never allows.
    """
    timeout = connection.close_timeout if connection.close_timeout is not None else 10.0
    try:
        await asyncio.wait_for(
            connection.close(CLOSE_PING_TIMEOUT, "keepalive ping timeout"), timeout
        )
    except asyncio.TimeoutError:
        connection.transport.abort()
