"""Building each command's CALL per OCPP version, and storing commands as JSON (pure)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from csms_kit import OcppVersion, UsageError
from csms_kit.commands import (
    ChangeAvailability,
    ChargingProfile,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ClearCache,
    ClearChargingProfile,
    Command,
    DataTransfer,
    DeviceVariable,
    GetConfiguration,
    GetLog,
    RemoteStart,
    RemoteStop,
    Reset,
    SetChargingProfile,
    SetConfiguration,
    TriggerMessage,
    UnlockConnector,
    UpdateFirmware,
)
from csms_kit.protocol.schemas import compile_validator

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
NOON = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
NOON_TEXT = "2026-03-01T12:00:00Z"
DEFAULT_PROFILE = ChargingProfile(
    3,
    1,
    "ChargePointMaxProfile",
    ChargingSchedule("W", [ChargingSchedulePeriod(0, 11000.0, 3)], start=NOON, duration=3600),
    kind="Recurring",
    recurrency="Daily",
    valid_to="2027-01-01T00:00:00Z",
)
TX_PROFILE = ChargingProfile(
    4,
    0,
    "TxProfile",
    ChargingSchedule("A", [ChargingSchedulePeriod(0, 16.06), ChargingSchedulePeriod(60, 2.3)]),
    kind="Relative",
)
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}

#: Each command, and the CALL it makes for 1.6, 2.0.1 and 2.1 (one entry: the same for 2.x).
CASES: list[tuple[Command[Any], dict[OcppVersion, tuple[str, dict[str, Any]]]]] = [
    (Reset("hard"), {V16: ("Reset", {"type": "Hard"}), V201: ("Reset", {"type": "Immediate"})}),
    (Reset(), {V16: ("Reset", {"type": "Soft"}), V201: ("Reset", {"type": "OnIdle"})}),
    (Reset("hard", evse_id=2), {V201: ("Reset", {"type": "Immediate", "evseId": 2})}),
    (
        RemoteStart("TAG-1", remote_start_id=7),
        {
            V16: ("RemoteStartTransaction", {"idTag": "TAG-1"}),
            V201: (
                "RequestStartTransaction",
                {"idToken": {"idToken": "TAG-1", "type": "Central"}, "remoteStartId": 7},
            ),
        },
    ),
    (
        RemoteStart("TAG-1", 2, "ISO14443", TX_PROFILE, 7),
        {
            V16: (
                "RemoteStartTransaction",
                {
                    "idTag": "TAG-1",
                    "connectorId": 2,
                    "chargingProfile": {
                        "chargingProfileId": 4,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [
                                {"startPeriod": 0, "limit": 16.0},
                                {"startPeriod": 60, "limit": 2.3},
                            ],
                        },
                    },
                },
            ),
            V201: (
                "RequestStartTransaction",
                {
                    "idToken": {"idToken": "TAG-1", "type": "ISO14443"},
                    "remoteStartId": 7,
                    "evseId": 2,
                    "chargingProfile": {
                        "id": 4,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": [
                            {
                                "id": 4,
                                "chargingRateUnit": "A",
                                "chargingSchedulePeriod": [
                                    {"startPeriod": 0, "limit": 16.06},
                                    {"startPeriod": 60, "limit": 2.3},
                                ],
                            }
                        ],
                    },
                },
            ),
        },
    ),
    (
        RemoteStop("42"),
        {
            V16: ("RemoteStopTransaction", {"transactionId": 42}),
            V201: ("RequestStopTransaction", {"transactionId": "42"}),
        },
    ),
    (
        RemoteStop(42),
        {
            V16: ("RemoteStopTransaction", {"transactionId": 42}),
            V201: ("RequestStopTransaction", {"transactionId": "42"}),
        },
    ),
    (
        ChangeAvailability(operative=False),
        {
            V16: ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
            V201: ("ChangeAvailability", {"operationalStatus": "Inoperative"}),
        },
    ),
    (
        ChangeAvailability(operative=True, evse_id=2),
        {
            V16: ("ChangeAvailability", {"connectorId": 2, "type": "Operative"}),
            V201: ("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}}),
        },
    ),
    (
        ChangeAvailability(operative=True, evse_id=2, connector_id=1),
        {
            V201: (
                "ChangeAvailability",
                {"operationalStatus": "Operative", "evse": {"id": 2, "connectorId": 1}},
            )
        },
    ),
    (
        GetConfiguration(),
        {V16: ("GetConfiguration", {})},
    ),
    (
        GetConfiguration(["HeartbeatInterval", DeviceVariable("TxCtrlr", "EVConnectionTimeOut")]),
        {
            V16: ("GetConfiguration", {"key": ["HeartbeatInterval", "ConnectionTimeOut"]}),
            V201: (
                "GetVariables",
                {
                    "getVariableData": [
                        HEARTBEAT,
                        {
                            "component": {"name": "TxCtrlr"},
                            "variable": {"name": "EVConnectionTimeOut"},
                        },
                    ]
                },
            ),
        },
    ),
    (
        GetConfiguration(["VendorSpecificKey"]),
        {V16: ("GetConfiguration", {"key": ["VendorSpecificKey"]})},
    ),
    (
        GetConfiguration(
            [DeviceVariable("EVSE", "Power", "main", "Max", evse_id=1, connector_id=2)]
        ),
        {
            V201: (
                "GetVariables",
                {
                    "getVariableData": [
                        {
                            "component": {
                                "name": "EVSE",
                                "instance": "main",
                                "evse": {"id": 1, "connectorId": 2},
                            },
                            "variable": {"name": "Power", "instance": "Max"},
                        }
                    ]
                },
            )
        },
    ),
    (
        GetConfiguration(["TransactionMessageAttempts"]),
        {
            V16: ("GetConfiguration", {"key": ["TransactionMessageAttempts"]}),
            V201: (
                "GetVariables",
                {
                    "getVariableData": [
                        {
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {
                                "name": "MessageAttempts",
                                "instance": "TransactionEvent",
                            },
                        }
                    ]
                },
            ),
        },
    ),
    (
        SetConfiguration("HeartbeatInterval", 300),
        {
            V16: ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "300"}),
            V201: ("SetVariables", {"setVariableData": [{"attributeValue": "300", **HEARTBEAT}]}),
        },
    ),
    (
        SetConfiguration(DeviceVariable("AuthCtrlr", "AuthorizeRemoteStart"), True),
        {
            V16: ("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "true"}),
            V201: (
                "SetVariables",
                {
                    "setVariableData": [
                        {
                            "attributeValue": "true",
                            "component": {"name": "AuthCtrlr"},
                            "variable": {"name": "AuthorizeRemoteStart"},
                        }
                    ]
                },
            ),
        },
    ),
    (
        SetConfiguration("VendorKey", False),
        {V16: ("ChangeConfiguration", {"key": "VendorKey", "value": "false"})},
    ),
    (
        TriggerMessage("StatusNotification", evse_id=1),
        {
            V16: ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
            V201: (
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "evse": {"id": 1}},
            ),
        },
    ),
    (
        TriggerMessage("DiagnosticsStatusNotification"),
        {
            V16: ("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}),
            V201: ("TriggerMessage", {"requestedMessage": "LogStatusNotification"}),
        },
    ),
    (
        TriggerMessage("SignChargingStationCertificate"),
        {
            V16: ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}),
            V201: ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}),
        },
    ),
    (
        TriggerMessage("MeterValues", evse_id=1, connector_id=1),
        {
            V201: (
                "TriggerMessage",
                {"requestedMessage": "MeterValues", "evse": {"id": 1, "connectorId": 1}},
            )
        },
    ),
    (
        TriggerMessage("SignV2G20Certificate"),
        {V21: ("TriggerMessage", {"requestedMessage": "SignV2G20Certificate"})},
    ),
    (
        UnlockConnector(2),
        {
            V16: ("UnlockConnector", {"connectorId": 2}),
            V201: ("UnlockConnector", {"evseId": 2, "connectorId": 1}),
        },
    ),
    (
        UnlockConnector(2, 3),
        {V201: ("UnlockConnector", {"evseId": 2, "connectorId": 3})},
    ),
    (
        SetChargingProfile(0, DEFAULT_PROFILE),
        {
            V16: (
                "SetChargingProfile",
                {
                    "connectorId": 0,
                    "csChargingProfiles": {
                        "chargingProfileId": 3,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "ChargePointMaxProfile",
                        "chargingProfileKind": "Recurring",
                        "recurrencyKind": "Daily",
                        "validTo": "2027-01-01T00:00:00Z",
                        "chargingSchedule": {
                            "startSchedule": NOON_TEXT,
                            "duration": 3600,
                            "chargingRateUnit": "W",
                            "chargingSchedulePeriod": [
                                {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3}
                            ],
                        },
                    },
                },
            ),
            V201: (
                "SetChargingProfile",
                {
                    "evseId": 0,
                    "chargingProfile": {
                        "id": 3,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "ChargingStationMaxProfile",
                        "chargingProfileKind": "Recurring",
                        "recurrencyKind": "Daily",
                        "validTo": "2027-01-01T00:00:00Z",
                        "chargingSchedule": [
                            {
                                "id": 3,
                                "startSchedule": NOON_TEXT,
                                "duration": 3600,
                                "chargingRateUnit": "W",
                                "chargingSchedulePeriod": [
                                    {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3}
                                ],
                            }
                        ],
                    },
                },
            ),
        },
    ),
    (
        SetChargingProfile(
            1,
            ChargingProfile(
                5,
                0,
                "TxProfile",
                ChargingSchedule("A", [ChargingSchedulePeriod(0, 10)], min_rate=6.05, id=9),
                transaction_id=77,
            ),
        ),
        {
            V16: (
                "SetChargingProfile",
                {
                    "connectorId": 1,
                    "csChargingProfiles": {
                        "chargingProfileId": 5,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Absolute",
                        "transactionId": 77,
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}],
                            "minChargingRate": 6.0,
                        },
                    },
                },
            ),
            V201: (
                "SetChargingProfile",
                {
                    "evseId": 1,
                    "chargingProfile": {
                        "id": 5,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Absolute",
                        "transactionId": "77",
                        "chargingSchedule": [
                            {
                                "id": 9,
                                "chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}],
                                "minChargingRate": 6.05,
                            }
                        ],
                    },
                },
            ),
        },
    ),
    (
        ClearChargingProfile(),
        {V16: ("ClearChargingProfile", {}), V201: ("ClearChargingProfile", {})},
    ),
    (
        ClearChargingProfile(profile_id=3),
        {
            V16: ("ClearChargingProfile", {"id": 3}),
            V201: ("ClearChargingProfile", {"chargingProfileId": 3}),
        },
    ),
    (
        ClearChargingProfile(evse_id=0, purpose="ChargingStationMaxProfile", stack_level=1),
        {
            V16: (
                "ClearChargingProfile",
                {
                    "connectorId": 0,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "stackLevel": 1,
                },
            ),
            V201: (
                "ClearChargingProfile",
                {
                    "chargingProfileCriteria": {
                        "evseId": 0,
                        "chargingProfilePurpose": "ChargingStationMaxProfile",
                        "stackLevel": 1,
                    }
                },
            ),
        },
    ),
    (
        UpdateFirmware(
            "https://example.com/fw.bin", NOON, retries=2, retry_interval=30, request_id=7
        ),
        {
            V16: (
                "UpdateFirmware",
                {
                    "location": "https://example.com/fw.bin",
                    "retrieveDate": NOON_TEXT,
                    "retries": 2,
                    "retryInterval": 30,
                },
            ),
            V201: (
                "UpdateFirmware",
                {
                    "requestId": 7,
                    "retries": 2,
                    "retryInterval": 30,
                    "firmware": {
                        "location": "https://example.com/fw.bin",
                        "retrieveDateTime": NOON_TEXT,
                    },
                },
            ),
        },
    ),
    (
        UpdateFirmware(
            "https://example.com/fw.bin",
            NOON,
            install_at=NOON + datetime.timedelta(hours=1),
            signing_certificate="CERT",
            signature="SIG",
            request_id=7,
        ),
        {
            version: (
                "SignedUpdateFirmware" if version is V16 else "UpdateFirmware",
                {
                    "requestId": 7,
                    "firmware": {
                        "location": "https://example.com/fw.bin",
                        "retrieveDateTime": NOON_TEXT,
                        "installDateTime": "2026-03-01T13:00:00Z",
                        "signingCertificate": "CERT",
                        "signature": "SIG",
                    },
                },
            )
            for version in (V16, V201)
        },
    ),
    (
        GetLog("https://example.com/up", oldest=NOON, latest=NOON_TEXT, retries=1, request_id=7),
        {
            V16: (
                "GetDiagnostics",
                {
                    "location": "https://example.com/up",
                    "retries": 1,
                    "startTime": NOON_TEXT,
                    "stopTime": NOON_TEXT,
                },
            ),
            V201: (
                "GetLog",
                {
                    "logType": "DiagnosticsLog",
                    "requestId": 7,
                    "retries": 1,
                    "log": {
                        "remoteLocation": "https://example.com/up",
                        "oldestTimestamp": NOON_TEXT,
                        "latestTimestamp": NOON_TEXT,
                    },
                },
            ),
        },
    ),
    (
        GetLog("https://example.com/up", "SecurityLog", retry_interval=5, request_id=7),
        {
            version: (
                "GetLog",
                {
                    "logType": "SecurityLog",
                    "requestId": 7,
                    "retryInterval": 5,
                    "log": {"remoteLocation": "https://example.com/up"},
                },
            )
            for version in (V16, V201)
        },
    ),
    (
        GetLog("https://example.com/up", "DataCollectorLog", request_id=7),
        {
            V21: (
                "GetLog",
                {
                    "logType": "DataCollectorLog",
                    "requestId": 7,
                    "log": {"remoteLocation": "https://example.com/up"},
                },
            )
        },
    ),
    (ClearCache(), {V16: ("ClearCache", {}), V201: ("ClearCache", {})}),
    (
        DataTransfer("ACME", "ping", {"n": [1, 2]}),
        {
            V16: (
                "DataTransfer",
                {"vendorId": "ACME", "messageId": "ping", "data": '{"n":[1,2]}'},
            ),
            V201: (
                "DataTransfer",
                {"vendorId": "ACME", "messageId": "ping", "data": {"n": [1, 2]}},
            ),
        },
    ),
    (
        DataTransfer("ACME", data="text"),
        {
            V16: ("DataTransfer", {"vendorId": "ACME", "data": "text"}),
            V201: ("DataTransfer", {"vendorId": "ACME", "data": "text"}),
        },
    ),
    (
        DataTransfer("ACME"),
        {
            V16: ("DataTransfer", {"vendorId": "ACME"}),
            V201: ("DataTransfer", {"vendorId": "ACME"}),
        },
    ),
]


def _expected(cases: dict[OcppVersion, Any]) -> list[tuple[OcppVersion, Any]]:
    """Each version's expected CALL: a 2.0.1 entry holds for 2.1 unless 2.1 has its own."""
    expected = dict(cases)
    if V201 in expected:
        expected.setdefault(V21, expected[V201])
    return sorted(expected.items())


REQUESTS = [
    pytest.param(command, version, call, id=f"{command.name}-{n}-{version}")
    for n, (command, cases) in enumerate(CASES)
    for version, call in _expected(cases)
]


@pytest.mark.parametrize(("command", "version", "call"), REQUESTS)
def test_the_call_for_each_version(
    command: Command[Any], version: OcppVersion, call: tuple[str, dict[str, Any]]
) -> None:
    """The command's CALL for the version is the one expected, and valid in its schema."""
    action, payload = command.request(version)
    assert (action, payload) == call
    validate = compile_validator(version, action, "request")
    assert validate is not None
    validate(payload)


@pytest.mark.parametrize(
    ("command", "version"),
    [
        pytest.param(command, version, id=f"{command.name}-{n}-{version}")
        for n, (command, cases) in enumerate(CASES)
        for version in OcppVersion
        if version not in dict(_expected(cases))
    ],
)
def test_versions_without_a_counterpart_refuse(
    command: Command[Any], version: OcppVersion
) -> None:
    """A version the table gives no CALL for raises UsageError, naming the command."""
    with pytest.raises(UsageError, match=f"{command.name} for an OCPP {version} station"):
        command.request(version)


@pytest.mark.parametrize(
    "command", [c for c, _ in CASES], ids=[f"{c.name}-{n}" for n, (c, _) in enumerate(CASES)]
)
def test_a_command_survives_json(command: Command[Any]) -> None:
    """to_dict is JSON; from_dict gives an equal command, which builds the same CALLs."""
    text = json.dumps(command.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["command"] == command.name
    again = Command.from_dict(data)
    assert again == command and type(again) is type(command)
    for version in OcppVersion:
        try:
            expected = command.request(version)
        except UsageError:
            continue
        assert again.request(version) == expected


def test_every_command_kind_is_in_the_table() -> None:
    """Each command class has a case above (so each is built and stored in a test)."""
    ours = {k for k in Command._kinds.values() if k.__module__.startswith("csms_kit.")}
    assert {type(c) for c, _ in CASES} == ours


@pytest.mark.parametrize(
    "data",
    [
        {"command": "teleport", "arguments": {}},
        {"arguments": {}},
        {"command": "reset", "arguments": ["hard"]},
        {"command": "reset", "arguments": {"kind": "hard", "force": True}},
    ],
)
def test_data_that_is_no_command_is_refused(data: dict[str, Any]) -> None:
    """Unknown command, missing name, arguments not a dict, unknown argument: ValueError."""
    with pytest.raises(ValueError, match=r"not a command's data|reset: "):
        Command.from_dict(data)


def test_ids_default_to_fresh_random_ones_kept_in_the_command() -> None:
    """remoteStartId and requestId are drawn once per command, stored with it."""
    first, second = RemoteStart("T"), RemoteStart("T")
    assert first.remote_start_id != second.remote_start_id
    assert 0 < first.remote_start_id < 2**31
    assert first.request(V201) == first.request(V201)
    assert Command.from_dict(first.to_dict()) == first
    assert GetLog("ftp://x/").request_id != GetLog("ftp://x/").request_id
    assert (
        UpdateFirmware("ftp://x/", NOON).request_id != UpdateFirmware("ftp://x/", NOON).request_id
    )


# -- what each version cannot say ---------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "version", "message"),
    [
        (Reset(evse_id=1), V16, "1.6 resets the whole station"),
        (ChangeAvailability(True, 1, 1), V16, "1.6 has no connectors within an EVSE"),
        (UnlockConnector(1, 2), V16, "1.6 has no connectors within an EVSE"),
        (TriggerMessage("Heartbeat", 1, 1), V16, "1.6 has no connectors within an EVSE"),
        (TriggerMessage("TransactionEvent"), V16, "1.6 cannot ask for TransactionEvent"),
        (TriggerMessage("SignV2G20Certificate"), V201, "only OCPP 2.1"),
        (RemoteStop("tx-1"), V16, "1.6 transaction ids are integers, not 'tx-1'"),
        (GetConfiguration(), V201, "cannot list every variable"),
        (GetConfiguration(["NumberOfConnectors"]), V21, "'NumberOfConnectors' has no OCPP 2.x"),
        (GetConfiguration(["VendorKey"]), V201, "'VendorKey' is not a standard OCPP 1.6"),
        (GetConfiguration(["heartbeatinterval"]), V201, "did you mean 'HeartbeatInterval'"),
        (SetConfiguration(DeviceVariable("X", "Y"), "1"), V16, "X.Y has no standard OCPP 1.6"),
        (
            SetChargingProfile(1, ChargingProfile(1, 0, "TxProfile", TX_PROFILE.schedule)),
            V201,
            "a 2.x TxProfile names its transaction",
        ),
        (
            SetChargingProfile(
                0, ChargingProfile(1, 0, "LocalGeneration", DEFAULT_PROFILE.schedule)
            ),
            V16,
            "1.6 has no LocalGeneration",
        ),
        (
            SetChargingProfile(
                0, ChargingProfile(1, 0, "PriorityCharging", DEFAULT_PROFILE.schedule)
            ),
            V201,
            "only 2.1 has PriorityCharging",
        ),
        (
            SetChargingProfile(
                0, ChargingProfile(1, 0, "TxDefaultProfile", DEFAULT_PROFILE.schedule, "Dynamic")
            ),
            V201,
            "only 2.1 has Dynamic profiles",
        ),
        (
            ClearChargingProfile(purpose="ChargingStationExternalConstraints"),
            V16,
            "1.6 has no ChargingStationExternalConstraints",
        ),
        (UpdateFirmware("ftp://x/", NOON, install_at=NOON), V16, "install_at needs signed"),
        (UpdateFirmware("ftp://x/", NOON, signature="SIG"), V16, "needs both"),
        (GetLog("ftp://x/", "DataCollectorLog"), V201, "only OCPP 2.1 has the DataCollectorLog"),
    ],
)
def test_what_a_version_cannot_express_is_refused(
    command: Command[Any], version: OcppVersion, message: str
) -> None:
    """A UsageError that says why, before anything could be sent."""
    with pytest.raises(UsageError, match=message.replace(".", r"\.").replace("(", r"\(")):
        command.request(version)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Reset("firm"), "kind must be one of hard, soft"),  # type: ignore[arg-type]
        (lambda: ChangeAvailability(True, connector_id=1), "needs the evse_id"),
        (lambda: TriggerMessage("Coffee"), "cannot ask for 'Coffee'"),
        (lambda: GetConfiguration("HeartbeatInterval"), "a list of keys, not one key"),
        (lambda: GetConfiguration([42]), "a string or a DeviceVariable"),  # type: ignore[list-item]
        (lambda: SetConfiguration("K", 1.5), "text, a number or a boolean"),
        (lambda: DeviceVariable("EVSE", "Power", connector_id=1), "needs the evse_id"),
        (lambda: DataTransfer("V", data={1, 2}), "data must be JSON"),
        (lambda: DataTransfer("V", data=float("nan")), "data must be JSON"),
        (lambda: ChargingSchedule("kW", [ChargingSchedulePeriod(0, 1)]), "rate_unit"),  # type: ignore[arg-type]
        (lambda: ChargingSchedule("A", []), "at least one period"),
        (lambda: ChargingProfile(1, 0, "Max", TX_PROFILE.schedule), "purpose must be one of"),
        (lambda: ChargingProfile(1, 0, "TxProfile", TX_PROFILE.schedule, "Often"), "kind"),
        (
            lambda: ChargingProfile(1, 0, "TxProfile", TX_PROFILE.schedule, recurrency="Hourly"),
            "recurrency",
        ),
        (
            lambda: ChargingProfile(
                1, 0, "TxDefaultProfile", TX_PROFILE.schedule, transaction_id=1
            ),
            "only a TxProfile has a transaction_id",
        ),
        (lambda: RemoteStart("T", charging_profile=DEFAULT_PROFILE), "a TxProfile without"),
        (
            lambda: RemoteStart(
                "T",
                charging_profile=ChargingProfile(
                    1, 0, "TxProfile", TX_PROFILE.schedule, transaction_id=5
                ),
            ),
            "a TxProfile without",
        ),
        (lambda: UpdateFirmware("ftp://x/", datetime.datetime(2026, 1, 1)), "without a time zone"),
        (lambda: GetLog("ftp://x/", "AuditLog"), "log_type must be one of"),  # type: ignore[arg-type]
        (lambda: ClearChargingProfile(purpose="Everything"), "purpose must be one of"),
    ],
)
def test_bad_arguments_are_refused_when_the_command_is_made(build: Any, message: str) -> None:
    """Arguments no version could use raise UsageError at once, saying what is wrong."""
    with pytest.raises(UsageError, match=message):
        build()


def test_timestamps_are_written_in_utc() -> None:
    """An aware datetime in any zone becomes UTC with a Z; a string is kept as given."""
    paris = datetime.timezone(datetime.timedelta(hours=1))
    command = UpdateFirmware("ftp://x/", datetime.datetime(2026, 3, 1, 13, 0, tzinfo=paris))
    assert command.retrieve_at == NOON_TEXT
    assert UpdateFirmware("ftp://x/", "2026-03-01T13:00:00+01:00").retrieve_at == (
        "2026-03-01T13:00:00+01:00"
    )


def test_one_six_limits_are_rounded_down_to_tenths() -> None:
    """1.6 takes tenths: a limit never grows on the way (16.09 -> 16.0, 2.3 stays 2.3)."""
    schedule = ChargingSchedule("A", [ChargingSchedulePeriod(0, x) for x in (16.09, 2.3, 0.7)])
    profile = ChargingProfile(1, 0, "TxDefaultProfile", schedule)
    _, payload = SetChargingProfile(1, profile).request(V16)
    periods = payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"]
    assert [p["limit"] for p in periods] == [16.0, 2.3, 0.7]
    _, payload = SetChargingProfile(1, profile).request(V201)
    periods = payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert [p["limit"] for p in periods] == [16.09, 2.3, 0.7]


def test_command_names_are_unique() -> None:
    """A second command with a taken name is refused when its class is made; a class
    without a name (a base for others) is not registered."""
    with pytest.raises(TypeError, match="two commands are named 'reset'"):

        class AnotherReset(Reset):
            name = "reset"

    class Base(Command[Any]):
        pass

    assert Base not in Command._kinds.values()


def test_a_variable_on_an_evse_without_a_connector() -> None:
    """The 2.x component names the EVSE alone when no connector is given."""
    command = GetConfiguration([DeviceVariable("EVSE", "AvailabilityState", evse_id=2)])
    _, payload = command.request(V201)
    assert payload["getVariableData"][0]["component"] == {"name": "EVSE", "evse": {"id": 2}}
