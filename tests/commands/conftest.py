"""The commands' tests: a real csms_kit server on loopback (the pytest plugin's
``csms_server``), serving DemoCsms, with every frame recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from csms_kit import OcppVersion, StationSession
from csms_kit.demo.csms import DemoCsms

VERSIONS = [str(v) for v in OcppVersion]
V2X = [str(OcppVersion.V201), str(OcppVersion.V21)]


@dataclass
class Wire:
    """Every frame the server saw: ``(station_id, way, frame)``; ``way`` ``"out"`` is
    from the CSMS."""

    frames: list[tuple[str, str, list[Any]]] = field(default_factory=list)

    def record(self, session: StationSession, way: str, text: str) -> None:
        self.frames.append((session.station_id, way, json.loads(text)))

    def calls_sent(self) -> list[tuple[str, dict[str, Any]]]:
        """The CALLs the CSMS sent: ``(action, payload)``, in order."""
        return [(f[2], f[3]) for _, way, f in self.frames if way == "out" and f[0] == 2]

    def calls_received(self, action: str) -> list[dict[str, Any]]:
        """The payloads of the ``action`` CALLs stations sent, in order."""
        return [f[3] for _, way, f in self.frames if way == "in" and f[0] == 2 and f[2] == action]


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def csms_sessions() -> type[StationSession]:
    return DemoCsms


@pytest.fixture
def csms_serve_options(wire: Wire) -> dict[str, Any]:
    return {"on_message": wire.record}
