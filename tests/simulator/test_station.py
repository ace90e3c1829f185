"""A simulated station against csms_kit's server: boot, status, heartbeats, charging."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from csms_kit import CallError, ErrorCode, OcppVersion, RpcError, on, serve
from csms_kit.demo.csms import DemoCsms
from csms_kit.exceptions import ConnectFailed
from csms_kit.simulator import SimulatedStation, simulate_station
from tests.helpers import wait_until
from tests.simulator.conftest import V2X, VERSIONS, Csms, Plan, Recorder


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_boots_reports_each_connector_and_beats_at_the_interval(
    version: OcppVersion, make_csms: Any
) -> None:
    """Boot, one StatusNotification per connector, heartbeats at the CSMS's interval."""
    server, csms = make_csms(plan=Plan(interval=1))
    async with server, simulate_station(csms.url, "CP-1", version, connectors=2) as station:
        assert station.online and station.booted and station.boots == 1
        assert station.heartbeat_interval == 1
        assert station.settings.heartbeat_interval == 1
        [boot] = csms.calls("BootNotification")
        if version is OcppVersion.V16:
            assert boot["chargePointVendor"] == "csms_kit" and "reason" not in boot
            assert [s["connectorId"] for s in csms.calls("StatusNotification")] == [0, 1, 2]
        else:
            assert boot["reason"] == "PowerUp"
            statuses = csms.calls("StatusNotification")
            assert [(s["evseId"], s["connectorStatus"]) for s in statuses] == [
                (1, "Available"),
                (2, "Available"),
            ]
        began = time.monotonic()
        await csms.wait_for("Heartbeat", timeout=4)
        assert time.monotonic() - began >= 0.9  # a second after the boot
        assert station.errors == ()
    csms.check()


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201], ids=str)
async def test_pending_and_rejected_boot_again_after_the_interval(
    version: OcppVersion, make_csms: Any
) -> None:
    """Pending, then Rejected: nothing but BootNotification until Accepted, an interval apart."""
    server, csms = make_csms(plan=Plan(boots=["Pending", "Rejected"], interval=1))
    async with server:
        station = SimulatedStation(csms.url, "CP-1", version)
        began = time.monotonic()
        async with station:
            assert time.monotonic() - began >= 1.8
            assert station.registration_status == "Accepted"
            assert csms.actions()[:4] == ["BootNotification"] * 3 + ["StatusNotification"]
        assert station.errors == ()
    csms.check()


async def test_a_triggered_boot_ends_the_wait_of_a_pending_station(make_csms: Any) -> None:
    """Pending with a long interval: TriggerMessage(BootNotification) boots it at once."""
    server, csms = make_csms(plan=Plan(boots=["Pending"], interval=300))
    async with server:
        station = SimulatedStation(csms.url, "CP-1", "2.0.1")
        await station.start(wait=False)
        try:
            await csms.wait_for("BootNotification")
            answer = await csms.call(
                "CP-1", "TriggerMessage", {"requestedMessage": "BootNotification"}
            )
            assert answer.status == "Accepted"
            await station.wait_online(timeout=5)
            assert [b["reason"] for b in csms.calls("BootNotification")] == [
                "PowerUp",
                "Triggered",
            ]
        finally:
            await station.stop()
    csms.check()


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_a_charging_session(version: OcppVersion, csms: Recorder) -> None:
    """Authorize, start, meter readings that add up, stop: the version's messages, in order."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        transaction = await station.charge(samples=2, interval=0.2)
        assert transaction is not None and transaction.ended and not station.transactions
        assert station.queued == 0 and station.errors == ()
        actions = csms.actions()
    if version is OcppVersion.V16:
        assert actions[3:] == [
            "StatusNotification",
            "Authorize",
            "StartTransaction",
            "StatusNotification",
            "MeterValues",
            "MeterValues",
            "StopTransaction",
            "StatusNotification",
            "StatusNotification",
        ]
        assert [s["status"] for s in csms.calls("StatusNotification")][2:] == [
            "Preparing",
            "Charging",
            "Finishing",
            "Available",
        ]
        [start] = csms.calls("StartTransaction")
        [stop] = csms.calls("StopTransaction")
        readings = csms.calls("MeterValues")
        assert (
            {r["transactionId"] for r in readings} == {transaction.id} == {stop["transactionId"]}
        )
        energies = [float(r["meterValue"][0]["sampledValue"][0]["value"]) for r in readings]
        assert start["meterStart"] <= energies[0] < energies[1] <= stop["meterStop"] + 1
        assert stop["reason"] == "EVDisconnected"
        power = [
            float(v["value"])
            for r in readings
            for v in r["meterValue"][0]["sampledValue"]
            if v["measurand"] == "Power.Active.Import"
        ]
        assert all(9_000 < p <= 11_000 for p in power)
    else:
        assert actions[2:] == [
            "StatusNotification",
            "Authorize",
            "TransactionEvent",
            "TransactionEvent",
            "TransactionEvent",
            "TransactionEvent",
            "StatusNotification",
        ]
        events = csms.calls("TransactionEvent")
        assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Ended"]
        assert [e["seqNo"] for e in events] == [0, 1, 2, 3]
        assert {e["transactionInfo"]["transactionId"] for e in events} == {transaction.id}
        assert all("offline" not in e for e in events)
        assert events[0]["idToken"] == {"idToken": station.id_token, "type": "ISO14443"}
        assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        energies = [e["meterValue"][0]["sampledValue"][0]["value"] for e in events]
        assert energies == sorted(energies) and energies[-1] > energies[0]


class Refusing(Csms):
    """Refuses the driver's card, and every StartTransaction's idTag."""

    @on("Authorize")
    def authorize(self, request: Any) -> dict[str, Any]:
        key = "idTagInfo" if self.version is OcppVersion.V16 else "idTokenInfo"
        return {key: {"status": "Invalid"}}

    @on("StartTransaction")
    def start_transaction(self, request: Any) -> dict[str, Any]:
        return {"transactionId": 7, "idTagInfo": {"status": "Blocked"}}


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_a_refused_card_starts_no_transaction(version: OcppVersion, make_csms: Any) -> None:
    """Authorize not Accepted: no start message, and the connector is free again."""
    server, csms = make_csms(Refusing)
    async with server, simulate_station(csms.url, "CP-1", version) as station:
        assert await station.charge(samples=1, interval=0) is None
        assert station.connectors[0].status == "Available" and not station.transactions
        assert "StartTransaction" not in csms.actions()
        assert "TransactionEvent" not in csms.actions()


async def test_a_start_refused_by_the_csms_is_stopped_deauthorized(make_csms: Any) -> None:
    """1.6: a StartTransaction answered Blocked ends the transaction (DeAuthorized)."""
    server, csms = make_csms(Refusing)
    async with server, simulate_station(csms.url, "CP-1", "1.6") as station:
        transaction = await station.start_transaction(1)
        assert transaction.ended and transaction.authorization == "Blocked"
        [stop] = await csms.wait_for("StopTransaction")
        assert stop["reason"] == "DeAuthorized" and stop["transactionId"] == 7


class NoAuthorize(Csms):
    """Answers Authorize with a CALLERROR."""

    @on("Authorize")
    def authorize(self, request: Any) -> dict[str, Any]:
        raise RpcError(ErrorCode.GENERIC_ERROR, "no")


async def test_a_callerror_reaches_the_caller(make_csms: Any) -> None:
    """A CALLERROR is raised by the method that made the call, never swallowed."""
    server, csms = make_csms(NoAuthorize)
    csms.errors_expected = True
    async with server, simulate_station(csms.url, "CP-1", "2.1") as station:
        with pytest.raises(CallError) as caught:
            await station.charge()
        assert caught.value.code is ErrorCode.GENERIC_ERROR
        assert station.connectors[0].transaction is None


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_send_status_and_heartbeat(version: OcppVersion, csms: Recorder) -> None:
    """send_status reports in the version's words; heartbeat returns the CSMS's time."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        await station.send_status(1, "Faulted")
        assert csms.calls("StatusNotification")[-1]["connectorStatus"] == "Faulted"
        assert (await station.heartbeat()).endswith("Z")


async def test_connect_failures_say_how_far_they_got(make_csms: Any) -> None:
    """Refused port, HTTP refusal, no common version: ConnectFailed with its kind."""
    server, csms = make_csms(plan=Plan(refuse=True))
    async with server:
        url = csms.url
        with pytest.raises(ConnectFailed) as refused:
            await SimulatedStation(url, "CP-1").start()
        assert (refused.value.kind, refused.value.status) == ("handshake", 503)
    with pytest.raises(ConnectFailed) as gone:
        async with simulate_station(url, "CP-1"):
            pass
    assert gone.value.kind == "refused"
    async with serve({"1.6": DemoCsms}, "127.0.0.1", 0) as only16:
        station = SimulatedStation(f"ws://127.0.0.1:{only16.port}", "CP-1", "2.0.1")
        with pytest.raises(ConnectFailed, match="none of the offered") as mismatch:
            await station.start()
        assert mismatch.value.kind == "handshake"
        assert not station.connected and not only16.sessions
        await wait_until(lambda: not only16.sessions, 5)


async def test_a_station_that_cannot_connect_keeps_trying(make_csms: Any) -> None:
    """start(wait=False): a refused station retries with backoff until the CSMS lets it in."""
    server, csms = make_csms(plan=Plan(refuse=True))

    class Quick(SimulatedStation):
        backoff = SimulatedStation.backoff.__class__(0.05, 0.05, 2)

    async with server:
        station = Quick(csms.url, "CP-1", "2.0.1")
        await station.start(wait=False)
        try:
            await wait_until(lambda: csms.plan.refused >= 3, 5, "three attempts")
            csms.plan.refuse = False
            await station.wait_online(timeout=5)
            kinds = {type(e).__name__ for e in station.errors}
            assert kinds == {"ConnectFailed"} and len(station.errors) >= 3
        finally:
            await station.stop()
        assert not station.connected
        await asyncio.sleep(0)
    csms.check()
