"""The outbox's tests: a real SQLite file, a real server, simulated stations that record
the commands they receive."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from csms_kit.demo.csms import DemoCsms
from csms_kit.hooks import Hooks
from csms_kit.outbox import Outbox, RawCall
from csms_kit.pytest_plugin import LiveCsms
from csms_kit.routing import on
from csms_kit.simulator import SimulatedStation
from tests.cluster import conftest as cluster

#: Fast delivery for tests: no boot pause, no pacing.
FAST = {"start_delay": 0.0, "interval": 0.0, "poll_interval": 0.2}


def data_transfer(n: int) -> RawCall:
    """A raw CALL valid in OCPP 1.6, 2.0.1 and 2.1, numbered so order shows."""
    return RawCall("DataTransfer", {"vendorId": "csms_kit-sim", "data": str(n)})


class Recording(SimulatedStation):
    """A simulated station that keeps every CALL the CSMS sent it: (messageId, action,
    payload), in arrival order."""

    vendor = "csms_kit-sim"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        kwargs["hooks"] = Hooks(on_message=self._frame)
        super().__init__(*args, **kwargs)

    def _frame(self, role: Any, direction: str, text: str) -> None:
        frame = json.loads(text)
        if direction == "in" and frame[0] == 2:
            self.received.append((frame[1], frame[2], frame[3]))

    def data(self) -> list[str]:
        """The ``data`` of each DataTransfer received, in order."""
        return [p["data"] for _, action, p in self.received if action == "DataTransfer"]


class Refusing(Recording):
    """Answers DataTransfer ``"fail"`` with a CALLERROR, ``"slow"`` never in time."""

    @on("DataTransfer")
    async def on_data_transfer(self, request: Any) -> dict[str, Any]:
        if request.data == "fail":
            from csms_kit import RpcError

            raise RpcError("NotSupported", "no such thing here")
        if request.data == "slow":
            await asyncio.sleep(1.0)
        return {"status": "Accepted", "data": request.data}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
async def make_outbox(store_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make_outbox(**options)``: a started outbox on the test's SQLite file."""
    opened: list[Outbox] = []

    async def make(**options: Any) -> Outbox:
        outbox = Outbox(store_path, **{**FAST, **options})
        await outbox.start()
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        await outbox.aclose()


@pytest.fixture
async def csms_with(csms_server_factory: Any) -> Callable[..., Any]:
    """``await csms_with(outbox)``: the demo CSMS delivering from ``outbox``."""

    async def start(outbox: Outbox, **options: Any) -> LiveCsms:
        live: LiveCsms = await csms_server_factory(DemoCsms, outbox=outbox, **options)
        return live

    return start


# The cluster tests' redis-server (started once per session, when a test asks): the
# RedisStore's tests use it, each under a prefix of its own (``redis_prefix``).
redis_url = cluster.redis_url


@pytest.fixture
def redis_prefix() -> str:
    """Key prefix no other test uses: the test's own outbox in the shared redis-server."""
    return f"test-{uuid.uuid4().hex[:8]}:outbox"
