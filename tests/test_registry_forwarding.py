"""The payload-level call path cluster backends use, in one process with two registries.

The holder registry runs under a real server and holds the station; a ``Relay``
registry holds nothing and reaches it the way a cluster backend would: records read
from the holder, calls forwarded with ``call_payload``, errors crossing back as
plain JSON data rebuilt with ``error_from_dict``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms_kit import (
    BootInfo,
    CallError,
    CallTimeout,
    CsmsKitError,
    ErrorCode,
    InMemoryRegistry,
    InvalidPayload,
    InvalidResponse,
    OcppVersion,
    StationDisconnected,
    StationNotConnected,
    StationRecord,
    StationSession,
    on,
    serve,
)
from csms_kit.exceptions import error_from_dict
from csms_kit.testing import ScriptedStation, connect_scripted

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 5.0
BOOT: dict[str, dict[str, Any]] = {
    "1.6": {
        "chargePointVendor": "Vendor",
        "chargePointModel": "Model",
        "chargePointSerialNumber": "S-1",
        "firmwareVersion": "1.0",
    },
    "2.0.1": {
        "reason": "PowerUp",
        "chargingStation": {
            "vendorName": "Vendor",
            "model": "Model",
            "serialNumber": "S-1",
            "firmwareVersion": "1.0",
        },
    },
}


class Csms(StationSession):
    """Accepts every BootNotification (the boot gate stays on)."""

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW, "interval": 300, "status": "Accepted"}


def through_json(data: Any) -> Any:
    """``data`` as another process would read it."""
    return json.loads(json.dumps(data))


class Relay(InMemoryRegistry):
    """A registry holding no station that reaches the holder's as a cluster backend would."""

    def __init__(self, holder: InMemoryRegistry) -> None:
        super().__init__(node_id="relay")
        self.holder = holder
        #: What was forwarded: (how, station_id, action, payload, timeout).
        self.forwarded: list[tuple[str, str, str, dict[str, Any], float | None]] = []
        #: The errors that crossed back, as the plain data they crossed as.
        self.crossed: list[dict[str, Any]] = []

    async def record(self, station_id: str) -> StationRecord | None:
        mine = await super().record(station_id)
        return mine if mine is not None else await self.holder.record(station_id)

    async def stations(self) -> list[StationRecord]:
        return [*await super().stations(), *await self.holder.stations()]

    async def forward_call(
        self, record: StationRecord, action: str, payload: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        station_id = record.station_id
        assert record.node == self.holder.node_id
        self.forwarded.append(("call", station_id, action, payload, timeout))
        try:
            answer = await self.holder.call_payload(
                station_id, action, through_json(payload), timeout=timeout
            )
        except CsmsKitError as exc:
            raise self._crossed(exc) from None
        return through_json(answer)  # type: ignore[no-any-return]

    async def forward_send(
        self, record: StationRecord, action: str, payload: dict[str, Any]
    ) -> None:
        station_id = record.station_id
        self.forwarded.append(("send", station_id, action, payload, None))
        try:
            await self.holder.send(station_id, through_json(payload), action=action)
        except CsmsKitError as exc:
            raise self._crossed(exc) from None

    def _crossed(self, exc: CsmsKitError) -> CsmsKitError:
        data = through_json(exc.to_dict())
        self.crossed.append(data)
        return error_from_dict(data)


@asynccontextmanager
async def held(version: str = "1.6") -> AsyncIterator[tuple[Relay, ScriptedStation]]:
    """A station CP-1 connected to a server whose registry is the holder; and a Relay."""
    holder = InMemoryRegistry(node_id="holder")
    async with (
        serve(Csms, HOST, 0, ping_interval=None, close_timeout=1, registry=holder) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", version) as station,
    ):
        await holder.wait_connected("CP-1", TIMEOUT)
        relay = Relay(holder)
        assert relay.local_session("CP-1") is None  # the relay holds nothing itself
        yield relay, station


async def answer_next_call(station: ScriptedStation, payload: dict[str, Any]) -> list[Any]:
    """Receive the next CALL and answer it with ``payload``; return the CALL."""
    frame = await station.recv()
    assert frame[0] == 2
    await station.send([3, frame[1], payload])
    return frame


# -- calls that succeed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "request_", "result_class", "payload"),
    [
        ("1.6", call16.Reset(type="Soft"), result16.Reset, {"type": "Soft"}),
        ("2.0.1", call201.Reset(type="Immediate"), result201.Reset, {"type": "Immediate"}),
    ],
    ids=["1.6", "2.0.1"],
)
async def test_typed_request_comes_back_as_the_versions_dataclass(
    version: str, request_: Any, result_class: Any, payload: dict[str, Any]
) -> None:
    """A typed request through the relay returns the version's call_result dataclass."""
    async with held(version) as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", request_))
        frame = await answer_next_call(station, {"status": "Accepted"})
        assert frame[2:] == ["Reset", payload]
        response = await asyncio.wait_for(task, TIMEOUT)
        assert isinstance(response, result_class)
        assert response.status == "Accepted"
        assert relay.forwarded == [("call", "CP-1", "Reset", payload, None)]


async def test_dict_request_with_action() -> None:
    """A dict request with its action, through the relay, returns the typed response."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", {"type": "Hard"}, action="Reset", timeout=3))
        frame = await answer_next_call(station, {"status": "Rejected"})
        assert frame[2:] == ["Reset", {"type": "Hard"}]
        assert await asyncio.wait_for(task, TIMEOUT) == result16.Reset(status="Rejected")
        assert relay.forwarded == [("call", "CP-1", "Reset", {"type": "Hard"}, 3)]


async def test_call_payload_returns_the_raw_dict() -> None:
    """call_payload through the relay returns the station's JSON payload as a dict."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call_payload("CP-1", "Reset", {"type": "Soft"}))
        await answer_next_call(station, {"status": "Accepted"})
        assert await asyncio.wait_for(task, TIMEOUT) == {"status": "Accepted"}


async def test_send_is_forwarded_to_a_21_station() -> None:
    """A 2.1 SEND through the relay reaches the station held by the other registry."""
    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "42"}]}
    async with held("2.1") as (relay, station):
        await relay.send("CP-1", payload, action="NotifyPeriodicEventStream")
        frame = await station.recv()
        assert frame[0] == 6 and frame[2:] == ["NotifyPeriodicEventStream", payload]
        assert relay.forwarded == [("send", "CP-1", "NotifyPeriodicEventStream", payload, None)]


# -- errors cross as plain data -----------------------------------------------------------


async def test_callerror_arrives_as_call_error_with_its_facts() -> None:
    """The station's CALLERROR reaches the relay's caller as CallError with every fact intact."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", call16.Reset(type="Soft")))
        frame = await station.recv()
        await station.send([4, frame[1], "NotSupported", "no reset here", {"why": "test"}])
        with pytest.raises(CallError) as raised:
            await asyncio.wait_for(task, TIMEOUT)
        error = raised.value
        assert type(error) is CallError
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])
        assert error.code is ErrorCode.NOT_SUPPORTED and error.raw_code == "NotSupported"
        assert error.description == "no reset here" and error.details == {"why": "test"}
        assert [data["error"] for data in relay.crossed] == ["CallError"]


async def test_timeout_arrives_as_call_timeout() -> None:
    """No answer in time: the relay's caller gets CallTimeout with messageId and timeout."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", call16.Reset(type="Soft"), timeout=0.2))
        frame = await station.recv()
        with pytest.raises(CallTimeout) as raised:
            await asyncio.wait_for(task, TIMEOUT)
        error = raised.value
        assert isinstance(error, TimeoutError)
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])
        assert error.timeout == 0.2
        assert [data["error"] for data in relay.crossed] == ["CallTimeout"]


async def test_invalid_answer_arrives_as_invalid_response() -> None:
    """An answer breaking the schema reaches the relay's caller as InvalidResponse, code intact."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", call16.Reset(type="Soft")))
        frame = await answer_next_call(station, {"status": "Bogus"})
        with pytest.raises(InvalidResponse) as raised:
            await asyncio.wait_for(task, TIMEOUT)
        error = raised.value
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])
        assert isinstance(error.code, ErrorCode)
        assert [data["error"] for data in relay.crossed] == ["InvalidResponse"]


async def test_station_leaving_arrives_as_station_disconnected() -> None:
    """The station closing before it answers: StationDisconnected with its close code, reason."""
    async with held() as (relay, station):
        task = asyncio.create_task(relay.call("CP-1", call16.Reset(type="Soft")))
        await station.recv()
        await station.close(4000, "bye")
        with pytest.raises(StationDisconnected) as raised:
            await asyncio.wait_for(task, TIMEOUT)
        error = raised.value
        assert (error.station_id, error.code, error.reason) == ("CP-1", 4000, "bye")
        assert [data["error"] for data in relay.crossed] == ["StationDisconnected"]


async def test_call_payload_breaking_the_schema_raises_invalid_payload() -> None:
    """call_payload skips the caller's check; the holder's InvalidPayload crosses back intact."""
    async with held() as (relay, station):
        with pytest.raises(InvalidPayload) as raised:
            await relay.call_payload("CP-1", "Reset", {"type": "Bogus"})
        assert raised.value.action == "Reset"
        assert isinstance(raised.value.code, ErrorCode)
        assert [data["error"] for data in relay.crossed] == ["InvalidPayload"]
        assert await station.nothing_more()


async def test_unknown_station_raises_station_not_connected() -> None:
    """A station no registry holds: StationNotConnected, and nothing is forwarded."""
    async with held() as (relay, station):
        with pytest.raises(StationNotConnected) as raised:
            await asyncio.wait_for(relay.call("CP-9", call16.Reset(type="Soft")), TIMEOUT)
        assert raised.value.station_id == "CP-9"
        assert relay.forwarded == []
        assert await station.nothing_more()


async def test_request_breaking_the_schema_fails_before_forwarding() -> None:
    """A request breaking the schema raises InvalidPayload in the caller; nothing is sent."""
    async with held() as (relay, station):
        with pytest.raises(InvalidPayload) as raised:
            await relay.call("CP-1", call16.Reset(type="Bogus"))
        assert raised.value.action == "Reset"
        assert isinstance(raised.value.code, ErrorCode)
        assert relay.forwarded == []
        assert await station.nothing_more()


async def test_plain_registry_unknown_station_fails_at_once() -> None:
    """Plain InMemoryRegistry: a call to an unknown station raises StationNotConnected at once."""
    registry = InMemoryRegistry()
    with pytest.raises(StationNotConnected) as raised:
        await asyncio.wait_for(registry.call("CP-9", call16.Reset(type="Soft"), timeout=30), 2)
    assert raised.value.station_id == "CP-9"


# -- records ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_records_name_the_station_its_node_and_its_boot(version: str) -> None:
    """stations()/record() give a StationRecord with node, version, status and boot info."""
    async with held(version) as (relay, station):
        before = datetime.datetime.now(datetime.timezone.utc)
        answer = await station.call("b-1", "BootNotification", BOOT[version])
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
        record = await relay.record("CP-1")
        assert record is not None
        assert await relay.stations() == [record]
        assert record.station_id == "CP-1"
        assert record.version is OcppVersion.parse(version)
        assert record.node == "holder"
        assert record.connected_at.tzinfo is not None and record.connected_at <= before
        assert record.registration_status == "Accepted"
        assert record.boot == BootInfo("Vendor", "Model", "S-1", "1.0")
        assert await relay.record("CP-9") is None


async def test_record_round_trips_through_json() -> None:
    """StationRecord.to_dict() through JSON and from_dict() gives an equal record."""
    async with held() as (relay, station):
        await station.call("b-1", "BootNotification", BOOT["1.6"])
        record = await relay.record("CP-1")
        assert record is not None and record.boot is not None
        again = StationRecord.from_dict(through_json(record.to_dict()))
        assert again == record
        assert again.connected_at == record.connected_at
        assert again.boot == record.boot and again.boot is not None
        assert again.boot.request is None  # only the four fields cross
