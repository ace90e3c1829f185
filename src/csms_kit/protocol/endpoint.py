"""The OCPP-J rules for one connection, as a state machine without I/O.

An :class:`Endpoint` turns received text into events (:mod:`.events`) and
application objects into text; it never reads, writes, sleeps or spawns. It serves
either role: the CSMS side of a station's connection, or the station side. The
caller (an :class:`~csms_kit.connection.RpcConnection`, a test, a simulator) drives it:

* :meth:`Endpoint.receive` takes one text frame and returns one event. After an
  :class:`IncomingCall`, the caller must answer exactly once, with the text from
  :meth:`Endpoint.result_for` or :meth:`Endpoint.error_for`. After a :class:`Reply`,
  it must send ``Reply.text``. :class:`Dropped` needs nothing but, perhaps, a log line.
* :meth:`Endpoint.prepare_call` validates and serializes an outgoing CALL; after
  sending its text the caller must call :meth:`Endpoint.call_sent`, and
  :meth:`Endpoint.abandon_call` if it stops waiting (timeout, cancellation). The
  endpoint is the one owner of "which CALL is outstanding" (:attr:`outstanding`).
  The answer comes back from :meth:`receive` as :class:`IncomingResult`,
  :class:`IncomingError` or :class:`UnusableAnswer`, each holding that
  :class:`OutgoingCall` (and so the caller's ``waiter``) in ``call``.

Rules enforced here: frame shapes per version (:mod:`.frames`), at most one outgoing
CALL outstanding, duplicate messageIds of CALLs still in progress, NotImplemented for
unknown actions and NotSupported for actions without a handler, schema validation in
both directions as the :class:`~.validation.ValidationPolicy` says, and error codes
spelled per version.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Container
from typing import Any

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import InvalidPayload, RpcError, UsageError
from csms_kit.protocol import frames, jsontext
from csms_kit.protocol.events import (
    Dropped,
    Event,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingSend,
    OutgoingCall,
    Reply,
    UnusableAnswer,
)
from csms_kit.protocol.payloads import PayloadCodec, payload_codec
from csms_kit.protocol.schemas import (
    Message,
    SchemaViolation,
    call_actions,
    check_action_name,
    compile_validator,
    known_actions,
    send_actions,
)
from csms_kit.protocol.validation import Validation, ValidationPolicy
from csms_kit.versions import OcppVersion

__all__ = ["Endpoint"]

logger = logging.getLogger("csms_kit.protocol")


Check = Callable[[Any], None]
Plan = tuple[Check | None, PayloadCodec, Validation]


@functools.lru_cache(maxsize=128)
def _plan_table(version: OcppVersion, policy: ValidationPolicy) -> dict[tuple[str, Message], Plan]:
    """(action, message) -> (check or None, codec, mode), filled on first use.

    Shared by every endpoint with the same version and policy, so a session costs
    no memory for it. Creating it checks the policy, so that a misspelt action or a
    quirk that does not fit its schema fails when the session is built, not at the
    station's first message.
    """
    for action in policy.per_action:
        check_action_name(action, "ValidationPolicy.per_action")
    for quirk in policy.quirks:
        check_action_name(quirk.action, "Quirk")
        if quirk.action in known_actions(version):
            compile_validator(version, quirk.action, quirk.message, (quirk,))
    return {}


class Endpoint:
    """The protocol state of one OCPP-J connection, from either side.

    ``handled`` holds the actions the application has handlers for; a CALL for any
    other action the version knows is answered NotSupported. ``admit(action)``, if
    given, may refuse a CALL or SEND of a known action first, with the RpcError it
    returns (the CSMS's boot gate does). ``max_incoming`` bounds the CALLs that may be in
    progress at once (OCPP allows one; a few are tolerated).
    """

    def __init__(
        self,
        version: OcppVersion,
        *,
        handled: Container[str] = frozenset(),
        validation: ValidationPolicy | None = None,
        max_incoming: int = 16,
        station_id: str = "",
        admit: Callable[[str], RpcError | None] | None = None,
    ) -> None:
        self.version = version
        self.station_id = station_id
        self.admit = admit
        self.handled = handled
        self.validation = validation or ValidationPolicy()
        self.max_incoming = max_incoming
        self._call_actions = call_actions(version)
        self._send_actions = send_actions(version)
        self._in_progress: set[str] = set()
        self._outstanding: OutgoingCall | None = None
        self._id_prefix = secrets.token_hex(6) + "-"
        self._id_counter = 0
        self._plans = _plan_table(version, self.validation)

    # -- planning ----------------------------------------------------------------------

    def _plan(
        self, action: str, message: Message
    ) -> tuple[Check | None, PayloadCodec, Validation]:
        key = (action, message)
        plan = self._plans.get(key)
        if plan is None:
            codec = payload_codec(self.version, action, message)
            if codec is None:
                raise LookupError(f"OCPP {self.version} has no {action} {message}")
            mode = self.validation.mode_for(action)
            check = None
            if mode is not Validation.OFF:
                quirks = self.validation.quirks_for(action, message)
                check = compile_validator(self.version, action, message, quirks)
            plan = self._plans[key] = (check, codec, mode)
        return plan

    def _validate(
        self, check: Check | None, mode: Validation, payload: Any, action: str, message: str
    ) -> None:
        """Run ``check``; raise :class:`SchemaViolation` only in enforce mode."""
        if check is None:
            return
        try:
            check(payload)
        except SchemaViolation as violation:
            if mode is Validation.ENFORCE:
                raise
            logger.warning(
                "station %r: OCPP %s %s %s breaks the schema (validation=log): %s",
                self.station_id,
                self.version,
                action,
                message,
                violation.description,
            )

    # -- receiving ---------------------------------------------------------------------

    def receive(self, text: str) -> Event:
        """Process one text frame from the peer: :meth:`parse`, then :meth:`accept`."""
        event = self.parse(text)
        kind = type(event)
        if kind is Reply or kind is Dropped or kind is UnusableAnswer:
            return event
        return self.accept(event)  # type: ignore[arg-type]

    def parse(self, text: str) -> Event:
        """Read one text frame: a frame event with its payload as received, or, for a
        frame that breaks OCPP-J, the :class:`Reply`, :class:`Dropped` or
        :class:`UnusableAnswer` that is the end of it.

        A frame event must then go through :meth:`accept`. The two steps let a caller
        look at a frame (is it the answer we await?) before paying for its payload.
        """
        try:
            return frames.parse(text, self.version)
        except frames.BadFrame as bad:
            return self._bad_frame(bad)

    def accept(self, frame: frames.Frame) -> Event:
        """Take a frame from :meth:`parse` further: match an answer to our outstanding
        CALL, apply the action rules, and validate and decode the payload."""
        kind = type(frame)
        if kind is IncomingCall:
            return self._receive_call(frame)  # type: ignore[arg-type]
        if kind is IncomingResult:
            return self._receive_result(frame)  # type: ignore[arg-type]
        if kind is IncomingError:
            return self._receive_error(frame)  # type: ignore[arg-type]
        if kind is IncomingSend:
            return self._receive_send(frame)  # type: ignore[arg-type]
        return frame  # IncomingResultError: nothing to match or decode

    def answers_outstanding(self, frame: Event) -> bool:
        """Whether ``frame`` (from :meth:`parse`) is an answer to our outstanding CALL."""
        call = self._outstanding
        return (
            call is not None
            and (type(frame) is IncomingResult or type(frame) is IncomingError)
            and frame.message_id == call.message_id
        )

    def _reply(
        self, message_id: str | None, code: ErrorCode, reason: str, *, malformed: bool = True
    ) -> Reply:
        message_id = frames.UNREADABLE_ID if message_id is None else message_id
        text = frames.serialize_error(message_id, code, reason, None, self.version)
        return Reply(text, message_id, code, reason, malformed)

    def _bad_frame(self, bad: frames.BadFrame) -> Event:
        if bad.answer:
            return self._reply(bad.message_id, bad.code, bad.reason)
        if (
            self._outstanding is not None
            and bad.message_id == self._outstanding.message_id
            and bad.message_type in (frames.MessageType.CALLRESULT, frames.MessageType.CALLERROR)
        ):
            about_result = bad.message_type == frames.MessageType.CALLRESULT
            return self._unusable_answer(bad.code, bad.reason, about_result=about_result)
        return Dropped(bad.reason, bad.message_id, "malformed")

    def _receive_call(self, frame: IncomingCall) -> Event:
        message_id, action = frame.message_id, frame.action
        if message_id in self._in_progress:
            return self._reply(
                message_id,
                ErrorCode.RPC_FRAMEWORK_ERROR,
                "messageId is already used by a CALL still in progress",
            )
        if len(self._in_progress) >= self.max_incoming:
            return self._reply(
                message_id,
                ErrorCode.RPC_FRAMEWORK_ERROR,
                f"too many CALLs in progress (at most {self.max_incoming})",
                malformed=False,
            )
        if action not in self._call_actions:
            return self._reply(
                message_id,
                ErrorCode.NOT_IMPLEMENTED,
                f"action is not a CALL action in OCPP {self.version}",
                malformed=False,
            )
        if self.admit is not None and (refusal := self.admit(action)) is not None:
            return self._reply(message_id, refusal.code, refusal.description, malformed=False)
        if action not in self.handled:
            return self._reply(
                message_id,
                ErrorCode.NOT_SUPPORTED,
                "action is not supported here",
                malformed=False,
            )
        try:
            frame.request = self._decode(action, "request", frame.payload)
        except SchemaViolation as violation:
            return self._reply(message_id, violation.code, violation.description)
        self._in_progress.add(message_id)
        return frame

    def _decode(self, action: str, message: Message, payload: dict[str, Any]) -> Any:
        check, codec, mode = self._plan(action, message)
        self._validate(check, mode, payload, action, message)
        try:
            return codec.decode(payload)
        except (TypeError, ValueError, AttributeError, LookupError):
            # Only reachable with validation relaxed or off: the shape is wrong.
            raise SchemaViolation(
                ErrorCode.FORMAT_VIOLATION, "payload does not have the expected shape", ""
            ) from None

    def _receive_send(self, frame: IncomingSend) -> Event:
        action = frame.action
        if action not in self._send_actions:
            return Dropped(
                "SEND of an action that is not a SEND message", frame.message_id, "malformed"
            )
        if self.admit is not None and (refusal := self.admit(action)) is not None:
            return Dropped(f"SEND refused: {refusal.description}", frame.message_id)
        if action not in self.handled:
            return Dropped("SEND of an action without a handler", frame.message_id)
        try:
            frame.message = self._decode(action, "request", frame.payload)
        except SchemaViolation as violation:
            return Dropped(f"invalid SEND: {violation.description}", frame.message_id, "malformed")
        return frame

    def _receive_result(self, frame: IncomingResult) -> Event:
        call = self._outstanding
        if call is None or frame.message_id != call.message_id:
            return Dropped(
                "CALLRESULT matches no outstanding CALL", frame.message_id, "unexpected"
            )
        try:
            frame.response = self._decode(call.action, "response", frame.payload)
        except SchemaViolation as violation:
            return self._unusable_answer(violation.code, violation.description, about_result=True)
        self._outstanding = None
        frame.action = call.action
        frame.call = call
        return frame

    def _receive_error(self, frame: IncomingError) -> Event:
        call = self._outstanding
        if call is None or frame.message_id != call.message_id:
            return Dropped("CALLERROR matches no outstanding CALL", frame.message_id, "unexpected")
        self._outstanding = None
        frame.action = call.action
        frame.call = call
        return frame

    def _unusable_answer(
        self, code: ErrorCode, description: str, *, about_result: bool
    ) -> UnusableAnswer:
        call = self._outstanding
        assert call is not None
        self._outstanding = None
        reply = None
        # Only OCPP 2.1 can report a bad CALLRESULT; nothing reports a bad CALLERROR.
        if about_result and self.version is OcppVersion.V21:
            reply = frames.serialize_error(
                call.message_id, code, description, None, self.version, about_result=True
            )
        return UnusableAnswer(call.message_id, call.action, code, description, reply, call)

    # -- answering the station's CALLs ---------------------------------------------------

    def result_for(self, call: IncomingCall, response: Any) -> str:
        """The CALLRESULT text answering ``call`` with ``response``.

        ``response`` is the action's ``call_result`` dataclass, or a dict of the JSON
        payload. Raises :class:`~csms_kit.exceptions.InvalidPayload` if it breaks the
        schema (in enforce mode); the call then still needs :meth:`error_for`.
        """
        self._check_unanswered(call)
        message_id = call.message_id
        text = self._write(
            call.action,
            "response",
            response,
            lambda payload: frames.serialize_result(message_id, payload),
        )
        self._in_progress.discard(message_id)
        return text

    def error_for(self, call: IncomingCall, error: RpcError) -> str:
        """The CALLERROR text answering ``call`` with ``error``.

        Details that JSON cannot carry are replaced by ``{}``: the answer must go out.
        """
        self._check_unanswered(call)
        try:
            text = frames.serialize_error(
                call.message_id, error.code, error.description, error.details, self.version
            )
            if jsontext.might_hold_surrogates(text) and jsontext.has_lone_surrogate(
                jsontext.decode(text)
            ):
                raise ValueError("lone surrogate")
        except (TypeError, ValueError, RecursionError):
            logger.warning(
                "station %r: details of the CALLERROR for %s cannot be sent as JSON; "
                "sending {} instead",
                self.station_id,
                call.action,
            )
            text = frames.serialize_error(
                call.message_id, error.code, str(error.description), None, self.version
            )
        self._in_progress.discard(call.message_id)
        return text

    def _check_unanswered(self, call: IncomingCall) -> None:
        if call.message_id not in self._in_progress:
            raise UsageError(f"the {call.action} CALL {call.message_id!r} was already answered")

    def forget(self, call: IncomingCall) -> None:
        """Stop tracking ``call`` without answering it (the connection is gone)."""
        self._in_progress.discard(call.message_id)

    @property
    def calls_in_progress(self) -> int:
        """How many of the peer's CALLs await their answer (OCPP-J allows one)."""
        return len(self._in_progress)

    def _write(
        self, action: str, message: Message, value: Any, serialize: Callable[[Any], str]
    ) -> str:
        """Encode, validate and serialize ``value``; only sound JSON text comes out."""
        payload = self._encode(action, message, value)
        try:
            text = serialize(payload)
        except (TypeError, ValueError, RecursionError):
            # e.g. NaN, or an object in a field the schema leaves free (DataTransfer data)
            raise InvalidPayload(
                action, ErrorCode.FORMAT_VIOLATION, f"{message} holds a value JSON cannot carry"
            ) from None
        if jsontext.might_hold_surrogates(text) and jsontext.has_lone_surrogate(payload):
            raise InvalidPayload(
                action, ErrorCode.FORMAT_VIOLATION, f"{message} holds a lone UTF-16 surrogate"
            )
        return text

    def _encode(self, action: str, message: Message, value: Any) -> dict[str, Any]:
        check, codec, mode = self._plan(action, message)
        if not isinstance(value, dict) and not _is_message_class(type(value), codec.type):
            raise UsageError(
                f"{action} {message} must be {codec.type.__module__}.{codec.type.__qualname__} "
                f"or a dict, not {type(value).__module__}.{type(value).__qualname__}"
            )
        try:
            payload: dict[str, Any] = codec.encode(value)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidPayload(
                action, ErrorCode.FORMAT_VIOLATION, f"cannot encode {message}: {exc}"
            ) from exc
        try:
            self._validate(check, mode, payload, action, message)
        except SchemaViolation as violation:
            raise InvalidPayload(action, violation.code, violation.description) from None
        return payload

    # -- calling the station -----------------------------------------------------------

    def prepare_call(
        self, request: Any, action: str | None = None, message_id: str | None = None
    ) -> OutgoingCall:
        """Validate and serialize a CALL; ``action`` defaults to the request's class name.

        ``message_id`` is for resending a CALL of an earlier connection with its own
        messageId (OCPP 2.1 allows it); by default a new one is made.
        Raises :class:`~csms_kit.exceptions.UsageError` for an action this version
        does not define or a bad ``message_id``, and
        :class:`~csms_kit.exceptions.InvalidPayload` for a request that breaks the schema.
        """
        action = _action_of(request, action)
        if action not in self._call_actions:
            raise UsageError(f"{action} is not a CALL action in OCPP {self.version}")
        if message_id is None:
            new_id = f"{self._id_prefix}{self._id_counter + 1}"
        elif type(message_id) is str and 0 < len(message_id) <= frames.MAX_MESSAGE_ID_LENGTH:
            new_id = message_id
        else:
            raise UsageError(f"a messageId is a string of 1 to 36 characters, not {message_id!r}")
        text = self._write(
            action,
            "request",
            request,
            lambda payload: frames.serialize_call(new_id, action, payload),
        )
        if message_id is None:
            self._id_counter += 1
        return OutgoingCall(new_id, action, text)

    def call_payload(self, request: Any, action: str | None = None) -> tuple[str, dict[str, Any]]:
        """The action and validated JSON payload of a CALL, with no messageId spent.

        For relaying a call to the process that holds the connection, which sends it
        with :meth:`prepare_call`; raises as :meth:`prepare_call` does.
        """
        action = _action_of(request, action)
        if action not in self._call_actions:
            raise UsageError(f"{action} is not a CALL action in OCPP {self.version}")
        return action, self._encode(action, "request", request)

    def send_payload(self, message: Any, action: str | None = None) -> tuple[str, dict[str, Any]]:
        """The action and validated JSON payload of a 2.1 SEND (see :meth:`call_payload`)."""
        action = self._check_send(message, action)
        return action, self._encode(action, "request", message)

    def decode_response(self, action: str, payload: dict[str, Any]) -> Any:
        """The ``call_result`` dataclass of ``action`` from a JSON payload already checked."""
        _, codec, _ = self._plan(action, "response")
        return codec.decode(payload)

    def call_sent(self, call: OutgoingCall) -> None:
        """Record that ``call`` went out; its answer is now expected."""
        if self._outstanding is not None:
            raise UsageError(
                f"a CALL ({self._outstanding.action}) is still outstanding; "
                "OCPP-J allows one at a time"
            )
        self._outstanding = call

    def abandon_call(self, call: OutgoingCall) -> None:
        """Stop waiting for the answer to ``call``; a late answer will be dropped."""
        if self._outstanding is call:
            self._outstanding = None

    @property
    def outstanding(self) -> OutgoingCall | None:
        """The outgoing CALL whose answer is awaited, if any."""
        return self._outstanding

    def _check_send(self, message: Any, action: str | None) -> str:
        if self.version is not OcppVersion.V21:
            raise UsageError(f"SEND does not exist in OCPP {self.version}")
        action = _action_of(message, action)
        if action not in self._send_actions:
            raise UsageError(f"{action} is not a SEND message in OCPP {self.version}")
        return action

    def prepare_send(self, message: Any, action: str | None = None) -> str:
        """Validate and serialize an OCPP 2.1 SEND (never answered)."""
        action = self._check_send(message, action)
        message_id = f"{self._id_prefix}{self._id_counter + 1}"
        text = self._write(
            action,
            "request",
            message,
            lambda payload: frames.serialize_send(message_id, action, payload),
        )
        self._id_counter += 1
        return text


def _is_message_class(cls: type[Any], expected: type[Any]) -> bool:
    # Same-named dataclasses of another version are fine: fields are matched by name.
    return cls is expected or (
        cls.__name__ == expected.__name__ and hasattr(cls, "__dataclass_fields__")
    )


def _action_of(request: Any, action: str | None) -> str:
    if action is not None:
        return str(action)
    if isinstance(request, dict):
        raise UsageError("a request given as a dict needs its action: call(payload, action=...)")
    return type(request).__name__
