"""Test helpers: a scripted station over an in-memory transport, and ``wait_until``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from csms_kit import StationSession
from csms_kit.exceptions import TransportClosed
from csms_kit.testing import MemoryTransport, memory_transport_pair

RECV_TIMEOUT = 5.0


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(
                f"still not true after {timeout:g} s: {what}"
                if what
                else "condition not reached in time"
            )
        await asyncio.sleep(0.01)


class Station:
    """The station end of a memory transport, with helpers to send and expect frames."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport

    async def send(self, frame: Any) -> None:
        await self.transport.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> list[Any]:
        text = await asyncio.wait_for(self.transport.recv(), timeout)
        assert isinstance(text, str)
        frame = json.loads(text)
        assert isinstance(frame, list)
        return frame

    async def call(self, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
        await self.send([2, message_id, action, payload])
        return await self.recv()

    async def nothing_more(self, wait: float = 0.05) -> bool:
        """True if no frame arrives within ``wait`` seconds."""
        try:
            await asyncio.wait_for(self.transport.recv(), wait)
        except (asyncio.TimeoutError, TransportClosed):
            return True
        return False

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.transport.close(code, reason)


@asynccontextmanager
async def running(
    session_class: type[StationSession], version: str = "1.6", **options: Any
) -> AsyncIterator[tuple[StationSession, Station]]:
    """Run a session of ``session_class`` against a scripted station; clean up after."""
    csms_side, station_side = memory_transport_pair()
    session = session_class("CP-1", csms_side, version, **options)
    task = asyncio.create_task(session.run())
    try:
        yield session, Station(station_side)
    finally:
        await station_side.close()
        await asyncio.wait_for(task, 10)
