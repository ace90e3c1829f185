"""Lifecycle hooks: what a server tells the application, and what it asks it.

Every hook may be a plain function or a coroutine function.

=================  ==========================================  ======================
hook               called with                                 when
=================  ==========================================  ======================
``authenticate``   :class:`Handshake`                          before the handshake
                                                               completes; return a
                                                               :class:`Rejection` to
                                                               refuse, ``None`` to
                                                               accept
``on_connect``     session                                     session created and
                                                               registered, before its
                                                               first message is read
``on_disconnect``  session, close code, close reason           the connection ended
                                                               and its handlers are done
``on_message``     session, ``"in"`` or ``"out"``, frame text  every frame, both ways
``on_error``       session (or ``None``), exception            a handler, ``@after``
                                                               hook or the transport
                                                               failed; ``None`` when
                                                               the session could not
                                                               be created
=================  ==========================================  ======================

A failing hook is logged (not reported to ``on_error``); it never takes the server
down. A failing ``authenticate`` refuses the connection with HTTP 500.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from csms_kit.role import Role
    from csms_kit.session import StationSession

__all__ = ["Handshake", "Hooks", "Rejection", "call_hook", "host_of", "parse_basic_auth"]

logger = logging.getLogger("csms_kit.hooks")

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Rejection:
    """Refuse a connection at the handshake with HTTP ``status``.

    ``body`` is sent as the response text (keep it free of secrets); ``headers`` are
    added, e.g. ``(("WWW-Authenticate", 'Basic realm="ocpp"'),)`` with a 401.
    """

    status: int
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"a rejection needs an HTTP error status, not {self.status}")


@dataclass
class Handshake:
    """What is known about a connecting station before the WebSocket opens.

    ``username``/``password`` come from an ``Authorization: Basic`` header (``None``
    if absent or malformed; the password as raw bytes, since OCPP 1.6 keys may be
    binary). ``tls`` says whether the connection is over TLS; ``peer_certificate``
    is the TLS client certificate as returned by :meth:`ssl.SSLSocket.getpeercert`
    (``None`` without mutual TLS).
    ``state`` is yours: what ``authenticate`` puts there reaches the session as
    ``session.handshake.state``.
    """

    station_id: str
    path: str
    headers: Mapping[str, str]
    remote_address: Any
    subprotocols: tuple[str, ...]
    username: str | None = None
    password: bytes | None = None
    tls: bool = False
    peer_certificate: dict[str, Any] | None = None
    peer_certificate_der: bytes | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """The peer's IP address as text (from ``remote_address``)."""
        return host_of(self.remote_address)


def host_of(remote_address: Any) -> str:
    """The host part of a socket address: ``("10.0.0.7", 51234)`` gives ``"10.0.0.7"``."""
    if isinstance(remote_address, tuple) and remote_address:
        return str(remote_address[0])
    return str(remote_address)


def parse_basic_auth(header: str | None) -> tuple[str, bytes] | None:
    """(username, password) from an ``Authorization`` header value, or ``None``."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, separator, password = decoded.partition(b":")
    if not separator:
        return None
    try:
        return username.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


Authenticate = Callable[[Handshake], "Rejection | Awaitable[Rejection | None] | None"]
OnConnect = Callable[["StationSession"], Any]
OnDisconnect = Callable[["StationSession", "int | None", str], Any]
OnMessage = Callable[["Role", Direction, "str | bytes"], Any]
OnError = Callable[["Role | None", BaseException], Any]


@dataclass(frozen=True)
class Hooks:
    """The application's hooks; any may be ``None``. See the module docstring."""

    authenticate: Authenticate | None = None
    on_connect: OnConnect | None = None
    on_disconnect: OnDisconnect | None = None
    on_message: OnMessage | None = None
    on_error: OnError | None = None

    async def report_error(self, session: Role | None, error: BaseException) -> None:
        """Tell ``on_error`` about ``error``; a failure of the hook itself is only logged."""
        if self.on_error is not None:
            await call_hook(self.on_error, session, error)


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async hook; log (and never raise) what it raises.

    Returns the hook's result, or ``None`` if it failed.
    """
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        logger.exception("hook %s failed", getattr(hook, "__qualname__", hook))
        return None
    return result
