"""The OCPP JSON schemas: which actions exist, and how a violation is reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import UsageError
from csms_kit.protocol import schemas
from csms_kit.protocol.schemas import (
    SchemaViolation,
    call_actions,
    compile_validator,
    known_actions,
    send_actions,
)
from csms_kit.protocol.validation import Quirk
from csms_kit.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
SECRET = "SECRET-VALUE-123"
NOW = "2024-01-02T03:04:05Z"


def violation(
    version: OcppVersion,
    action: str,
    payload: Any,
    message: schemas.Message = "request",
    quirks: tuple[Quirk, ...] = (),
) -> SchemaViolation:
    check = compile_validator(version, action, message, quirks)
    assert check is not None
    with pytest.raises(SchemaViolation) as info:
        check(payload)
    return info.value


def is_valid(
    version: OcppVersion,
    action: str,
    payload: Any,
    message: schemas.Message = "request",
    quirks: tuple[Quirk, ...] = (),
) -> bool:
    check = compile_validator(version, action, message, quirks)
    assert check is not None
    try:
        check(payload)
    except SchemaViolation:
        return False
    return True


# -- which actions exist -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (
            V16,
            {"BootNotification", "Heartbeat", "MeterValues", "StartTransaction", "Reset"},
            {"TransactionEvent", "NotifyPeriodicEventStream", "BootNotificationRequest"},
        ),
        (
            V201,
            {"BootNotification", "TransactionEvent", "GetVariables", "Reset"},
            {"StartTransaction", "NotifyPeriodicEventStream", "BootNotificationRequest"},
        ),
        (
            V21,
            {"BootNotification", "TransactionEvent", "NotifyPeriodicEventStream", "BatterySwap"},
            {"StartTransaction", "BootNotificationRequest"},
        ),
    ],
)
def test_known_actions(version: OcppVersion, present: set[str], absent: set[str]) -> None:
    """known_actions names each version's actions, without Request/Response suffixes."""
    actions = known_actions(version)
    assert present <= actions
    assert not absent & actions
    assert not any(a.endswith("Response") for a in actions)


@pytest.mark.parametrize(("version", "count"), [(V16, 39), (V201, 64), (V21, 91)])
def test_known_action_counts(version: OcppVersion, count: int) -> None:
    """Every action the ocpp package ships a schema for is known."""
    assert len(known_actions(version)) == count


@pytest.mark.parametrize("version", [V16, V201])
def test_all_actions_are_calls_before_21(version: OcppVersion) -> None:
    """1.6 and 2.0.1 have no SEND messages: every action is a CALL."""
    assert call_actions(version) == known_actions(version)
    assert send_actions(version) == frozenset()


def test_notify_periodic_event_stream_is_the_21_send_action() -> None:
    """2.1 NotifyPeriodicEventStream is a SEND, not a CALL."""
    assert send_actions(V21) == frozenset({"NotifyPeriodicEventStream"})
    assert "NotifyPeriodicEventStream" not in call_actions(V21)
    assert call_actions(V21) | send_actions(V21) == known_actions(V21)


@pytest.mark.parametrize("version", list(OcppVersion))
def test_every_call_action_has_request_and_response_schemas(version: OcppVersion) -> None:
    """A CALL action has both schemas; a SEND action only a request schema."""
    for action in call_actions(version):
        assert schemas.pristine_schema(version, action, "request") is not None, action
        assert schemas.pristine_schema(version, action, "response") is not None, action
    for action in send_actions(version):
        assert schemas.pristine_schema(version, action, "request") is not None
        assert schemas.pristine_schema(version, action, "response") is None


@pytest.mark.parametrize(
    ("version", "action", "message"),
    [
        (V16, "Nope", "request"),
        (V16, "TransactionEvent", "request"),
        (V201, "StartTransaction", "response"),
        (V21, "NotifyPeriodicEventStream", "response"),
        (V201, "BootNotificationResponse", "request"),
        (V201, "BootNotificationRequest", "request"),
    ],
)
def test_compile_validator_for_unknown_message_is_none(
    version: OcppVersion, action: str, message: schemas.Message
) -> None:
    """No schema, no validator."""
    assert compile_validator(version, action, message) is None


# -- how violations are reported ---------------------------------------------------------

BOOT16 = {"chargePointVendor": "ACME", "chargePointModel": "M1"}
BOOT201 = {"reason": "PowerUp", "chargingStation": {"model": "M1", "vendorName": "ACME"}}
STATUS16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}

VIOLATIONS = [
    # (version, action, payload, code, path)
    (V16, "BootNotification", {**BOOT16, "chargePointVendor": 5}, "TYPE", "chargePointVendor"),
    (V16, "StatusNotification", {**STATUS16, "connectorId": SECRET}, "TYPE", "connectorId"),
    (V16, "Heartbeat", [SECRET], "TYPE", ""),
    (V201, "BootNotification", {**BOOT201, "chargingStation": SECRET}, "TYPE", "chargingStation"),
    (V16, "BootNotification", {"chargePointModel": SECRET}, "OCCURRENCE", ""),
    (V201, "BootNotification", {"reason": "PowerUp"}, "OCCURRENCE", ""),
    (
        V201,
        "BootNotification",
        {**BOOT201, "chargingStation": {"model": SECRET}},
        "OCCURRENCE",
        "chargingStation",
    ),
    (V16, "MeterValues", {"connectorId": 1, "meterValue": []}, "OCCURRENCE", "meterValue"),
    (V16, "BootNotification", {**BOOT16, SECRET: SECRET}, "FORMAT", ""),
    (V16, "Heartbeat", {SECRET: 1}, "FORMAT", ""),
    (
        V201,
        "BootNotification",
        {**BOOT201, "chargingStation": {"model": "M", "vendorName": "V", SECRET: SECRET}},
        "FORMAT",
        "chargingStation",
    ),
    (V16, "StatusNotification", {**STATUS16, "timestamp": SECRET}, "FORMAT", "timestamp"),
    (
        V201,
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": SECRET,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "t"},
        },
        "FORMAT",
        "timestamp",
    ),
    (V16, "StatusNotification", {**STATUS16, "errorCode": SECRET}, "PROPERTY", "errorCode"),
    (V201, "BootNotification", {**BOOT201, "reason": SECRET}, "PROPERTY", "reason"),
    (
        V16,
        "BootNotification",
        {**BOOT16, "chargePointVendor": SECRET * 2},
        "PROPERTY",
        "chargePointVendor",
    ),
    (
        V201,
        "BootNotification",
        {**BOOT201, "chargingStation": {"model": "M", "vendorName": SECRET * 5}},
        "PROPERTY",
        "chargingStation/vendorName",
    ),
    (
        V16,
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "1", "unit": SECRET}]}],
        },
        "PROPERTY",
        "meterValue/0/sampledValue/0/unit",
    ),
]
CODES = {
    "TYPE": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "OCCURRENCE": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "FORMAT": ErrorCode.FORMAT_VIOLATION,
    "PROPERTY": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}


@pytest.mark.parametrize(
    ("version", "action", "payload", "code", "path"),
    VIOLATIONS,
    ids=[f"{v[0].value}-{v[1]}-{v[3]}-{v[4] or 'root'}" for v in VIOLATIONS],
)
def test_violation_codes_and_paths(
    version: OcppVersion, action: str, payload: Any, code: str, path: str
) -> None:
    """Each schema rule maps to its OCPP-J error code and names the property path."""
    error = violation(version, action, payload)
    assert error.code is CODES[code]
    assert error.path == path
    assert error.description == str(error)
    assert len(error.description) <= 255
    if path:
        assert error.description.startswith(path + ":")


@pytest.mark.parametrize(
    ("version", "action", "payload", "code", "path"),
    VIOLATIONS,
    ids=[f"{v[0].value}-{v[1]}-{v[3]}-{v[4] or 'root'}" for v in VIOLATIONS],
)
def test_violation_description_never_holds_the_value(
    version: OcppVersion, action: str, payload: Any, code: str, path: str
) -> None:
    """The description names the path and the rule, never the station's value or keys."""
    error = violation(version, action, payload)
    assert SECRET not in error.description
    assert SECRET not in error.path
    assert SECRET not in str(error)


def test_required_violation_names_the_missing_property() -> None:
    """A missing required property is named (the name comes from the schema)."""
    error = violation(V16, "BootNotification", {"chargePointModel": "m"})
    assert "chargePointVendor" in error.description


def test_max_length_violation_names_the_limit() -> None:
    """A maxLength violation says what the limit is."""
    error = violation(V16, "BootNotification", {**BOOT16, "chargePointVendor": "v" * 21})
    assert "maxLength" in error.description
    assert "20" in error.description


@pytest.mark.parametrize("length", [20, 0])
def test_max_length_boundary_is_valid(length: int) -> None:
    """A string of exactly maxLength (or empty) is valid."""
    assert is_valid(V16, "BootNotification", {**BOOT16, "chargePointVendor": "v" * length})


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", 1 + 2j])
def test_values_json_cannot_carry_are_a_type_violation(value: object) -> None:
    """A payload holding a non-JSON value is reported, not crashed on."""
    error = violation(V16, "DataTransfer", {"vendorId": "v", "data": value})
    assert error.code is ErrorCode.TYPE_CONSTRAINT_VIOLATION


def test_compiled_validators_are_cached() -> None:
    """The same arguments give the same compiled validator object."""
    first = compile_validator(V201, "BootNotification", "request")
    assert first is not None
    assert compile_validator(V201, "BootNotification", "request") is first
    quirk = (Quirk("BootNotification", "chargingStation.model", ("maxLength",)),)
    relaxed = compile_validator(V201, "BootNotification", "request", quirk)
    assert relaxed is not first
    assert compile_validator(V201, "BootNotification", "request", quirk) is relaxed


# -- 1.6 float multipleOf ----------------------------------------------------------------


def set_charging_profile(limit: float) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


@pytest.mark.parametrize("limit", [21.4, 0.1, 0.3, 0.7, 6.0, 16, 32.1, 1234.5, 99999.9])
def test_v16_limit_multiple_of_point_one_is_valid(limit: float) -> None:
    """1.6 limit (multipleOf 0.1) accepts one-decimal floats despite binary rounding."""
    assert is_valid(V16, "SetChargingProfile", set_charging_profile(limit))


@pytest.mark.parametrize("limit", [21.45, 0.05, 1.001])
def test_v16_limit_with_more_decimals_is_a_property_violation(limit: float) -> None:
    """A limit that is not a multiple of 0.1 breaks multipleOf."""
    error = violation(V16, "SetChargingProfile", set_charging_profile(limit))
    assert error.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert error.path.endswith("chargingSchedulePeriod/0/limit")


# -- quirks ------------------------------------------------------------------------------


def id_token(token: str = "tok", kind: str = "ISO14443") -> dict[str, Any]:
    return {"idToken": token, "type": kind}


def start201(**fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "remoteStartId": 1,
        "idToken": id_token(),
        "groupIdToken": id_token(),
    }
    payload.update(fields)
    return payload


SHARED_REF_CASES = [
    # (path under groupIdToken, drop, broken IdTokenType, code the sibling still gets)
    ("groupIdToken.idToken", "maxLength", id_token("t" * 37), "PROPERTY"),
    ("groupIdToken.type", "enum", id_token(kind="NotAType"), "PROPERTY"),
    ("groupIdToken.type", "required", {"idToken": "tok"}, "OCCURRENCE"),
    ("groupIdToken", "additionalProperties", {**id_token(), "vendorKey": 1}, "FORMAT"),
]


@pytest.mark.parametrize(("path", "drop", "broken", "code"), SHARED_REF_CASES)
def test_quirk_relaxes_one_field_but_not_a_sibling_sharing_its_ref(
    path: str, drop: str, broken: dict[str, Any], code: str
) -> None:
    """A quirk on groupIdToken leaves idToken, which shares IdTokenType, strict."""
    quirks = (Quirk("RequestStartTransaction", path, (drop,)),)
    # Strict by default.
    error = violation(V201, "RequestStartTransaction", start201(groupIdToken=broken))
    assert error.code is CODES[code]
    # Relaxed where the quirk points.
    assert is_valid(V201, "RequestStartTransaction", start201(groupIdToken=broken), quirks=quirks)
    # Not relaxed at the sibling that shares the definition.
    error = violation(V201, "RequestStartTransaction", start201(idToken=broken), quirks=quirks)
    assert error.code is CODES[code]
    assert error.path.startswith("idToken")


def test_quirk_drops_format_inside_arrays_only_at_its_path() -> None:
    """Dropping format at meterValue.timestamp relaxes each meter value, not the root one."""
    quirks = (Quirk("TransactionEvent", "meterValue.timestamp", ("format",)),)
    payload = {
        "eventType": "Updated",
        "timestamp": NOW,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "t"},
        "meterValue": [
            {"timestamp": "yesterday", "sampledValue": [{"value": 1.0}]},
            {"timestamp": "noon", "sampledValue": [{"value": 2.0}]},
        ],
    }
    assert violation(V201, "TransactionEvent", payload).code is ErrorCode.FORMAT_VIOLATION
    assert is_valid(V201, "TransactionEvent", payload, quirks=quirks)
    error = violation(V201, "TransactionEvent", {**payload, "timestamp": "now"}, quirks=quirks)
    assert error.code is ErrorCode.FORMAT_VIOLATION
    assert error.path == "timestamp"


def test_quirk_drops_enum_across_nested_v16_arrays() -> None:
    """1.6 meterValue.sampledValue.unit: the enum is dropped for every sampled value."""
    quirks = (Quirk("MeterValues", "meterValue.sampledValue.unit", "enum"),)
    payload = {
        "connectorId": 1,
        "meterValue": [
            {"timestamp": NOW, "sampledValue": [{"value": "1", "unit": "kwh"}]},
            {"timestamp": NOW, "sampledValue": [{"value": "2", "unit": "Wh"}, {"value": "3"}]},
        ],
    }
    assert not is_valid(V16, "MeterValues", payload)
    assert is_valid(V16, "MeterValues", payload, quirks=quirks)
    # Other enums in the same object stay strict.
    payload["meterValue"][1]["sampledValue"][1]["phase"] = "L4"
    assert not is_valid(V16, "MeterValues", payload, quirks=quirks)


def test_quirk_drops_max_length_at_top_level() -> None:
    """A top-level maxLength quirk lets a long value through; other fields stay strict."""
    quirks = (Quirk("BootNotification", "chargePointVendor", ("maxLength",)),)
    assert is_valid(
        V16, "BootNotification", {**BOOT16, "chargePointVendor": "v" * 50}, quirks=quirks
    )
    long_model = {**BOOT16, "chargePointModel": "m" * 50}
    assert not is_valid(V16, "BootNotification", long_model, quirks=quirks)


def test_quirk_drops_required_at_top_level() -> None:
    """A required quirk makes a top-level field optional."""
    quirks = (Quirk("BootNotification", "chargePointModel", ("required",)),)
    assert is_valid(V16, "BootNotification", {"chargePointVendor": "v"}, quirks=quirks)
    assert not is_valid(V16, "BootNotification", {"chargePointModel": "m"}, quirks=quirks)


def test_quirk_drops_additional_properties_of_the_payload() -> None:
    """An empty path names the payload itself."""
    quirks = (Quirk("Heartbeat", "", ("additionalProperties",)),)
    assert is_valid(V16, "Heartbeat", {"vendorThing": 1}, quirks=quirks)


def test_quirk_with_several_keywords() -> None:
    """One quirk may drop several keywords at its path."""
    quirks = (Quirk("StatusNotification", "timestamp", ("format", "required")),)
    # timestamp is not required in 1.6 StatusNotification: the quirk is refused.
    with pytest.raises(UsageError):
        compile_validator(V16, "StatusNotification", "request", quirks)
    quirks = (Quirk("BootNotification", "chargingStation.model", ("maxLength", "required")),)
    assert is_valid(
        V201,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "v"}},
        quirks=quirks,
    )
    assert is_valid(
        V201,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "v", "model": "m" * 99}},
        quirks=quirks,
    )


def test_response_quirk_applies_only_to_the_response() -> None:
    """A quirk for the response leaves the request strict, and the other way round."""
    quirks = (Quirk("Authorize", "idTagInfo.parentIdTag", ("maxLength",), message="response"),)
    response = {"idTagInfo": {"status": "Accepted", "parentIdTag": "p" * 30}}
    assert not is_valid(V16, "Authorize", response, "response")
    assert is_valid(V16, "Authorize", response, "response", quirks=quirks)


def test_quirks_never_modify_the_shared_schema() -> None:
    """Relaxing a copy leaves the pristine schema, and validators without quirks, strict."""
    before = copy.deepcopy(schemas.pristine_schema(V201, "RequestStartTransaction", "request"))
    quirks = (
        Quirk("RequestStartTransaction", "groupIdToken.idToken", ("maxLength",)),
        Quirk("RequestStartTransaction", "groupIdToken.type", ("enum", "required")),
        Quirk("RequestStartTransaction", "", ("additionalProperties",)),
    )
    relaxed = schemas.load_schema(V201, "RequestStartTransaction", "request", quirks)
    assert relaxed != before
    assert schemas.pristine_schema(V201, "RequestStartTransaction", "request") == before
    assert compile_validator(V201, "RequestStartTransaction", "request", quirks) is not None
    assert not is_valid(V201, "RequestStartTransaction", start201(groupIdToken={"idToken": "x"}))


@pytest.mark.parametrize(
    "quirk",
    [
        Quirk("BootNotification", "nope", ("maxLength",)),
        Quirk("BootNotification", "chargingStation.nope", ("maxLength",)),
        Quirk("BootNotification", "reason.deeper", ("enum",)),
        Quirk("BootNotification", "chargingStation.model", ("enum",)),
        Quirk("BootNotification", "chargingStation.model", ("maxlength",)),
        Quirk("BootNotification", "chargingStation.serialNumber", ("required",)),
        Quirk("BootNotification", "", ("required",)),
        Quirk("BootNotification", "reason", ("format",)),
        Quirk("BootNotification", "chargingStation.model", ("maxLength",), message="response"),
    ],
    ids=lambda q: f"{q.message}:{q.path or 'root'}:{'+'.join(q.drop)}",
)
def test_bad_quirk_path_or_keyword_raises_usage_error(quirk: Quirk) -> None:
    """A quirk naming a field or constraint the schema lacks is a UsageError."""
    with pytest.raises(UsageError):
        compile_validator(V201, "BootNotification", quirk.message, (quirk,))
