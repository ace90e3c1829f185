"""OCPP-J RPC error codes and their per-version spellings.

One :class:`ErrorCode` per meaning; :meth:`ErrorCode.spelled_for` gives the wire
spelling. OCPP-J 1.6 keeps the spec's original spellings ``FormationViolation`` and
``OccurenceConstraintViolation`` (1.6 errata §5: "will not be fixed") and has no
``RpcFrameworkError`` or ``MessageTypeNotSupported``.
"""

from __future__ import annotations

import enum

from csms_kit.versions import OcppVersion


class ErrorCode(str, enum.Enum):
    """An OCPP-J ``errorCode``, valued by its OCPP 2.x spelling.

    It is a ``str``: it compares equal to, and prints as, that spelling
    (``ErrorCode.NOT_IMPLEMENTED == "NotImplemented"``). Compare a code received
    from a 1.6 station with :meth:`from_wire`, which knows the 1.6 spellings too.
    """

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def spelled_for(self, version: OcppVersion) -> str:
        """The ``errorCode`` string to put on the wire for ``version``."""
        if version is OcppVersion.V16:
            return _V16_SPELLING.get(self, self.value)
        return self.value

    @classmethod
    def from_wire(cls, text: str) -> ErrorCode | None:
        """The code a received ``errorCode`` names, in any version's spelling, or ``None``."""
        return _FROM_WIRE.get(text)


_V16_SPELLING = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    # 1.6 has no frame-level code; its FormationViolation covers "not conform the PDU".
    ErrorCode.RPC_FRAMEWORK_ERROR: "FormationViolation",
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "GenericError",
}

_FROM_WIRE = {code.value: code for code in ErrorCode}
_FROM_WIRE["FormationViolation"] = ErrorCode.FORMAT_VIOLATION
_FROM_WIRE["OccurenceConstraintViolation"] = ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
