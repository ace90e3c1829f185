"""OCPP-J frames: parsing text into frames and writing frames as text.

=================  ===============================================  =========
frame              shape                                            versions
=================  ===============================================  =========
CALL               ``[2, id, action, {payload}]``                   all
CALLRESULT         ``[3, id, {payload}]``                           all
CALLERROR          ``[4, id, code, description, {details}]``        all
CALLRESULTERROR    ``[5, id, code, description, {details}]``        2.1
SEND               ``[6, id, action, {payload}]`` (never answered)  2.1
=================  ===============================================  =========

:func:`parse` checks only the frame and returns it as an event of
:mod:`csms_kit.protocol.events`, its payload as received; what the payload must hold
is the business of :mod:`csms_kit.protocol.schemas`. A frame that breaks the rules raises
:class:`BadFrame`, which says how the spec wants it answered.
"""

from __future__ import annotations

import enum
from typing import Any

from csms_kit.error_codes import ErrorCode
from csms_kit.protocol import jsontext
from csms_kit.protocol.events import (
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
)
from csms_kit.versions import OcppVersion

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_MESSAGE_ID_LENGTH",
    "UNREADABLE_ID",
    "BadFrame",
    "Frame",
    "MessageType",
    "parse",
    "serialize_call",
    "serialize_error",
    "serialize_result",
    "serialize_send",
]

MAX_MESSAGE_ID_LENGTH = 36
MAX_DESCRIPTION_LENGTH = 255
#: The messageId to answer with when the offending frame's id cannot be read.
UNREADABLE_ID = "-1"


class MessageType(enum.IntEnum):
    """The MessageTypeId in a frame's first element."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5
    SEND = 6


_TYPES_BY_VERSION = {
    OcppVersion.V16: frozenset({2, 3, 4}),
    OcppVersion.V201: frozenset({2, 3, 4}),
    OcppVersion.V21: frozenset({2, 3, 4, 5, 6}),
}
_ARITY = {2: 4, 3: 3, 4: 5, 5: 5, 6: 4}


Frame = IncomingCall | IncomingSend | IncomingResult | IncomingError | IncomingResultError


class BadFrame(ValueError):
    """A frame that breaks OCPP-J; the attributes say how the spec wants it answered.

    ``message_id`` is ``None`` when the id could not be read (answer with
    :data:`UNREADABLE_ID`); ``message_type`` is ``None`` when the type could not be
    read. ``answer`` says whether a CALLERROR goes back: only for a frame that was,
    or may have been, a CALL, since answering answers could loop and a SEND is never
    answered; and not for unknown message types on 1.6 and 2.1, which the spec
    says to ignore.
    """

    def __init__(
        self,
        reason: str,
        code: ErrorCode,
        message_id: str | None = None,
        message_type: int | None = None,
        *,
        answer: bool | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.message_id = message_id
        self.message_type = message_type
        self.answer = message_type in (None, MessageType.CALL) if answer is None else answer


# Plain ints: comparing with an enum member costs an attribute lookup on the enum.
_CALL, _CALLRESULT, _CALLERROR, _SEND = 2, 3, 4, 6


def _readable_id(frame: list[Any], suspicious: bool) -> str | None:
    if len(frame) < 2:
        return None
    message_id = frame[1]
    if type(message_id) is not str or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        return None
    if suspicious and jsontext.has_lone_surrogate(message_id):
        return None
    return message_id


def parse(text: str, version: OcppVersion) -> Frame:
    """Parse one text frame received on a ``version`` connection.

    Raises :class:`BadFrame` for anything that is not a well-formed frame of a type
    ``version`` knows, including JSON that :mod:`~csms_kit.protocol.jsontext` refuses.
    """
    try:
        frame = jsontext.decode(text)
    except jsontext.InvalidJson as exc:
        raise BadFrame(str(exc), ErrorCode.RPC_FRAMEWORK_ERROR) from None
    if type(frame) is not list or not frame:
        raise BadFrame("frame is not a non-empty JSON array", ErrorCode.RPC_FRAMEWORK_ERROR)

    # Only text that is not ASCII or holds a \\uD escape can hold a lone surrogate.
    suspicious = jsontext.might_hold_surrogates(text)
    message_id = _readable_id(frame, suspicious)
    message_type = frame[0]
    if type(message_type) is not int:
        raise BadFrame(
            "MessageTypeId is not an integer", ErrorCode.RPC_FRAMEWORK_ERROR, message_id
        )
    if message_type not in _TYPES_BY_VERSION[version]:
        # OCPP 2.0.1 answers MessageTypeNotSupported; 1.6 and 2.1 (errata) ignore.
        raise BadFrame(
            f"MessageTypeId is not defined in OCPP {version}",
            ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
            message_id,
            message_type,
            answer=version is OcppVersion.V201,
        )
    if message_id is None:
        raise BadFrame(
            "messageId is not a string of at most 36 characters",
            ErrorCode.RPC_FRAMEWORK_ERROR,
            None,
            message_type,
        )
    if len(frame) != _ARITY[message_type]:
        raise BadFrame(
            f"{MessageType(message_type).name} must have {_ARITY[message_type]} elements",
            ErrorCode.RPC_FRAMEWORK_ERROR,
            message_id,
            message_type,
        )
    if suspicious and jsontext.has_lone_surrogate(frame):
        raise BadFrame(
            "a string holds a lone UTF-16 surrogate",
            ErrorCode.FORMAT_VIOLATION,
            message_id,
            message_type,
        )

    if message_type in (_CALL, _SEND):
        _, _, action, payload = frame
        if type(action) is not str:
            raise BadFrame(
                "action is not a string", ErrorCode.RPC_FRAMEWORK_ERROR, message_id, message_type
            )
        if type(payload) is not dict:
            raise BadFrame(
                "payload is not a JSON object",
                ErrorCode.FORMAT_VIOLATION,
                message_id,
                message_type,
            )
        if message_type == _CALL:
            return IncomingCall(message_id, action, payload)
        return IncomingSend(message_id, action, payload)

    if message_type == _CALLRESULT:
        payload = frame[2]
        if type(payload) is not dict:
            raise BadFrame(
                "payload is not a JSON object",
                ErrorCode.FORMAT_VIOLATION,
                message_id,
                message_type,
            )
        return IncomingResult(message_id, payload)

    _, _, code, description, details = frame
    if type(code) is not str or type(description) is not str or type(details) is not dict:
        raise BadFrame(
            "errorCode and errorDescription must be strings, errorDetails an object",
            ErrorCode.RPC_FRAMEWORK_ERROR,
            message_id,
            message_type,
        )
    if message_type == _CALLERROR:
        return IncomingError(message_id, code, description, details)
    return IncomingResultError(message_id, code, description, details)


def serialize_call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    """``[2, id, action, payload]`` as text."""
    return jsontext.dumps([2, message_id, action, payload])


def serialize_send(message_id: str, action: str, payload: dict[str, Any]) -> str:
    """``[6, id, action, payload]`` as text (OCPP 2.1)."""
    return jsontext.dumps([6, message_id, action, payload])


def serialize_result(message_id: str, payload: dict[str, Any]) -> str:
    """``[3, id, payload]`` as text."""
    return jsontext.dumps([3, message_id, payload])


def serialize_error(
    message_id: str,
    code: ErrorCode,
    description: str,
    details: dict[str, Any] | None,
    version: OcppVersion,
    *,
    about_result: bool = False,
) -> str:
    """A CALLERROR (or, with ``about_result``, a 2.1 CALLRESULTERROR) as text.

    The code is spelled for ``version``, the description cut to 255 characters, and
    missing details sent as ``{}``.
    """
    if len(description) > MAX_DESCRIPTION_LENGTH:
        description = description[: MAX_DESCRIPTION_LENGTH - 3] + "..."
    message_type = MessageType.CALLRESULTERROR if about_result else MessageType.CALLERROR
    return jsontext.dumps(
        [int(message_type), message_id, code.spelled_for(version), description, details or {}]
    )
