"""The machinery of one OCPP-J connection, in either role: :class:`RpcConnection`.

The OCPP-J rules are symmetric, so the CSMS side of a station's connection
(:class:`~csms_kit.session.StationSession`) and the station side
(:class:`~csms_kit.client.StationClient`) run on the same machinery: a reader that
hands each frame to the sans-I/O :class:`~csms_kit.protocol.Endpoint`, handlers for
the peer's CALLs, and ``call``/``send`` for ours. Users subclass a role
(:class:`~csms_kit.role.Role`), which builds its connection and delegates to it;
what one role adds (the CSMS's boot gate) is that role's :class:`RolePolicy`.

The path of one frame is a straight line in :meth:`RpcConnection._read`: receive,
parse, pace (limits), accept (validate and decode), then exactly one of: answer the
CALL (a sync handler on the reader when nothing is queued, else the handler task),
settle our outstanding call, send the refusal the endpoint wrote, or drop it.

Resource handling:
    :meth:`RpcConnection.run` owns every task the connection starts. The peer's
    CALLs are handled one at a time, in arrival order: a sync handler runs on the
    reader itself when nothing is queued (it cannot await, so the reader waits on no
    handler); otherwise a worker task, which exists only while there is work, takes
    them in turn. ``@after`` hooks run in tasks of their own. When the connection
    ends, reading stops and every outgoing call waiting for an answer or for its turn
    fails at once with the role's :class:`~csms_kit.exceptions.PeerDisconnected`
    (the peer went away) or :class:`~csms_kit.exceptions.SessionClosed` (this side
    closed it), and the supervisor (whoever runs the connection: a server, a test)
    hears of it the same moment. CALLs the peer had already sent are still handled,
    and ``@after`` hooks still run, but their answers are dropped and any call they
    make fails at once. Whatever still runs ``handler_grace`` seconds later is
    cancelled. ``run`` returns only when all of it has finished.

Error handling:
    An :class:`~csms_kit.exceptions.RpcError` raised by a handler becomes its
    CALLERROR. Any other exception becomes ``InternalError`` with a fixed, safe
    description, and its traceback is logged and reported to ``on_error`` and the
    instruments. A handler's response that breaks the schema is logged and answered
    with ``InternalError`` too. ``@after`` failures are logged and reported.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import (
    CallError,
    CallTimeout,
    ConnectionEnded,
    InvalidResponse,
    RpcError,
    SessionClosed,
    TransportClosed,
    UsageError,
)
from csms_kit.handlers import as_rpc_error, invoke, invoke_after, invoke_sync
from csms_kit.hooks import Hooks, call_hook
from csms_kit.instruments import NO_INSTRUMENTS, Instruments, Outcome
from csms_kit.limits import CLOSE, CLOSE_MALFORMED, REFUSE, SLOW, Limits, Police
from csms_kit.logs import station_fields
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
from csms_kit.protocol.validation import Validation, ValidationPolicy
from csms_kit.routing import Handler
from csms_kit.transport import Transport

if TYPE_CHECKING:
    from csms_kit.role import Role

__all__ = ["RolePolicy", "RpcConnection", "SessionStats", "Supervisor"]

logger = logging.getLogger("csms_kit.session")

#: Close code when the peer sends a binary frame (RFC 6455: unsupported data).
CLOSE_UNSUPPORTED_DATA = 1003
#: Close code after too many malformed frames in a row (RFC 6455: protocol error).
CLOSE_PROTOCOL_ERROR = 1002
#: Close code for a peer breaking the rules over its rate limit (policy violation).
CLOSE_POLICY_VIOLATION = 1008
#: Close code when this side goes away (RFC 6455).
CLOSE_GOING_AWAY = 1001
#: Close code when the transport itself fails (RFC 6455: internal error).
CLOSE_INTERNAL_ERROR = 1011
_NO_HOOKS = Hooks()
_RATE_LIMITED = RpcError(ErrorCode.GENERIC_ERROR, "rate limit exceeded")
#: The ``kind`` of a received event, for instruments.
_KIND = {
    IncomingCall: "call",
    IncomingResult: "result",
    IncomingError: "error",
    IncomingResultError: "resulterror",
    IncomingSend: "send",
    UnusableAnswer: "invalid",
    Reply: "invalid",
    Dropped: "invalid",
}


class Supervisor(Protocol):
    """Whoever runs a connection and must know when it ends (a server, a harness).

    ``connection_ended`` is called once, synchronously, the moment the connection
    ends (before its handlers have finished): a server unregisters the station then.
    """

    def connection_ended(self, connection: Role) -> None: ...


@dataclass(slots=True)
class SessionStats:
    """Counters for one connection."""

    #: Frames received / sent.
    received: int = 0
    sent: int = 0
    #: Frames answered with a CALLERROR or dropped because they broke OCPP-J.
    bad_frames: int = 0
    #: Answers that matched no outstanding CALL (late, unknown or unsolicited).
    unexpected_answers: int = 0
    #: Handlers and ``@after`` hooks that raised something other than RpcError.
    handler_errors: int = 0
    #: Frames refused (or the connection closed) for going over a rate limit.
    rate_limited: int = 0
    #: Frames read later to keep a station within its rate limit.
    throttled: int = 0


class _PendingCall:
    """One outgoing CALL's waiter, from ``call()`` until it is settled."""

    __slots__ = ("call", "future", "sent", "timer")

    def __init__(self, call: OutgoingCall, future: asyncio.Future[Any]) -> None:
        self.call = call
        self.future = future
        self.sent = False
        self.timer: asyncio.TimerHandle | None = None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RolePolicy(Protocol):
    """What a role adds to the connection it runs on (the CSMS's boot policy, say)."""

    #: Actions whose CALLs the policy observes.
    observed: frozenset[str]

    def observe_request(self, call: IncomingCall) -> None:
        """A CALL of an ``observed`` action is about to reach its handler."""

    async def observe_answer(self, call: IncomingCall, response: Any) -> None:
        """That CALL was answered (``response`` ``None``: with an error)."""

    def check_call(self, request: Any, action: str | None) -> None:
        """Raise if this side may not call the peer now."""

    def call_prepared(self, outgoing: OutgoingCall, request: Any) -> None:
        """A CALL was written and is about to queue."""


class RpcConnection:
    """The machinery of one OCPP-J connection, in either role.

    A role (:class:`Role`: :class:`~csms_kit.session.StationSession`,
    :class:`~csms_kit.client.StationClient`) builds one and delegates to it; users
    subclass the role, never this. ``owner`` is the role object: handlers, hooks and
    the supervisor receive it.
    """

    __slots__ = (
        "_call_timeout",
        "_ended",
        "_handler_grace",
        "_inbox",
        "_instruments",
        "_last_seen",
        "_loop",
        "_nap",
        "_police",
        "_queue",
        "_tasks",
        "_warned_noise",
        "_worker",
        "endpoint",
        "hooks",
        "owner",
        "peer_disconnected",
        "policy",
        "routes",
        "station_id",
        "stats",
        "supervisor",
        "transport",
        "version",
    )

    def __init__(
        self,
        owner: Role,
        transport: Transport,
        *,
        validation: ValidationPolicy,
        call_timeout: float,
        handler_grace: float,
        hooks: Hooks | None,
        limits: Limits,
        instruments: Instruments | None,
        supervisor: Supervisor | None,
    ) -> None:
        self.owner = owner
        self.station_id = owner.station_id
        self.version = owner.version
        self.transport = transport
        self.hooks = hooks or _NO_HOOKS
        self.stats = SessionStats()
        self.routes = routes = type(owner).routes
        self.peer_disconnected = type(owner).peer_disconnected
        self.policy: RolePolicy | None = None
        self._call_timeout = call_timeout
        self._handler_grace = handler_grace
        self._instruments = instruments or NO_INSTRUMENTS
        self.supervisor = supervisor
        if routes.unvalidated:
            validation = ValidationPolicy(
                validation.default,
                {**dict.fromkeys(routes.unvalidated, Validation.OFF), **validation.per_action},
                validation.quirks,
            )
        self.endpoint = Endpoint(
            self.version, handled=routes.on, validation=validation, station_id=self.station_id
        )
        self._police = Police.for_limits(limits)
        self._last_seen = time.time()
        self._ended: ConnectionEnded | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Lists, not deques: they hold a few items at most, and an empty deque costs
        # ten times an empty list in each of thousands of idle sessions.
        #: Our CALLs in turn order; the head holds the turn (sending or awaiting).
        self._queue: list[_PendingCall] | None = None  # created on first call
        #: The peer's CALLs and SENDs waiting for the worker.
        self._inbox: list[IncomingCall | IncomingSend] = []
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] | None = None  # created on first use
        self._warned_noise = False
        self._nap: asyncio.Future[None] | None = None  # the reader's wait while throttled

    def __repr__(self) -> str:
        return f"<RpcConnection {self.station_id!r} OCPP {self.version}>"

    # -- state --------------------------------------------------------------------------

    @property
    def last_seen(self) -> datetime.datetime:
        """When the peer last sent a frame (connection time before the first)."""
        return datetime.datetime.fromtimestamp(self._last_seen, datetime.timezone.utc)

    @property
    def ended(self) -> bool:
        """Whether the connection has ended, whichever side ended it."""
        return self._ended is not None

    @property
    def close_code(self) -> int | None:
        """The close code that ended the connection (``None`` while it is open)."""
        return None if self._ended is None else self._ended.code

    @property
    def close_reason(self) -> str:
        """The close reason that ended the connection (``""`` while it is open)."""
        return "" if self._ended is None else self._ended.reason

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """See :meth:`Role.run`."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._read()
        except asyncio.CancelledError:
            self._end(SessionClosed(self.station_id, CLOSE_GOING_AWAY, "session cancelled"))
            await self._cancel_tasks()
            await self.transport.close(CLOSE_GOING_AWAY, "session cancelled")
            raise
        await self._drain()

    async def _read(self) -> None:
        # No bound methods in locals: they would stay alive, and tracked by the garbage
        # collector, for as long as the peer stays connected.
        stats = self.stats
        handlers = self.routes.on
        police = self._police
        instruments = self._instruments
        endpoint = self.endpoint
        while self._ended is None:
            # Idle stations are the common case: do not keep their last message alive.
            data = event = frame = None
            try:
                data = await self.transport.recv()
            except TransportClosed as closed:
                self._lost(closed)
                return
            except Exception as exc:
                # A broken transport must not leave a half-alive connection behind.
                logger.exception(
                    "station %r: transport failed; closing",
                    self.station_id,
                    extra=station_fields(self.station_id),
                )
                await self.hooks.report_error(self.owner, exc)
                await self.close(CLOSE_INTERNAL_ERROR, "transport failure")
                return
            if self._ended is not None:
                return  # it came during the closing handshake: reading has stopped
            self._last_seen = time.time()
            stats.received += 1
            if self.hooks.on_message is not None:
                await call_hook(self.hooks.on_message, self.owner, "in", data)
            if type(data) is not str:
                stats.bad_frames += 1
                logger.warning(
                    "station %r sent a binary frame; closing",
                    self.station_id,
                    extra=station_fields(self.station_id),
                )
                await self.close(CLOSE_UNSUPPORTED_DATA, "OCPP-J uses text frames only")
                return
            event = endpoint.parse(data)
            over = False
            if police is not None and not endpoint.answers_outstanding(event):
                # Before the payload is validated and decoded: a station over its rate
                # costs no more than this. The answer we await always gets through.
                wait = police.pace()
                if wait:
                    over = not await self._slow_down(wait, event)
                    if self._ended is not None:
                        return
            frame = event
            kind = type(frame)
            if kind is not Reply and kind is not Dropped and kind is not UnusableAnswer:
                event = endpoint.accept(frame)  # type: ignore[arg-type]
            if instruments.frame_received is not None:
                # The frame's own kind: a CALL refused by the endpoint is still a CALL.
                action = getattr(event, "action", None) or getattr(frame, "action", None)
                instruments.frame_received(self.station_id, _KIND[kind], action, len(data))
            frame = None
            if police is not None:
                verdict = police.judge(event, over, endpoint.calls_in_progress)
                if verdict and not await self._enforce(verdict, event):
                    continue
            kind = type(event)
            if kind is IncomingCall:
                handler = handlers[event.action]  # type: ignore[union-attr]
                if self._worker is None and handler.inline:
                    # Nothing queued and a sync handler: answer here, saving a task
                    # per message. It cannot await, so the reader waits on no handler.
                    await self._answer(event, handler)  # type: ignore[arg-type]
                else:
                    self._enqueue(event)  # type: ignore[arg-type]
            elif kind is IncomingResult or kind is IncomingError or kind is UnusableAnswer:
                await self._settle(event)  # type: ignore[arg-type]
            elif kind is Reply:
                await self._refuse(event)  # type: ignore[arg-type]
            elif kind is Dropped:
                self._dropped(event)  # type: ignore[arg-type]
            elif kind is IncomingSend:
                self._enqueue(event)  # type: ignore[arg-type]
            else:
                assert isinstance(event, IncomingResultError)
                self._log_noise(
                    "station %r reports an error in our CALLRESULT %r: %r %r",
                    event.message_id,
                    event.code,
                    event.description,
                    message_id=event.message_id,
                )

    # -- limits -------------------------------------------------------------------------

    async def _slow_down(self, wait: float, frame: Any) -> bool:
        """Handle ``frame`` ``wait`` seconds later; ``False`` if it breaks the rules.

        A peer that keeps to OCPP-J (no CALL of its own in progress when it sends
        one) is slowed, never refused, however fast it goes: the reader waits, so
        TCP slows it down. A CALL (or SEND) while its earlier CALL is in progress
        is pipelining: the police judge it.
        """
        police = self._police
        assert police is not None
        assert police.frames is not None
        kind = type(frame)
        if self.endpoint.calls_in_progress and (kind is IncomingCall or kind is IncomingSend):
            return False
        police.frames.borrow()
        await self._throttle(wait)
        return True

    async def _throttle(self, wait: float) -> None:
        """Wait ``wait`` seconds before handling the frame; closing the connection wakes it."""
        police = self._police
        assert police is not None
        self.stats.throttled += 1
        if police.start_episode():
            logger.warning(
                "station %r sends faster than its rate limit; reading its frames later",
                self.station_id,
                extra=station_fields(self.station_id),
            )
            if self._instruments.throttled is not None:
                self._instruments.throttled(self.station_id, "slowed")
        loop = asyncio.get_running_loop()
        self._nap = nap = loop.create_future()
        timer = loop.call_later(wait, _wake, nap)
        try:
            await nap
        finally:
            timer.cancel()
            self._nap = None

    async def _enforce(self, verdict: int, event: Any) -> bool:
        """Act on the police's verdict; ``True`` if the event is still to be handled."""
        police = self._police
        assert police is not None
        if verdict == SLOW:
            await self._throttle(police.action_wait)
            return self._ended is None
        if verdict == CLOSE_MALFORMED:
            logger.warning(
                "station %r: %d malformed frames in a row; closing",
                self.station_id,
                police.bad_in_row,
                extra=station_fields(self.station_id),
            )
            if type(event) is Reply:
                await self._refuse(event)
            await self.close(CLOSE_PROTOCOL_ERROR, "too many malformed frames")
            return False
        self.stats.rate_limited += 1
        how = "closed" if verdict == CLOSE else "refused"
        if police.start_episode():
            logger.warning(
                "station %r breaks OCPP-J (CALLs while its earlier CALL is in progress) "
                "over its rate limit: %s",
                self.station_id,
                "closing" if how == "closed" else "refusing them",
                extra=station_fields(self.station_id),
            )
        if self._instruments.throttled is not None:
            self._instruments.throttled(self.station_id, how)
        if verdict == CLOSE:
            await self.close(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
        elif verdict == REFUSE and type(event) is IncomingCall:
            await self._send_quietly(self.endpoint.error_for(event, _RATE_LIMITED), "error", None)
        return False

    # -- the peer's CALLs ---------------------------------------------------------------

    def _enqueue(self, event: IncomingCall | IncomingSend) -> None:
        if type(event) is IncomingSend and len(self._inbox) >= self.endpoint.max_incoming:
            # CALLs are bounded by the endpoint; SENDs, never answered, are bounded here.
            self.stats.bad_frames += 1
            logger.warning(
                "station %r: SEND %s dropped: too many queued",
                self.station_id,
                event.action,
                extra=station_fields(self.station_id),
            )
            return
        self._inbox.append(event)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"csms_kit handler {self.station_id}"
            )

    async def _work(self) -> None:
        handlers = self.routes.on
        try:
            while self._inbox:
                event = self._inbox.pop(0)
                if type(event) is IncomingCall:
                    await self._answer(event, handlers[event.action])
                else:
                    await self._handle_send(event)  # type: ignore[arg-type]
        finally:
            self._worker = None

    async def _answer(self, call: IncomingCall, handler: Handler) -> None:
        """Run the handler of the peer's CALL and send its answer (once, always)."""
        instruments = self._instruments
        started = 0.0
        if instruments.call_started is not None:
            instruments.call_started(self.station_id, "in", call.action, call.message_id)
        if instruments.call_finished is not None:
            started = time.monotonic()
        policy = self.policy
        observed = policy is not None and call.action in policy.observed
        if observed:
            policy.observe_request(call)  # type: ignore[union-attr]
        response: Any = None
        try:
            if handler.inline:  # no coroutine to create and await
                response = invoke_sync(handler, self.owner, call.request)
            else:
                response = await invoke(
                    handler, self.owner, call.request, call.payload, call.message_id
                )
            text = self.endpoint.result_for(call, response)
            kind = "result"
        except asyncio.CancelledError:
            self.endpoint.forget(call)
            if instruments.call_finished is not None:  # cancelled as the connection ended
                instruments.call_finished(
                    self.station_id,
                    "in",
                    call.action,
                    call.message_id,
                    "disconnected",
                    time.monotonic() - started,
                )
            raise
        except Exception as exc:  # every failure must become a CALLERROR
            error, unexpected = as_rpc_error(exc)
            text = self.endpoint.error_for(call, error)
            response = None
            kind = "error"
            if unexpected:
                await self._report_failure(call.action, exc, "handler")
        if observed:
            await policy.observe_answer(call, response)  # type: ignore[union-attr]
        if self._ended is None:
            try:
                await self._transmit(text, kind, call.action)
            except TransportClosed as closed:
                self._lost(closed)
                kind = "disconnected"
        else:
            logger.debug(
                "station %r: answer to %s %r dropped: connection ended",
                self.station_id,
                call.action,
                call.message_id,
                extra=station_fields(self.station_id, call.message_id),
            )
            kind = "disconnected"
        if instruments.call_finished is not None:
            instruments.call_finished(
                self.station_id,
                "in",
                call.action,
                call.message_id,
                kind,
                time.monotonic() - started,
            )
        if response is not None:
            self._run_after_hooks(call, call.request, response)

    async def _handle_send(self, event: IncomingSend) -> None:
        handler = self.routes.on[event.action]
        try:
            await invoke(handler, self.owner, event.message, event.payload, event.message_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a SEND has no answer: log it
            await self._report_failure(f"SEND {event.action}", exc, "handler")
            return
        self._run_after_hooks(event, event.message, None)

    async def _report_failure(self, action: str, exc: Exception, what: str) -> None:
        self.stats.handler_errors += 1
        if isinstance(exc, UsageError):
            logger.error(
                "station %r: %s for %s returned a bad response: %s",
                self.station_id,
                what,
                action,
                exc,
                extra=station_fields(self.station_id),
            )
        else:
            logger.exception(
                "station %r: %s for %s failed",
                self.station_id,
                what,
                action,
                extra=station_fields(self.station_id),
            )
        if self._instruments.handler_failed is not None:
            self._instruments.handler_failed(self.station_id, action, exc)
        await self.hooks.report_error(self.owner, exc)

    def _run_after_hooks(
        self, event: IncomingCall | IncomingSend, request: Any, response: Any
    ) -> None:
        for hook in self.routes.after.get(event.action, ()):
            self.spawn(self._run_after(hook, event, request, response), f"after {event.action}")

    async def _run_after(
        self, hook: Handler, event: IncomingCall | IncomingSend, request: Any, response: Any
    ) -> None:
        try:
            await invoke_after(
                hook, self.owner, request, response, event.payload, event.message_id
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an @after failure is logged, never lost
            await self._report_failure(event.action, exc, "@after hook")

    async def _refuse(self, event: Reply) -> None:
        """Send the CALLERROR the endpoint wrote for a CALL that reaches no handler."""
        self.stats.bad_frames += 1
        if event.malformed:
            logger.info(
                "station %r: answered a bad frame with %s: %s",
                self.station_id,
                event.code.spelled_for(self.version),
                event.reason,
                extra=station_fields(self.station_id, event.message_id),
            )
        else:
            logger.info(
                "station %r: refused a CALL with %s: %s",
                self.station_id,
                event.code.spelled_for(self.version),
                event.reason,
                extra=station_fields(self.station_id, event.message_id),
            )
        if self._instruments.frame_refused is not None:
            self._instruments.frame_refused(
                self.station_id, event.code.value, event.reason, event.malformed
            )
        await self._send_quietly(event.text, "error", None)

    def _log_noise(self, text: str, *args: Any, message_id: str | None = None) -> None:
        """Log what a peer may send in floods: the first at WARNING, the rest at DEBUG.

        ``text`` starts with the station's ``%r``; ``args`` follow it.
        """
        fields = station_fields(self.station_id, message_id)
        if self._warned_noise:
            logger.debug(text, self.station_id, *args, extra=fields)
        else:
            self._warned_noise = True
            logger.warning(
                text + " (further ones are logged at DEBUG)", self.station_id, *args, extra=fields
            )

    def _dropped(self, event: Dropped) -> None:
        if event.kind == "unexpected":
            self.stats.unexpected_answers += 1
            self._log_noise(
                "station %r: dropped an answer that matches no outstanding CALL: %s", event.reason
            )
        else:
            self.stats.bad_frames += 1
            logger.info(
                "station %r: dropped a frame: %s",
                self.station_id,
                event.reason,
                extra=station_fields(self.station_id),
            )
        if self._instruments.frame_refused is not None:
            self._instruments.frame_refused(
                self.station_id, None, event.reason, event.kind == "malformed"
            )

    # -- our CALLs ----------------------------------------------------------------------

    async def call(
        self, request: Any, *, action: str | None = None, timeout: float | None = None
    ) -> Any:
        """See :meth:`Role.call`."""
        return (await self._exchange(self._prepare(request, action), timeout)).response

    async def call_payload(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """See :meth:`Role.call_payload`."""
        outgoing = self._prepare(payload, action, message_id)
        return (await self._exchange(outgoing, timeout)).payload

    def _prepare(
        self, request: Any, action: str | None, message_id: str | None = None
    ) -> OutgoingCall:
        """Check that a call may be made now, and write its CALL."""
        self._check_loop()
        if self._ended is not None:
            raise self._ended_error()
        policy = self.policy
        if policy is not None:
            policy.check_call(request, action)
        outgoing = self.endpoint.prepare_call(request, action, message_id)
        if policy is not None:
            policy.call_prepared(outgoing, request)
        return outgoing

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise UsageError(
                f"station {self.station_id!r}: its connection runs in another event loop "
                "or thread; from a thread, use registry.call_from_thread(...), or run the "
                "call in the connection's loop with asyncio.run_coroutine_threadsafe"
            )

    async def _exchange(self, outgoing: OutgoingCall, timeout: float | None) -> IncomingResult:
        """Send ``outgoing`` in its turn and wait for the answer."""
        loop = asyncio.get_running_loop()
        timeout = self._call_timeout if timeout is None else timeout
        pending = _PendingCall(outgoing, loop.create_future())
        outgoing.waiter = pending
        # On the timer's clock, read before it is armed: a call that timed out lasted
        # at least its timeout (the call_started instrument's time included).
        started = loop.time()
        pending.timer = loop.call_later(timeout, self._expire, pending, timeout)
        instruments = self._instruments
        if instruments.call_started is not None:
            instruments.call_started(self.station_id, "out", outgoing.action, outgoing.message_id)
        outcome: Outcome = "disconnected"
        queue = self._queue
        if queue is None:
            queue = self._queue = []
        queue.append(pending)
        try:
            if queue[0] is not pending:
                await pending.future  # resolved with None when it is our turn
                pending.future = loop.create_future()
            if self._ended is not None:
                raise self._ended_error()
            self.endpoint.call_sent(outgoing)
            pending.sent = True
            try:
                await self._transmit(outgoing.text, "call", outgoing.action)
            except TransportClosed as closed:
                queue.remove(pending)  # its error is raised here: _end must not set it too
                self._lost(closed)
                raise self._ended_error() from None
            result: IncomingResult = await pending.future
            outcome = "result"
            return result
        except CallTimeout:
            outcome = "timeout"
            raise
        except (CallError, InvalidResponse):
            outcome = "error"
            raise
        finally:
            pending.timer.cancel()
            self.endpoint.abandon_call(outgoing)  # if still awaited: a late answer is dropped
            if queue and queue[0] is pending:
                queue.pop(0)
                if queue and not queue[0].future.done():
                    queue[0].future.set_result(None)  # the next call's turn
            elif pending in queue:
                queue.remove(pending)
            if instruments.call_finished is not None:
                instruments.call_finished(
                    self.station_id,
                    "out",
                    outgoing.action,
                    outgoing.message_id,
                    outcome,
                    loop.time() - started,
                )

    def _expire(self, pending: _PendingCall, timeout: float) -> None:
        call = pending.call
        message_id = call.message_id if pending.sent else None
        if not pending.future.done():
            pending.future.set_exception(
                CallTimeout(self.station_id, call.action, message_id, timeout)
            )

    async def _settle(self, event: IncomingResult | IncomingError | UnusableAnswer) -> None:
        """Hand the peer's answer to whoever awaits our CALL."""
        assert event.call is not None
        pending: _PendingCall = event.call.waiter
        if type(event) is UnusableAnswer:
            self.stats.bad_frames += 1
            if event.reply is not None:
                await self._send_quietly(event.reply, "resulterror", event.action)
        if pending.future.done():
            return  # it timed out meanwhile
        if type(event) is IncomingResult:
            pending.future.set_result(event)
        elif type(event) is IncomingError:
            pending.future.set_exception(
                CallError(
                    self.station_id,
                    event.action,
                    event.message_id,
                    event.code,
                    event.description,
                    event.details,
                )
            )
        else:
            assert isinstance(event, UnusableAnswer)
            pending.future.set_exception(
                InvalidResponse(
                    self.station_id, event.action, event.message_id, event.code, event.description
                )
            )

    async def send(self, message: Any, *, action: str | None = None) -> None:
        """See :meth:`Role.send`."""
        self._check_loop()
        if self._ended is not None:
            raise self._ended_error()
        text = self.endpoint.prepare_send(message, action)
        try:
            await self._transmit(text, "send", action or type(message).__name__)
        except TransportClosed as closed:
            self._lost(closed)
            raise self._ended_error() from None

    async def _send_quietly(self, text: str, kind: str, action: str | None) -> None:
        """Send a frame owed to the peer; a closed connection is not an error."""
        try:
            await self._transmit(text, kind, action)
        except TransportClosed as closed:
            self._lost(closed)

    async def _transmit(self, text: str, kind: str, action: str | None) -> None:
        """Write one frame; every frame the connection sends goes through here."""
        if self.hooks.on_message is not None:
            await call_hook(self.hooks.on_message, self.owner, "out", text)
        await self.transport.send(text)
        self.stats.sent += 1
        if self._instruments.frame_sent is not None:
            self._instruments.frame_sent(self.station_id, kind, action, len(text))

    # -- ending -------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """See :meth:`Role.close`."""
        self._end(SessionClosed(self.station_id, code, reason))
        await self.transport.close(code, reason)

    async def shutdown(
        self, code: int = CLOSE_GOING_AWAY, reason: str = "", grace: float | None = None
    ) -> None:
        """See :meth:`Role.shutdown`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._handler_grace if grace is None else grace)
        while self._worker is not None and self._ended is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait({self._worker}, timeout=remaining)
        await self.close(code, reason)

    def _lost(self, closed: TransportClosed) -> None:
        """The peer went away (its close frame, or none, is in ``closed``)."""
        self._end(self.peer_disconnected(self.station_id, closed.code, closed.reason))

    def _end(self, reason: ConnectionEnded) -> None:
        """Mark the connection as ended, fail every outgoing call, tell the supervisor.

        Idempotent. The supervisor hears of it now, not once the handlers still
        running have finished.
        """
        if self._ended is not None:
            return
        self._ended = reason
        if self._nap is not None:
            _wake(self._nap)
        if self._queue:
            for pending in self._queue:
                if not pending.future.done():
                    pending.future.set_exception(self._ended_error())
        if self.supervisor is not None:
            self.supervisor.connection_ended(self.owner)

    def _ended_error(self) -> ConnectionEnded:
        """A fresh exception saying how the connection ended (one per waiter)."""
        assert self._ended is not None
        ended = self._ended
        return type(ended)(ended.station_id, ended.code, ended.reason)

    def spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``coroutine`` in a task the connection owns (see the lifecycle rule)."""
        task = asyncio.get_running_loop().create_task(
            coroutine, name=f"csms_kit {what} {self.station_id}"
        )
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _running_tasks(self) -> list[asyncio.Task[None]]:
        tasks = list(self._tasks or ())
        if self._worker is not None:
            tasks.append(self._worker)
        return tasks

    async def _drain(self) -> None:
        tasks = self._running_tasks()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._handler_grace)
            if pending:
                logger.warning(
                    "station %r: cancelling %d handler task(s) still running %g s "
                    "after the connection ended",
                    self.station_id,
                    len(pending),
                    self._handler_grace,
                    extra=station_fields(self.station_id),
                )
                await self._cancel_tasks()

    async def _cancel_tasks(self) -> None:
        tasks = self._running_tasks()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
