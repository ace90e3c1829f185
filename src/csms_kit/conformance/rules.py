"""What OCPP-J says a CSMS may send, per version: message types and error codes.

The checker's own copy of the spec's tables, independent of how csms_kit itself
answers: a conformance suite must not grade a CSMS against csms_kit's choices.
"""

from __future__ import annotations

from csms_kit.versions import OcppVersion

__all__ = [
    "ARITY",
    "ERROR_CODES",
    "MAX_DESCRIPTION",
    "MAX_MESSAGE_ID",
    "MESSAGE_TYPES",
    "NAMES",
    "spelled",
]

CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND = 2, 3, 4, 5, 6

#: MessageTypeIds each version defines (CALLRESULTERROR and SEND are new in 2.1).
MESSAGE_TYPES = {
    OcppVersion.V16: frozenset({CALL, CALLRESULT, CALLERROR}),
    OcppVersion.V201: frozenset({CALL, CALLRESULT, CALLERROR}),
    OcppVersion.V21: frozenset({CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND}),
}
#: Elements in a frame of each MessageTypeId.
ARITY = {CALL: 4, CALLRESULT: 3, CALLERROR: 5, CALLRESULTERROR: 5, SEND: 4}
NAMES = {
    CALL: "CALL",
    CALLRESULT: "CALLRESULT",
    CALLERROR: "CALLERROR",
    CALLRESULTERROR: "CALLRESULTERROR",
    SEND: "SEND",
}
MAX_MESSAGE_ID = 36
MAX_DESCRIPTION = 255

_COMMON = frozenset(
    {
        "GenericError",
        "InternalError",
        "NotImplemented",
        "NotSupported",
        "PropertyConstraintViolation",
        "ProtocolError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)
_V2 = _COMMON | {
    "FormatViolation",
    "MessageTypeNotSupported",
    "OccurrenceConstraintViolation",
    "RpcFrameworkError",
}
#: Valid errorCodes: OCPP-J 1.6 Table 7 (its spellings kept by the errata), Part 4's
#: table for 2.0.1 and 2.1.
ERROR_CODES = {
    OcppVersion.V16: _COMMON | {"FormationViolation", "OccurenceConstraintViolation"},
    OcppVersion.V201: _V2,
    OcppVersion.V21: _V2,
}

# The two codes whose spelling changed between 1.6 and 2.x, by their 2.x name.
_V16_SPELLING = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}
_V2_SPELLING = {old: new for new, old in _V16_SPELLING.items()}


def spelled(code: str, version: OcppVersion) -> str:
    """``code`` (in either spelling) as ``version`` spells it."""
    if version is OcppVersion.V16:
        return _V16_SPELLING.get(code, code)
    return _V2_SPELLING.get(code, code)
