"""Reading a station's answer into a version-neutral result (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from csms_kit import OcppVersion
from csms_kit.commands import (
    ChangeAvailability,
    ClearCache,
    ClearChargingProfile,
    Command,
    ConfigurationValue,
    DataTransfer,
    DeviceVariable,
    GetConfiguration,
    GetLog,
    RemoteStart,
    RemoteStop,
    Reset,
    SetConfiguration,
    TriggerMessage,
    UnlockConnector,
    UpdateFirmware,
)

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
NOON = "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("command", "version", "payload", "accepted"),
    [
        (Reset("hard"), V16, {"status": "Accepted"}, True),
        (Reset("hard"), V16, {"status": "Rejected"}, False),
        (Reset(), V201, {"status": "Scheduled"}, True),
        (ChangeAvailability(False, 1), V21, {"status": "Scheduled"}, True),
        (ChangeAvailability(False, 1), V16, {"status": "Rejected"}, False),
        (RemoteStop(1), V16, {"status": "Accepted"}, True),
        (TriggerMessage("Heartbeat"), V201, {"status": "NotImplemented"}, False),
        (UnlockConnector(1), V16, {"status": "Unlocked"}, True),
        (UnlockConnector(1), V16, {"status": "NotSupported"}, False),
        (UnlockConnector(1), V201, {"status": "OngoingAuthorizedTransaction"}, False),
        (ClearChargingProfile(), V16, {"status": "Unknown"}, False),
        (ClearCache(), V21, {"status": "Accepted"}, True),
        (SetConfiguration("HeartbeatInterval", 1), V16, {"status": "RebootRequired"}, True),
        (SetConfiguration("HeartbeatInterval", 1), V16, {"status": "NotSupported"}, False),
        (
            UpdateFirmware("ftp://x/", NOON, request_id=7),
            V201,
            {"status": "AcceptedCanceled"},
            True,
        ),
        (
            UpdateFirmware("ftp://x/", NOON, request_id=7),
            V201,
            {"status": "InvalidCertificate"},
            False,
        ),
        (GetLog("ftp://x/", request_id=7), V21, {"status": "Rejected"}, False),
        (DataTransfer("V"), V16, {"status": "UnknownVendorId"}, False),
    ],
)
def test_status_and_accepted(
    command: Command[Any], version: OcppVersion, payload: dict[str, Any], accepted: bool
) -> None:
    """``status`` is the station's, as spelled; ``accepted`` says whether it will act."""
    result = command.result(version, payload)
    assert result.status == payload["status"]
    assert result.accepted is accepted
    assert result.response == payload and result.reason is None


def test_the_reason_code_of_a_2x_answer_is_kept() -> None:
    """2.x statusInfo.reasonCode becomes ``reason``; the whole answer stays in ``response``."""
    payload = {"status": "Rejected", "statusInfo": {"reasonCode": "NoEVSE", "additionalInfo": "x"}}
    result = Reset().result(V201, payload)
    assert (result.accepted, result.status, result.reason) == (False, "Rejected", "NoEVSE")
    assert result.response["statusInfo"]["additionalInfo"] == "x"


def test_remote_start_results() -> None:
    """2.x: the transaction id if one had begun, and the remoteStartId; 1.6: neither."""
    command = RemoteStart("T", remote_start_id=7)
    result = command.result(V201, {"status": "Accepted", "transactionId": "tx-1"})
    assert (result.accepted, result.transaction_id, result.remote_start_id) == (True, "tx-1", 7)
    result = command.result(V21, {"status": "Rejected"})
    assert (result.accepted, result.transaction_id, result.remote_start_id) == (False, None, 7)
    result = command.result(V16, {"status": "Accepted"})
    assert (result.accepted, result.transaction_id, result.remote_start_id) == (True, None, None)


def test_firmware_results() -> None:
    """1.6 UpdateFirmware answers nothing: accepted, no status; signed and 2.x: statuses."""
    plain = UpdateFirmware("ftp://x/", NOON, request_id=7)
    result = plain.result(V16, {})
    assert (result.accepted, result.status, result.request_id) == (True, None, None)
    result = plain.result(V201, {"status": "Accepted"})
    assert (result.accepted, result.status, result.request_id) == (True, "Accepted", 7)
    signed = UpdateFirmware("ftp://x/", NOON, signing_certificate="C", signature="S", request_id=7)
    result = signed.result(V16, {"status": "RevokedCertificate"})
    assert (result.accepted, result.status, result.request_id) == (False, "RevokedCertificate", 7)


def test_log_results() -> None:
    """1.6 GetDiagnostics: accepted when a file name comes back; GetLog: by its status."""
    diagnostics = GetLog("ftp://x/", request_id=7)
    result = diagnostics.result(V16, {"fileName": "diag.zip"})
    assert (result.accepted, result.status, result.file_name, result.request_id) == (
        True,
        None,
        "diag.zip",
        None,
    )
    result = diagnostics.result(V16, {})
    assert (result.accepted, result.file_name) == (False, None)
    result = diagnostics.result(V201, {"status": "Accepted", "filename": "log.txt"})
    assert (result.accepted, result.file_name, result.request_id) == (True, "log.txt", 7)
    security = GetLog("ftp://x/", "SecurityLog", request_id=8)
    result = security.result(V16, {"status": "AcceptedCanceled"})
    assert (result.accepted, result.file_name, result.request_id) == (True, None, 8)


def test_data_transfer_results() -> None:
    """The station's data comes back as it sent it (text in 1.6, any JSON in 2.x)."""
    command = DataTransfer("V", data={"a": 1})
    assert command.result(V16, {"status": "Accepted", "data": '{"a":1}'}).data == '{"a":1}'
    assert command.result(V201, {"status": "Accepted", "data": {"a": 1}}).data == {"a": 1}
    assert command.result(V201, {"status": "Accepted"}).data is None


def test_set_configuration_results_in_2x() -> None:
    """2.x: the variable's attributeStatus and its reason code."""
    command = SetConfiguration("HeartbeatInterval", 30)
    answer = {
        "setVariableResult": [
            {
                "attributeStatus": "Rejected",
                "attributeStatusInfo": {"reasonCode": "OutOfRange"},
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    }
    result = command.result(V201, answer)
    assert (result.accepted, result.status, result.reason) == (False, "Rejected", "OutOfRange")
    answer["setVariableResult"][0]["attributeStatus"] = "RebootRequired"
    assert command.result(V21, answer).accepted is True
    empty = command.result(V201, {"setVariableResult": []})
    assert (empty.accepted, empty.status) == (False, None)


def test_get_configuration_in_16() -> None:
    """Values by the keys asked (as asked, a variable included), matched without case;
    unknown and unmentioned keys say so."""
    heartbeat = DeviceVariable("OCPPCommCtrlr", "HeartbeatInterval")
    command = GetConfiguration([heartbeat, "VendorKey", "NumberOfConnectors", "Forgotten"])
    answer = {
        "configurationKey": [
            {"key": "heartbeatinterval", "readonly": False, "value": "60"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        ],
        "unknownKey": ["VendorKey"],
    }
    result = command.result(V16, answer)
    assert result.values == (
        ConfigurationValue(heartbeat, "60", "Accepted", False),
        ConfigurationValue("VendorKey", None, "UnknownVariable"),
        ConfigurationValue("NumberOfConnectors", "2", "Accepted", True),
        ConfigurationValue("Forgotten", None, "Missing"),
    )
    assert not result.accepted and result.status is None
    assert result.get(heartbeat) == "60" and result.get("HeartbeatInterval") is None
    assert result.get("VendorKey", "none") == "none"
    assert [v.known for v in result.values] == [True, False, True, False]


def test_get_all_configuration_in_16() -> None:
    """No keys: every key the station reported, then the unknown ones."""
    answer = {
        "configurationKey": [
            {"key": "A", "readonly": True},
            {"key": "B", "readonly": False, "value": "1"},
        ],
        "unknownKey": ["C"],
    }
    result = GetConfiguration().result(V16, answer)
    assert result.values == (
        ConfigurationValue("A", None, "Accepted", True),
        ConfigurationValue("B", "1", "Accepted", False),
        ConfigurationValue("C", None, "UnknownVariable"),
    )
    assert not result.accepted
    assert GetConfiguration().result(V16, {}).values == ()


def test_get_configuration_in_2x() -> None:
    """Results matched to the variables asked, whatever their order; a 1.6 key stays the key."""
    custom = DeviceVariable("EVSE", "Power", evse_id=1, variable_instance="Max")
    command = GetConfiguration(["HeartbeatInterval", custom, "ConnectionTimeOut"])
    answer = {
        "getVariableResult": [
            {
                "attributeStatus": "UnknownComponent",
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power", "instance": "Max"},
            },
            {
                "attributeStatus": "Accepted",
                "attributeType": "Actual",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            },
        ]
    }
    result = command.result(V201, answer)
    assert result.values == (
        ConfigurationValue("HeartbeatInterval", "300", "Accepted"),
        ConfigurationValue(custom, None, "UnknownComponent"),
        ConfigurationValue("ConnectionTimeOut", None, "Missing"),
    )
    assert result.get("HeartbeatInterval") == "300" and not result.accepted
    everything = GetConfiguration(["HeartbeatInterval"]).result(V21, answer)
    assert everything.accepted and everything.get("HeartbeatInterval") == "300"
