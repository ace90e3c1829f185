"""The ocpp package's own ChargePoint as a station, over a real loopback WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from ocpp.routing import on as station_on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from websockets.asyncio.server import ServerConnection, serve

from csms_kit import (
    StationSession,
    on,
)
from csms_kit.websocket import WebSocketTransport

NOW = "2026-11-27T10:00:00Z"


class Csms16(StationSession):
    """Answers a 1.6 station's core messages and records what it saw."""

    @on("BootNotification")
    def boot(self, request: call16.BootNotification) -> result16.BootNotification:
        return result16.BootNotification(NOW, 60, "Accepted")

    @on("Heartbeat")
    def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
        return result16.Heartbeat(NOW)

    @on("StatusNotification")
    def status(self, request: call16.StatusNotification) -> result16.StatusNotification:
        self.state.setdefault("status", []).append(request.status)
        return result16.StatusNotification()

    @on("Authorize")
    def authorize(self, request: call16.Authorize) -> result16.Authorize:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def start(self, request: call16.StartTransaction) -> result16.StartTransaction:
        self.state["meter_start"] = request.meter_start
        return result16.StartTransaction(transaction_id=77, id_tag_info={"status": "Accepted"})

    @on("MeterValues")
    def meter_values(self, request: call16.MeterValues) -> result16.MeterValues:
        sampled = request.meter_value[0].sampled_value[0]
        self.state["energy"] = (sampled.value, sampled.unit)
        return result16.MeterValues()

    @on("StopTransaction")
    def stop(self, request: call16.StopTransaction) -> result16.StopTransaction:
        self.state["stopped"] = (request.transaction_id, request.meter_stop)
        return result16.StopTransaction()


class Csms201(StationSession):
    """Answers a 2.0.1 station's core messages and records what it saw."""

    @on("BootNotification")
    def boot(self, request: call201.BootNotification) -> result201.BootNotification:
        return result201.BootNotification(NOW, 60, "Accepted")

    @on("Heartbeat")
    def heartbeat(self, request: call201.Heartbeat) -> result201.Heartbeat:
        return result201.Heartbeat(NOW)

    @on("StatusNotification")
    def status(self, request: call201.StatusNotification) -> result201.StatusNotification:
        self.state.setdefault("status", []).append(request.connector_status)
        return result201.StatusNotification()

    @on("TransactionEvent")
    def transaction(self, request: call201.TransactionEvent) -> result201.TransactionEvent:
        self.state.setdefault("events", []).append(
            (request.event_type, request.transaction_info.transaction_id)
        )
        return result201.TransactionEvent(id_token_info={"status": "Accepted"})


class Station16(ChargePoint16):
    @station_on("RemoteStartTransaction")
    def remote_start(self, id_tag: str, **kwargs: Any) -> result16.RemoteStartTransaction:
        return result16.RemoteStartTransaction(status="Accepted")


class Station201(ChargePoint201):
    @station_on("RequestStartTransaction")
    def request_start(self, id_token: dict[str, Any], remote_start_id: int, **kwargs: Any) -> Any:
        return result201.RequestStartTransaction(status="Accepted", transaction_id="tx-9")


@contextlib.asynccontextmanager
async def csms(session_classes: dict[str, type[StationSession]]) -> AsyncIterator[Any]:
    """Serve sessions on a free loopback port; yield (port, sessions by station id)."""
    sessions: dict[str, StationSession] = {}
    connected = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        version = connection.subprotocol
        assert version is not None
        station_id = connection.request.path.rsplit("/", 1)[-1]
        session = session_classes[version](
            station_id,
            WebSocketTransport(connection),
            version,
            remote_address=connection.remote_address,
        )
        sessions[station_id] = session
        connected.set()
        await session.run()

    async with serve(handler, "127.0.0.1", 0, subprotocols=list(session_classes)) as server:
        port = server.sockets[0].getsockname()[1]
        yield port, sessions


@contextlib.asynccontextmanager
async def station(cls: type, port: int, station_id: str, subprotocol: str) -> AsyncIterator[Any]:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{station_id}", subprotocols=[subprotocol]
    ) as ws:
        charge_point = cls(station_id, ws)
        reader = asyncio.create_task(charge_point.start())
        try:
            yield charge_point
        finally:
            await ws.close()
            with contextlib.suppress(websockets.ConnectionClosed):
                await reader


async def wait_for_session(sessions: dict[str, StationSession], station_id: str) -> Any:
    for _ in range(100):
        if station_id in sessions:
            return sessions[station_id]
        await asyncio.sleep(0.01)
    pytest.fail(f"no session for {station_id}")


async def test_ocpp16_chargepoint_full_flow() -> None:
    """1.6: boot, heartbeat, status, a transaction, and a CSMS-to-station call."""
    async with (
        csms({"ocpp1.6": Csms16}) as (port, sessions),
        station(Station16, port, "CP-16", "ocpp1.6") as cp,
    ):
        boot = await cp.call(
            call16.BootNotification("Fast-1", "ACME", charge_point_serial_number="SN-16")
        )
        assert boot.status == "Accepted" and boot.interval == 60
        session = await wait_for_session(sessions, "CP-16")
        assert session.boot_info.serial_number == "SN-16"
        assert session.remote_address[0] == "127.0.0.1"
        assert (await cp.call(call16.Heartbeat())).current_time == NOW
        await cp.call(call16.StatusNotification(1, "NoError", "Available"))
        assert (await cp.call(call16.Authorize("TAG-1"))).id_tag_info["status"] == "Accepted"
        started = await cp.call(call16.StartTransaction(1, "TAG-1", 1000, NOW))
        assert started.transaction_id == 77
        await cp.call(
            call16.MeterValues(
                1,
                [{"timestamp": NOW, "sampledValue": [{"value": "1500", "unit": "Wh"}]}],
                transaction_id=77,
            )
        )
        await cp.call(call16.StopTransaction(2000, NOW, 77))
        assert session.state["energy"] == ("1500", "Wh")
        assert session.state["stopped"] == (77, 2000)
        assert session.state["status"] == ["Available"]

        answer = await session.call(call16.RemoteStartTransaction(id_tag="TAG-1", connector_id=1))
        assert isinstance(answer, result16.RemoteStartTransaction)
        assert answer.status == "Accepted"
    await asyncio.sleep(0.05)
    assert session.ended


async def test_ocpp201_chargepoint_full_flow() -> None:
    """2.0.1: boot, heartbeat, status, a transaction, and a CSMS-to-station call."""
    async with (
        csms({"ocpp2.0.1": Csms201}) as (port, sessions),
        station(Station201, port, "CP-201", "ocpp2.0.1") as cp,
    ):
        boot = await cp.call(
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V", "serial_number": "SN-2"},
                reason="PowerUp",
            )
        )
        assert boot.status == "Accepted"
        session = await wait_for_session(sessions, "CP-201")
        assert (session.boot_info.vendor, session.boot_info.serial_number) == ("V", "SN-2")
        await cp.call(call201.Heartbeat())
        await cp.call(call201.StatusNotification(NOW, "Available", 1, 1))
        for event_type, seq in (("Started", 0), ("Updated", 1), ("Ended", 2)):
            result = await cp.call(
                call201.TransactionEvent(
                    event_type=event_type,
                    timestamp=NOW,
                    trigger_reason="Authorized",
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-1"},
                    id_token={"id_token": "TAG-1", "type": "ISO14443"},
                )
            )
            assert result.id_token_info["status"] == "Accepted"
        assert [e for e, _ in session.state["events"]] == ["Started", "Updated", "Ended"]
        assert session.state["status"] == ["Available"]

        answer = await session.call(
            call201.RequestStartTransaction(
                id_token=types201.IdTokenType(id_token="TAG-1", type="ISO14443"),
                remote_start_id=5,
            )
        )
        assert isinstance(answer, result201.RequestStartTransaction)
        assert (answer.status, answer.transaction_id) == ("Accepted", "tx-9")


async def test_one_endpoint_serves_both_versions() -> None:
    """Stations of 1.6 and 2.0.1 on one server each get their own session and version."""
    async with (
        csms({"ocpp2.0.1": Csms201, "ocpp1.6": Csms16}) as (port, sessions),
        station(Station16, port, "A", "ocpp1.6") as a,
        station(Station201, port, "B", "ocpp2.0.1") as b,
    ):
        await asyncio.gather(a.call(call16.Heartbeat()), b.call(call201.Heartbeat()))
        assert (str(sessions["A"].version), str(sessions["B"].version)) == ("1.6", "2.0.1")
        assert type(sessions["A"]) is Csms16 and type(sessions["B"]) is Csms201
