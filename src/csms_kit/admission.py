"""Who may connect, and the life of each admitted connection, for any transport.

:class:`Admission` holds every decision a CSMS endpoint makes about a connection,
with no knowledge of the transport under it. A transport's glue (the websockets
server in :mod:`csms_kit.server`, an ASGI endpoint, a test harness) calls it twice:

1. at the handshake, :meth:`Admission.admit` with the request path and a way to
   describe the handshake: it reads the identity (404 outside the path prefix, 400
   for a malformed one), refuses past ``max_connections`` (503), asks the
   ``authenticate`` hook, refuses a duplicate under the ``"reject"`` policy (409)
   and past ``max_connections_per_address`` (429). The answer is a :class:`Ticket`
   or the :class:`~csms_kit.hooks.Rejection` to send. :meth:`Admission.choose_version`
   picks the subprotocol among those offered;
2. once the WebSocket is open, :meth:`Admission.run` with the ticket, a
   :class:`~csms_kit.transport.Transport` and the version chosen: it builds the
   session with the factory for that version, registers it, calls ``on_connect``,
   runs it, unregisters it the moment its connection ends, and calls
   ``on_disconnect`` when its handlers are done. An outbox, if any, is told when the
   station is ready for its commands: connected and accepted at boot.

Resource handling: a ticket holds a place among ``max_connections`` until
:meth:`Admission.run` starts or the ticket is released (:meth:`Ticket.release`, or
when it is garbage-collected after a handshake that failed). A per-address place is
held until the connection ends.
"""

from __future__ import annotations

import asyncio
import collections
import http
import inspect
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from csms_kit.exceptions import BrokerUnavailable, DuplicateConnection, UsageError
from csms_kit.hooks import Handshake, Hooks, Rejection, call_hook, host_of
from csms_kit.identity import InvalidIdentity, identity_from_path, normalize_prefix
from csms_kit.instruments import Instruments
from csms_kit.logs import station_fields
from csms_kit.registry import ConnectionRegistry, InMemoryRegistry
from csms_kit.role import Role
from csms_kit.session import StationSession
from csms_kit.transport import Transport
from csms_kit.versions import OcppVersion

__all__ = [
    "CLOSE_NO_SUBPROTOCOL",
    "Admission",
    "SessionFactory",
    "Ticket",
    "endpoint_admission",
    "session_factories",
]

logger = logging.getLogger("csms_kit.server")

#: A callable building a session, called like the StationSession constructor.
SessionFactory = Callable[..., StationSession]

#: Close code when the station offered no OCPP version the server speaks.
CLOSE_NO_SUBPROTOCOL = 1002
#: Close code for a station refused as a duplicate after the handshake.
CLOSE_POLICY_VIOLATION = 1008
#: Close code when the session cannot be started (RFC 6455: internal error).
CLOSE_INTERNAL_ERROR = 1011
CLOSE_GOING_AWAY = 1001

#: The BootNotification status after which a station takes the CSMS's commands.
ACCEPTED = "Accepted"


class ReadyListener(Protocol):
    """What admission tells of a station ready for commands (the outbox)."""

    def bind(self, registry: ConnectionRegistry) -> None: ...

    def station_accepted(self, session: StationSession) -> None: ...


_NEWEST_FIRST = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


def session_factories(
    sessions: SessionFactory | Mapping[OcppVersion | str, SessionFactory],
    versions: Sequence[OcppVersion | str] | None,
) -> tuple[dict[OcppVersion, SessionFactory], list[OcppVersion]]:
    """The factory per version and the order of preference, as every endpoint takes them.

    ``sessions`` is one factory for every version, or a mapping from version to
    factory; ``versions`` the order of preference (default: newest first). Raises
    :class:`~csms_kit.exceptions.UsageError` for no factory, or a preferred version
    without one.
    """
    if isinstance(sessions, Mapping):
        factories = {OcppVersion.parse(v): f for v, f in sessions.items()}
    else:
        factories = dict.fromkeys(OcppVersion, sessions)
    if not factories:
        raise UsageError("an OCPP endpoint needs at least one session factory")
    if versions is None:
        return factories, [v for v in _NEWEST_FIRST if v in factories]
    preference = [OcppVersion.parse(v) for v in versions]
    missing = [str(v) for v in preference if v not in factories]
    if missing:
        raise UsageError(f"no session factory for OCPP {', '.join(missing)}")
    return factories, preference


class Ticket:
    """An admitted handshake: who it is, and the places it holds until it ends."""

    __slots__ = ("__weakref__", "_release", "handshake")

    def __init__(self, handshake: Handshake) -> None:
        self.handshake = handshake
        self._release: weakref.finalize[Any, Any] | None = None

    @property
    def station_id(self) -> str:
        return self.handshake.station_id

    def release(self) -> None:
        """Give back the per-address place (idempotent); for a handshake that failed too."""
        if self._release is not None:
            self._release()


class Admission:
    """Admission and session lifecycle of one CSMS endpoint (see the module docstring)."""

    def __init__(
        self,
        factories: Mapping[OcppVersion, SessionFactory],
        preference: Sequence[OcppVersion],
        *,
        registry: ConnectionRegistry,
        hooks: Hooks,
        instruments: Instruments,
        path_prefix: str = "/",
        max_connections: int | None = None,
        max_connections_per_address: int | None = None,
        outbox: ReadyListener | None = None,
    ) -> None:
        self.factories = dict(factories)
        self.preference = tuple(preference)
        self.registry = registry
        self.hooks = hooks
        self.instruments = instruments
        self.path_prefix = normalize_prefix(path_prefix)
        self.max_connections = max_connections
        self.max_connections_per_address = max_connections_per_address
        #: Told when a station here is connected and accepted at boot (the outbox).
        self.outbox = outbox
        #: Set by :meth:`close`: new handshakes get 503, admitted ones are closed.
        self.close_frame: tuple[int, str] | None = None
        self._sessions: set[StationSession] = set()
        # Admitted handshakes whose session has not started: they count as connections.
        self._tickets: weakref.WeakSet[Ticket] = weakref.WeakSet()
        self._per_address: collections.Counter[str] = collections.Counter()

    @property
    def sessions(self) -> frozenset[StationSession]:
        """The sessions running now."""
        return frozenset(self._sessions)

    # -- the handshake ------------------------------------------------------------------

    async def admit(self, path: str, describe: Callable[[str], Handshake]) -> Ticket | Rejection:
        """Decide on a handshake for ``path``; ``describe(station_id)`` tells the rest.

        Returns a :class:`Ticket`, or the :class:`~csms_kit.hooks.Rejection` to answer.
        """
        try:
            station_id = identity_from_path(path, self.path_prefix)
        except InvalidIdentity as exc:
            status = http.HTTPStatus.NOT_FOUND if exc.wrong_path else http.HTTPStatus.BAD_REQUEST
            return self._reject(None, Rejection(status, exc.reason + "\n"))
        if self.close_frame is not None:
            return self._reject(station_id, Rejection(503, "shutting down\n"))
        if self._full():
            return self._refuse_full(station_id)
        handshake = describe(station_id)
        if self.hooks.authenticate is not None:
            rejection = await self._authenticate(handshake)
            if rejection is not None:
                return self._reject(station_id, rejection)
        # After authentication, so that strangers cannot probe who is online.
        if self.registry.duplicate_policy == "reject" and await self.registry.is_connected(
            station_id
        ):
            return self._reject(station_id, Rejection(409, "station already connected\n"))
        if self._full():  # again: other handshakes may have been admitted while we awaited
            return self._refuse_full(station_id)
        ticket = Ticket(handshake)
        if self.max_connections_per_address is not None:
            # Counted only under a limit: the bookkeeping costs objects per connection.
            address = host_of(handshake.remote_address)
            if self._per_address[address] >= self.max_connections_per_address:
                logger.warning(
                    "refusing %r: too many connections from %s",
                    station_id,
                    address,
                    extra=station_fields(station_id),
                )
                return self._reject(
                    station_id, Rejection(429, "too many connections from this address\n")
                )
            self._per_address[address] += 1
            # Released when the connection ends, or when the ticket is collected after
            # a handshake that failed.
            ticket._release = weakref.finalize(ticket, self._release_address, address)
        self._tickets.add(ticket)
        return ticket

    def choose_version(self, offered: Iterable[str]) -> OcppVersion | None:
        """The version to speak, by our preference, among the subprotocols offered."""
        offered = set(offered)
        for version in self.preference:
            if version.subprotocol in offered:
                return version
        return None

    def release(self, ticket: Ticket) -> None:
        """A ticket's handshake failed after admission: give back its places."""
        self._tickets.discard(ticket)
        ticket.release()

    def _reject(self, station_id: str | None, rejection: Rejection) -> Rejection:
        if self.instruments.handshake_rejected is not None:
            self.instruments.handshake_rejected(
                station_id, rejection.status, rejection.body.strip()
            )
        return rejection

    def _release_address(self, address: str) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def _full(self) -> bool:
        admitted = len(self._sessions) + len(self._tickets)
        return self.max_connections is not None and admitted >= self.max_connections

    def _refuse_full(self, station_id: str) -> Rejection:
        logger.warning(
            "refusing %r: %s connections",
            station_id,
            self.max_connections,
            extra=station_fields(station_id),
        )
        return self._reject(station_id, Rejection(503, "too many connections\n"))

    async def _authenticate(self, handshake: Handshake) -> Rejection | None:
        hook = self.hooks.authenticate
        assert hook is not None
        try:
            result = hook(handshake)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception(
                "authenticate hook failed for %r",
                handshake.station_id,
                extra=station_fields(handshake.station_id),
            )
            return Rejection(500, "authentication failed\n")
        if result is not None and not isinstance(result, Rejection):
            logger.error(
                "authenticate hook returned %r; it must return None or a Rejection",
                type(result).__name__,
            )
            return Rejection(500, "authentication failed\n")
        return result

    # -- the session --------------------------------------------------------------------

    async def run(self, ticket: Ticket, transport: Transport, version: OcppVersion | None) -> None:
        """Run the session of an admitted connection until it has ended (see above).

        ``version`` ``None`` means no common subprotocol: OCPP-J says to complete the
        handshake without one and close at once, which this does (1002).
        """
        self._tickets.discard(ticket)
        try:
            await self._run(ticket.handshake, transport, version)
        finally:
            ticket.release()

    async def _run(
        self, handshake: Handshake, transport: Transport, version: OcppVersion | None
    ) -> None:
        station_id = handshake.station_id
        if self.close_frame is not None:
            await transport.close(*self.close_frame)
            return
        if version is None:
            offered = ", ".join(handshake.subprotocols) or "none"
            logger.info(
                "station %r offered no OCPP version we speak (%s)",
                station_id,
                offered,
                extra=station_fields(station_id),
            )
            await transport.close(
                CLOSE_NO_SUBPROTOCOL,
                "no common OCPP version; offer "
                + ", ".join(v.subprotocol for v in self.preference),
            )
            return
        watch = _Watch(self.registry, self.outbox)
        try:
            status = await self.registry.registration_status(station_id)
            session = self.factories[version](
                station_id,
                transport,
                version,
                remote_address=handshake.remote_address,
                handshake=handshake,
                hooks=self.hooks,
                instruments=self.instruments,
                supervisor=watch,
                registration_status=status,
            )
            await self.registry.register(session)
        except DuplicateConnection:
            logger.info(
                "station %r is already connected; refusing the new one",
                station_id,
                extra=station_fields(station_id),
            )
            await transport.close(CLOSE_POLICY_VIOLATION, "station already connected")
            return
        except Exception as exc:
            logger.exception(
                "could not start a session for station %r",
                station_id,
                extra=station_fields(station_id),
            )
            await self.hooks.report_error(None, exc)
            await transport.close(CLOSE_INTERNAL_ERROR, "internal error")
            return
        self._sessions.add(session)
        instruments = self.instruments
        try:
            if instruments.connection_opened is not None:
                instruments.connection_opened(station_id, str(version))
            if self.hooks.on_connect is not None:
                await call_hook(self.hooks.on_connect, session)
            if self.outbox is not None and session.registration_status == ACCEPTED:
                self.outbox.station_accepted(session)  # accepted on an earlier connection
            await session.run()
        finally:
            self._sessions.discard(session)
            await watch.unregistered(session)
            if instruments.connection_closed is not None:
                instruments.connection_closed(station_id, session.close_code, session.close_reason)
            if self.hooks.on_disconnect is not None:
                await call_hook(
                    self.hooks.on_disconnect, session, session.close_code, session.close_reason
                )

    async def close(self, code: int, reason: str, grace: float) -> None:
        """Refuse new connections; let each session's CALLs in progress be answered for up
        to ``grace`` seconds, then close it with ``code``/``reason``; return when all ended."""
        self.close_frame = (code, reason)
        done: set[StationSession] = set()
        while pending := [s for s in self._sessions if s not in done]:
            done.update(pending)  # a handshake may have completed meanwhile: loop
            await asyncio.gather(*(s.shutdown(code, reason, grace) for s in pending))


def endpoint_admission(
    sessions: SessionFactory | Mapping[OcppVersion | str, SessionFactory],
    versions: Sequence[OcppVersion | str] | None,
    *,
    registry: ConnectionRegistry | None,
    outbox: ReadyListener | None,
    **options: Any,
) -> tuple[Admission, bool]:
    """The admission of a new endpoint (:func:`~csms_kit.serve`,
    :func:`~csms_kit.asgi.ocpp_endpoint`), and whether the endpoint owns its registry:
    without one given, it gets an :class:`~csms_kit.registry.InMemoryRegistry` of its
    own, which the outbox, if any, is bound to. ``options`` are :class:`Admission`'s."""
    factories, preference = session_factories(sessions, versions)
    owns_registry = registry is None
    registry = InMemoryRegistry() if registry is None else registry
    if outbox is not None:
        outbox.bind(registry)
    admission = Admission(factories, preference, registry=registry, outbox=outbox, **options)
    return admission, owns_registry


class _Watch:
    """A session's supervisor: unregisters it the moment it ends, stores its status."""

    __slots__ = ("_outbox", "_registry", "_task")

    def __init__(self, registry: ConnectionRegistry, outbox: ReadyListener | None) -> None:
        self._registry = registry
        self._outbox = outbox
        self._task: asyncio.Task[None] | None = None

    def connection_ended(self, connection: Role) -> None:
        assert isinstance(connection, StationSession)
        self._task = asyncio.get_running_loop().create_task(
            self._registry.unregister(connection),
            name=f"csms_kit unregister {connection.station_id}",
        )

    async def registration_changed(self, session: StationSession) -> None:
        status = session.registration_status
        if status is None:
            return
        try:
            await self._registry.set_registration_status(
                session.station_id, status, session.boot_info
            )
        except BrokerUnavailable as exc:
            # The session keeps its status; only a later connection misses it. The
            # station's BootNotification must be answered all the same.
            logger.warning(
                "could not store station %r's status: %s",
                session.station_id,
                exc,
                extra=station_fields(session.station_id),
            )
        if status == ACCEPTED and self._outbox is not None:
            self._outbox.station_accepted(session)

    async def unregistered(self, session: StationSession) -> None:
        """Wait until the session has left the registry (leave it now if it has not)."""
        if self._task is None:
            await self._registry.unregister(session)
        else:
            await self._task
