"""Stopping background tasks for sure.

A cancellation can be lost on its way through code we do not own: before Python 3.12
one that lands as an inner ``asyncio.wait_for`` completes is swallowed, and redis-py
8 was seen to return normally from a command whose task had been cancelled. A loop
that runs until cancelled then goes on for ever, and whoever waits for it to end (a
``close()``) hangs. So a task that must end is cancelled again until it does.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None, every: float = 0.1) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until all have ended,
    cancelling those still running again every ``every`` seconds.

    Their exceptions are retrieved (none is reported as never retrieved) and not
    raised: this is for tasks whose outcome nobody waits for.
    """
    given = [task for task in tasks if task is not None]
    pending = set(given)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
    for task in given:
        if not task.cancelled():
            task.exception()
