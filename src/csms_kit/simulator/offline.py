"""Being offline: when to reconnect (:class:`Backoff`) and what to send once back
(:class:`OfflineQueue`).

A station that loses the CSMS keeps charging: its transaction messages wait in the
queue, in the order they happened, and are sent once it is connected again (in OCPP
2.x each marked ``offline``). Other messages (heartbeats, status) are not kept: they
describe a moment that has passed.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csms_kit.simulator.state import Transaction

__all__ = ["Backoff", "OfflineQueue", "QueuedMessage"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before the next connection attempt, as OCPP 2.x's
    ``RetryBackOffWaitMinimum``, ``RetryBackOffRandomRange`` and
    ``RetryBackOffRepeatTimes`` say.

    Attempt ``n`` of a row (0 first) waits ``wait_minimum * 2**min(n, repeat_times)``
    seconds plus a random part of up to ``random_range``: the doubling stops after
    ``repeat_times`` (the cap), and the random part keeps stations that lost the CSMS
    together from all coming back in the same instant.
    """

    wait_minimum: float = 1.0
    random_range: float = 2.0
    repeat_times: int = 5

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (0 = the first after a drop)."""
        doubled: float = self.wait_minimum * 2 ** min(max(attempt, 0), self.repeat_times)
        return doubled + random.uniform(0, self.random_range)

    @property
    def maximum(self) -> float:
        """The longest wait: the cap."""
        doubled: float = self.wait_minimum * 2**self.repeat_times
        return doubled + self.random_range


@dataclass(slots=True, eq=False)
class QueuedMessage:
    """One transaction message waiting for the CSMS's answer.

    ``waiter`` gets the answer when someone awaits it; a message that outlives a drop
    is sent again later, with nobody waiting.
    """

    action: str
    payload: dict[str, Any]
    transaction: Transaction | None
    #: A meter reading inside a transaction: the first to go when the queue is full.
    expendable: bool = False
    waiter: asyncio.Future[Any] | None = None


class OfflineQueue:
    """Transaction messages in the order they happened, until the CSMS answered them.

    Messages join at the tail when they are made and leave from the head once
    answered, so a message in flight when the connection drops stays first in line.
    Past ``limit`` messages, the oldest meter reading is dropped (or the oldest
    message, if there is none), counted in :attr:`dropped`.
    """

    __slots__ = ("_items", "dropped", "limit")

    def __init__(self, limit: int = 1000) -> None:
        self._items: list[QueuedMessage] = []
        self.limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Any:
        return iter(self._items)

    def add(self, message: QueuedMessage) -> None:
        """Put ``message`` at the tail, making room first if the queue is full."""
        items = self._items
        if len(items) >= self.limit:
            victim = next((i for i, m in enumerate(items) if m.expendable), 0)
            dropped = items.pop(victim)
            self.dropped += 1
            if dropped.waiter is not None and not dropped.waiter.done():
                dropped.waiter.set_result(None)
        items.append(message)

    @property
    def head(self) -> QueuedMessage:
        """The oldest message (the queue must not be empty)."""
        return self._items[0]

    def remove(self, message: QueuedMessage) -> None:
        """Take ``message`` out (it was answered, or cannot be sent)."""
        self._items.remove(message)

    def release_waiters(self) -> None:
        """The connection dropped: nobody should wait for these any more (see class doc)."""
        for message in self._items:
            if message.waiter is not None and not message.waiter.done():
                message.waiter.set_result(None)
            message.waiter = None
