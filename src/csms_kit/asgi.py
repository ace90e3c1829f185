"""The CSMS endpoint as an ASGI application: OCPP on the same port as a web API.

::

    endpoint = ocpp_endpoint(MySession)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with endpoint:          # the endpoint lives as long as the app
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/ocpp", endpoint)      # stations connect to ws://host/ocpp/<identity>

The decisions about a connection (identity, limits, ``authenticate``, duplicates,
version choice, the session's life) are :class:`~csms_kit.admission.Admission`'s, the
same as :func:`csms_kit.serve`'s; this module is the glue to the ASGI WebSocket
protocol. What the ASGI server does instead of csms_kit:

* **Refusals**: an HTTP status with its body and headers goes out through the ASGI
  ``websocket.http.response`` extension (uvicorn, hypercorn and daphne support it);
  under a server without it, a refused station gets that server's answer to a close
  before accept (HTTP 403 mostly).
* **No common subprotocol**: the handshake completes without a subprotocol, and the
  endpoint closes at once with 1002, as ``serve()`` does.
* **Keepalive pings, compression, TLS, the WebSocket frame limit** belong to the
  server (ASGI has no ping message): uvicorn pings every 20 s by default
  (``--ws-ping-interval``/``--ws-ping-timeout``) and closes silent stations;
  hypercorn only pings (``websocket_ping_interval``), with no pong timeout.
  ``max_message_size`` is enforced here as well (1009, as ``serve()``).
* **Shutdown**: :meth:`OcppEndpoint.close` (leaving ``async with``, or the ASGI
  lifespan shutdown when the endpoint is the top-level application) refuses new
  stations with 503, lets CALLs in progress be answered for up to ``grace`` seconds
  and closes each connection with 1001. Servers close their WebSockets themselves
  before the lifespan shutdown runs (uvicorn with 1012 at once, hypercorn after its
  ``graceful_timeout``): call ``await endpoint.close()`` first for the graceful path.
"""

from __future__ import annotations

import contextlib
import http
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from websockets.datastructures import Headers

from csms_kit.admission import Admission, SessionFactory, Ticket, endpoint_admission
from csms_kit.exceptions import TransportClosed, UsageError
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
from csms_kit.instruments import Instruments
from csms_kit.outbox import Outbox
from csms_kit.registry import ConnectionRegistry
from csms_kit.session import StationSession
from csms_kit.versions import OcppVersion

__all__ = ["AsgiTransport", "OcppEndpoint", "ocpp_endpoint"]

logger = logging.getLogger("csms_kit.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Close code for a server restart (RFC 6455 registry: Service Restart).
CLOSE_SERVICE_RESTART = 1012
CLOSE_GOING_AWAY = 1001
CLOSE_MESSAGE_TOO_BIG = 1009
#: The code reported when the connection ended without a close frame.
ABNORMAL_CLOSURE = 1006
#: The ASGI extension that lets an application answer a handshake with any HTTP response.
HTTP_RESPONSE_EXTENSION = "websocket.http.response"


class AsgiTransport:
    """:class:`~csms_kit.transport.Transport` over an accepted ASGI WebSocket.

    ``max_size`` (bytes, ``None`` for none) closes the connection with 1009 when a
    bigger message arrives, as the ``websockets`` server does.

    Error handling: ``recv`` and ``send`` raise
    :class:`~csms_kit.exceptions.TransportClosed` once a ``websocket.disconnect`` was
    received or a close was sent (with the code we sent, or the one the server
    reports); ``close`` never raises and is idempotent.
    """

    __slots__ = ("_closed", "_receive", "_send", "max_size", "remote_address")

    def __init__(
        self, receive: Receive, send: Send, *, max_size: int | None = None, remote_address: Any
    ) -> None:
        self._receive = receive
        self._send = send
        self.max_size = max_size
        self.remote_address = remote_address
        self._closed: TransportClosed | None = None

    async def recv(self) -> str | bytes:
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                data: str | bytes = text if text is not None else (message.get("bytes") or b"")
                if self._closed is not None:
                    continue  # during the closing handshake: read on until the disconnect
                if self.max_size is not None and _too_big(data, self.max_size):
                    await self.close(CLOSE_MESSAGE_TOO_BIG, "message too big")
                    continue
                return data
            if kind == "websocket.disconnect":
                if self._closed is None:
                    self._closed = TransportClosed(
                        int(message.get("code", ABNORMAL_CLOSURE)), message.get("reason") or ""
                    )
                raise self._closed

    async def send(self, message: str) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            await self._send({"type": "websocket.send", "text": message})
        except (OSError, RuntimeError):  # the ASGI server's "the client is gone"
            if self._closed is None:
                self._closed = TransportClosed(ABNORMAL_CLOSURE, "")
            raise self._closed from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is not None:
            return
        # What the connection reports from now on: the frame we sent, as websockets does.
        self._closed = TransportClosed(code, reason)
        with contextlib.suppress(OSError, RuntimeError):  # gone already
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _too_big(data: str | bytes, limit: int) -> bool:
    size = len(data)
    if type(data) is str and limit // 4 < size <= limit:
        size = len(data.encode("utf-8", "surrogatepass"))  # only where characters may tip it
    return size > limit


class OcppEndpoint:
    """An ASGI application serving OCPP over WebSocket; build it with :func:`ocpp_endpoint`.

    Mount it (``app.mount("/ocpp", endpoint)``) or serve it as the whole application.
    The station identity is the last segment of the path below the mount point
    (``root_path``) and ``path_prefix``. Plain HTTP requests get 426 Upgrade Required.

    Resource handling: the endpoint admits stations between :meth:`start` and
    :meth:`close` (``async with endpoint:`` does both; so does the ASGI lifespan
    protocol when the endpoint is the top-level app); before, a station gets 503 and
    an error is logged saying so. :meth:`close` works as
    :meth:`csms_kit.CsmsServer.close` and closes the registry only if the endpoint
    created it.
    """

    def __init__(
        self, admission: Admission, *, owns_registry: bool, max_message_size: int | None
    ) -> None:
        self.admission = admission
        self.max_message_size = max_message_size
        self._owns_registry = owns_registry
        self._state = "new"  # "new" → "running" → "closing" → "closed"

    @property
    def registry(self) -> ConnectionRegistry:
        """The registry of the stations connected here."""
        return self.admission.registry

    @property
    def sessions(self) -> frozenset[StationSession]:
        """The sessions this endpoint runs now."""
        return self.admission.sessions

    @property
    def state(self) -> str:
        """``"new"``, ``"running"`` (admitting stations), ``"closing"`` or ``"closed"``:
        for a readiness probe, anything but ``"running"`` is not ready."""
        return self._state

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start admitting stations (binds the registry to the running loop)."""
        if self._state != "new":
            raise UsageError("this OCPP endpoint has already been started")
        self.registry.attach()
        self._state = "running"
        logger.info(
            "csms_kit OCPP endpoint (ASGI) serving OCPP %s",
            ", ".join(str(v) for v in self.admission.preference),
        )

    async def __aenter__(self) -> OcppEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(
        self,
        *,
        code: int = CLOSE_GOING_AWAY,
        reason: str = "server shutting down",
        grace: float = 10.0,
        restart: bool = False,
    ) -> None:
        """Refuse new stations (503), let CALLs in progress be answered for up to
        ``grace`` seconds, close every connection with 1001 (1012 with ``restart``) and
        return when every session has ended. Idempotent."""
        if self._state != "running":
            return
        self._state = "closing"
        if restart:
            code, reason = CLOSE_SERVICE_RESTART, "server restarting"
        try:
            await self.admission.close(code, reason, grace)
            if self._owns_registry:
                await self.registry.aclose()
        finally:
            self._state = "closed"
        logger.info("csms_kit OCPP endpoint closed")

    # -- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            body = b"this is an OCPP WebSocket endpoint\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": http.HTTPStatus.UPGRADE_REQUIRED,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"upgrade", b"websocket"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.close()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # gone before the handshake
        admission = self.admission
        path = _route_path(scope)
        if self._state == "new":
            logger.error(
                "a station connected to an OCPP endpoint that was not started: enter "
                "'async with endpoint:' in the application's lifespan"
            )
            result: Ticket | Rejection = Rejection(503, "not started\n")
        else:
            result = await admission.admit(path, lambda station_id: _handshake(scope, station_id))
        if isinstance(result, Rejection):
            await _refuse(scope, send, result)
            return
        version = admission.choose_version(scope.get("subprotocols") or ())
        accept: Message = {"type": "websocket.accept"}
        if version is not None:
            accept["subprotocol"] = version.subprotocol
        try:
            await send(accept)
        except BaseException:
            admission.release(result)
            raise
        transport = AsgiTransport(
            receive,
            send,
            max_size=self.max_message_size,
            remote_address=result.handshake.remote_address,
        )
        # None: no common version; Admission.run closes at once with 1002.
        await admission.run(result, transport, version)


async def _refuse(scope: Scope, send: Send, rejection: Rejection) -> None:
    extensions = scope.get("extensions") or {}
    if HTTP_RESPONSE_EXTENSION not in extensions:
        # The server can only refuse on its own terms (403, mostly).
        await send({"type": "websocket.close", "code": 1008, "reason": ""})
        return
    body = rejection.body.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers.extend(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in rejection.headers
    )
    await send(
        {"type": "websocket.http.response.start", "status": rejection.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    """The raw (percent-encoded) path below the mount point, with the query string."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"], safe="/:@!$&'()*+,;=")
    root = (scope.get("root_path") or "").rstrip("/")
    if root and unquote(path).startswith(root):
        # The ASGI path includes root_path (Starlette's Mount, uvicorn --root-path); a
        # server behind a proxy that strips the prefix sends the path alone.
        cut = _raw_prefix_length(path, root)
        if cut is not None:
            path = path[cut:]
    query = scope.get("query_string") or b""
    return path + "?" + query.decode("latin-1") if query else path


def _raw_prefix_length(raw: str, root: str) -> int | None:
    """Where ``raw`` (encoded) stops matching ``root`` (decoded), at a segment boundary."""
    index = raw.find("/", 1)
    while True:
        end = len(raw) if index < 0 else index
        if unquote(raw[:end]) == root:
            return end
        if index < 0:
            return None
        index = raw.find("/", index + 1)


def _handshake(scope: Scope, station_id: str) -> Handshake:
    headers = Headers(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    )
    credentials = parse_basic_auth(headers.get("Authorization"))
    client = scope.get("client")
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    query = scope.get("query_string") or b""
    if query:
        path += "?" + query.decode("latin-1")
    der = None
    tls_info = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls_info.get("client_cert_chain") or ()
    if chain:  # the ASGI TLS extension, where the server implements it
        der = ssl.PEM_cert_to_DER_cert(chain[0])
    return Handshake(
        station_id=station_id,
        path=path,
        headers=headers,
        remote_address=tuple(client) if client is not None else None,
        subprotocols=tuple(scope.get("subprotocols") or ()),
        username=credentials[0] if credentials else None,
        password=credentials[1] if credentials else None,
        tls=scope.get("scheme") in ("wss", "https"),
        peer_certificate_der=der,
    )


def ocpp_endpoint(
    sessions: SessionFactory | Mapping[OcppVersion | str, SessionFactory],
    *,
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
    max_message_size: int | None = 256 * 1024,
) -> OcppEndpoint:
    """Create a CSMS endpoint as an ASGI application (see the module docstring).

    ``sessions``, ``versions``, ``registry``, the hooks, ``instruments``, ``outbox`` and
    the limits mean what they mean for :func:`csms_kit.serve`. ``path_prefix`` applies below the
    mount point: mounted at ``/ocpp`` with the default ``"/"``, stations connect to
    ``/ocpp/<identity>``. Listening, TLS, pings, compression and the handshake timeout
    are the ASGI server's settings.
    """
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
    return OcppEndpoint(admission, owns_registry=owns_registry, max_message_size=max_message_size)
