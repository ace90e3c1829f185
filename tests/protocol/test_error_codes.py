"""OCPP-J error codes and their spelling on the wire, per version."""

from __future__ import annotations

import pytest

from csms_kit.error_codes import ErrorCode
from csms_kit.versions import OcppVersion

# The errorCode values each version defines (OCPP-J 1.6 §4.2.3; OCPP 2.0.1/2.1 Part 4).
V16_CODES = {
    "NotImplemented",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}
V2X_CODES = {
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
}

SPELLINGS = {
    # code: (1.6, 2.0.1, 2.1)
    ErrorCode.FORMAT_VIOLATION: ("FormationViolation", "FormatViolation", "FormatViolation"),
    ErrorCode.GENERIC_ERROR: ("GenericError", "GenericError", "GenericError"),
    ErrorCode.INTERNAL_ERROR: ("InternalError", "InternalError", "InternalError"),
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: (
        "GenericError",
        "MessageTypeNotSupported",
        "MessageTypeNotSupported",
    ),
    ErrorCode.NOT_IMPLEMENTED: ("NotImplemented", "NotImplemented", "NotImplemented"),
    ErrorCode.NOT_SUPPORTED: ("NotSupported", "NotSupported", "NotSupported"),
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: (
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "OccurrenceConstraintViolation",
    ),
    ErrorCode.PROPERTY_CONSTRAINT_VIOLATION: (
        "PropertyConstraintViolation",
        "PropertyConstraintViolation",
        "PropertyConstraintViolation",
    ),
    ErrorCode.PROTOCOL_ERROR: ("ProtocolError", "ProtocolError", "ProtocolError"),
    ErrorCode.RPC_FRAMEWORK_ERROR: (
        "FormationViolation",
        "RpcFrameworkError",
        "RpcFrameworkError",
    ),
    ErrorCode.SECURITY_ERROR: ("SecurityError", "SecurityError", "SecurityError"),
    ErrorCode.TYPE_CONSTRAINT_VIOLATION: (
        "TypeConstraintViolation",
        "TypeConstraintViolation",
        "TypeConstraintViolation",
    ),
}


def test_table_covers_every_code() -> None:
    """The spelling table below names every ErrorCode member."""
    assert set(SPELLINGS) == set(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("index", [0, 1, 2], ids=["1.6", "2.0.1", "2.1"])
def test_spelled_for(code: ErrorCode, index: int) -> None:
    """Each code has the expected wire spelling in each version."""
    version = list(OcppVersion)[index]
    assert code.spelled_for(version) == SPELLINGS[code][index]


@pytest.mark.parametrize("code", list(ErrorCode))
def test_v16_spellings_are_v16_codes(code: ErrorCode) -> None:
    """On 1.6 only codes that OCPP-J 1.6 defines go on the wire."""
    assert code.spelled_for(OcppVersion.V16) in V16_CODES


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
@pytest.mark.parametrize("code", list(ErrorCode))
def test_v2x_spellings_are_v2x_codes(code: ErrorCode, version: OcppVersion) -> None:
    """On 2.x the spelling is the member's value, a code 2.x defines."""
    assert code.spelled_for(version) == code.value
    assert code.value in V2X_CODES


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("version", list(OcppVersion))
def test_from_wire_reads_back_every_spelling(code: ErrorCode, version: OcppVersion) -> None:
    """from_wire maps each version's spelling back to a code (1.6 spellings may be shared)."""
    spelled = code.spelled_for(version)
    back = ErrorCode.from_wire(spelled)
    assert back is not None
    assert back.spelled_for(version) == spelled
    if version is not OcppVersion.V16:
        assert back is code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("FormationViolation", ErrorCode.FORMAT_VIOLATION),
        ("FormatViolation", ErrorCode.FORMAT_VIOLATION),
        ("OccurenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("OccurrenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("RpcFrameworkError", ErrorCode.RPC_FRAMEWORK_ERROR),
        ("MessageTypeNotSupported", ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED),
        ("GenericError", ErrorCode.GENERIC_ERROR),
    ],
)
def test_from_wire_accepts_both_spellings(text: str, code: ErrorCode) -> None:
    """from_wire accepts the 1.6 and the 2.x spelling of a code."""
    assert ErrorCode.from_wire(text) is code


@pytest.mark.parametrize(
    "text",
    ["", "Nope", "formatviolation", "FORMAT_VIOLATION", "FormatViolation ", "NotImplemented!"],
)
def test_from_wire_returns_none_for_unknown(text: str) -> None:
    """A code no version defines gives None."""
    assert ErrorCode.from_wire(text) is None
