"""What a simulated station answers to each CSMS command, and what it then does."""

from __future__ import annotations

from typing import Any

import pytest

from csms_kit import OcppVersion, on
from csms_kit.simulator import SimulatedStation, simulate_station
from tests.helpers import wait_until
from tests.simulator.conftest import V2X, VERSIONS, Recorder

V16 = OcppVersion.V16


class Quick(SimulatedStation):
    """Reboots in a tenth of a second."""

    reboot_time = 0.1


#: Every CSMS command SimulatedStation answers, and the test(s) below that cover it.
COVERED = {
    "Reset": "test_reset_reboots",
    "RemoteStartTransaction": "test_remote_start_and_stop",
    "RemoteStopTransaction": "test_remote_start_and_stop",
    "RequestStartTransaction": "test_remote_start_and_stop",
    "RequestStopTransaction": "test_remote_start_and_stop",
    "ChangeConfiguration": "test_change_and_get_configuration",
    "GetConfiguration": "test_change_and_get_configuration",
    "SetVariables": "test_set_and_get_variables",
    "GetVariables": "test_set_and_get_variables",
    "GetBaseReport": "test_get_base_report",
    "TriggerMessage": "test_trigger_message",
    "ChangeAvailability": "test_change_availability",
    "UnlockConnector": "test_unlock_connector",
    "ClearCache": "test_small_commands",
    "DataTransfer": "test_small_commands",
    "GetLocalListVersion": "test_small_commands",
    "SendLocalList": "test_small_commands",
    "GetTransactionStatus": "test_get_transaction_status",
    "SetChargingProfile": "test_charging_profiles",
    "ClearChargingProfile": "test_charging_profiles",
    "UpdateFirmware": "test_firmware_and_logs",
    "SignedUpdateFirmware": "test_firmware_and_logs",
    "GetDiagnostics": "test_firmware_and_logs",
    "GetLog": "test_firmware_and_logs",
}


def test_every_command_the_station_answers_is_tested_here() -> None:
    """The routes of SimulatedStation are exactly the commands covered in this module."""
    assert set(SimulatedStation.routes.on) == set(COVERED)
    assert set(COVERED.values()) <= set(globals())


# -- Reset --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_reset_reboots(version: OcppVersion, csms: Recorder) -> None:
    """Accepted; transactions stop, the station goes away, comes back and boots again."""
    async with Quick(csms.url, "CP-1", version) as station:
        await station.start_transaction(1)
        reset = {"type": "Hard"} if version is V16 else {"type": "Immediate"}
        assert (await csms.call("CP-1", "Reset", reset)).status == "Accepted"
        await wait_until(lambda: station.boots == 2 and station.online, 5, "rebooted")
        boots = csms.calls("BootNotification")
        if version is V16:
            [stop] = csms.calls("StopTransaction")
            assert stop["reason"] == "HardReset"
        else:
            assert [b["reason"] for b in boots] == ["PowerUp", "RemoteReset"]
            ended = csms.calls("TransactionEvent")[-1]
            assert ended["eventType"] == "Ended" and ended["triggerReason"] == "ResetCommand"
            assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert not station.transactions and station.errors == ()


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_reset_on_idle_waits_for_the_transaction(
    version: OcppVersion, csms: Recorder
) -> None:
    """2.x OnIdle in a transaction: Scheduled, a reboot once it ends. One EVSE: Rejected."""
    async with Quick(csms.url, "CP-1", version) as station:
        transaction = await station.start_transaction(1)
        answer = await csms.call("CP-1", "Reset", {"type": "OnIdle"})
        assert answer.status == "Scheduled" and station.boots == 1
        answer = await csms.call("CP-1", "Reset", {"type": "Immediate", "evseId": 1})
        assert answer.status == "Rejected"
        await station.stop_transaction(transaction)
        await wait_until(lambda: station.boots == 2 and station.online, 5, "rebooted")


class Stubborn(Quick):
    """Refuses to reset."""

    @on("Reset")
    def on_reset(self, request: Any) -> dict[str, Any]:
        return {"status": "Rejected"}


async def test_a_subclass_overrides_an_answer(csms: Recorder) -> None:
    """An @on handler in a subclass answers instead; the @after hook then does nothing."""
    async with Stubborn(csms.url, "CP-1", "2.0.1") as station:
        assert (await csms.call("CP-1", "Reset", {"type": "Immediate"})).status == "Rejected"
        await station.heartbeat()  # the answer is out: a reboot would have begun
        assert station.connected and station.boots == 1


# -- remote start and stop ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_remote_start_and_stop(version: OcppVersion, csms: Recorder) -> None:
    """A remote start charges on a free connector; a remote stop ends it (reason Remote)."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        if version is V16:
            start = {"idTag": "REMOTE-1", "connectorId": 1}
            starting, stopping = "RemoteStartTransaction", "RemoteStopTransaction"
        else:
            start = {"idToken": {"idToken": "REMOTE-1", "type": "Central"}, "remoteStartId": 42}
            starting, stopping = "RequestStartTransaction", "RequestStopTransaction"
        assert (await csms.call("CP-1", starting, start)).status == "Accepted"
        assert (await csms.call("CP-1", starting, start)).status == "Rejected"  # busy
        await wait_until(lambda: bool(station.transactions) and station.transactions[0].id, 5)
        [transaction] = station.transactions
        unknown = 999 if version is V16 else "no-such-transaction"
        assert (await csms.call("CP-1", stopping, {"transactionId": unknown})).status == "Rejected"
        stop = {"transactionId": transaction.id}
        assert (await csms.call("CP-1", stopping, stop)).status == "Accepted"
        await wait_until(lambda: transaction.ended and not station.queued, 5, "stopped")
        if version is V16:
            [started] = csms.calls("StartTransaction")
            assert started["idTag"] == "REMOTE-1"
            assert (await csms.wait_for("StopTransaction"))[0]["reason"] == "Remote"
        else:
            started, ended = csms.calls("TransactionEvent")
            assert started["triggerReason"] == "RemoteStart"
            assert started["transactionInfo"]["remoteStartId"] == 42
            assert started["idToken"] == {"idToken": "REMOTE-1", "type": "Central"}
            assert ended["triggerReason"] == "RemoteStop"
            assert ended["transactionInfo"]["stoppedReason"] == "Remote"


async def test_remote_start_authorizes_first_when_configured(csms: Recorder) -> None:
    """1.6 AuthorizeRemoteTxRequests=true: Authorize before StartTransaction."""
    async with simulate_station(csms.url, "CP-1", "1.6") as station:
        change = {"key": "AuthorizeRemoteTxRequests", "value": "true"}
        assert (await csms.call("CP-1", "ChangeConfiguration", change)).status == "Accepted"
        start = {"idTag": "REMOTE-1"}
        assert (await csms.call("CP-1", "RemoteStartTransaction", start)).status == "Accepted"
        await csms.wait_for("StartTransaction")
        actions = csms.actions()
        # what came up to the StartTransaction (a status report may follow it or not yet)
        upto = actions[: actions.index("StartTransaction") + 1]
        assert upto[-3:] == ["Authorize", "StatusNotification", "StartTransaction"]
        await station.stop_transaction(station.transactions[0])


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_a_remote_session_reads_the_meter_at_the_configured_interval(
    version: OcppVersion, csms: Recorder
) -> None:
    """The sampling interval set by the CSMS paces the readings of a remote session."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        if version is V16:
            await csms.call(
                "CP-1", "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}
            )
            await csms.call("CP-1", "RemoteStartTransaction", {"idTag": "R"})
            await csms.wait_for("MeterValues", timeout=3)
        else:
            item = {
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"},
                "attributeValue": "1",
            }
            await csms.call("CP-1", "SetVariables", {"setVariableData": [item]})
            start = {"idToken": {"idToken": "R", "type": "Central"}, "remoteStartId": 1}
            await csms.call("CP-1", "RequestStartTransaction", start)
            await csms.wait_for("TransactionEvent", eventType="Updated", timeout=3)
        assert station.meter_interval == 1


# -- settings -----------------------------------------------------------------------------


async def test_change_and_get_configuration(csms: Recorder) -> None:
    """1.6 keys: changed, refused, unknown; HeartbeatInterval changes the heartbeats."""
    async with simulate_station(csms.url, "CP-1", "1.6", connectors=2) as station:

        async def change(key: str, value: str) -> str:
            answer = await csms.call("CP-1", "ChangeConfiguration", {"key": key, "value": value})
            return str(answer.status)

        assert await change("HeartbeatInterval", "1") == "Accepted"
        assert station.heartbeat_interval == 1
        await csms.wait_for("Heartbeat", timeout=3)
        assert await change("HeartbeatInterval", "soon") == "Rejected"
        assert await change("NumberOfConnectors", "3") == "Rejected"
        assert await change("StopTransactionOnEVSideDisconnect", "false") == "Rejected"
        assert await change("NoSuchKey", "1") == "NotSupported"
        assert await change("LocalAuthorizeOffline", "FALSE") == "Accepted"
        asked = {
            "key": ["HeartbeatInterval", "NumberOfConnectors", "LocalAuthorizeOffline", "Nope"]
        }
        answer = await csms.call("CP-1", "GetConfiguration", asked)
        assert [(k.key, k.value, k.readonly) for k in answer.configuration_key] == [
            ("HeartbeatInterval", "1", False),
            ("NumberOfConnectors", "2", True),
            ("LocalAuthorizeOffline", "false", False),
        ]
        assert answer.unknown_key == ["Nope"]
        everything = await csms.call("CP-1", "GetConfiguration", {})
        assert len(everything.configuration_key) >= 15 and not everything.unknown_key


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_set_and_get_variables(version: OcppVersion, csms: Recorder) -> None:
    """2.x device model: each status SetVariables and GetVariables can give."""
    async with simulate_station(csms.url, "CP-1", version) as station:

        def item(component: Any, variable: Any, value: str | None = None, **extra: Any) -> Any:
            data = {"component": component, "variable": variable, **extra}
            if value is not None:
                data["attributeValue"] = value
            return data

        heartbeat = ({"name": "OCPPCommCtrlr"}, {"name": "HeartbeatInterval"})
        cases = [
            (item(*heartbeat, "1"), "Accepted"),
            (item(*heartbeat, "often"), "Rejected"),
            (item({"name": "TxCtrlr"}, {"name": "StopTxOnEVSideDisconnect"}, "false"), "Rejected"),
            (item({"name": "NoSuchCtrlr"}, {"name": "X"}, "1"), "UnknownComponent"),
            (
                item({"name": "OCPPCommCtrlr", "evse": {"id": 1}}, {"name": "X"}, "1"),
                "UnknownComponent",
            ),
            (item({"name": "OCPPCommCtrlr"}, {"name": "NoSuchVariable"}, "1"), "UnknownVariable"),
            (item(*heartbeat, "1", attributeType="Target"), "NotSupportedAttributeType"),
        ]
        answer = await csms.call(
            "CP-1", "SetVariables", {"setVariableData": [c for c, _ in cases]}
        )
        assert [r.attribute_status for r in answer.set_variable_result] == [s for _, s in cases]
        assert answer.set_variable_result[3].component.name == "NoSuchCtrlr"
        assert station.heartbeat_interval == 1
        await csms.wait_for("Heartbeat", timeout=3)
        asked = [item(*heartbeat), item({"name": "AuthCtrlr"}, {"name": "Nope"})]
        answer = await csms.call("CP-1", "GetVariables", {"getVariableData": asked})
        first, second = answer.get_variable_result
        assert (first.attribute_status, first.attribute_value) == ("Accepted", "1")
        assert (second.attribute_status, second.attribute_value) == ("UnknownVariable", None)


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_get_base_report(version: OcppVersion, csms: Recorder) -> None:
    """2.x: Accepted, then a NotifyReport of the device model with that requestId."""
    async with simulate_station(csms.url, "CP-1", version):
        answer = await csms.call(
            "CP-1", "GetBaseReport", {"requestId": 5, "reportBase": "ConfigurationInventory"}
        )
        assert answer.status == "Accepted"
        [report] = await csms.wait_for("NotifyReport", requestId=5)
        names = {(d["component"]["name"], d["variable"]["name"]) for d in report["reportData"]}
        assert ("OCPPCommCtrlr", "HeartbeatInterval") in names
        assert all(
            d["variableAttribute"][0]["mutability"] == "ReadWrite" for d in report["reportData"]
        )


# -- TriggerMessage -----------------------------------------------------------------------

TRIGGERED = {
    V16: [
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    ],
    OcppVersion.V201: [
        "BootNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
        "TransactionEvent",
    ],
}
TRIGGERED[OcppVersion.V21] = TRIGGERED[OcppVersion.V201]


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_trigger_message(version: OcppVersion, csms: Recorder) -> None:
    """Accepted, then the message asked for really arrives; unsupported: NotImplemented."""
    async with simulate_station(csms.url, "CP-1", version, connectors=2) as station:
        transaction = await station.start_transaction(2)
        for wanted in TRIGGERED[version]:
            before = len(csms.calls(wanted))
            where = {"connectorId": 2} if version is V16 else {"evse": {"id": 2}}
            request = {"requestedMessage": wanted, **where}
            assert (await csms.call("CP-1", "TriggerMessage", request)).status == "Accepted"
            await wait_until(lambda w=wanted, b=before: len(csms.calls(w)) > b, 5, wanted)
        if version is V16:
            [reading] = csms.calls("MeterValues")
            assert reading["connectorId"] == 2 and reading["transactionId"] == transaction.id
            assert reading["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
            assert csms.calls("StatusNotification")[-1]["connectorId"] == 2
        else:
            assert csms.calls("MeterValues")[0]["evseId"] == 2
            assert csms.calls("TransactionEvent")[-1]["triggerReason"] == "Trigger"
            assert csms.calls("BootNotification")[-1]["reason"] == "Triggered"
            answer = await csms.call(
                "CP-1", "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
            )
            assert answer.status == "NotImplemented"
            await station.stop_transaction(transaction)
            answer = await csms.call(
                "CP-1", "TriggerMessage", {"requestedMessage": "TransactionEvent"}
            )
            assert answer.status == "Rejected"  # no transaction
        where = {"connectorId": 9} if version is V16 else {"evse": {"id": 9}}
        answer = await csms.call(
            "CP-1", "TriggerMessage", {"requestedMessage": "Heartbeat", **where}
        )
        assert answer.status == "Rejected"


# -- connectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_change_availability(version: OcppVersion, csms: Recorder) -> None:
    """Inoperative: Unavailable (Scheduled during a transaction, applied at its end); Operative."""
    async with simulate_station(csms.url, "CP-1", version, connectors=2) as station:
        transaction = await station.start_transaction(2)

        async def change(connector: int, operative: bool) -> str:
            if version is V16:
                kind = "Operative" if operative else "Inoperative"
                request: dict[str, Any] = {"connectorId": connector, "type": kind}
            else:
                request = {"operationalStatus": "Operative" if operative else "Inoperative"}
                if connector:
                    request["evse"] = {"id": connector}
            return str((await csms.call("CP-1", "ChangeAvailability", request)).status)

        def statuses(connector: int) -> list[str]:
            key, field = (
                ("connectorId", "status") if version is V16 else ("evseId", "connectorStatus")
            )
            return [s[field] for s in csms.calls("StatusNotification") if s[key] == connector]

        assert await change(1, False) == "Accepted"
        await wait_until(lambda: statuses(1)[-1] == "Unavailable", 5, "connector 1 unavailable")
        assert station.free_connector() is None
        assert await change(2, False) == "Scheduled"
        await station.stop_transaction(transaction)
        assert statuses(2)[-1] == "Unavailable"
        assert await change(0, True) == "Accepted"
        await wait_until(lambda: statuses(1)[-1] == statuses(2)[-1] == "Available", 5)
        assert await change(7, True) == "Rejected"


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_unlock_connector(version: OcppVersion, csms: Recorder) -> None:
    """Unlocked; 1.6 stops a transaction on it first, 2.x refuses while one runs."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        transaction = await station.start_transaction(1)
        if version is V16:
            answer = await csms.call("CP-1", "UnlockConnector", {"connectorId": 1})
            assert answer.status == "Unlocked"
            [stop] = await csms.wait_for("StopTransaction")
            assert stop["reason"] == "UnlockCommand" and transaction.ended
            answer = await csms.call("CP-1", "UnlockConnector", {"connectorId": 3})
            assert answer.status == "NotSupported"
        else:
            request = {"evseId": 1, "connectorId": 1}
            answer = await csms.call("CP-1", "UnlockConnector", request)
            assert answer.status == "OngoingAuthorizedTransaction"
            await station.stop_transaction(transaction)
            assert (await csms.call("CP-1", "UnlockConnector", request)).status == "Unlocked"
            answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 2})
            assert answer.status == "UnknownConnector"


# -- the rest -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_small_commands(version: OcppVersion, csms: Recorder) -> None:
    """ClearCache, DataTransfer (own vendor echoed, others unknown), local list version."""
    async with simulate_station(csms.url, "CP-1", version):
        assert (await csms.call("CP-1", "ClearCache", {})).status == "Accepted"
        answer = await csms.call("CP-1", "DataTransfer", {"vendorId": "csms_kit", "data": "ping"})
        assert (answer.status, answer.data) == ("Accepted", "ping")
        answer = await csms.call("CP-1", "DataTransfer", {"vendorId": "ACME"})
        assert answer.status == "UnknownVendorId"
        if version is V16:
            sent = {"listVersion": 3, "updateType": "Full"}
            assert (await csms.call("CP-1", "SendLocalList", sent)).status == "Accepted"
            assert (await csms.call("CP-1", "GetLocalListVersion", {})).list_version == 3
        else:
            sent = {"versionNumber": 4, "updateType": "Full"}
            assert (await csms.call("CP-1", "SendLocalList", sent)).status == "Accepted"
            assert (await csms.call("CP-1", "GetLocalListVersion", {})).version_number == 4


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_get_transaction_status(version: OcppVersion, csms: Recorder) -> None:
    """2.x: ongoing or not, and nothing waiting to be sent while online."""
    async with simulate_station(csms.url, "CP-1", version) as station:
        transaction = await station.start_transaction(1)
        answer = await csms.call("CP-1", "GetTransactionStatus", {"transactionId": transaction.id})
        assert (answer.ongoing_indicator, answer.messages_in_queue) == (True, False)
        await station.stop_transaction(transaction)
        answer = await csms.call("CP-1", "GetTransactionStatus", {"transactionId": transaction.id})
        assert answer.ongoing_indicator is False
        answer = await csms.call("CP-1", "GetTransactionStatus", {})
        assert answer.messages_in_queue is False and answer.ongoing_indicator is None


# -- smart charging, firmware and logs ----------------------------------------------------


def _profile(version: OcppVersion, profile_id: int, purpose: str, **extra: Any) -> dict[str, Any]:
    schedule = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
    }
    if version is V16:
        return {
            "chargingProfileId": profile_id,
            "stackLevel": 0,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": schedule,
            **extra,
        }
    return {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": [{"id": 1, **schedule}],
        **extra,
    }


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_charging_profiles(version: OcppVersion, csms: Recorder) -> None:
    """Profiles are kept by id; a TxProfile needs the transaction; clearing by id or by
    criteria removes what matches, Unknown when nothing does."""
    maximum = "ChargePointMaxProfile" if version is V16 else "ChargingStationMaxProfile"
    where = "connectorId" if version is V16 else "evseId"
    key = "csChargingProfiles" if version is V16 else "chargingProfile"

    async def install(evse: int, profile: dict[str, Any]) -> str:
        answer = await csms.call("CP-1", "SetChargingProfile", {where: evse, key: profile})
        return str(answer.status)

    async with simulate_station(csms.url, "CP-1", version, connectors=2) as station:
        assert await install(0, _profile(version, 1, maximum)) == "Accepted"
        assert await install(2, _profile(version, 2, "TxDefaultProfile")) == "Accepted"
        assert await install(3, _profile(version, 3, "TxDefaultProfile")) == "Rejected"
        assert await install(1, _profile(version, 4, "TxProfile")) == "Rejected"  # no transaction
        transaction = await station.start_transaction(1)
        other = 999 if version is V16 else "other"
        tx = _profile(version, 4, "TxProfile", transactionId=other)
        assert await install(1, tx) == "Rejected"
        tx["transactionId"] = transaction.id
        assert await install(1, tx) == "Accepted"
        assert [(p.id, p.evse_id, p.purpose) for p in station.charging_profiles.values()] == [
            (1, 0, maximum),
            (2, 2, "TxDefaultProfile"),
            (4, 1, "TxProfile"),
        ]
        if version is V16:
            by_criteria = {"connectorId": 2, "chargingProfilePurpose": "TxDefaultProfile"}
            by_id = {"id": 4, "connectorId": 2}  # the id alone decides
        else:
            by_criteria = {"chargingProfileCriteria": {"evseId": 2, "stackLevel": 0}}
            by_id = {"chargingProfileId": 4, "chargingProfileCriteria": {"evseId": 2}}
        assert (await csms.call("CP-1", "ClearChargingProfile", by_criteria)).status == "Accepted"
        assert (await csms.call("CP-1", "ClearChargingProfile", by_id)).status == "Accepted"
        assert list(station.charging_profiles) == [1]
        assert (await csms.call("CP-1", "ClearChargingProfile", by_id)).status == "Unknown"
        assert (await csms.call("CP-1", "ClearChargingProfile", {})).status == "Accepted"
        assert not station.charging_profiles
        await station.stop_transaction(transaction)


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_firmware_and_logs(version: OcppVersion, csms: Recorder) -> None:
    """Firmware updates and log uploads are answered (nothing is fetched or sent)."""
    now = "2026-03-01T12:00:00Z"
    firmware = {
        "location": "https://example.com/fw.bin",
        "retrieveDateTime": now,
        "signingCertificate": "CERT",
        "signature": "SIG",
    }
    log = {"logType": "SecurityLog", "requestId": 1, "log": {"remoteLocation": "ftp://x/"}}
    async with simulate_station(csms.url, "CP-1", version):
        if version is V16:
            plain = {"location": "https://example.com/fw.bin", "retrieveDate": now}
            assert await csms.call("CP-1", "UpdateFirmware", plain) is not None
            signed = {"requestId": 1, "firmware": firmware}
            answer = await csms.call("CP-1", "SignedUpdateFirmware", signed)
            assert answer.status == "Accepted"
            answer = await csms.call("CP-1", "GetDiagnostics", {"location": "ftp://x/"})
            assert answer.file_name == "CP-1-diagnostics.log"
        else:
            answer = await csms.call(
                "CP-1", "UpdateFirmware", {"requestId": 1, "firmware": firmware}
            )
            assert answer.status == "Accepted"
        answer = await csms.call("CP-1", "GetLog", log)
        assert (answer.status, answer.filename) == ("Accepted", "CP-1-SecurityLog.log")
