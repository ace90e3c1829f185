"""Fixtures for the robustness suite: a live CSMS, a canary station, and health checks.

Every bad input is played against a real server on 127.0.0.1 (port 0) by a raw
``websockets`` client (:class:`Peer`, a scripted station), while a well-behaved
csms_kit station (the canary) stays connected alongside. After each bad input,
:meth:`Guard.check` asserts that the server still accepts a new station (connect, boot,
heartbeat answered) and that the canary's heartbeat is still answered. No task may
outlive a test: that is enforced by ``tests/conftest.py``, so every fixture here closes
what it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from csms_kit import CsmsServer, StationSession, connect_station, on, serve
from csms_kit.limits import Limits
from csms_kit.testing import ScriptedStation, connect_scripted
from tests.helpers import wait_until

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
#: How long to wait for anything that should happen; generous for a loaded 2-core box.
TIMEOUT = 5.0
#: The OCPP versions the bad inputs are played on.
VERSIONS = ("1.6", "2.0.1")
#: How long the slow handler (MeterValues) takes.
SLOW_SECONDS = 0.5

HEARTBEAT_ANSWER = {"currentTime": NOW}
BOOT_ANSWER = {"currentTime": NOW, "interval": 300, "status": "Accepted"}
INTERNAL_ERROR_TEXT = "An internal error occurred while handling the request"

_station_numbers = itertools.count(1)


def fresh_id(prefix: str = "CP") -> str:
    """A station identity no other test uses (the registry remembers boot statuses)."""
    return f"{prefix}-{next(_station_numbers)}"


def boot_request(version: str) -> dict[str, Any]:
    """A valid BootNotification payload for ``version``."""
    if version == "1.6":
        return {"chargePointVendor": "ACME", "chargePointModel": "Robust"}
    return {"chargingStation": {"vendorName": "ACME", "model": "Robust"}, "reason": "PowerUp"}


def status_request(version: str) -> dict[str, Any]:
    """A valid StatusNotification payload for ``version``."""
    if version == "1.6":
        return {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    return {
        "timestamp": NOW,
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }


def authorize_answer(version: str) -> dict[str, Any]:
    """What RobustCsms answers to an Authorize in ``version``."""
    key = "idTagInfo" if version == "1.6" else "idTokenInfo"
    return {key: {"status": "Accepted"}}


class RobustCsms(StationSession):
    """The CSMS under test: boot gate on (the default), default limits.

    BootNotification (Accepted), Heartbeat, StatusNotification and Authorize work in
    1.6 and 2.0.1; MeterValues is slow; DataTransfer raises; FirmwareStatusNotification
    returns a payload that breaks the schema.
    """

    call_timeout = TIMEOUT
    handler_grace = 2.0

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        return BOOT_ANSWER

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return HEARTBEAT_ANSWER

    @on("StatusNotification")
    def status(self, request: Any) -> dict[str, Any]:
        return {}

    @on("Authorize")
    def authorize(self, request: Any) -> dict[str, Any]:
        return authorize_answer(str(self.version))

    @on("MeterValues")
    async def slow(self, request: Any) -> dict[str, Any]:
        await asyncio.sleep(SLOW_SECONDS)
        return {}

    @on("DataTransfer")
    def fails(self, request: Any) -> dict[str, Any]:
        raise RuntimeError("this handler fails on purpose")

    @on("FirmwareStatusNotification")
    def invalid(self, request: Any) -> dict[str, Any]:
        return {"notInTheSchema": True}


class UnlimitedCsms(RobustCsms):
    """RobustCsms without rate limit or malformed-frame limit."""

    limits = Limits(frames=None, max_bad_frames=None)


def start_server(session_class: Any = RobustCsms, **options: Any) -> CsmsServer:
    """A server on a free loopback port with short timeouts; start it with ``async with``."""
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 1)
    options.setdefault("open_timeout", TIMEOUT)
    return serve(session_class, HOST, 0, **options)


def url_of(server: CsmsServer) -> str:
    return f"ws://{HOST}:{server.port}"


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``predicate()`` is true; fail after ``timeout`` seconds."""
    await wait_until(predicate, timeout)


class Peer(ScriptedStation):
    """A hand-driven station (a :class:`ScriptedStation`) that knows this suite's answers."""

    def __init__(self, ws: ClientConnection, station_id: str, version: str) -> None:
        # no record of the wire: some tests flood the server and measure memory
        super().__init__(ws, timeout=TIMEOUT, record_wire=False)
        self.ws = ws
        self.station_id = station_id
        self.version = version

    async def heartbeat(self, message_id: str = "hb") -> None:
        """A Heartbeat CALL must be answered at once, and be the next frame."""
        assert await self.call(message_id, "Heartbeat", {}) == [3, message_id, HEARTBEAT_ANSWER]

    async def boot(self) -> None:
        answer = await self.call("boot", "BootNotification", boot_request(self.version))
        assert answer == [3, "boot", BOOT_ANSWER]


def session_of(server: CsmsServer, station_id: str) -> StationSession:
    """The server's session for ``station_id`` (look it up while it is connected)."""
    session = server.registry.local_session(station_id)
    assert session is not None, f"{station_id} has no session"
    return session


@contextlib.asynccontextmanager
async def peer(
    server: CsmsServer,
    station_id: str | None = None,
    version: str = "1.6",
    *,
    boot: bool = True,
    **options: Any,
) -> AsyncIterator[Peer]:
    """A raw station connected to ``server`` offering ``version``; booted unless told not."""
    station_id = station_id or fresh_id()
    options.setdefault("open_timeout", TIMEOUT)
    async with connect_scripted(url_of(server), station_id, version, **options) as scripted:
        ws = scripted.connection
        assert isinstance(ws, ClientConnection)
        station = Peer(ws, station_id, version)
        if boot:
            await station.boot()
        yield station


async def boot_station(station: StationSession) -> None:
    """BootNotification and a Heartbeat from a csms_kit station, both answered correctly."""
    version = str(station.version)
    response = await station.call(boot_request(version), action="BootNotification")
    assert response.status == "Accepted"
    assert response.interval == BOOT_ANSWER["interval"]
    await heartbeat_of(station)


async def heartbeat_of(station: StationSession) -> None:
    response = await station.call({}, action="Heartbeat", timeout=TIMEOUT)
    assert response.current_time == NOW


def station_options() -> dict[str, Any]:
    return {"open_timeout": TIMEOUT, "close_timeout": 1, "ping_interval": None}


class Guard:
    """A canary station on a server, and the health checks (b) and (c)."""

    def __init__(self, server: CsmsServer, canary: StationSession) -> None:
        self.server = server
        self.canary = canary
        self.checks = 0

    async def check(self, version: str = "1.6") -> None:
        """(b) a new station connects, boots and is answered; (c) so is the canary."""
        async with connect_station(
            url_of(self.server), fresh_id("NEW"), version, **station_options()
        ) as station:
            await boot_station(station)
            await heartbeat_of(station)
        assert not self.canary.ended, "the canary was disconnected"
        await heartbeat_of(self.canary)
        self.checks += 1


@contextlib.asynccontextmanager
async def guarding(server: CsmsServer, version: str = "2.0.1") -> AsyncIterator[Guard]:
    """A booted canary on ``server`` for as long as the block runs."""
    async with connect_station(
        url_of(server), fresh_id("CANARY"), version, **station_options()
    ) as canary:
        await boot_station(canary)
        guard = Guard(server, canary)
        yield guard
        assert not canary.ended, "the canary was disconnected"
        await heartbeat_of(canary)


@pytest.fixture
async def csms() -> AsyncIterator[CsmsServer]:
    """A RobustCsms server with the default limits, no pings."""
    async with start_server() as server:
        yield server


@pytest.fixture
async def guard(csms: CsmsServer) -> AsyncIterator[Guard]:
    """A booted canary station on ``csms`` and the checks to run after each bad input."""
    async with guarding(csms) as guard:
        yield guard


@pytest.fixture
def canary(guard: Guard) -> StationSession:
    """The well-behaved station connected to ``csms`` alongside the bad ones."""
    return guard.canary
