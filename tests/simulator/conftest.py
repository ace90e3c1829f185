"""A real csms_kit CSMS on loopback for the simulator's tests, recording every frame.

Every frame a station sends is checked, at the end of each test, against the OCA
schema of its version (the CSMS validates them too, as it runs): a CALL's payload
against its request schema, a CALLRESULT against the response schema of the CSMS's
CALL it answers. A CALLERROR from the CSMS fails the test unless the test expects
one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from csms_kit import CsmsServer, OcppVersion, StationSession, on, serve
from csms_kit.clock import current_time
from csms_kit.demo.csms import DemoCsms
from csms_kit.hooks import Handshake, Rejection
from csms_kit.protocol.schemas import compile_validator
from tests.helpers import wait_until
from tests.security import conftest as security

# The throw-away PKIs of the security tests, for the simulator's TLS tests.
server_pki = security.server_pki
station_pki = security.station_pki
wrong_pki = security.wrong_pki
client_context = security.client_context

VERSIONS = list(OcppVersion)
V2X = [OcppVersion.V201, OcppVersion.V21]


@dataclass
class Plan:
    """What the test CSMS answers: boot statuses in turn (then Accepted), the interval,
    and whether it refuses connections (HTTP 503)."""

    boots: list[str] = field(default_factory=list)
    interval: int = 60
    refuse: bool = False
    refused: int = 0


class Csms(DemoCsms):
    """DemoCsms, booting stations as the test's :class:`Plan` says."""

    def __init__(self, *args: Any, plan: Plan, **options: Any) -> None:
        super().__init__(*args, **options)
        self.plan = plan

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        status = self.plan.boots.pop(0) if self.plan.boots else "Accepted"
        return {"currentTime": current_time(), "interval": self.plan.interval, "status": status}


@dataclass(frozen=True)
class Frame:
    """One frame on the wire, as the CSMS saw it: ``way`` is ``"in"`` (from the station)."""

    station_id: str
    version: OcppVersion
    way: str
    frame: list[Any]


@dataclass
class Recorder:
    """A running test CSMS: its URL, plan and every frame it saw."""

    server: CsmsServer
    plan: Plan
    frames: list[Frame] = field(default_factory=list)
    #: Set by a test that makes the CSMS answer with CALLERRORs on purpose.
    errors_expected: bool = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    def session(self, station_id: str) -> StationSession:
        session = self.server.registry.get(station_id)
        assert session is not None, f"{station_id} is not connected"
        return session

    async def call(self, station_id: str, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL to the station; the answer's dataclass."""
        return await self.session(station_id).call(payload, action=action)

    def calls(self, action: str | None = None, station_id: str | None = None) -> list[Any]:
        """Payloads of the CALLs stations sent (of ``action``), in order."""
        return [
            f.frame[3]
            for f in self.frames
            if f.way == "in"
            and f.frame[0] == 2
            and (action is None or f.frame[2] == action)
            and (station_id is None or f.station_id == station_id)
        ]

    def actions(self, station_id: str | None = None) -> list[str]:
        """The actions of the CALLs stations sent, in order."""
        return [
            f.frame[2]
            for f in self.frames
            if f.way == "in"
            and f.frame[0] == 2
            and (station_id is None or f.station_id == station_id)
        ]

    async def wait_for(
        self, action: str, count: int = 1, timeout: float = 5.0, **fields: Any
    ) -> list[Any]:
        """Wait until stations sent ``count`` CALLs of ``action`` whose payload has ``fields``."""

        def matching() -> list[Any]:
            return [p for p in self.calls(action) if all(p.get(k) == v for k, v in fields.items())]

        await wait_until(lambda: len(matching()) >= count, timeout, f"{count} x {action}")
        return matching()

    def check(self) -> None:
        """Every station frame valid for its version; no CALLERROR unless expected."""
        asked = {
            (f.station_id, f.frame[1]): f.frame[2]
            for f in self.frames
            if f.way == "out" and f.frame[0] == 2
        }
        for f in self.frames:
            kind = f.frame[0]
            if f.way == "in" and kind == 2:
                validate = compile_validator(f.version, f.frame[2], "request")
                assert validate is not None, f.frame
                validate(f.frame[3])
            elif f.way == "in" and kind == 3:
                action = asked[f.station_id, f.frame[1]]
                validate = compile_validator(f.version, action, "response")
                assert validate is not None, action
                validate(f.frame[2])
            elif kind == 4:
                assert self.errors_expected, f"unexpected CALLERROR: {f}"
            assert kind in (2, 3, 4), f


def recording_server(
    session_class: type[Csms] = Csms, plan: Plan | None = None, **options: Any
) -> tuple[CsmsServer, Recorder]:
    """A (not yet started) CSMS on a free port and the recorder of its frames."""
    plan = plan or Plan()
    frames: list[Frame] = []

    def record(session: StationSession, way: str, text: str) -> None:
        frames.append(Frame(session.station_id, session.version, way, json.loads(text)))

    def refuse(handshake: Handshake) -> Rejection | None:
        if plan.refuse:
            plan.refused += 1
            return Rejection(503, "not now\n")
        return None

    options.setdefault("authenticate", refuse)
    server = serve(
        functools.partial(session_class, plan=plan), "127.0.0.1", 0, on_message=record, **options
    )
    return server, Recorder(server, plan, frames)


@pytest.fixture
async def csms() -> AsyncIterator[Recorder]:
    """The test CSMS (see the module docstring), checked when the test ends."""
    server, recorder = recording_server()
    async with server:
        yield recorder
    recorder.check()


@pytest.fixture
def make_csms() -> Callable[..., tuple[CsmsServer, Recorder]]:
    """Build a test CSMS with another session class, plan or options; the test runs it."""
    return recording_server
