"""One station's connection: :class:`StationSession`.

A session reads frames from its :class:`~csms_kit.transport.Transport`, hands each to
the sans-I/O :class:`~csms_kit.protocol.Endpoint`, and acts on the events: CALLs go
to the handlers, answers to our own CALLs settle the caller's future at once. The
reader never waits for a handler, so a handler may ``await self.call(...)`` on its
own station.

Resource handling:
    :meth:`StationSession.run` owns every task the session starts. Incoming CALLs are
    handled one at a time, in arrival order: a sync handler runs on the reader itself
    when nothing is queued (it cannot await, so the reader waits on no handler);
    otherwise a worker task, which exists only while there is work, takes them in
    turn. ``@after`` hooks run in tasks of their own. When the connection
    ends, reading stops and every outgoing call waiting for an answer or for its turn
    fails at once with :class:`~csms_kit.exceptions.StationDisconnected` (the station
    went away) or :class:`~csms_kit.exceptions.SessionClosed` (we closed it). CALLs the
    station had already sent are still handled, and ``@after`` hooks still run, but
    their answers are dropped and any call they make to the station fails at once.
    Whatever still runs ``handler_grace`` seconds later is cancelled. ``run`` returns
    only when all of it has finished: no task outlives its session.

Error handling:
    An :class:`~csms_kit.exceptions.OcppError` raised by a handler becomes its
    CALLERROR. Any other exception becomes ``InternalError`` with a fixed, safe
    description, and its traceback is logged. A handler's response that breaks the
    schema is logged and answered with ``InternalError`` too. ``@after`` failures
    are logged.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import inspect
import logging
import time
import types
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ocpp.charge_point import camel_to_snake_case

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import (
    CallError,
    CallFailed,
    CallTimeout,
    ConnectionEnded,
    InvalidResponse,
    OcppError,
    SessionClosed,
    StationDisconnected,
    TransportClosed,
    UsageError,
)
from csms_kit.hooks import Handshake, Hooks, call_hook
from csms_kit.limits import Limits, TokenBucket
from csms_kit.protocol import (
    Dropped,
    Endpoint,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
    InvalidAnswer,
    OutgoingCall,
    Reply,
)
from csms_kit.protocol.validation import Validation, ValidationPolicy
from csms_kit.routing import Handler, Router, RouteTable, collect_routes
from csms_kit.transport import Transport
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from csms_kit.registry import ConnectionRegistry

__all__ = ["BootInfo", "SessionStats", "StationSession"]

logger = logging.getLogger("csms_kit.session")

#: Close code when the station sends a binary frame (RFC 6455: unsupported data).
CLOSE_UNSUPPORTED_DATA = 1003
#: Close code after too many malformed frames in a row (RFC 6455: protocol error).
CLOSE_PROTOCOL_ERROR = 1002
#: Close code for a station over its rate limit (RFC 6455: policy violation).
CLOSE_POLICY_VIOLATION = 1008
#: Close code when the CSMS side goes away (RFC 6455).
CLOSE_GOING_AWAY = 1001
#: Close code when the transport itself fails (RFC 6455: internal error).
CLOSE_INTERNAL_ERROR = 1011
_INTERNAL_ERROR_TEXT = "An internal error occurred while handling the request"
_NO_HOOKS = Hooks()


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a station said about itself in its BootNotification."""

    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    #: The whole BootNotification request, as its dataclass.
    request: Any = field(repr=False)

    @classmethod
    def from_request(cls, version: OcppVersion, request: Any) -> BootInfo:
        if version is OcppVersion.V16:
            serial = getattr(request, "charge_point_serial_number", None) or getattr(
                request, "charge_box_serial_number", None
            )
            return cls(
                getattr(request, "charge_point_vendor", None),
                getattr(request, "charge_point_model", None),
                serial,
                getattr(request, "firmware_version", None),
                request,
            )
        station = getattr(request, "charging_station", None)
        return cls(
            getattr(station, "vendor_name", None),
            getattr(station, "model", None),
            getattr(station, "serial_number", None),
            getattr(station, "firmware_version", None),
            request,
        )


@dataclass(slots=True)
class SessionStats:
    """Counters for one session."""

    #: Frames received / sent.
    received: int = 0
    sent: int = 0
    #: Frames answered with a CALLERROR or dropped because they broke OCPP-J.
    bad_frames: int = 0
    #: Answers that matched no outstanding CALL (late, unknown or unsolicited).
    unexpected_answers: int = 0
    #: Handlers and ``@after`` hooks that raised something other than OcppError.
    handler_errors: int = 0
    #: Frames over a rate limit.
    rate_limited: int = 0


class _PendingCall:
    """One outgoing CALL, from ``call()`` until it is settled."""

    __slots__ = ("call", "future", "sent", "timer")

    def __init__(self, call: OutgoingCall, future: asyncio.Future[Any]) -> None:
        self.call = call
        self.future = future
        self.sent = False
        self.timer: asyncio.TimerHandle | None = None


def _malformed(event: Any) -> bool:
    """Whether ``event`` reports a frame that broke OCPP-J (not merely one we refuse)."""
    kind = type(event)
    if kind is Reply:
        return bool(event.malformed)
    return (kind is Dropped and event.kind == "malformed") or kind is InvalidAnswer


def _triggered_action(request: Any) -> str:
    """The action a TriggerMessage request asks the station to send."""
    wanted = _text(_get(request, "requested_message", "requestedMessage"))
    # 2.x triggers certificate signing requests by purpose; they arrive as SignCertificate.
    return "SignCertificate" if wanted.startswith("Sign") else wanted


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def _get(value: Any, attribute: str, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key, value.get(attribute))
    return getattr(value, attribute, None)


class StationSession:
    """The CSMS side of one station's connection; subclass it to add handlers.

    Class attributes configure every session of a class: ``routers`` (see
    :class:`~csms_kit.routing.Router`), ``validation`` (a
    :class:`~csms_kit.protocol.ValidationPolicy`), ``call_timeout`` and
    ``handler_grace`` (seconds). Keyword arguments override them per session.

    Attributes for the application: ``station_id``, ``version``, ``remote_address``,
    ``connected_at``, :attr:`last_seen`, :attr:`boot_info`, :attr:`registration_status`,
    ``stats``, and ``state``, a dict that is the application's own.
    """

    routes: ClassVar[RouteTable]
    routers: ClassVar[Sequence[Router]] = ()
    validation: ClassVar[ValidationPolicy] = ValidationPolicy()
    call_timeout: ClassVar[float] = 30.0
    handler_grace: ClassVar[float] = 5.0
    boot_gate: ClassVar[bool] = True
    trigger_boot: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.routes = collect_routes(cls)

    def __init__(
        self,
        station_id: str,
        transport: Transport,
        version: OcppVersion | str,
        *,
        remote_address: Any = None,
        validation: ValidationPolicy | None = None,
        call_timeout: float | None = None,
        handler_grace: float | None = None,
        handshake: Handshake | None = None,
        registry: ConnectionRegistry | None = None,
        hooks: Hooks | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.station_id = station_id
        self.handshake = handshake
        self.registry = registry
        self.hooks = hooks or _NO_HOOKS
        self.transport = transport
        self.version = OcppVersion.parse(version)
        self.remote_address = (
            getattr(transport, "remote_address", None)
            if remote_address is None
            else remote_address
        )
        self.connected_at = datetime.datetime.now(datetime.timezone.utc)
        self.state: dict[str, Any] = {}
        self.stats = SessionStats()
        self.boot_info: BootInfo | None = None
        self.registration_status: str | None = None
        self._call_timeout = self.call_timeout if call_timeout is None else call_timeout
        self._handler_grace = self.handler_grace if handler_grace is None else handler_grace
        routes = type(self).routes
        policy = validation or self.validation
        if routes.unvalidated:
            policy = ValidationPolicy(
                policy.default,
                {**dict.fromkeys(routes.unvalidated, Validation.OFF), **policy.per_action},
                policy.quirks,
            )
        self.endpoint = Endpoint(
            self.version,
            handled=routes.on,
            validation=policy,
            station_id=station_id,
            admit=self._gate if self.boot_gate else None,
        )
        self._last_seen = time.time()
        self._ended: ConnectionEnded | None = None
        self._in_flight: _PendingCall | None = None
        # Lists, not deques: they hold a few items at most, and an empty deque costs
        # ten times an empty list in each of thousands of idle sessions.
        self._queue: list[_PendingCall] = []
        self._inbox: list[IncomingCall | IncomingSend] = []
        self._worker: asyncio.Task[None] | None = None
        self._hook_tasks: set[asyncio.Task[None]] | None = None  # created on first use
        self._warned_unexpected = False
        self._boot_triggered = False
        self._triggered: set[str] | None = None  # created on first use
        self._limits = self.limits if limits is None else limits
        self._frame_bucket = (
            TokenBucket(self._limits.frames) if self._limits.frames is not None else None
        )
        self._action_buckets: dict[str, TokenBucket] = {}
        self._limited = self._frame_bucket is not None or bool(self._limits.per_action)
        self._max_bad = self._limits.max_bad_frames
        self._bad_in_row = 0
        self._policed = self._limited or self._max_bad is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.station_id!r} OCPP {self.version}>"

    # -- state --------------------------------------------------------------------------

    @property
    def last_seen(self) -> datetime.datetime:
        """When the station last sent a frame (connection time before the first)."""
        return datetime.datetime.fromtimestamp(self._last_seen, datetime.timezone.utc)

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._ended is not None

    @property
    def close_code(self) -> int | None:
        """The close code that ended the connection (``None`` while it is open)."""
        return None if self._ended is None else self._ended.code

    @property
    def close_reason(self) -> str:
        """The close reason that ended the connection (``""`` while it is open)."""
        return "" if self._ended is None else self._ended.reason

    @property
    def booted(self) -> bool:
        """Whether a BootNotification has been answered Accepted."""
        return self.registration_status == "Accepted"

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and handle the station's messages until the connection ends.

        Returns once the connection has ended and every handler task has finished
        (see the module docstring for the rule). Cancelling ``run`` closes the
        session and cancels its handlers.
        """
        try:
            if self.registry is not None and self.registration_status is None:
                # A station reconnecting without rebooting sends no BootNotification.
                self.registration_status = await self.registry.registration_status(self.station_id)
            await self._read()
        except asyncio.CancelledError:
            self._end(SessionClosed(self.station_id, CLOSE_GOING_AWAY, "session cancelled"))
            await self._cancel_tasks()
            await self.transport.close(CLOSE_GOING_AWAY, "session cancelled")
            raise
        await self._drain()

    async def _read(self) -> None:
        # No bound methods in locals: they would stay alive, and tracked by the garbage
        # collector, for as long as the station stays connected.
        stats = self.stats
        handlers = type(self).routes.on
        while self._ended is None:
            # Idle stations are the common case: do not keep their last message alive.
            data = event = None
            try:
                data = await self.transport.recv()
            except TransportClosed as closed:
                self._lost(closed)
                return
            except Exception as exc:
                # A broken transport must not leave a half-alive session behind.
                logger.exception("station %r: transport failed; closing", self.station_id)
                await self.hooks.report_error(self, exc)
                await self.close(CLOSE_INTERNAL_ERROR, "transport failure")
                return
            self._last_seen = time.time()
            stats.received += 1
            if self.hooks.on_message is not None:
                await call_hook(self.hooks.on_message, self, "in", data)
            if type(data) is not str:
                stats.bad_frames += 1
                logger.warning("station %r sent a binary frame; closing", self.station_id)
                await self.close(CLOSE_UNSUPPORTED_DATA, "OCPP-J uses text frames only")
                return
            event = self.endpoint.receive(data)
            if self._policed and not await self._police(event):
                if self._ended is not None:
                    return
                continue
            if type(event) is IncomingCall and self._worker is None:
                handler = handlers[event.action]
                if handler.inline:
                    # The common case, without a detour through _dispatch.
                    await self._handle_call(event, handler)
                    continue
            await self._dispatch(event)

    async def _dispatch(self, event: Any) -> None:
        """Act on one event from the endpoint."""
        kind = type(event)
        if kind is IncomingCall or kind is IncomingSend:
            handler = type(self).routes.on[event.action]
            if self._worker is None and handler.inline:
                # Nothing queued and a sync handler: run it here, saving a task per
                # message. It cannot await, so the reader waits on no handler.
                if kind is IncomingCall:
                    await self._handle_call(event, handler)
                else:
                    await self._handle_send(event)
            else:
                self._accept(event)
        elif kind is IncomingResult or kind is IncomingError or kind is InvalidAnswer:
            await self._settle(event)
        elif kind is Reply:
            await self._send_reply_of(event)
        elif kind is Dropped:
            self._dropped(event)
        else:
            assert kind is IncomingResultError
            logger.warning(
                "station %r reports an error in our CALLRESULT %r: %s %s",
                self.station_id,
                event.message_id,
                event.code,
                event.description,
            )

    async def _police(self, event: Any) -> bool:
        """Apply the limits to one event; ``False`` if it must not be dispatched.

        A frame over its rate limit closes the connection (``on_exceed="close"``) or,
        if it is a CALL, is answered "rate limit exceeded"; a SEND is dropped and
        anything else is dispatched as usual. Too many malformed frames in a row close
        the connection with 1002.
        """
        kind = type(event)
        if self._limited and not self._within_limits(event):
            self.stats.rate_limited += 1
            if self._limits.on_exceed == "close":
                logger.warning("station %r exceeded its rate limit; closing", self.station_id)
                await self.close(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
                return False
            if kind is IncomingCall:
                error = OcppError(ErrorCode.GENERIC_ERROR, "rate limit exceeded")
                await self._send_quietly(self.endpoint.error_for(event, error))
                return False
            if kind is IncomingSend:
                return False  # never answered
        if self._max_bad is not None:
            if not _malformed(event):
                self._bad_in_row = 0
            else:
                self._bad_in_row += 1
                if self._bad_in_row >= self._max_bad:
                    logger.warning(
                        "station %r: %d malformed frames in a row; closing",
                        self.station_id,
                        self._bad_in_row,
                    )
                    await self._send_reply_of(event)
                    await self.close(CLOSE_PROTOCOL_ERROR, "too many malformed frames")
                    return False
        return True

    async def _send_reply_of(self, event: Any) -> None:
        """Send the CALLERROR a bad frame earned (nothing for other events)."""
        if type(event) is not Reply:
            return
        self.stats.bad_frames += 1
        logger.info(
            "station %r: answered a bad frame with %s: %s",
            self.station_id,
            event.code.spelled_for(self.version),
            event.reason,
        )
        await self._send_quietly(event.text)

    def _within_limits(self, event: Any) -> bool:
        """Take a token for the frame (and for its action); ``False`` if one is missing."""
        if self._frame_bucket is not None and not self._frame_bucket.take():
            return False
        per_action = self._limits.per_action
        if per_action and type(event) in (IncomingCall, IncomingSend):
            limit = per_action.get(event.action)
            if limit is not None:
                bucket = self._action_buckets.get(event.action)
                if bucket is None:
                    bucket = self._action_buckets[event.action] = TokenBucket(limit)
                return bucket.take()
        return True

    def _dropped(self, event: Dropped) -> None:
        if event.kind == "unexpected":
            self.stats.unexpected_answers += 1
            # A flood of these must not flood the log: warn once, then debug.
            if not self._warned_unexpected:
                self._warned_unexpected = True
                logger.warning(
                    "station %r: dropped an answer that matches no outstanding CALL "
                    "(late or unknown; further ones are logged at DEBUG)",
                    self.station_id,
                )
            else:
                logger.debug("station %r: %s", self.station_id, event.reason)
        else:
            self.stats.bad_frames += 1
            logger.info("station %r: dropped a frame: %s", self.station_id, event.reason)

    async def _drain(self) -> None:
        tasks = self._tasks()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._handler_grace)
            if pending:
                logger.warning(
                    "station %r: cancelling %d handler task(s) still running %g s "
                    "after the connection ended",
                    self.station_id,
                    len(pending),
                    self._handler_grace,
                )
                await self._cancel_tasks()

    def _tasks(self) -> list[asyncio.Task[None]]:
        tasks = list(self._hook_tasks or ())
        if self._worker is not None:
            tasks.append(self._worker)
        return tasks

    async def _cancel_tasks(self) -> None:
        tasks = self._tasks()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code``/``reason``.

        Outgoing calls fail with :class:`~csms_kit.exceptions.SessionClosed` at once.
        Handlers already running may finish (see the module docstring); ``run``
        returns when they have.
        """
        self._end(SessionClosed(self.station_id, code, reason))
        await self.transport.close(code, reason)

    async def shutdown(
        self, code: int = CLOSE_GOING_AWAY, reason: str = "", grace: float | None = None
    ) -> None:
        """Let the CALLs the station already sent be answered, then :meth:`close`.

        Waits at most ``grace`` seconds (default ``handler_grace``) for the handlers;
        the station's CALLs arriving meanwhile are handled too. This is how a server
        shuts down without losing a response.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._handler_grace if grace is None else grace)
        while self._worker is not None and self._ended is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait({self._worker}, timeout=remaining)
        await self.close(code, reason)

    def _lost(self, closed: TransportClosed) -> None:
        """The station went away (its close frame, or none, is in ``closed``)."""
        self._end(StationDisconnected(self.station_id, closed.code, closed.reason))

    def _end(self, reason: ConnectionEnded) -> None:
        """Mark the connection as ended, fail every outgoing call, leave the registry.

        Idempotent. The registry forgets the station now, not once the handlers
        still running have finished.
        """
        if self._ended is not None:
            return
        self._ended = reason
        if self.registry is not None:
            self._spawn(self.registry.unregister(self), "unregister")
        pending = list(self._queue)
        if self._in_flight is not None:
            pending.append(self._in_flight)
        self._in_flight = None
        self._queue.clear()
        for call in pending:
            self._fail(call, self._ended_error())

    def _ended_error(self) -> ConnectionEnded:
        """A fresh exception saying how the connection ended (one per waiter)."""
        assert self._ended is not None
        ended = self._ended
        return type(ended)(ended.station_id, ended.code, ended.reason)

    # -- the station's CALLs ------------------------------------------------------------

    def _accept(self, event: IncomingCall | IncomingSend) -> None:
        if type(event) is IncomingSend and len(self._inbox) >= self.endpoint.max_incoming:
            # CALLs are bounded by the endpoint; SENDs, never answered, are bounded here.
            self.stats.bad_frames += 1
            logger.warning(
                "station %r: SEND %s dropped: too many queued", self.station_id, event.action
            )
            return
        self._inbox.append(event)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"csms_kit handler {self.station_id}"
            )

    async def _work(self) -> None:
        try:
            while self._inbox:
                event = self._inbox.pop(0)
                if type(event) is IncomingCall:
                    await self._handle_call(event)
                else:
                    await self._handle_send(event)  # type: ignore[arg-type]
        finally:
            self._worker = None

    async def _invoke(
        self, handler: Handler, request: Any, payload: dict[str, Any], message_id: str
    ) -> Any:
        if handler.inline:
            return self._invoke_sync(handler, request)
        if handler.ocpp_style:
            result = handler.func(self, **self._ocpp_kwargs(handler, payload, message_id))
        else:
            result = handler.func(self, request)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _invoke_sync(self, handler: Handler, request: Any) -> Any:
        result = handler.func(self, request)
        # The type's __await__ first: isawaitable's ABC check is slow for dataclasses.
        if getattr(type(result), "__await__", None) is not None or (
            type(result) is types.GeneratorType and inspect.isawaitable(result)
        ):
            # A sync handler may run on the reader: it must not make it wait.
            close = getattr(result, "close", None)
            if close is not None:
                close()  # no "never awaited" warning for a coroutine we refuse
            raise UsageError(
                f"the sync handler {handler.func.__qualname__} returned an awaitable; "
                "make it an async def"
            )
        return result

    @staticmethod
    def _ocpp_kwargs(handler: Handler, payload: dict[str, Any], message_id: str) -> dict[str, Any]:
        """Arguments the way the ocpp package's ChargePoint passes them."""
        kwargs: dict[str, Any] = camel_to_snake_case(payload)
        if handler.takes_unique_id:
            kwargs["call_unique_id"] = message_id
        return kwargs

    def _gate(self, action: str) -> OcppError | None:
        """The SecurityError for a CALL the boot gate stops, or ``None`` to let it through."""
        if not self.boot_gate or action == "BootNotification" or self.booted:
            return None
        if self._triggered and action in self._triggered:
            # OCPP allows the messages the CSMS asked for with TriggerMessage.
            self._triggered.discard(action)
            return None
        if self.registration_status is None and self.trigger_boot and not self._boot_triggered:
            # Unknown to us (e.g. the CSMS restarted): ask the station to boot again.
            self._boot_triggered = True
            self._spawn(self._trigger_boot(), "trigger BootNotification")
        return OcppError(
            ErrorCode.SECURITY_ERROR,
            f"BootNotification not accepted (status: {self.registration_status or 'none yet'})",
        )

    async def _trigger_boot(self) -> None:
        try:
            await self.call({"requestedMessage": "BootNotification"}, action="TriggerMessage")
        except (CallFailed, UsageError) as exc:
            logger.info(
                "station %r: TriggerMessage(BootNotification) failed: %s", self.station_id, exc
            )

    async def _handle_call(self, call: IncomingCall, handler: Handler | None = None) -> None:
        if handler is None:
            handler = type(self).routes.on[call.action]
        response: Any = None
        try:
            if handler.inline:  # no coroutine to create and await
                response = self._invoke_sync(handler, call.request)
            else:
                response = await self._invoke(handler, call.request, call.payload, call.message_id)
            text = self.endpoint.result_for(call, response)
        except asyncio.CancelledError:
            self.endpoint.forget(call)
            raise
        except Exception as exc:  # every failure must become a CALLERROR
            error, unexpected = self._as_ocpp_error(exc, call.action)
            text = self.endpoint.error_for(call, error)
            response = None
            if unexpected:
                await self.hooks.report_error(self, exc)
        if call.action == "BootNotification" and response is not None:
            self.boot_info = BootInfo.from_request(self.version, call.request)
            self.registration_status = _text(_get(response, "status", "status"))
            if self.registry is not None:
                await self.registry.set_registration_status(
                    self.station_id, self.registration_status
                )
        if self._ended is None:
            try:
                await self._transmit(text)
            except TransportClosed as closed:
                self._lost(closed)
        else:
            logger.debug(
                "station %r: answer to %s %r dropped: connection ended",
                self.station_id,
                call.action,
                call.message_id,
            )
        if response is not None:
            self._run_after_hooks(call, call.request, response)

    async def _handle_send(self, event: IncomingSend) -> None:
        handler = type(self).routes.on[event.action]
        try:
            await self._invoke(handler, event.message, event.payload, event.message_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a SEND has no answer: log it
            self.stats.handler_errors += 1
            logger.exception(
                "station %r: handler for SEND %s failed", self.station_id, event.action
            )
            await self.hooks.report_error(self, exc)
            return
        self._run_after_hooks(event, event.message, None)

    def _as_ocpp_error(self, exc: Exception, action: str) -> tuple[OcppError, bool]:
        """The CALLERROR for ``exc``, and whether ``exc`` was a failure (not a chosen error)."""
        if isinstance(exc, OcppError):
            return exc, False
        code = getattr(exc, "code", None)
        if type(exc).__module__ == "ocpp.exceptions" and isinstance(code, str):
            # A handler written for the ocpp package raised its OCPPError.
            mapped = ErrorCode.from_wire(code)
            if mapped is not None:
                details = getattr(exc, "details", None)
                description = str(getattr(exc, "description", "") or "")
                return OcppError(
                    mapped, description, details if isinstance(details, dict) else None
                ), False
        self.stats.handler_errors += 1
        if isinstance(exc, UsageError):
            logger.error(
                "station %r: %s handler returned a bad response: %s", self.station_id, action, exc
            )
        else:
            logger.exception("station %r: %s handler failed", self.station_id, action)
        return OcppError(ErrorCode.INTERNAL_ERROR, _INTERNAL_ERROR_TEXT), True

    def _run_after_hooks(
        self, event: IncomingCall | IncomingSend, request: Any, response: Any
    ) -> None:
        for hook in type(self).routes.after.get(event.action, ()):
            self._spawn(self._run_after(hook, event, request, response), f"after {event.action}")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``coroutine`` in a task the session owns (see the lifecycle rule)."""
        task = asyncio.get_running_loop().create_task(
            coroutine, name=f"csms_kit {what} {self.station_id}"
        )
        if self._hook_tasks is None:
            self._hook_tasks = set()
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    async def _run_after(
        self, hook: Handler, event: IncomingCall | IncomingSend, request: Any, response: Any
    ) -> None:
        action = event.action
        try:
            if hook.ocpp_style:
                result = hook.func(
                    self, **self._ocpp_kwargs(hook, event.payload, event.message_id)
                )
            elif hook.takes_response:
                result = hook.func(self, request, response)
            else:
                result = hook.func(self, request)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an @after failure is logged, never lost
            self.stats.handler_errors += 1
            logger.exception("station %r: @after hook for %s failed", self.station_id, action)
            await self.hooks.report_error(self, exc)

    # -- calling the station ------------------------------------------------------------

    async def call(
        self, request: Any, *, action: str | None = None, timeout: float | None = None
    ) -> Any:
        """Send ``request`` to the station as a CALL and return its typed response.

        ``request`` is a dataclass from the ``ocpp`` package's ``call`` module for this
        session's version (its class name is the action), or a dict of the JSON
        payload with ``action`` given. CALLs go out one at a time, in the order
        ``call`` was invoked; ``timeout`` (default ``call_timeout``) covers the wait
        for the turn and for the answer.

        Raises :class:`~csms_kit.exceptions.CallError` if the station answers with a
        CALLERROR, :class:`~csms_kit.exceptions.InvalidResponse` if its answer breaks
        the schema, :class:`~csms_kit.exceptions.CallTimeout`,
        :class:`~csms_kit.exceptions.StationDisconnected` or
        :class:`~csms_kit.exceptions.SessionClosed`; and
        :class:`~csms_kit.exceptions.InvalidPayload` (nothing sent) if the request
        breaks the schema.
        """
        if self._ended is not None:
            raise self._ended_error()
        if self.boot_gate and self.registration_status == "Rejected":
            raise UsageError(
                f"station {self.station_id!r} was Rejected at boot: OCPP forbids the CSMS "
                "to send it messages until a later BootNotification is accepted"
            )
        outgoing = self.endpoint.prepare_call(request, action)
        if outgoing.action == "TriggerMessage":
            if self._triggered is None:
                self._triggered = set()
            self._triggered.add(_triggered_action(request))
        loop = asyncio.get_running_loop()
        timeout = self._call_timeout if timeout is None else timeout
        pending = _PendingCall(outgoing, loop.create_future())
        pending.timer = loop.call_later(timeout, self._expire, pending, timeout)
        try:
            if self._in_flight is not None or self._queue:
                self._queue.append(pending)
                await pending.future  # resolved with None when it is our turn
                pending.future = loop.create_future()
            else:
                self._in_flight = pending
            if self._ended is not None:
                raise self._ended_error()
            pending.sent = True
            self.endpoint.call_sent(outgoing)
            try:
                await self._transmit(outgoing.text)
            except TransportClosed as closed:
                # Our own call must not be failed by _end: nobody would read the error.
                self._in_flight = None
                self._lost(closed)
                raise self._ended_error() from None
            return await pending.future
        finally:
            pending.timer.cancel()
            if self._in_flight is pending:
                self._in_flight = None
                self.endpoint.abandon_call(outgoing.message_id)
                self._next_turn()
            elif not pending.sent and pending in self._queue:
                self._queue.remove(pending)

    def _next_turn(self) -> None:
        while self._queue:
            pending = self._queue.pop(0)
            if not pending.future.done():
                self._in_flight = pending
                pending.future.set_result(None)
                return

    def _fail(self, pending: _PendingCall, error: Exception) -> None:
        if not pending.future.done():
            pending.future.set_exception(error)

    def _expire(self, pending: _PendingCall, timeout: float) -> None:
        call = pending.call
        message_id = call.message_id if pending.sent else None
        self._fail(pending, CallTimeout(self.station_id, call.action, message_id, timeout))

    async def _settle(self, event: IncomingResult | IncomingError | InvalidAnswer) -> None:
        pending = self._in_flight
        if pending is None or pending.call.message_id != event.message_id:
            return  # the endpoint matched it, so the caller gave up in between
        if type(event) is IncomingResult:
            if not pending.future.done():
                pending.future.set_result(event.response)
        elif type(event) is IncomingError:
            self._fail(
                pending,
                CallError(
                    self.station_id,
                    event.action,
                    event.message_id,
                    event.code,
                    event.description,
                    event.details,
                ),
            )
        else:
            assert isinstance(event, InvalidAnswer)
            self.stats.bad_frames += 1
            self._fail(
                pending,
                InvalidResponse(
                    self.station_id, event.action, event.message_id, event.code, event.description
                ),
            )
            if event.reply is not None:
                await self._send_quietly(event.reply)

    async def send(self, message: Any, *, action: str | None = None) -> None:
        """Send an OCPP 2.1 SEND message (never answered); allowed while a CALL is out."""
        if self._ended is not None:
            raise self._ended_error()
        text = self.endpoint.prepare_send(message, action)
        try:
            await self._transmit(text)
        except TransportClosed as closed:
            self._lost(closed)
            raise self._ended_error() from None

    async def _send_quietly(self, text: str) -> None:
        """Send a frame the session owes the station; a closed connection is not an error."""
        try:
            await self._transmit(text)
        except TransportClosed as closed:
            self._lost(closed)

    async def _transmit(self, text: str) -> None:
        """Write one frame; every frame the session sends goes through here."""
        if self.hooks.on_message is not None:
            await call_hook(self.hooks.on_message, self, "out", text)
        await self.transport.send(text)
        self.stats.sent += 1


StationSession.routes = collect_routes(StationSession)
