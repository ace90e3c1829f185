"""Commands answered by an independent station: the ocpp package's own ChargePoint."""

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
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v201 import ChargePoint as ChargePoint201

from csms_kit import commands
from csms_kit.commands import DeviceVariable
from csms_kit.pytest_plugin import LiveCsms


class Station16(ChargePoint16):
    """A 1.6 station with a small configuration; it keeps the commands it was sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.configuration = {"HeartbeatInterval": "60", "ConnectionTimeOut": "30"}
        self.seen: list[tuple[str, Any]] = []

    @station_on("Reset")
    def on_reset(self, type: str) -> result16.Reset:
        self.seen.append(("Reset", type))
        return result16.Reset(status="Accepted")

    @station_on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None) -> result16.GetConfiguration:
        names = key or list(self.configuration)
        known = [
            {"key": k, "readonly": False, "value": self.configuration[k]}
            for k in names
            if k in self.configuration
        ]
        unknown = [k for k in names if k not in self.configuration]
        return result16.GetConfiguration(
            configuration_key=known or None, unknown_key=unknown or None
        )

    @station_on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> result16.ChangeConfiguration:
        if key not in self.configuration:
            return result16.ChangeConfiguration(status="NotSupported")
        self.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @station_on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **kwargs: Any) -> result16.RemoteStartTransaction:
        self.seen.append(("RemoteStartTransaction", {"id_tag": id_tag, **kwargs}))
        return result16.RemoteStartTransaction(status="Accepted")


class Handlers2x:
    """2.x answers, for the 2.0.1 and the 2.1 ChargePoint alike."""

    _call_result: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.variables = {("OCPPCommCtrlr", "HeartbeatInterval"): "60"}
        self.seen: list[tuple[str, Any]] = []

    @station_on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> Any:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            value = self.variables.get((component["name"], variable["name"]))
            result = {"component": component, "variable": variable}
            if value is None:
                result["attribute_status"] = "UnknownVariable"
            else:
                result.update(attribute_status="Accepted", attribute_value=value)
            results.append(result)
        return self._call_result.GetVariables(get_variable_result=results)

    @station_on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]]) -> Any:
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            key = (component["name"], variable["name"])
            status = "Accepted" if key in self.variables else "UnknownVariable"
            if status == "Accepted":
                self.variables[key] = item["attribute_value"]
            results.append(
                {"attribute_status": status, "component": component, "variable": variable}
            )
        return self._call_result.SetVariables(set_variable_result=results)

    @station_on("RequestStartTransaction")
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, **kwargs: Any
    ) -> Any:
        self.seen.append(("RequestStartTransaction", (id_token, remote_start_id, kwargs)))
        return self._call_result.RequestStartTransaction(status="Accepted", transaction_id="tx-9")

    @station_on("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int) -> Any:
        self.seen.append(("UnlockConnector", (evse_id, connector_id)))
        return self._call_result.UnlockConnector(status="UnlockFailed")


class Station201(Handlers2x, ChargePoint201):
    pass


class Station21(Handlers2x, ChargePoint21):
    pass


@contextlib.asynccontextmanager
async def connected(
    live: LiveCsms, cls: type[Any], station_id: str, version: str
) -> AsyncIterator[Any]:
    """An ocpp ChargePoint of ``cls`` connected to ``live`` and Accepted at boot."""
    async with websockets.connect(
        f"{live.url}/{station_id}", subprotocols=[f"ocpp{version}"]
    ) as ws:
        charge_point = cls(station_id, ws)
        reader = asyncio.create_task(charge_point.start())
        try:
            if version == "1.6":
                boot: Any = call16.BootNotification("Model", "Vendor")
            else:
                station = {"model": "Model", "vendor_name": "Vendor"}
                boot = charge_point._call.BootNotification(station, "PowerUp")
            assert (await charge_point.call(boot)).status == "Accepted"
            yield charge_point
        finally:
            await ws.close()
            with contextlib.suppress(websockets.ConnectionClosed):
                await reader


async def test_a_16_chargepoint(csms_server: LiveCsms) -> None:
    """Reset, configuration keys (by key and by 2.x variable) and a remote start."""
    async with connected(csms_server, Station16, "CP-OCPP", "1.6") as station:
        registry = csms_server.registry
        result = await commands.reset(registry, "CP-OCPP", kind="hard")
        assert result.accepted and station.seen == [("Reset", "Hard")]

        changed = await commands.set_configuration(
            registry, "CP-OCPP", key=DeviceVariable("TxCtrlr", "EVConnectionTimeOut"), value=45
        )
        assert changed.accepted and station.configuration["ConnectionTimeOut"] == "45"
        result = await commands.get_configuration(
            registry, "CP-OCPP", keys=["HeartbeatInterval", "ConnectionTimeOut", "LightIntensity"]
        )
        assert [(v.value, v.status) for v in result.values] == [
            ("60", "Accepted"),
            ("45", "Accepted"),
            (None, "UnknownVariable"),
        ]
        everything = await commands.get_configuration(registry, "CP-OCPP")
        assert {v.key: v.value for v in everything.values} == station.configuration

        started = await commands.remote_start(registry, "CP-OCPP", id_token="TAG-1", evse_id=2)
        assert started.accepted and started.transaction_id is None
        assert station.seen[-1] == (
            "RemoteStartTransaction",
            {"id_tag": "TAG-1", "connector_id": 2},
        )


@pytest.mark.parametrize(("cls", "version"), [(Station201, "2.0.1"), (Station21, "2.1")])
async def test_a_2x_chargepoint(csms_server: LiveCsms, cls: type[Any], version: str) -> None:
    """Variables by 1.6 key, a remote start that reports its transaction id, an unlock."""
    async with connected(csms_server, cls, "CP-OCPP", version) as station:
        session = await csms_server.session("CP-OCPP")
        changed = await commands.set_configuration(session, key="HeartbeatInterval", value=300)
        assert (changed.accepted, changed.status) == (True, "Accepted")
        assert station.variables["OCPPCommCtrlr", "HeartbeatInterval"] == "300"
        result = await commands.get_configuration(
            session, keys=["HeartbeatInterval", "MeterValueSampleInterval"]
        )
        assert result.get("HeartbeatInterval") == "300"
        assert result.values[1].status == "UnknownVariable" and not result.accepted

        started = await commands.remote_start(session, id_token="TAG-2", remote_start_id=5)
        assert (started.accepted, started.transaction_id, started.remote_start_id) == (
            True,
            "tx-9",
            5,
        )
        id_token, remote_start_id, _ = station.seen[-1][1]
        assert (id_token, remote_start_id) == ({"id_token": "TAG-2", "type": "Central"}, 5)

        unlocked = await commands.unlock_connector(session, evse_id=1)
        assert (unlocked.accepted, unlocked.status) == (False, "UnlockFailed")
        assert station.seen[-1] == ("UnlockConnector", (1, 1))
