"""Simulated stations for the demo: boot, report status, heartbeat, charge."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Any

from csms_kit.client import connect_station
from csms_kit.clock import current_time
from csms_kit.role import Role
from csms_kit.versions import OcppVersion

__all__ = ["StationTally", "run_station"]


@dataclass
class StationTally:
    """What the simulated stations did, for the progress line."""

    connected: int = 0
    calls: int = 0
    errors: int = 0
    last_error: str = ""


def _messages_16(station_id: str, tag: str) -> dict[str, Any]:
    return {
        "boot": {
            "chargePointVendor": "csms_kit",
            "chargePointModel": "Demo-16",
            "chargePointSerialNumber": f"SN-{station_id}",
        },
        "status": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        "authorize": {"idTag": tag},
    }


def _messages_2x(station_id: str, tag: str) -> dict[str, Any]:
    return {
        "boot": {
            "reason": "PowerUp",
            "chargingStation": {
                "vendorName": "csms_kit",
                "model": "Demo-2x",
                "serialNumber": f"SN-{station_id}",
            },
        },
        "status": {
            "timestamp": current_time(),
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
        "authorize": {"idToken": {"idToken": tag, "type": "ISO14443"}},
    }


async def _charge_16(station: Role, tag: str, energy: int) -> None:
    started = await station.call(
        {"connectorId": 1, "idTag": tag, "meterStart": energy, "timestamp": current_time()},
        action="StartTransaction",
    )
    sample = {
        "timestamp": current_time(),
        "sampledValue": [
            {
                "value": str(energy + 500),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            },
            {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
        ],
    }
    transaction_id = started.transaction_id
    await station.call(
        {"connectorId": 1, "transactionId": transaction_id, "meterValue": [sample]},
        action="MeterValues",
    )
    await station.call(
        {"meterStop": energy + 1000, "timestamp": current_time(), "transactionId": transaction_id},
        action="StopTransaction",
    )


async def _charge_2x(station: Role, tag: str, energy: int) -> None:
    transaction = {"transactionId": f"tx-{random.getrandbits(40):x}"}
    for seq, (event, trigger) in enumerate(
        (("Started", "Authorized"), ("Updated", "MeterValuePeriodic"), ("Ended", "EVDeparted"))
    ):
        message: dict[str, Any] = {
            "eventType": event,
            "timestamp": current_time(),
            "triggerReason": trigger,
            "seqNo": seq,
            "transactionInfo": transaction,
            "meterValue": [
                {"timestamp": current_time(), "sampledValue": [{"value": energy + 500.0 * seq}]}
            ],
        }
        if event == "Started":
            message["idToken"] = {"idToken": tag, "type": "ISO14443"}
            message["evse"] = {"id": 1, "connectorId": 1}
        await station.call(message, action="TransactionEvent")


async def run_station(
    url: str,
    station_id: str,
    version: OcppVersion,
    tally: StationTally,
    stop: asyncio.Event,
    pace: float,
) -> None:
    """Connect, boot, then heartbeat and charge every ``pace`` seconds until ``stop``."""
    tag = f"TAG-{station_id[-4:]}"
    messages = (_messages_16 if version is OcppVersion.V16 else _messages_2x)(station_id, tag)
    charge = _charge_16 if version is OcppVersion.V16 else _charge_2x
    energy = 0
    try:
        async with connect_station(url, station_id, version) as station:
            tally.connected += 1
            try:
                await station.call(messages["boot"], action="BootNotification")
                await station.call(messages["status"], action="StatusNotification")
                while not stop.is_set():
                    if random.random() < 0.3:
                        await station.call(messages["authorize"], action="Authorize")
                        await charge(station, tag, energy)
                        energy += 1000
                    else:
                        await station.call({}, action="Heartbeat")
                    tally.calls += 1
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), pace * random.uniform(0.5, 1.5))
            finally:
                tally.connected -= 1
    except Exception as exc:  # the demo counts every failure, whatever it is
        tally.errors += 1
        tally.last_error = f"{station_id}: {exc}"
