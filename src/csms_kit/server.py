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

Those decisions are :class:`~csms_kit.admission.Admission`'s, the same for any
transport; this module is the glue to ``websockets`` (handshake, subprotocol,
keepalive pings, compression, listening sockets).

Nothing here is global: two servers in one process are independent unless they are
given the same registry.
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
import ssl as ssl_module
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms_kit.admission import Admission, SessionFactory, Ticket, endpoint_admission
from csms_kit.exceptions import UsageError
from csms_kit.hooks import (
    Authenticate,
    Handshake,
    Hooks,
    OnConnect,
    OnDisconnect,
    OnError,
    OnMessage,
    Rejection,
    parse_basic_auth,
)
from csms_kit.identity import InvalidIdentity, identity_from_path
from csms_kit.instruments import Instruments
from csms_kit.keepalive import Keepalive
from csms_kit.outbox import Outbox
from csms_kit.registry import ConnectionRegistry
from csms_kit.session import StationSession
from csms_kit.versions import OcppVersion
from csms_kit.websocket import WebSocketTransport, read_in_small_chunks, redacting_logger

__all__ = ["Compression", "CsmsServer", "serve"]

logger = logging.getLogger("csms_kit.server")

Compression = Literal["frugal", "deflate"] | ServerPerMessageDeflateFactory | None

#: Close code for a server restart (RFC 6455 registry: Service Restart).
CLOSE_SERVICE_RESTART = 1012
_GOING_AWAY = 1001


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
    """A CSMS endpoint on ``websockets``; build it with :func:`serve`.

    Only the glue to ``websockets`` lives here: every decision about a connection
    is the transport-neutral :class:`~csms_kit.admission.Admission`'s.

    Resource handling: :meth:`close` (or leaving ``async with``) stops accepting,
    lets each station's CALLs in progress be answered for up to ``grace`` seconds,
    closes every connection with 1001 (1012 with ``restart=True``) and returns when
    every session has ended. It closes the registry only if the server created it.
    """

    def __init__(
        self,
        admission: Admission,
        *,
        owns_registry: bool,
        keepalive: Keepalive | None = None,
        websockets_options: dict[str, Any],
        health_path: str | None = None,
    ) -> None:
        self.admission = admission
        self._owns_registry = owns_registry
        self._health_path = health_path
        self._options = websockets_options
        self._keepalive = keepalive
        if keepalive is not None and admission.instruments.keepalive_timeout is not None:
            keepalive.on_timeout = self._keepalive_timed_out
        self._server: Server | None = None
        self._tickets: weakref.WeakKeyDictionary[ServerConnection, Ticket] = (
            weakref.WeakKeyDictionary()
        )
        self._closing = False

    @property
    def registry(self) -> ConnectionRegistry:
        """The registry of the stations connected here."""
        return self.admission.registry

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening. Called by ``async with``."""
        if self._server is not None:
            raise UsageError("this server has already been started")
        self.registry.attach()
        self._server = await websockets_serve(
            self._handle,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            **self._options,
        )
        logger.info(
            "csms_kit serving OCPP %s on %s",
            ", ".join(str(v) for v in self.admission.preference),
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
        self._server.close(close_connections=False)  # stop accepting; connections stay
        await self.admission.close(code, reason, grace)
        await self._server.wait_closed()
        if self._keepalive is not None:
            await self._keepalive.stop()
        if self._owns_registry:
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
        return self.admission.sessions

    # -- websockets glue --------------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        version = self.admission.choose_version(offered)
        # None: the handshake completes without the header; Admission.run closes at once.
        return None if version is None else Subprotocol(version.subprotocol)

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        read_in_small_chunks(connection.transport)
        if (
            request.path.partition("?")[0] == self._health_path
            and "Upgrade" not in request.headers
        ):
            # A probe (a WebSocket upgrade is never one: a station may bear that name).
            held = len(self.admission.sessions)
            return connection.respond(http.HTTPStatus.OK, f"ok: {held} stations here\n")
        result = await self.admission.admit(
            request.path, lambda station_id: _handshake(connection, request, station_id)
        )
        if isinstance(result, Rejection):
            response = connection.respond(http.HTTPStatus(result.status), result.body)
            for name, value in result.headers:
                response.headers[name] = value
            return response
        self._tickets[connection] = result
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            # websockets refused a request we had admitted (not an upgrade, a bad
            # header...): free its place now, not when the connection is collected.
            ticket = self._tickets.pop(connection, None)
            if ticket is not None:
                self.admission.release(ticket)

    async def _handle(self, connection: ServerConnection) -> None:
        ticket = self._tickets.pop(connection)
        if self._keepalive is not None:
            self._keepalive.add(connection)
        try:
            version = None
            if connection.subprotocol is not None:
                version = OcppVersion.parse(connection.subprotocol)
            await self.admission.run(ticket, WebSocketTransport(connection), version)
        finally:
            if self._keepalive is not None:
                self._keepalive.discard(connection)

    def _keepalive_timed_out(self, connection: Connection, why: str) -> None:
        report = self.admission.instruments.keepalive_timeout
        request = getattr(connection, "request", None)
        if report is None or request is None:
            return
        try:
            station_id = identity_from_path(request.path, self.admission.path_prefix)
        except InvalidIdentity:  # admitted with this path: cannot happen
            return
        report(station_id, why)


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
    instruments: Iterable[Any] = (),
    max_connections: int | None = None,
    max_connections_per_address: int | None = None,
    outbox: Outbox | None = None,
    health_path: str | None = None,
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

    ``registry`` defaults to a new :class:`~csms_kit.registry.InMemoryRegistry`,
    which the server closes when it closes; a registry given here is the
    application's, and stays open. The hooks are described in :mod:`csms_kit.hooks`;
    ``instruments`` (metrics, tracing) in :mod:`csms_kit.instruments`. ``outbox`` (a
    started :class:`~csms_kit.outbox.Outbox`, bound to this registry) delivers queued
    commands to each station once it is connected and accepted at boot.
    ``health_path`` (e.g. ``"/healthz"``) answers a plain HTTP GET of that path with
    200 and the number of stations held here, for load balancers and Kubernetes
    probes; a WebSocket handshake to it is a station's, as without it.

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
    if health_path is not None and not health_path.startswith("/"):
        raise UsageError(f"health_path must start with '/', not {health_path!r}")
    admission, owns_registry = endpoint_admission(
        sessions,
        versions,
        registry=registry,
        outbox=outbox,
        hooks=Hooks(authenticate, on_connect, on_disconnect, on_message, on_error),
        instruments=Instruments(instruments),
        path_prefix=path_prefix,
        max_connections=max_connections,
        max_connections_per_address=max_connections_per_address,
    )
    return CsmsServer(
        admission,
        owns_registry=owns_registry,
        keepalive=None if ping_interval is None else Keepalive(ping_interval, ping_timeout),
        websockets_options=options,
        health_path=health_path,
    )
