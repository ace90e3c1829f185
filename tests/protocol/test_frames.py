"""Frame parsing and writing, per OCPP-J version."""

from __future__ import annotations

import json

import pytest

from csms_kit.error_codes import ErrorCode
from csms_kit.protocol import frames
from csms_kit.protocol.events import (
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
)
from csms_kit.protocol.frames import BadFrame, MessageType
from csms_kit.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
ALL = list(OcppVersion)
ID37 = "x" * 37
ID36 = "y" * 36


def bad(text: str, version: OcppVersion) -> BadFrame:
    with pytest.raises(BadFrame) as info:
        frames.parse(text, version)
    return info.value


# -- well-formed frames ------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_parse_call(version: OcppVersion) -> None:
    """[2, id, action, {}] parses to a Call."""
    frame = frames.parse('[2, "m-1", "Heartbeat", {"a": [1]}]', version)
    assert frame == IncomingCall("m-1", "Heartbeat", {"a": [1]})


@pytest.mark.parametrize("version", ALL)
def test_parse_call_result(version: OcppVersion) -> None:
    """[3, id, {}] parses to a CallResult."""
    frame = frames.parse('[3, "m-1", {"currentTime": "x"}]', version)
    assert frame == IncomingResult("m-1", {"currentTime": "x"})


@pytest.mark.parametrize("version", ALL)
def test_parse_call_error(version: OcppVersion) -> None:
    """[4, id, code, description, {}] parses to a CallError with the raw code."""
    frame = frames.parse('[4, "m-1", "NoSuchCode", "it broke", {"k": 1}]', version)
    assert frame == IncomingError("m-1", "NoSuchCode", "it broke", {"k": 1})


def test_parse_call_result_error_on_21() -> None:
    """OCPP 2.1 parses [5, id, code, description, {}] to a CallResultError."""
    frame = frames.parse('[5, "m-1", "FormatViolation", "bad", {}]', V21)
    assert frame == IncomingResultError("m-1", "FormatViolation", "bad", {})


def test_parse_send_on_21() -> None:
    """OCPP 2.1 parses [6, id, action, {}] to a Send."""
    frame = frames.parse('[6, "m-1", "NotifyPeriodicEventStream", {}]', V21)
    assert frame == IncomingSend("m-1", "NotifyPeriodicEventStream", {})


@pytest.mark.parametrize("version", ALL)
def test_id_of_exactly_36_characters_is_accepted(version: OcppVersion) -> None:
    """A messageId of 36 characters is within the limit."""
    frame = frames.parse(json.dumps([2, ID36, "Heartbeat", {}]), version)
    assert isinstance(frame, IncomingCall)
    assert frame.message_id == ID36


@pytest.mark.parametrize("version", ALL)
def test_non_ascii_id_and_payload_are_accepted(version: OcppVersion) -> None:
    """Non-ASCII text, including astral characters, is fine in ids and payloads."""
    text = json.dumps([2, "é-\U0001f600", "DataTransfer", {"data": "Grüße"}], ensure_ascii=False)
    frame = frames.parse(text, version)
    assert frame == IncomingCall("é-\U0001f600", "DataTransfer", {"data": "Grüße"})


def test_message_type_enum_values() -> None:
    """MessageType numbers follow OCPP-J."""
    assert [int(t) for t in MessageType] == [2, 3, 4, 5, 6]


# -- bad frames --------------------------------------------------------------------------

# (text, code, message_id, message_type, answer) that hold for every version
EVERY_VERSION_BAD = [
    ("not json", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ('[2, "a", "Heartbeat", {}', ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ("NaN", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ('[2, "a", "Heartbeat", {"x": NaN}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ('[2, "a", "Heartbeat", {"x": 1e400}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ("[" * 100_000, ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    (
        '[2, "a", "Heartbeat", {"x": ' + "1" * 5000 + "}]",
        ErrorCode.RPC_FRAMEWORK_ERROR,
        None,
        None,
        True,
    ),
    ("{}", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ('{"0": 2}', ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ("[]", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ('"text"', ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ("2", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    ("null", ErrorCode.RPC_FRAMEWORK_ERROR, None, None, True),
    # message type of the wrong JSON type: may have been a CALL, so answered
    ('["2", "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    ('[2.0, "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    ('[2e0, "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    ('[true, "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    ('[null, "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    ('[[2], "a", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", None, True),
    # unreadable messageIds
    ('[2, 17, "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, 1.5, "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, null, "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, ["a"], "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, {"id": "a"}, "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    (f'[2, "{ID37}", "Heartbeat", {{}}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ("[2]", ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, "\\ud800", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ('[2, "ok\\udfff", "Heartbeat", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 2, True),
    ("[3, 17, {}]", ErrorCode.RPC_FRAMEWORK_ERROR, None, 3, False),
    (f'[3, "{ID37}", {{}}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 3, False),
    ('[4, null, "GenericError", "", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, None, 4, False),
    # wrong element counts
    ('[2, "a"]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[2, "a", "Heartbeat"]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[2, "a", "Heartbeat", {}, {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[3, "a"]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 3, False),
    ('[3, "a", {}, {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 3, False),
    ('[4, "a", "GenericError", "d"]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    ('[4, "a", "GenericError", "d", {}, 1]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    # non-string action, non-object payloads
    ('[2, "a", 5, {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[2, "a", null, {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[2, "a", ["Heartbeat"], {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 2, True),
    ('[2, "a", "Heartbeat", []]', ErrorCode.FORMAT_VIOLATION, "a", 2, True),
    ('[2, "a", "Heartbeat", null]', ErrorCode.FORMAT_VIOLATION, "a", 2, True),
    ('[2, "a", "Heartbeat", "{}"]', ErrorCode.FORMAT_VIOLATION, "a", 2, True),
    ('[3, "a", []]', ErrorCode.FORMAT_VIOLATION, "a", 3, False),
    ('[3, "a", null]', ErrorCode.FORMAT_VIOLATION, "a", 3, False),
    # bad CALLERROR fields
    ('[4, "a", 1, "d", {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    ('[4, "a", "GenericError", null, {}]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    ('[4, "a", "GenericError", "d", []]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    ('[4, "a", "GenericError", "d", null]', ErrorCode.RPC_FRAMEWORK_ERROR, "a", 4, False),
    # lone surrogates past the messageId
    ('[2, "a", "Heartbeat", {"x": "\\ud800"}]', ErrorCode.FORMAT_VIOLATION, "a", 2, True),
    ('[2, "a", "\\udbff", {}]', ErrorCode.FORMAT_VIOLATION, "a", 2, True),
    ('[3, "a", {"\\ud800": 1}]', ErrorCode.FORMAT_VIOLATION, "a", 3, False),
    ('[4, "a", "GenericError", "\\ud800", {}]', ErrorCode.FORMAT_VIOLATION, "a", 4, False),
]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    ("text", "code", "message_id", "message_type", "answer"),
    EVERY_VERSION_BAD,
    ids=[f"{i}:{case[0][:30]}" for i, case in enumerate(EVERY_VERSION_BAD)],
)
def test_bad_frame(
    version: OcppVersion,
    text: str,
    code: ErrorCode,
    message_id: str | None,
    message_type: int | None,
    answer: bool,
) -> None:
    """Each malformed frame raises BadFrame with its code, readable id and answer flag."""
    error = bad(text, version)
    assert error.code is code
    assert error.message_id == message_id
    assert error.message_type == message_type
    assert error.answer is answer
    assert isinstance(error, ValueError)
    assert error.reason == str(error)


@pytest.mark.parametrize("type_id", [0, 1, 7, 8, 99, -2, 10**30])
@pytest.mark.parametrize(("version", "answer"), [(V16, False), (V201, True), (V21, False)])
def test_unknown_message_type(version: OcppVersion, answer: bool, type_id: int) -> None:
    """Unknown MessageTypeId: 2.0.1 answers MessageTypeNotSupported; 1.6 and 2.1 ignore it."""
    error = bad(json.dumps([type_id, "m-7", "Heartbeat", {}]), version)
    assert error.code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
    assert error.message_id == "m-7"
    assert error.message_type == type_id
    assert error.answer is answer


@pytest.mark.parametrize(
    "text",
    ['[5, "m-5", "FormatViolation", "bad", {}]', '[6, "m-6", "NotifyPeriodicEventStream", {}]'],
)
@pytest.mark.parametrize(("version", "answer"), [(V16, False), (V201, True)])
def test_21_message_types_are_unknown_before_21(
    text: str, version: OcppVersion, answer: bool
) -> None:
    """CALLRESULTERROR and SEND are unknown message types on 1.6 and 2.0.1 connections."""
    error = bad(text, version)
    assert error.code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
    assert error.message_type in (5, 6)
    assert error.answer is answer


@pytest.mark.parametrize("version", ALL)
def test_unknown_type_with_unreadable_id(version: OcppVersion) -> None:
    """An unknown type with an unreadable id reports message_id None."""
    error = bad('[9, 12345, "x"]', version)
    assert error.code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
    assert error.message_id is None


@pytest.mark.parametrize(
    "text",
    [
        '[6, "a", "X", []]',
        '[6, "a", 1, {}]',
        '[6, 1, "X", {}]',
        '[6, "a", "X"]',
        '[5, "a", 1, "d", {}]',
        '[5, "a", "c", "d"]',
    ],
)
def test_bad_send_and_callresulterror_on_21_are_never_answered(text: str) -> None:
    """A malformed SEND or CALLRESULTERROR is not answered (it was not a CALL)."""
    error = bad(text, V21)
    assert error.answer is False
    assert error.message_type in (5, 6)


# -- writing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "v16", "v2x"),
    [
        (ErrorCode.FORMAT_VIOLATION, "FormationViolation", "FormatViolation"),
        (
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
        ),
        (ErrorCode.NOT_IMPLEMENTED, "NotImplemented", "NotImplemented"),
        (
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "TypeConstraintViolation",
            "TypeConstraintViolation",
        ),
    ],
)
@pytest.mark.parametrize("version", ALL)
def test_serialize_error_spells_code_per_version(
    version: OcppVersion, code: ErrorCode, v16: str, v2x: str
) -> None:
    """The errorCode is spelled as the connection's version spells it."""
    text = frames.serialize_error("m-1", code, "why", {"k": "v"}, version)
    assert json.loads(text) == [4, "m-1", v16 if version is V16 else v2x, "why", {"k": "v"}]


@pytest.mark.parametrize("length", [0, 1, 254, 255])
def test_serialize_error_keeps_short_descriptions(length: int) -> None:
    """A description of at most 255 characters is sent unchanged."""
    description = "d" * length
    text = frames.serialize_error("m", ErrorCode.GENERIC_ERROR, description, None, V201)
    assert json.loads(text)[3] == description


@pytest.mark.parametrize("length", [256, 300, 10_000])
@pytest.mark.parametrize("char", ["d", "é", "\U0001f600"])
def test_serialize_error_cuts_long_descriptions(length: int, char: str) -> None:
    """A longer description is cut to at most 255 characters."""
    description = char * length
    text = frames.serialize_error("m", ErrorCode.GENERIC_ERROR, description, None, V16)
    sent = json.loads(text)[3]
    assert len(sent) <= 255
    assert sent.startswith(char * 200)


@pytest.mark.parametrize("details", [None, {}])
def test_serialize_error_sends_empty_details_as_object(details: dict[str, str] | None) -> None:
    """errorDetails is {} when there are none, never null."""
    text = frames.serialize_error("m", ErrorCode.INTERNAL_ERROR, "", details, V201)
    assert text == '[4,"m","InternalError","",{}]'


def test_serialize_error_about_result_is_type_5() -> None:
    """about_result writes a 2.1 CALLRESULTERROR."""
    text = frames.serialize_error(
        "m", ErrorCode.FORMAT_VIOLATION, "bad", None, V21, about_result=True
    )
    assert json.loads(text) == [5, "m", "FormatViolation", "bad", {}]


@pytest.mark.parametrize("version", ALL)
def test_serialized_frames_parse_back(version: OcppVersion) -> None:
    """What the serializers write, parse reads back unchanged."""
    call = frames.serialize_call("c", "Heartbeat", {"a": 1})
    result = frames.serialize_result("r", {"b": [1, 2]})
    error = frames.serialize_error("e", ErrorCode.GENERIC_ERROR, "x", None, version)
    assert frames.parse(call, version) == IncomingCall("c", "Heartbeat", {"a": 1})
    assert frames.parse(result, version) == IncomingResult("r", {"b": [1, 2]})
    assert frames.parse(error, version) == IncomingError("e", "GenericError", "x", {})
    assert " " not in call + result + error


def test_serialize_send_is_type_6() -> None:
    """serialize_send writes [6, id, action, payload]."""
    text = frames.serialize_send("s", "NotifyPeriodicEventStream", {"id": 1})
    assert json.loads(text) == [6, "s", "NotifyPeriodicEventStream", {"id": 1}]
    assert frames.parse(text, V21) == IncomingSend("s", "NotifyPeriodicEventStream", {"id": 1})


def test_bad_frame_default_answer_follows_message_type() -> None:
    """Without an explicit flag, only frames that are or may be CALLs are answered."""
    assert BadFrame("r", ErrorCode.GENERIC_ERROR).answer is True
    assert BadFrame("r", ErrorCode.GENERIC_ERROR, "a", 2).answer is True
    for message_type in (3, 4, 5, 6):
        assert BadFrame("r", ErrorCode.GENERIC_ERROR, "a", message_type).answer is False
    assert BadFrame("r", ErrorCode.GENERIC_ERROR, "a", 3, answer=True).answer is True
