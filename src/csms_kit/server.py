"""The CSMS endpoint on ``websockets``: handshake, version negotiation, sessions.

::

    async with serve(MySession, "0.0.0.0", 9000) as server:
        await server.serve_forever()

One endpoint serves OCPP 1.6, 2.0.1 and 2.1. For each connection the server

1. reads the station identity from the path (``<path_prefix><identity>``): a path
   outside the prefix gets HTTP 404, a malformed identity HTTP 400;
2. refuses it with HTTP 503 past ``max_connections``, and with HTTP 409 if the
   registry refuses duplicates and the station is connected;
3. asks the ``authenticate`` hook, which may refuse it with any HTTP status (404
   for an unknown station, 401 for bad credentials, ...);
4. picks, in its own order of preference, an OCPP version the station offered. With
   none in common, or none offered, OCPP-J says to complete the handshake without a
   ``Sec-WebSocket-Protocol`` header and close at once: the server does that, with
   close code 1002 (``websockets`` alone would answer HTTP 400);
5. builds the session with the factory for that version, registers it, calls
   ``on_connect`` and runs it; when it ends, unregisters it and calls
   ``on_disconnect``.

Nothing here is global: two servers in one process are independent unless they are
given the same registry.
"""

from __future__ import annotations

import asyncio
import collections
import http
import inspect
import logging
import socket
import ssl as ssl_module
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms_kit.exceptions import DuplicateConnection, UsageError
from csms_kit.hooks import (
    Authenticate,
    Handshake,
    Hooks,
    OnConnect,
    OnDisconnect,
    OnError,
    OnMessage,
    Rejection,
    call_hook,
    host_of,
    parse_basic_auth,
)
from csms_kit.identity import InvalidIdentity, identity_from_path, normalize_prefix
from csms_kit.keepalive import Keepalive
from csms_kit.registry import ConnectionRegistry, InMemoryRegistry
from csms_kit.session import StationSession
from csms_kit.transport import WebSocketTransport, read_in_small_chunks, redacting_logger
from csms_kit.versions import OcppVersion

__all__ = ["CLOSE_NO_SUBPROTOCOL", "Compression", "CsmsServer", "SessionFactory", "serve"]

logger = logging.getLogger("csms_kit.server")

#: A callable building a session, called like the StationSession constructor.
SessionFactory = Callable[..., StationSession]
Compression = Literal["frugal", "deflate"] | ServerPerMessageDeflateFactory | None

#: Close code when the station offered no OCPP version the server speaks.
CLOSE_NO_SUBPROTOCOL = 1002
#: Close code for a station refused as a duplicate after the handshake.
CLOSE_POLICY_VIOLATION = 1008
#: Close code when the session cannot be started (RFC 6455: internal error).
CLOSE_INTERNAL_ERROR = 1011
#: Close code for a server restart (RFC 6455 registry: Service Restart).
CLOSE_SERVICE_RESTART = 1012
_GOING_AWAY = 1001

_NEWEST_FIRST = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


def _extensions(compression: Compression) -> list[ServerPerMessageDeflateFactory]:
    if compression is None:
        return []
    if isinstance(compression, ServerPerMessageDeflateFactory):
        return [compression]
    if compression == "deflate":  # websockets' defaults: best ratio, state kept per connection
        return [
            ServerPerMessageDeflateFactory(
                server_max_window_bits=12,
                client_max_window_bits=12,
                compress_settings={"memLevel": 5},
            )
        ]
    if compression == "frugal":  # no zlib state held between messages: idle costs nothing
        return [
            ServerPerMessageDeflateFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=12,
                client_max_window_bits=12,
                compress_settings={"memLevel": 5},
            )
        ]
    raise ValueError(
        f"compression must be 'frugal', 'deflate', None or a factory: {compression!r}"
    )


class CsmsServer:
    """A CSMS endpoint serving stations; build it with :func:`serve`.

    Resource handling: :meth:`close` (or leaving ``async with``) stops accepting,
    lets each station's CALLs in progress be answered for up to ``grace`` seconds,
    closes every connection with 1001 (1012 with ``restart=True``) and returns when
    every session has ended.
    """

    def __init__(
        self,
        factories: Mapping[OcppVersion, SessionFactory],
        preference: Sequence[OcppVersion],
        *,
        registry: ConnectionRegistry,
        hooks: Hooks,
        path_prefix: str,
        max_connections: int | None,
        max_connections_per_address: int | None = None,
        keepalive: Keepalive | None = None,
        websockets_options: dict[str, Any],
    ) -> None:
        self.factories = dict(factories)
        self.preference = tuple(preference)
        self.registry = registry
        self.hooks = hooks
        self.path_prefix = normalize_prefix(path_prefix)
        self.max_connections = max_connections
        self._options = websockets_options
        self._keepalive = keepalive
        self._server: Server | None = None
        self._sessions: set[StationSession] = set()
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, Handshake] = (
            weakref.WeakKeyDictionary()
        )
        self._closing = False
        self._close_frame = (_GOING_AWAY, "server shutting down")
        self.max_connections_per_address = max_connections_per_address
        self._per_address: collections.Counter[str] = collections.Counter()
        self._releases: weakref.WeakKeyDictionary[
            ServerConnection, weakref.finalize[[str], ServerConnection]
        ] = weakref.WeakKeyDictionary()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening. Called by ``async with``."""
        if self._server is not None:
            raise UsageError("this server has already been started")
        self._server = await websockets_serve(
            self._handle,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            **self._options,
        )
        logger.info(
            "csms_kit serving OCPP %s on %s",
            ", ".join(str(v) for v in self.preference),
            ", ".join(str(s.getsockname()) for s in self.sockets),
        )

    async def __aenter__(self) -> CsmsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Run until :meth:`close` is called or the task is cancelled (then close)."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.wait_closed()
        except asyncio.CancelledError:
            await self.close()
            raise

    async def close(
        self,
        *,
        code: int = _GOING_AWAY,
        reason: str = "server shutting down",
        grace: float = 10.0,
        restart: bool = False,
    ) -> None:
        """Shut down gracefully (see the class docstring); idempotent."""
        if self._server is None or self._closing:
            if self._server is not None:
                await self._server.wait_closed()
            return
        self._closing = True
        if restart:
            code, reason = CLOSE_SERVICE_RESTART, "server restarting"
        self._close_frame = (code, reason)
        self._server.close(close_connections=False)  # stop accepting; connections stay
        done: set[StationSession] = set()
        while pending := [s for s in self._sessions if s not in done]:
            done.update(pending)  # a handshake may have completed meanwhile: loop
            await asyncio.gather(*(s.shutdown(code, reason, grace) for s in pending))
        await self._server.wait_closed()
        if self._keepalive is not None:
            await self._keepalive.stop()
        await self.registry.aclose()
        logger.info("csms_kit server closed")

    # -- facts ------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        if not self.sockets:
            raise UsageError("the server is not listening")
        port: int = self.sockets[0].getsockname()[1]
        return port

    @property
    def sessions(self) -> frozenset[StationSession]:
        """The sessions this server runs now."""
        return frozenset(self._sessions)

    # -- handshake --------------------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        for version in self.preference:
            if version.subprotocol in offered:
                return Subprotocol(version.subprotocol)
        return None  # handshake completes without the header; _handle closes at once

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        read_in_small_chunks(connection.transport)
        try:
            station_id = identity_from_path(request.path, self.path_prefix)
        except InvalidIdentity as exc:
            status = http.HTTPStatus.NOT_FOUND if exc.wrong_path else http.HTTPStatus.BAD_REQUEST
            return connection.respond(status, exc.reason + "\n")
        if self._closing:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "shutting down\n")
        if self._full():
            return self._refuse_full(connection, station_id)
        handshake = _handshake(connection, request, station_id)
        if self.hooks.authenticate is not None:
            rejection = await self._authenticate(self.hooks.authenticate, handshake)
            if rejection is not None:
                response = connection.respond(rejection.status, rejection.body)
                for name, value in rejection.headers:
                    response.headers[name] = value
                return response
        # After authentication, so that strangers cannot probe who is online.
        if self.registry.duplicate_policy == "reject" and await self.registry.is_connected(
            station_id
        ):
            return connection.respond(http.HTTPStatus.CONFLICT, "station already connected\n")
        if self._full():  # again: other handshakes may have been admitted while we awaited
            return self._refuse_full(connection, station_id)
        if self.max_connections_per_address is not None:
            # Counted only under a limit: the bookkeeping costs objects per connection.
            address = host_of(connection.remote_address)
            if self._per_address[address] >= self.max_connections_per_address:
                logger.warning("refusing %r: too many connections from %s", station_id, address)
                return connection.respond(
                    http.HTTPStatus.TOO_MANY_REQUESTS, "too many connections from this address\n"
                )
            self._per_address[address] += 1
            # Released when the connection ends, or is collected if its handshake fails.
            self._releases[connection] = weakref.finalize(connection, self._release, address)
        self._handshakes[connection] = handshake
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            # websockets refused a request we had admitted (not an upgrade, a bad
            # header...): free its slot now, not when the connection is collected.
            self._handshakes.pop(connection, None)
            release = self._releases.pop(connection, None)
            if release is not None:
                release()

    def _release(self, address: str) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def _full(self) -> bool:
        # Admitted handshakes count too: their sessions are about to start.
        admitted = len(self._sessions) + len(self._handshakes)
        return self.max_connections is not None and admitted >= self.max_connections

    def _refuse_full(self, connection: ServerConnection, station_id: str) -> Response:
        logger.warning("refusing %r: %s connections", station_id, self.max_connections)
        return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")

    async def _authenticate(self, hook: Authenticate, handshake: Handshake) -> Rejection | None:
        try:
            result = hook(handshake)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("authenticate hook failed for %r", handshake.station_id)
            return Rejection(500, "authentication failed\n")
        if result is not None and not isinstance(result, Rejection):
            logger.error(
                "authenticate hook returned %r; it must return None or a Rejection",
                type(result).__name__,
            )
            return Rejection(500, "authentication failed\n")
        return result

    # -- connections ------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        handshake = self._handshakes.pop(connection)
        release = self._releases.pop(connection, None)
        if self._keepalive is not None:
            self._keepalive.add(connection)
        try:
            await self._run(connection, handshake)
        finally:
            if self._keepalive is not None:
                self._keepalive.discard(connection)
            if release is not None:
                release()

    async def _run(self, connection: ServerConnection, handshake: Handshake) -> None:
        station_id = handshake.station_id
        if self._closing:
            await connection.close(*self._close_frame)
            return
        if connection.subprotocol is None:
            offered = ", ".join(handshake.subprotocols) or "none"
            logger.info("station %r offered no OCPP version we speak (%s)", station_id, offered)
            await connection.close(
                CLOSE_NO_SUBPROTOCOL,
                "no common OCPP version; offer "
                + ", ".join(v.subprotocol for v in self.preference),
            )
            return
        version = OcppVersion.parse(connection.subprotocol)
        try:
            session = self.factories[version](
                station_id,
                WebSocketTransport(connection),
                version,
                remote_address=connection.remote_address,
                handshake=handshake,
                registry=self.registry,
                hooks=self.hooks,
            )
            await self.registry.register(session)
        except DuplicateConnection:
            logger.info("station %r is already connected; refusing the new one", station_id)
            await connection.close(CLOSE_POLICY_VIOLATION, "station already connected")
            return
        except Exception as exc:
            logger.exception("could not start a session for station %r", station_id)
            await self.hooks.report_error(None, exc)
            await connection.close(CLOSE_INTERNAL_ERROR, "internal error")
            return
        self._sessions.add(session)
        try:
            if self.hooks.on_connect is not None:
                await call_hook(self.hooks.on_connect, session)
            await session.run()
        finally:
            self._sessions.discard(session)
            await self.registry.unregister(session)
            if self.hooks.on_disconnect is not None:
                await call_hook(
                    self.hooks.on_disconnect, session, session.close_code, session.close_reason
                )


def _handshake(connection: ServerConnection, request: Request, station_id: str) -> Handshake:
    headers: Headers = request.headers
    credentials = parse_basic_auth(headers.get("Authorization"))
    offered = tuple(
        token.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for token in value.split(",")
        if token.strip()
    )
    certificate = der = None
    ssl_object = connection.transport.get_extra_info("ssl_object")
    tls = ssl_object is not None
    if isinstance(ssl_object, (ssl_module.SSLObject, ssl_module.SSLSocket)):
        certificate = ssl_object.getpeercert() or None
        der = ssl_object.getpeercert(binary_form=True)
    return Handshake(
        station_id=station_id,
        path=request.path,
        headers=headers,
        remote_address=connection.remote_address,
        subprotocols=offered,
        username=credentials[0] if credentials else None,
        password=credentials[1] if credentials else None,
        tls=tls,
        peer_certificate=certificate,
        peer_certificate_der=der,
    )


def serve(
    sessions: SessionFactory | Mapping[OcppVersion | str, SessionFactory],
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
    ssl: ssl_module.SSLContext | None = None,
    path_prefix: str = "/",
    versions: Sequence[OcppVersion | str] | None = None,
    registry: ConnectionRegistry | None = None,
    authenticate: Authenticate | None = None,
    on_connect: OnConnect | None = None,
    on_disconnect: OnDisconnect | None = None,
    on_message: OnMessage | None = None,
    on_error: OnError | None = None,
    max_connections: int | None = None,
    max_connections_per_address: int | None = None,
    max_message_size: int = 256 * 1024,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    compression: Compression = "frugal",
) -> CsmsServer:
    """Create a CSMS endpoint; start it with ``async with`` (or ``await server.start()``).

    ``sessions`` is a session class (or any callable built like one) used for every
    version, or a mapping from version to factory; the server then speaks only those
    versions. ``versions`` sets the order of preference (default newest first).

    Listening: ``host``/``port``, or a pre-bound ``sock``; ``reuse_port`` lets several
    processes share a port; ``ssl`` serves ``wss://``. ``path_prefix`` is the part of
    the URL before the identity (``"/ocpp"`` serves ``/ocpp/<identity>``).

    ``registry`` defaults to a new :class:`~csms_kit.registry.InMemoryRegistry`.
    The hooks are described in :mod:`csms_kit.hooks`.

    Limits: ``max_connections`` (HTTP 503 past it), ``max_connections_per_address``
    (HTTP 429 past it; off by default, since many stations may share one address
    behind a NAT or a cellular carrier), ``max_message_size`` in bytes
    (a bigger frame closes the connection with 1009), ``open_timeout`` for the
    handshake, ``ping_interval``/``ping_timeout`` to detect dead stations (one task
    pings every connection; no pong within ``ping_timeout`` closes with 1011),
    ``close_timeout`` for the closing handshake. ``compression``: ``"frugal"``
    (permessage-deflate without context takeover: no memory held between messages),
    ``"deflate"`` (context takeover: better ratio, more memory per connection),
    ``None``, or a ``websockets`` ``ServerPerMessageDeflateFactory``.
    """
    if isinstance(sessions, Mapping):
        factories = {OcppVersion.parse(v): f for v, f in sessions.items()}
    else:
        factories = dict.fromkeys(OcppVersion, sessions)
    if not factories:
        raise UsageError("serve() needs at least one session factory")
    if versions is None:
        preference = [v for v in _NEWEST_FIRST if v in factories]
    else:
        preference = [OcppVersion.parse(v) for v in versions]
        missing = [str(v) for v in preference if v not in factories]
        if missing:
            raise UsageError(f"no session factory for OCPP {', '.join(missing)}")
    if (host is not None or port is not None) and sock is not None:
        raise UsageError("give host/port or sock, not both")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "sock": sock,
        "ssl": ssl,
        "extensions": _extensions(compression),
        "compression": None,  # the extension list above says it all
        "max_size": max_message_size,
        "open_timeout": open_timeout,
        # One Keepalive pings every connection; websockets' task per connection stays off.
        "ping_interval": None,
        "close_timeout": close_timeout,
        "server_header": None,
        "logger": redacting_logger("csms_kit.websockets"),
    }
    if reuse_port:
        options["reuse_port"] = True
    return CsmsServer(
        factories,
        preference,
        registry=registry if registry is not None else InMemoryRegistry(),
        hooks=Hooks(authenticate, on_connect, on_disconnect, on_message, on_error),
        path_prefix=path_prefix,
        max_connections=max_connections,
        max_connections_per_address=max_connections_per_address,
        keepalive=None if ping_interval is None else Keepalive(ping_interval, ping_timeout),
        websockets_options=options,
    )
