"""Endpoint: the OCPP-J rules of one connection, driven by plain function calls."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import RegistrationStatus
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms_kit import Quirk, Validation, ValidationPolicy
from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import InvalidPayload, RpcError, UsageError
from csms_kit.protocol import (
    Dropped,
    Endpoint,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
    OutgoingCall,
    Reply,
    UnusableAnswer,
)
from csms_kit.protocol.extra_types import NotifyPeriodicEventStream, StreamDataElementType
from csms_kit.protocol.schemas import call_actions, known_actions
from csms_kit.versions import OcppVersion
from tests.protocol.conftest import check_callerror_text

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
ALL = list(OcppVersion)
SECRET = "SECRET-VALUE-123"
NOW = "2024-01-02T03:04:05Z"

CheckReply = Callable[..., list[Any]]

BOOT = {
    V16: {"chargePointVendor": "ACME", "chargePointModel": "M1"},
    V201: {"reason": "PowerUp", "chargingStation": {"model": "M1", "vendorName": "ACME"}},
    V21: {"reason": "PowerUp", "chargingStation": {"model": "M1", "vendorName": "ACME"}},
}
BOOT_RESPONSE = {"currentTime": NOW, "interval": 300, "status": "Accepted"}
RESET = {
    V16: (call16.Reset(type="Hard"), {"status": "Accepted"}),
    V201: (call201.Reset(type="Immediate"), {"status": "Accepted"}),
    V21: (call21.Reset(type="Immediate"), {"status": "Accepted"}),
}


def spelled(code: ErrorCode, version: OcppVersion) -> str:
    return code.spelled_for(version)


def endpoint(version: OcppVersion, **options: Any) -> Endpoint:
    options.setdefault("handled", call_actions(version) | known_actions(version))
    return Endpoint(version, **options)


def frame(*parts: Any) -> str:
    return json.dumps(list(parts))


def incoming(ep: Endpoint, message_id: str, action: str, payload: dict[str, Any]) -> IncomingCall:
    event = ep.receive(frame(2, message_id, action, payload))
    assert isinstance(event, IncomingCall), event
    return event


def outstanding(ep: Endpoint) -> OutgoingCall:
    request, _ = RESET[ep.version]
    call = ep.prepare_call(request)
    ep.call_sent(call)
    return call


# -- bad frames from the station --------------------------------------------------------

# (name, text, id the reply must carry)
UNREADABLE = [
    ("invalid-json", "this is not json", "-1"),
    ("truncated", '[2, "m1", "Heartbeat", {}', "-1"),
    ("object", '{"messageTypeId": 2}', "-1"),
    ("string", '"[2, \\"m1\\", \\"Heartbeat\\", {}]"', "-1"),
    ("number", "2", "-1"),
    ("empty-array", "[]", "-1"),
    ("nan", '[2, "m1", "Heartbeat", {"x": NaN}]', "-1"),
    ("infinity", '[2, "m1", "Heartbeat", {"x": Infinity}]', "-1"),
    ("1e400", '[2, "m1", "Heartbeat", {"x": 1e400}]', "-1"),
    ("deep", "[" * 100_000, "-1"),
    ("deep-closed", "[" * 100_000 + "]" * 100_000, "-1"),
    ("5000-digits", '[2, "m1", "Heartbeat", {"x": ' + "9" * 5000 + "}]", "-1"),
    ("int-id", '[2, 17, "Heartbeat", {}]', "-1"),
    ("null-id", '[2, null, "Heartbeat", {}]', "-1"),
    ("list-id", '[2, ["m1"], "Heartbeat", {}]', "-1"),
    ("37-char-id", frame(2, "i" * 37, "Heartbeat", {}), "-1"),
    ("surrogate-id", '[2, "\\ud800", "Heartbeat", {}]', "-1"),
    ("only-type", "[2]", "-1"),
]
READABLE = [
    ("type-as-string", '["2", "m1", "Heartbeat", {}]', "m1"),
    ("type-as-float", '[2.0, "m1", "Heartbeat", {}]', "m1"),
    ("type-as-bool", '[true, "m1", "Heartbeat", {}]', "m1"),
    ("too-few", '[2, "m1", "Heartbeat"]', "m1"),
    ("too-many", '[2, "m1", "Heartbeat", {}, {}]', "m1"),
    ("int-action", '[2, "m1", 42, {}]', "m1"),
    ("null-action", '[2, "m1", null, {}]', "m1"),
    ("36-char-id-int-action", frame(2, "i" * 36, 1, {}), "i" * 36),
]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(("name", "text", "reply_id"), UNREADABLE + READABLE)
def test_frame_errors_are_answered_with_rpc_framework_error(
    version: OcppVersion, name: str, text: str, reply_id: str, check_reply: CheckReply
) -> None:
    """Frames that are or may be CALLs but break OCPP-J get RpcFrameworkError (1.6 spelling)."""
    event = endpoint(version).receive(text)
    check_reply(event, reply_id, spelled(ErrorCode.RPC_FRAMEWORK_ERROR, version), raw=text)
    assert isinstance(event, Reply)
    assert event.code is ErrorCode.RPC_FRAMEWORK_ERROR


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text",
    [
        '[2, "m1", "Heartbeat", {"x": "\\ud800"}]',
        '[2, "m1", "Heartbeat", {"\\udfff": 1}]',
        '[2, "m1", "Heartbeat", []]',
        '[2, "m1", "Heartbeat", "payload"]',
        '[2, "m1", "Heartbeat", null]',
    ],
)
def test_bad_payload_container_or_lone_surrogate_is_format_violation(
    version: OcppVersion, text: str, check_reply: CheckReply
) -> None:
    """A payload that is not an object, or holds a lone surrogate, gets FormatViolation."""
    event = endpoint(version).receive(text)
    check_reply(event, "m1", spelled(ErrorCode.FORMAT_VIOLATION, version), raw=text)


@pytest.mark.parametrize("type_id", [0, 1, 7, 9, 100])
def test_unknown_message_type_on_201_is_answered(type_id: int, check_reply: CheckReply) -> None:
    """2.0.1 answers an unknown MessageTypeId with MessageTypeNotSupported."""
    text = frame(type_id, "m1", "Heartbeat", {})
    check_reply(endpoint(V201).receive(text), "m1", "MessageTypeNotSupported", raw=text)


@pytest.mark.parametrize("text", ['[5, "m1", "GenericError", "", {}]', '[6, "m1", "X", {}]'])
def test_21_message_types_on_201_are_not_supported(text: str, check_reply: CheckReply) -> None:
    """2.1-only message types on a 2.0.1 connection get MessageTypeNotSupported."""
    check_reply(endpoint(V201).receive(text), "m1", "MessageTypeNotSupported", raw=text)


def test_unknown_message_type_with_unreadable_id_on_201(check_reply: CheckReply) -> None:
    """The MessageTypeNotSupported answer uses -1 when the id cannot be read."""
    check_reply(endpoint(V201).receive("[9, 9]"), "-1", "MessageTypeNotSupported")


@pytest.mark.parametrize("version", [V16, V21])
@pytest.mark.parametrize("type_id", [0, 1, 7, 9, 100])
def test_unknown_message_type_is_ignored_on_16_and_21(version: OcppVersion, type_id: int) -> None:
    """1.6 and 2.1 drop unknown message types without an answer."""
    event = endpoint(version).receive(frame(type_id, "m1", "Heartbeat", {}))
    assert isinstance(event, Dropped)
    assert event.message_id == "m1"


@pytest.mark.parametrize(
    "text",
    [
        '[5, "m1", "GenericError", "", {}]',
        '[6, "m1", "NotifyPeriodicEventStream", {}]',
        '[6, 1, "NotifyPeriodicEventStream", {}]',
    ],
)
def test_21_message_types_on_16_are_ignored(text: str) -> None:
    """CALLRESULTERROR and SEND on a 1.6 connection are unknown types: ignored."""
    assert isinstance(endpoint(V16).receive(text), Dropped)


# -- actions -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "action", ["NoSuchAction", "heartbeat", "", "A" * 300, "BootNotificationRequest"]
)
def test_unknown_action_is_not_implemented(
    version: OcppVersion, action: str, check_reply: CheckReply
) -> None:
    """An action the version does not define is answered NotImplemented."""
    event = endpoint(version).receive(frame(2, "m1", action, {}))
    frame_ = check_reply(event, "m1", "NotImplemented")
    if len(action) > 10:
        assert action not in frame_[3]


@pytest.mark.parametrize(
    ("version", "action"), [(V16, "TransactionEvent"), (V201, "StartTransaction")]
)
def test_action_of_another_version_is_not_implemented(
    version: OcppVersion, action: str, check_reply: CheckReply
) -> None:
    """An action from another OCPP version is unknown here."""
    check_reply(endpoint(version).receive(frame(2, "m1", action, {})), "m1", "NotImplemented")


@pytest.mark.parametrize("version", ALL)
def test_known_action_without_handler_is_not_supported(
    version: OcppVersion, check_reply: CheckReply
) -> None:
    """A known action the CSMS has no handler for is answered NotSupported."""
    ep = Endpoint(version, handled={"Heartbeat"})
    check_reply(
        ep.receive(frame(2, "m1", "BootNotification", BOOT[version])), "m1", "NotSupported"
    )
    assert isinstance(ep.receive(frame(2, "m2", "Heartbeat", {})), IncomingCall)


def test_send_action_as_call_on_21_is_answered(check_reply: CheckReply) -> None:
    """A SEND-only action arriving as a CALL is refused with a CALLERROR."""
    event = endpoint(V21).receive(frame(2, "m1", "NotifyPeriodicEventStream", {}))
    assert isinstance(event, Reply)
    check_callerror_text(event.text, "m1")
    assert event.code in (ErrorCode.NOT_IMPLEMENTED, ErrorCode.NOT_SUPPORTED)


# -- schema violations -------------------------------------------------------------------


def violations(version: OcppVersion) -> list[tuple[str, str, dict[str, Any], ErrorCode]]:
    boot = BOOT[version]
    if version is V16:
        return [
            (
                "missing",
                "BootNotification",
                {"chargePointModel": SECRET},
                ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            ),
            (
                "wrong-type",
                "BootNotification",
                {**boot, "chargePointVendor": 12345},
                ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            ),
            ("extra", "BootNotification", {**boot, SECRET: SECRET}, ErrorCode.FORMAT_VIOLATION),
            (
                "enum",
                "StatusNotification",
                {"connectorId": 1, "errorCode": SECRET, "status": "Available"},
                ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            ),
            (
                "too-long",
                "BootNotification",
                {**boot, "chargePointVendor": SECRET * 3},
                ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            ),
            (
                "bad-date",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": SECRET,
                },
                ErrorCode.FORMAT_VIOLATION,
            ),
        ]
    station = boot["chargingStation"]
    return [
        (
            "missing",
            "BootNotification",
            {"chargingStation": {**station, "model": SECRET}},
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
        ),
        (
            "wrong-type",
            "BootNotification",
            {**boot, "chargingStation": SECRET},
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        ),
        ("extra", "BootNotification", {**boot, SECRET: SECRET}, ErrorCode.FORMAT_VIOLATION),
        (
            "enum",
            "BootNotification",
            {**boot, "reason": SECRET},
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        ),
        (
            "too-long",
            "BootNotification",
            {**boot, "chargingStation": {**station, "model": SECRET * 3}},
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        ),
        (
            "nested-too-long",
            "Heartbeat",
            {"customData": {"vendorId": SECRET * 30}},
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        ),
    ]


VIOLATION_CASES = [(version, *case) for version in ALL for case in violations(version)]


@pytest.mark.parametrize(
    ("version", "name", "action", "payload", "code"),
    VIOLATION_CASES,
    ids=[f"{c[0].value}-{c[1]}" for c in VIOLATION_CASES],
)
def test_schema_violations_are_answered_with_spelled_code(
    version: OcppVersion,
    name: str,
    action: str,
    payload: dict[str, Any],
    code: ErrorCode,
    check_reply: CheckReply,
) -> None:
    """A CALL breaking its schema gets the matching code, spelled for the version."""
    text = frame(2, "m1", action, payload)
    event = endpoint(version).receive(text)
    check_reply(event, "m1", code.spelled_for(version), raw=text)
    assert isinstance(event, Reply)
    assert event.code is code
    assert SECRET not in event.text
    assert SECRET not in event.reason


@pytest.mark.parametrize("version", ALL)
def test_v16_and_v2x_spellings_differ_on_the_wire(version: OcppVersion) -> None:
    """1.6 writes FormationViolation/OccurenceConstraintViolation; 2.x the corrected names."""
    ep = endpoint(version)
    extra = json.loads(ep.receive(frame(2, "a", "Heartbeat", {"x": 1})).text)  # type: ignore[union-attr]
    missing_payload = {"chargePointModel": "m"} if version is V16 else {"reason": "PowerUp"}
    missing = json.loads(ep.receive(frame(2, "b", "BootNotification", missing_payload)).text)  # type: ignore[union-attr]
    if version is V16:
        assert (extra[2], missing[2]) == ("FormationViolation", "OccurenceConstraintViolation")
    else:
        assert (extra[2], missing[2]) == ("FormatViolation", "OccurrenceConstraintViolation")


# -- CALLs in progress -------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_valid_call_gives_incoming_call_with_typed_request(version: OcppVersion) -> None:
    """A valid CALL becomes an IncomingCall holding the request dataclass and the raw payload."""
    event = incoming(endpoint(version), "m1", "BootNotification", BOOT[version])
    assert event.message_id == "m1"
    assert event.action == "BootNotification"
    assert event.payload == BOOT[version]
    assert type(event.request).__name__ == "BootNotification"
    assert type(event.request).__module__ == f"ocpp.{version.package}.call"


@pytest.mark.parametrize("version", ALL)
def test_call_reusing_an_id_in_progress_is_refused(
    version: OcppVersion, check_reply: CheckReply
) -> None:
    """A CALL reusing the messageId of a CALL still in progress gets RpcFrameworkError."""
    ep = endpoint(version)
    first = incoming(ep, "dup", "Heartbeat", {})
    event = ep.receive(frame(2, "dup", "BootNotification", BOOT[version]))
    expected = "FormationViolation" if version is V16 else "RpcFrameworkError"
    check_reply(event, "dup", expected)
    # Once answered, the id may be used again.
    ep.result_for(first, {"currentTime": NOW})
    incoming(ep, "dup", "Heartbeat", {})


@pytest.mark.parametrize("version", ALL)
def test_refused_call_does_not_occupy_its_id(version: OcppVersion) -> None:
    """A CALL answered with an error by the endpoint itself is not in progress."""
    ep = endpoint(version)
    assert isinstance(ep.receive(frame(2, "x", "Heartbeat", {"bad": 1})), Reply)
    incoming(ep, "x", "Heartbeat", {})


@pytest.mark.parametrize("version", ALL)
def test_too_many_calls_in_progress(version: OcppVersion, check_reply: CheckReply) -> None:
    """Past max_incoming CALLs in progress the next gets RpcFrameworkError, until one ends."""
    ep = endpoint(version, max_incoming=3)
    calls = [incoming(ep, f"c{i}", "Heartbeat", {}) for i in range(3)]
    check_reply(
        ep.receive(frame(2, "c3", "Heartbeat", {})),
        "c3",
        spelled(ErrorCode.RPC_FRAMEWORK_ERROR, version),
    )
    ep.error_for(calls[0], RpcError(ErrorCode.INTERNAL_ERROR))
    incoming(ep, "c3", "Heartbeat", {})
    check_reply(
        ep.receive(frame(2, "c4", "Heartbeat", {})),
        "c4",
        spelled(ErrorCode.RPC_FRAMEWORK_ERROR, version),
    )


@pytest.mark.parametrize("finish", ["result", "error", "forget"])
@pytest.mark.parametrize("version", ALL)
def test_answering_or_forgetting_frees_the_id(version: OcppVersion, finish: str) -> None:
    """result_for, error_for and forget each end the CALL, so its id may be used again."""
    ep = endpoint(version, max_incoming=1)
    call = incoming(ep, "m1", "Heartbeat", {})
    assert isinstance(ep.receive(frame(2, "m1", "Heartbeat", {})), Reply)
    if finish == "result":
        ep.result_for(call, {"currentTime": NOW})
    elif finish == "error":
        ep.error_for(call, RpcError(ErrorCode.GENERIC_ERROR, "no"))
    else:
        ep.forget(call)
    incoming(ep, "m1", "Heartbeat", {})


# -- answering the station ---------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_result_for_writes_callresult(version: OcppVersion) -> None:
    """result_for validates and serializes the response as [3, id, payload]."""
    ep = endpoint(version)
    call = incoming(ep, "m1", "BootNotification", BOOT[version])
    text = ep.result_for(call, dict(BOOT_RESPONSE))
    assert json.loads(text) == [3, "m1", BOOT_RESPONSE]


def test_result_for_accepts_the_response_dataclass() -> None:
    """A call_result dataclass is encoded to camelCase JSON."""
    ep = endpoint(V16)
    call = incoming(ep, "m1", "BootNotification", BOOT[V16])
    text = ep.result_for(
        call,
        result16.BootNotification(
            current_time=NOW, interval=60, status=RegistrationStatus.accepted
        ),
    )
    assert json.loads(text) == [
        3,
        "m1",
        {"currentTime": NOW, "interval": 60, "status": "Accepted"},
    ]


@pytest.mark.parametrize("version", ALL)
def test_result_for_with_invalid_response_raises_in_enforce_mode(version: OcppVersion) -> None:
    """An invalid response raises InvalidPayload; the CALL stays open for error_for."""
    ep = endpoint(version)
    call = incoming(ep, "m1", "BootNotification", BOOT[version])
    with pytest.raises(InvalidPayload) as info:
        ep.result_for(call, {"currentTime": NOW, "interval": 300, "status": "Maybe"})
    assert info.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert info.value.action == "BootNotification"
    assert isinstance(ep.receive(frame(2, "m1", "Heartbeat", {})), Reply)  # still in progress
    text = ep.error_for(call, RpcError(ErrorCode.INTERNAL_ERROR, "handler failed"))
    check_callerror_text(text, "m1", "InternalError")
    incoming(ep, "m1", "Heartbeat", {})


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ({"currentTime": NOW, "interval": 300}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ({**BOOT_RESPONSE, "interval": "300"}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
        ({**BOOT_RESPONSE, "extra": 1}, ErrorCode.FORMAT_VIOLATION),
        ({**BOOT_RESPONSE, "currentTime": "today"}, ErrorCode.FORMAT_VIOLATION),
    ],
)
def test_result_for_reports_the_violation_code(response: dict[str, Any], code: ErrorCode) -> None:
    """InvalidPayload carries the OCPP-J code of the violation."""
    ep = endpoint(V201)
    call = incoming(ep, "m1", "BootNotification", BOOT[V201])
    with pytest.raises(InvalidPayload) as info:
        ep.result_for(call, response)
    assert info.value.code is code


def test_result_for_in_log_mode_sends_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """In log mode an invalid response is sent anyway, with a warning."""
    ep = endpoint(V201, validation=ValidationPolicy(default=Validation.LOG))
    call = incoming(ep, "m1", "BootNotification", BOOT[V201])
    bad = {"currentTime": NOW, "interval": 300, "status": SECRET}
    with caplog.at_level(logging.WARNING, logger="csms_kit.protocol"):
        text = ep.result_for(call, bad)
    assert json.loads(text) == [3, "m1", bad]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "BootNotification" in warnings[0].getMessage()
    assert SECRET not in warnings[0].getMessage()


def test_result_for_in_off_mode_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    """With validation off, the response is sent unchecked and nothing is logged."""
    ep = endpoint(V16, validation=ValidationPolicy(per_action={"BootNotification": "off"}))
    call = incoming(ep, "m1", "BootNotification", BOOT[V16])
    with caplog.at_level(logging.DEBUG, logger="csms_kit.protocol"):
        text = ep.result_for(call, {"status": "Whatever", "vendorKey": 1})
    assert json.loads(text) == [3, "m1", {"status": "Whatever", "vendorKey": 1}]
    assert caplog.records == []


@pytest.mark.parametrize("response", [None, "Accepted", 5, ["status"], ("a", 1), 1.5])
def test_result_for_with_none_or_wrong_type_is_usage_error(response: Any) -> None:
    """A response that is not the dataclass or a dict is a UsageError, not a schema error."""
    ep = endpoint(V16)
    call = incoming(ep, "m1", "BootNotification", BOOT[V16])
    with pytest.raises(UsageError) as info:
        ep.result_for(call, response)
    assert not isinstance(info.value, InvalidPayload)


@pytest.mark.parametrize("version", ALL)
def test_error_for_writes_callerror(version: OcppVersion) -> None:
    """error_for writes the code spelled for the version, description cut, details kept."""
    ep = endpoint(version)
    call = incoming(ep, "m1", "Heartbeat", {})
    error = RpcError(ErrorCode.FORMAT_VIOLATION, "x" * 1000, {"field": "idTag"})
    parsed = json.loads(ep.error_for(call, error))
    assert parsed[:3] == [4, "m1", ErrorCode.FORMAT_VIOLATION.spelled_for(version)]
    assert len(parsed[3]) <= 255
    assert parsed[4] == {"field": "idTag"}


# -- calling the station -----------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_prepare_call_serializes_and_ids_are_unique(version: OcppVersion) -> None:
    """prepare_call gives [2, id, action, payload]; ids are unique and at most 36 characters."""
    ep, other = endpoint(version), endpoint(version)
    request, _ = RESET[version]
    ids = set()
    for _ in range(500):
        call = ep.prepare_call(request)
        parsed = json.loads(call.text)
        assert parsed[0] == 2
        assert parsed[1] == call.message_id
        assert parsed[2] == call.action == "Reset"
        assert len(call.message_id) <= 36
        ids.add(call.message_id)
    assert len(ids) == 500
    assert other.prepare_call(request).message_id not in ids


def test_prepare_call_accepts_dict_with_action() -> None:
    """A dict request works when the action is named, with either key spelling."""
    ep = endpoint(V201)
    for payload in ({"type": "Immediate", "evseId": 1}, {"type": "Immediate", "evse_id": 1}):
        call = ep.prepare_call(payload, action="Reset")
        assert json.loads(call.text)[3] == {"type": "Immediate", "evseId": 1}


@pytest.mark.parametrize(
    ("version", "request_", "action"),
    [
        (V16, call16.Reset(type="Hard"), "NoSuchAction"),
        (V16, {"type": "Hard"}, "TransactionEvent"),
        (
            V201,
            call16.StartTransaction(connector_id=1, id_tag="t", meter_start=0, timestamp=NOW),
            None,
        ),
        (V21, NotifyPeriodicEventStream(id=1, pending=0, basetime=NOW, data=[]), None),
        (V21, {"id": 1}, "NotifyPeriodicEventStream"),
    ],
)
def test_prepare_call_of_unknown_or_non_call_action_is_usage_error(
    version: OcppVersion, request_: Any, action: str | None
) -> None:
    """Only the version's CALL actions may be called."""
    with pytest.raises(UsageError):
        endpoint(version).prepare_call(request_, action=action)


def test_prepare_call_of_dict_without_action_is_usage_error() -> None:
    """A dict carries no action name: the caller must give it."""
    with pytest.raises(UsageError):
        endpoint(V16).prepare_call({"type": "Hard"})


@pytest.mark.parametrize("version", ALL)
def test_prepare_call_of_invalid_request_is_invalid_payload(version: OcppVersion) -> None:
    """A request that breaks the schema raises InvalidPayload and nothing is prepared."""
    ep = endpoint(version)
    with pytest.raises(InvalidPayload) as info:
        ep.prepare_call({"type": "Sideways"}, action="Reset")
    assert info.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert ep.outstanding is None


def test_prepare_call_in_off_mode_does_not_validate() -> None:
    """With validation off for the action, an invalid request is serialized as given."""
    ep = endpoint(V16, validation=ValidationPolicy(per_action={"Reset": Validation.OFF}))
    call = ep.prepare_call({"type": "Sideways"}, action="Reset")
    assert json.loads(call.text)[3] == {"type": "Sideways"}


@pytest.mark.parametrize("version", ALL)
def test_call_sent_twice_without_answer_is_usage_error(version: OcppVersion) -> None:
    """OCPP-J allows one outstanding CALL: a second call_sent before the answer is refused."""
    ep = endpoint(version)
    first = outstanding(ep)
    request, _ = RESET[version]
    second = ep.prepare_call(request)
    with pytest.raises(UsageError):
        ep.call_sent(second)
    assert ep.outstanding is first


@pytest.mark.parametrize("version", ALL)
def test_matching_callresult_gives_typed_response(version: OcppVersion) -> None:
    """The CALLRESULT to our outstanding CALL becomes IncomingResult with the typed response."""
    ep = endpoint(version)
    call = outstanding(ep)
    assert ep.outstanding is call
    event = ep.receive(frame(3, call.message_id, {"status": "Accepted"}))
    assert isinstance(event, IncomingResult)
    assert (event.message_id, event.action) == (call.message_id, "Reset")
    assert type(event.response).__name__ == "Reset"
    assert type(event.response).__module__ == f"ocpp.{version.package}.call_result"
    assert event.response.status == "Accepted"
    assert event.payload == {"status": "Accepted"}
    assert ep.outstanding is None
    # A second answer with the same id is now unsolicited.
    assert isinstance(ep.receive(frame(3, call.message_id, {"status": "Accepted"})), Dropped)


@pytest.mark.parametrize("version", ALL)
def test_unmatched_callresult_is_dropped(version: OcppVersion) -> None:
    """A CALLRESULT for no outstanding CALL is dropped; the outstanding one keeps waiting."""
    ep = endpoint(version)
    assert isinstance(ep.receive(frame(3, "nobody", {})), Dropped)
    call = outstanding(ep)
    event = ep.receive(frame(3, "other", {"status": "Accepted"}))
    assert isinstance(event, Dropped)
    assert event.message_id == "other"
    assert ep.outstanding is call


@pytest.mark.parametrize("version", ALL)
def test_late_answer_after_abandon_is_dropped(version: OcppVersion) -> None:
    """After abandon_call, the answer that finally arrives is dropped."""
    ep = endpoint(version)
    call = outstanding(ep)
    ep.abandon_call(call)
    assert ep.outstanding is None
    assert isinstance(ep.receive(frame(3, call.message_id, {"status": "Accepted"})), Dropped)
    assert isinstance(ep.receive(frame(4, call.message_id, "GenericError", "", {})), Dropped)


def test_abandon_of_another_id_keeps_waiting() -> None:
    """abandon_call of an id that is not outstanding changes nothing."""
    ep = endpoint(V16)
    call = outstanding(ep)
    ep.abandon_call(OutgoingCall("not-this-one", "Reset", ""))
    assert ep.outstanding is call


@pytest.mark.parametrize("version", ALL)
def test_callerror_gives_incoming_error(version: OcppVersion) -> None:
    """A CALLERROR to the outstanding CALL becomes IncomingError with the raw code."""
    ep = endpoint(version)
    call = outstanding(ep)
    event = ep.receive(frame(4, call.message_id, "OccurenceConstraintViolation", "why", {"a": 1}))
    assert isinstance(event, IncomingError)
    assert event.message_id == call.message_id
    assert event.action == "Reset"
    assert (event.code, event.description, event.details) == (
        "OccurenceConstraintViolation",
        "why",
        {"a": 1},
    )
    assert ep.outstanding is None
    assert isinstance(ep.receive(frame(4, call.message_id, "GenericError", "", {})), Dropped)


@pytest.mark.parametrize(("version", "has_reply"), [(V16, False), (V201, False), (V21, True)])
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"status": "Maybe"}, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
        ({}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ({"status": 1}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
        ({"status": "Accepted", "x": 1}, ErrorCode.FORMAT_VIOLATION),
    ],
)
def test_invalid_callresult_gives_invalid_answer(
    version: OcppVersion, has_reply: bool, payload: dict[str, Any], code: ErrorCode
) -> None:
    """An invalid CALLRESULT becomes UnusableAnswer; only 2.1 answers it (CALLRESULTERROR)."""
    ep = endpoint(version)
    call = outstanding(ep)
    event = ep.receive(frame(3, call.message_id, payload))
    assert isinstance(event, UnusableAnswer)
    assert (event.message_id, event.action, event.code) == (call.message_id, "Reset", code)
    assert ep.outstanding is None
    if has_reply:
        assert event.reply is not None
        check_callerror_text(event.reply, call.message_id, code.value, message_type=5)
    else:
        assert event.reply is None


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "shape",
    [
        '[3, "{id}"]',
        '[3, "{id}", {{}}, {{}}]',
        '[3, "{id}", []]',
        '[3, "{id}", {{"s": "\\ud800"}}]',
    ],
)
def test_malformed_callresult_for_outstanding_id_is_invalid_answer(
    version: OcppVersion, shape: str
) -> None:
    """A malformed CALLRESULT carrying the outstanding id ends that CALL as UnusableAnswer."""
    ep = endpoint(version)
    call = outstanding(ep)
    event = ep.receive(shape.format(id=call.message_id))
    assert isinstance(event, UnusableAnswer)
    assert event.message_id == call.message_id
    assert ep.outstanding is None


@pytest.mark.parametrize("version", ALL)
def test_malformed_callresult_for_another_id_is_dropped(version: OcppVersion) -> None:
    """A malformed CALLRESULT with some other id is dropped and the CALL keeps waiting."""
    ep = endpoint(version)
    call = outstanding(ep)
    assert isinstance(ep.receive('[3, "other"]'), Dropped)
    assert isinstance(ep.receive("[3, 5, {}]"), Dropped)
    assert ep.outstanding is call


@pytest.mark.parametrize("version", ALL)
def test_malformed_callerror_for_outstanding_id_is_invalid_answer(version: OcppVersion) -> None:
    """A malformed CALLERROR for the outstanding CALL is UnusableAnswer, never answered.

    A CALLRESULTERROR is an error about a CALLRESULT; a CALLERROR gets no answer.
    """
    ep = endpoint(version)
    call = outstanding(ep)
    event = ep.receive(frame(4, call.message_id, 1, "d", {}))
    assert isinstance(event, UnusableAnswer)
    assert event.message_id == call.message_id
    assert event.reply is None


# -- OCPP 2.1 SEND and CALLRESULTERROR --------------------------------------------------

STREAM = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "1"}]}


def test_valid_send_gives_incoming_send() -> None:
    """A valid, handled 2.1 SEND becomes IncomingSend with the typed message."""
    ep = endpoint(V21)
    event = ep.receive(frame(6, "s1", "NotifyPeriodicEventStream", STREAM))
    assert isinstance(event, IncomingSend)
    assert (event.message_id, event.action, event.payload) == (
        "s1",
        "NotifyPeriodicEventStream",
        STREAM,
    )
    assert event.message == NotifyPeriodicEventStream(
        id=1, pending=0, basetime=NOW, data=[StreamDataElementType(t=0.5, v="1")]
    )
    # A SEND is not a CALL in progress: its id is free.
    incoming(ep, "s1", "Heartbeat", {})


@pytest.mark.parametrize(
    ("handled", "action", "payload"),
    [
        ({"NotifyPeriodicEventStream"}, "NotifyPeriodicEventStream", {"id": 1}),
        ({"NotifyPeriodicEventStream"}, "NotifyPeriodicEventStream", {**STREAM, "x": SECRET}),
        ({"Heartbeat"}, "NotifyPeriodicEventStream", STREAM),
        ({"Heartbeat"}, "Heartbeat", {}),
        ({"Heartbeat"}, "NoSuchThing", {}),
    ],
    ids=["invalid", "extra-property", "unhandled", "call-action", "unknown-action"],
)
def test_bad_or_unhandled_send_is_dropped(
    handled: set[str], action: str, payload: dict[str, Any]
) -> None:
    """An invalid, unhandled or non-SEND SEND is dropped, never answered."""
    event = Endpoint(V21, handled=handled).receive(frame(6, "s1", action, payload))
    assert isinstance(event, Dropped)
    assert event.message_id == "s1"
    assert SECRET not in event.reason


def test_send_while_call_outstanding_leaves_the_call_waiting() -> None:
    """A SEND may arrive while our CALL is outstanding; the CALL still waits."""
    ep = endpoint(V21)
    call = outstanding(ep)
    assert isinstance(
        ep.receive(frame(6, "s1", "NotifyPeriodicEventStream", STREAM)), IncomingSend
    )
    assert ep.outstanding is call


def test_prepare_send_on_21() -> None:
    """prepare_send writes [6, id, action, payload] for a SEND action."""
    ep = endpoint(V21)
    data = [StreamDataElementType(t=0.5, v="1")]
    text = ep.prepare_send(NotifyPeriodicEventStream(id=1, pending=0, basetime=NOW, data=data))
    parsed = json.loads(text)
    assert parsed[0] == 6
    assert parsed[2] == "NotifyPeriodicEventStream"
    assert parsed[3] == STREAM
    assert len(parsed[1]) <= 36


@pytest.mark.parametrize("version", [V16, V201])
def test_prepare_send_before_21_is_usage_error(version: OcppVersion) -> None:
    """SEND does not exist before OCPP 2.1."""
    with pytest.raises(UsageError):
        endpoint(version).prepare_send(STREAM, action="NotifyPeriodicEventStream")


@pytest.mark.parametrize(
    ("message", "action"),
    [({"id": 1}, None), ({}, "Heartbeat"), ({}, "Nope")],
)
def test_prepare_send_of_non_send_action_is_usage_error(message: Any, action: str | None) -> None:
    """Only SEND actions may be sent with prepare_send."""
    with pytest.raises(UsageError):
        endpoint(V21).prepare_send(message, action=action)


def test_prepare_send_of_invalid_message_is_invalid_payload() -> None:
    """A SEND that breaks its schema raises InvalidPayload."""
    with pytest.raises(InvalidPayload):
        endpoint(V21).prepare_send({"id": 1}, action="NotifyPeriodicEventStream")


def test_callresulterror_on_21_is_reported() -> None:
    """A 2.1 CALLRESULTERROR becomes IncomingResultError."""
    event = endpoint(V21).receive(frame(5, "r1", "FormatViolation", "bad result", {"k": 1}))
    assert event == IncomingResultError("r1", "FormatViolation", "bad result", {"k": 1})


# -- validation modes for incoming CALLs -------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_off_mode_lets_bad_payload_reach_the_handler(version: OcppVersion) -> None:
    """With validation off, an invalid CALL still decodes: missing fields None, extras dropped."""
    ep = endpoint(version, validation=ValidationPolicy(default="off"))
    if version is V16:
        payload: dict[str, Any] = {"chargePointVendor": "v" * 99, "x": 1}
    else:
        payload = {"reason": "Sneezed", "chargingStation": {"model": "m"}, "x": 1}
    event = incoming(ep, "m1", "BootNotification", payload)
    if version is V16:
        assert event.request.charge_point_vendor == "v" * 99
        assert event.request.charge_point_model is None
    else:
        assert event.request.reason == "Sneezed"
        assert event.request.charging_station.vendor_name is None


@pytest.mark.parametrize(
    ("version", "action", "payload"),
    [
        (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": 5}),
        (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": [1]}),
        (V16, "MeterValues", {"connectorId": 1, "meterValue": 5}),
        (V16, "MeterValues", {"connectorId": 1, "meterValue": ["x"]}),
        (V16, "MeterValues", {"connectorId": 1, "meterValue": [{"sampledValue": {"a": 1}}]}),
        (V21, "TransactionEvent", {"transactionInfo": "t"}),
    ],
)
def test_off_mode_undecodable_shape_is_format_violation(
    version: OcppVersion, action: str, payload: dict[str, Any], check_reply: CheckReply
) -> None:
    """With validation off, a payload that cannot be decoded is answered FormatViolation."""
    ep = endpoint(version, validation=ValidationPolicy(default=Validation.OFF))
    event = ep.receive(frame(2, "m1", action, payload))
    check_reply(event, "m1", ErrorCode.FORMAT_VIOLATION.spelled_for(version))
    incoming(ep, "m1", "Heartbeat", {})  # the id was not left in progress


def test_off_mode_for_callresult_accepts_invalid_response() -> None:
    """With validation off, an invalid CALLRESULT still becomes IncomingResult."""
    ep = endpoint(V201, validation=ValidationPolicy(per_action={"Reset": "off"}))
    call = outstanding(ep)
    event = ep.receive(frame(3, call.message_id, {"status": "Maybe", "x": 1}))
    assert isinstance(event, IncomingResult)
    assert event.response.status == "Maybe"


def test_log_mode_accepts_invalid_call_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """In log mode an invalid CALL is logged and handed over anyway."""
    ep = endpoint(V16, validation=ValidationPolicy(default="log"))
    payload = {"chargePointVendor": SECRET * 3, "chargePointModel": "m"}
    with caplog.at_level(logging.WARNING, logger="csms_kit.protocol"):
        event = incoming(ep, "m1", "BootNotification", payload)
    assert event.request.charge_point_vendor == SECRET * 3
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert "maxLength" in messages[0]
    assert SECRET not in messages[0]


def test_per_action_mode_applies_only_to_its_action(check_reply: CheckReply) -> None:
    """per_action relaxes the named action; others stay enforced."""
    ep = endpoint(V16, validation=ValidationPolicy(per_action={"Heartbeat": "off"}))
    incoming(ep, "m1", "Heartbeat", {"vendorThing": 1})
    event = ep.receive(frame(2, "m2", "BootNotification", {**BOOT[V16], "vendorThing": 1}))
    check_reply(event, "m2", "FormationViolation")


def test_quirk_lets_known_firmware_bug_through(check_reply: CheckReply) -> None:
    """A quirk relaxes one constraint for incoming CALLs; the rest is still enforced."""
    quirk = Quirk("MeterValues", "meterValue.sampledValue.unit", ("enum",))
    ep = endpoint(V16, validation=ValidationPolicy(quirks=(quirk,)))
    sample = {"value": "1", "unit": "kwh"}
    payload = {"connectorId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]}
    event = incoming(ep, "m1", "MeterValues", payload)
    assert event.request.meter_value[0].sampled_value[0].unit == "kwh"
    sample["phase"] = "L9"
    check_reply(
        ep.receive(frame(2, "m2", "MeterValues", payload)), "m2", "PropertyConstraintViolation"
    )


def test_quirk_with_list_of_keywords_is_refused_or_works() -> None:
    """A quirk whose drop is a list is refused when made, or works in an endpoint."""
    try:
        quirk = Quirk("Heartbeat", "", ["additionalProperties"])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    ep = endpoint(V16, validation=ValidationPolicy(quirks=(quirk,)))
    event = ep.receive(frame(2, "m1", "Heartbeat", {"vendorThing": 1}))
    assert isinstance(event, IncomingCall)


def test_misspelt_action_in_policy_fails_when_the_endpoint_is_made() -> None:
    """A per_action name no OCPP version has is a UsageError at construction."""
    with pytest.raises(UsageError):
        Endpoint(V16, validation=ValidationPolicy(per_action={"Heartbaet": "off"}))


@pytest.mark.parametrize(
    "quirk",
    [
        Quirk("Heartbaet", "", ("additionalProperties",)),
        Quirk("BootNotification", "chargePointVendr", ("maxLength",)),
        Quirk("BootNotification", "chargePointVendor", ("enum",)),
    ],
)
def test_bad_quirk_fails_when_the_endpoint_is_made(quirk: Quirk) -> None:
    """A quirk that fits no schema is a UsageError at construction, not at the first frame."""
    with pytest.raises(UsageError):
        Endpoint(V16, validation=ValidationPolicy(quirks=(quirk,)))


def test_quirk_for_another_versions_action_is_allowed() -> None:
    """A policy shared across versions may hold quirks for actions this version lacks."""
    quirk = Quirk("TransactionEvent", "meterValue.timestamp", ("format",))
    ep = endpoint(V16, validation=ValidationPolicy(quirks=(quirk,)))
    incoming(ep, "m1", "Heartbeat", {})


def test_result_for_with_another_actions_dataclass_is_usage_error() -> None:
    """The response dataclass of a different action is refused as a UsageError."""
    ep = endpoint(V16)
    call = incoming(ep, "m1", "Heartbeat", {})
    with pytest.raises(UsageError):
        ep.result_for(call, result16.Authorize(id_tag_info={"status": "Accepted"}))


def test_result_for_accepts_same_named_dataclass_of_another_version() -> None:
    """A same-named response dataclass of another version is encoded by field names."""
    ep = endpoint(V16)
    call = incoming(ep, "m1", "Heartbeat", {})
    text = ep.result_for(call, result201.Heartbeat(current_time=NOW))
    assert json.loads(text) == [3, "m1", {"currentTime": NOW}]


# -- values JSON cannot carry ------------------------------------------------------------

WHEN = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
NOT_JSON = [
    pytest.param(float("nan"), id="nan"),
    pytest.param({"when": WHEN}, id="datetime"),
]


@pytest.mark.parametrize("mode", list(Validation))
@pytest.mark.parametrize("data", NOT_JSON)
def test_result_for_with_value_json_cannot_carry_is_invalid_payload(
    mode: Validation, data: Any
) -> None:
    """A response that cannot be written as JSON raises InvalidPayload; the CALL stays open.

    2.x DataTransfer ``data`` is untyped, so the schema lets anything through.
    """
    ep = endpoint(V21, validation=ValidationPolicy(default=mode))
    call = incoming(ep, "m1", "DataTransfer", {"vendorId": "v"})
    with pytest.raises(InvalidPayload):
        ep.result_for(call, {"status": "Accepted", "data": data})
    assert isinstance(ep.receive(frame(2, "m1", "Heartbeat", {})), Reply)  # still in progress


@pytest.mark.parametrize("data", NOT_JSON)
def test_prepare_call_with_value_json_cannot_carry_is_invalid_payload(data: Any) -> None:
    """A request that cannot be written as JSON raises InvalidPayload, not a bare error."""
    with pytest.raises(InvalidPayload):
        endpoint(V201).prepare_call({"vendorId": "v", "data": data}, action="DataTransfer")


@pytest.mark.parametrize("version", ALL)
def test_result_for_never_sends_a_lone_surrogate(version: OcppVersion) -> None:
    """What the endpoint refuses to receive (a lone surrogate) it does not send either."""
    ep = endpoint(version)
    call = incoming(ep, "m1", "DataTransfer", {"vendorId": "v"})
    with pytest.raises(InvalidPayload):
        ep.result_for(call, {"status": "Accepted", "data": "bad\ud800"})


@pytest.mark.parametrize("version", ALL)
def test_error_for_with_details_json_cannot_carry_still_answers(version: OcppVersion) -> None:
    """error_for, the last-resort answer, returns a sound CALLERROR or refuses and keeps the CALL.

    It must never raise a bare TypeError after forgetting the CALL (no answer would go out).
    """
    ep = endpoint(version)
    call = incoming(ep, "m1", "Heartbeat", {})
    error = RpcError(ErrorCode.INTERNAL_ERROR, "handler failed", {"when": WHEN})
    try:
        text = ep.error_for(call, error)
    except UsageError:
        assert isinstance(ep.receive(frame(2, "m1", "Heartbeat", {})), Reply)  # still open
        return
    check_callerror_text(text, "m1", "InternalError")
