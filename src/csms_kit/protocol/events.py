"""The events of an OCPP-J connection: one set, for the parser and the endpoint alike.

:func:`~csms_kit.protocol.frames.parse` turns a text frame into one of the five
``Incoming*`` events, carrying the JSON payload as received;
:meth:`~csms_kit.protocol.Endpoint.receive` takes that same event further (its
``request``/``response``/``message`` decoded into the ``ocpp`` package's dataclass,
an answer matched to the outstanding CALL) or turns the frame into one of the
outcomes below it.

=======================  ====================================================  ========
event                    what the caller must do                               from
=======================  ====================================================  ========
:class:`IncomingCall`    answer once: ``result_for`` or ``error_for``          parse
:class:`IncomingSend`    handle it; never answer (OCPP 2.1)                    parse
:class:`IncomingResult`  hand ``response`` to whoever waits on ``call``        parse
:class:`IncomingError`   fail whoever waits on ``call``                        parse
:class:`IncomingResultError`  nothing (the peer reports a fault in our answer)  parse
:class:`UnusableAnswer`  fail whoever waits on ``call``; send ``reply`` if set  endpoint
:class:`Reply`           send ``text`` (a CALLERROR)                           endpoint
:class:`Dropped`         nothing, perhaps a log line                           endpoint
=======================  ====================================================  ========

:class:`OutgoingCall` is the one event going the other way: a CALL ready to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from csms_kit.error_codes import ErrorCode

__all__ = [
    "Dropped",
    "Event",
    "IncomingCall",
    "IncomingError",
    "IncomingResult",
    "IncomingResultError",
    "IncomingSend",
    "OutgoingCall",
    "Reply",
    "UnusableAnswer",
]


@dataclass(slots=True)
class OutgoingCall:
    """A CALL ready to go: send ``text``, then call :meth:`Endpoint.call_sent`.

    ``waiter`` is the caller's own: the endpoint keeps it with the outstanding CALL and
    hands it back with the answer (a session keeps the future of whoever awaits it).
    """

    message_id: str
    action: str
    text: str
    waiter: Any = None


@dataclass(slots=True)
class IncomingCall:
    """A CALL: ``request`` is its decoded payload once the endpoint accepted it."""

    message_id: str
    action: str
    payload: dict[str, Any]
    request: Any = None


@dataclass(slots=True)
class IncomingSend:
    """An OCPP 2.1 SEND: handle it, never answer it."""

    message_id: str
    action: str
    payload: dict[str, Any]
    message: Any = None


@dataclass(slots=True)
class IncomingResult:
    """A CALLRESULT; from the endpoint, the valid answer to ``call``, ours."""

    message_id: str
    payload: dict[str, Any]
    action: str = ""
    response: Any = None
    call: OutgoingCall | None = None


@dataclass(slots=True)
class IncomingError:
    """A CALLERROR; from the endpoint, the peer's answer to ``call``, ours.

    ``code`` is the raw ``errorCode`` string as received.
    """

    message_id: str
    code: str
    description: str
    details: dict[str, Any]
    action: str = ""
    call: OutgoingCall | None = None


@dataclass(slots=True)
class IncomingResultError:
    """OCPP 2.1 CALLRESULTERROR: the peer reports a fault in a CALLRESULT we sent."""

    message_id: str
    code: str
    description: str
    details: dict[str, Any]


@dataclass(slots=True)
class UnusableAnswer:
    """The peer answered ``call``, ours, with something that breaks the rules.

    ``reply``, when set, must be sent (an OCPP 2.1 CALLRESULTERROR).
    """

    message_id: str
    action: str
    code: ErrorCode
    description: str
    reply: str | None
    call: OutgoingCall | None = None


@dataclass(slots=True)
class Reply:
    """The CALL cannot be handled; send ``text`` (a CALLERROR) back.

    ``malformed`` is true when the frame broke OCPP-J (bad frame, payload against the
    schema, a reused messageId), false when it was well-formed but refused (unknown
    or unsupported action, an admission refusal, too many CALLs in progress).
    """

    text: str
    message_id: str
    code: ErrorCode
    reason: str
    malformed: bool = True


@dataclass(slots=True)
class Dropped:
    """Nothing to answer: an unexpected answer, an ignored message type, a bad SEND.

    ``kind`` is ``"malformed"`` (the frame broke OCPP-J), ``"unexpected"`` (an
    answer matching no outstanding CALL: late or unsolicited) or ``"refused"``.
    """

    reason: str
    message_id: str | None
    kind: Literal["malformed", "unexpected", "refused"] = "refused"


Event = (
    IncomingCall
    | IncomingSend
    | IncomingResult
    | IncomingError
    | UnusableAnswer
    | IncomingResultError
    | Reply
    | Dropped
)
