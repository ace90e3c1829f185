"""What both roles of an OCPP-J connection share: :class:`Role`.

A role is the object users subclass: :class:`~csms_kit.session.StationSession` for
the CSMS side, :class:`~csms_kit.client.StationClient` for the station side. It holds
the handlers and the configuration, and runs on an
:class:`~csms_kit.connection.RpcConnection`, which does the work (see
:mod:`csms_kit.connection` for the rules of reading, handling, calling and ending).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, ClassVar

from csms_kit.connection import CLOSE_GOING_AWAY, RpcConnection, Supervisor
from csms_kit.exceptions import PeerDisconnected
from csms_kit.hooks import Hooks
from csms_kit.instruments import Instruments
from csms_kit.limits import Limits
from csms_kit.protocol.validation import ValidationPolicy
from csms_kit.routing import Router, RouteTable, collect_routes
from csms_kit.transport import Transport
from csms_kit.versions import OcppVersion

__all__ = ["Role"]


class Role:
    """One side's view of an OCPP-J connection: what both roles share; subclass a role.

    :class:`~csms_kit.session.StationSession` (the CSMS side) and
    :class:`~csms_kit.client.StationClient` (the station side) are roles; a role
    holds its handlers (``@on``, ``@after``) and runs on an :class:`RpcConnection`,
    which does the work. A subclass's namespace is its own: the machinery lives in
    ``_connection``.

    Class attributes configure every connection of a class: ``routers`` (see
    :class:`~csms_kit.routing.Router`), ``validation`` (a
    :class:`~csms_kit.ValidationPolicy`), ``call_timeout`` and ``handler_grace``
    (seconds), ``limits`` (:class:`~csms_kit.Limits`). Keyword arguments override
    them per connection.

    Attributes for the application: ``station_id``, ``version``, ``remote_address``,
    ``connected_at``, :attr:`last_seen`, ``stats``, ``transport``, ``endpoint``, and
    ``state``, a dict that is the application's own.
    """

    routes: ClassVar[RouteTable]
    routers: ClassVar[Sequence[Router]] = ()
    validation: ClassVar[ValidationPolicy] = ValidationPolicy()
    call_timeout: ClassVar[float] = 30.0
    handler_grace: ClassVar[float] = 5.0
    limits: ClassVar[Limits] = Limits()
    #: What calls fail with when the peer goes away; each role names its peer.
    peer_disconnected: ClassVar[type[PeerDisconnected]] = PeerDisconnected

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
        hooks: Hooks | None = None,
        limits: Limits | None = None,
        instruments: Instruments | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.station_id = station_id
        self.version = OcppVersion.parse(version)
        self.remote_address = (
            getattr(transport, "remote_address", None)
            if remote_address is None
            else remote_address
        )
        self.connected_at = datetime.datetime.now(datetime.timezone.utc)
        self.state: dict[str, Any] = {}
        self._connection = connection = RpcConnection(
            self,
            transport,
            validation=validation or self.validation,
            call_timeout=self.call_timeout if call_timeout is None else call_timeout,
            handler_grace=self.handler_grace if handler_grace is None else handler_grace,
            hooks=hooks,
            limits=self.limits if limits is None else limits,
            instruments=instruments,
            supervisor=supervisor,
        )
        self.transport = transport
        self.endpoint = connection.endpoint
        self.stats = connection.stats

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.station_id!r} OCPP {self.version}>"

    @property
    def hooks(self) -> Hooks:
        """The server's hooks (none outside a server)."""
        return self._connection.hooks

    @property
    def last_seen(self) -> datetime.datetime:
        """When the peer last sent a frame (connection time before the first)."""
        return self._connection.last_seen

    @property
    def ended(self) -> bool:
        """Whether the connection has ended, whichever side ended it."""
        return self._connection.ended

    @property
    def close_code(self) -> int | None:
        """The close code that ended the connection (``None`` while it is open)."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str:
        """The close reason that ended the connection (``""`` while it is open)."""
        return self._connection.close_reason

    async def run(self) -> None:
        """Read and handle the peer's messages until the connection ends.

        Returns once the connection has ended and every handler task has finished
        (see the :mod:`module docstring <csms_kit.connection>` for the rule).
        Cancelling ``run`` closes the connection and cancels its handlers.
        """
        await self._connection.run()

    async def call(
        self, request: Any, *, action: str | None = None, timeout: float | None = None
    ) -> Any:
        """See :meth:`Role.call`."""
        return await self._connection.call(request, action=action, timeout=timeout)

    async def call_payload(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`call` with JSON payloads in and out: what a registry relays between nodes.

        ``message_id`` resends a CALL made on an earlier connection with the same
        messageId (OCPP 2.1 allows it; the outbox does it after a restart).
        """
        return await self._connection.call_payload(
            action, payload, timeout=timeout, message_id=message_id
        )

    async def send(self, message: Any, *, action: str | None = None) -> None:
        """Send an OCPP 2.1 SEND message (never answered); allowed while a CALL is out."""
        await self._connection.send(message, action=action)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code``/``reason``.

        Outgoing calls fail with :class:`~csms_kit.exceptions.SessionClosed` at once.
        Handlers already running may finish; :meth:`run` returns when they have.
        """
        await self._connection.close(code, reason)

    async def shutdown(
        self, code: int = CLOSE_GOING_AWAY, reason: str = "", grace: float | None = None
    ) -> None:
        """Let the CALLs the peer already sent be answered, then :meth:`close`.

        Waits at most ``grace`` seconds (default ``handler_grace``) for the handlers;
        the peer's CALLs arriving meanwhile are handled too. This is how a server
        shuts down without losing a response.
        """
        await self._connection.shutdown(code, reason, grace)


Role.routes = collect_routes(Role)
