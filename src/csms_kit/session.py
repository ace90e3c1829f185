"""The CSMS side of one station's connection: :class:`StationSession`.

A session is an :class:`~csms_kit.connection.RpcConnection` (reader, handlers,
``call``/``send``, lifecycle: see that module for the rules) plus the CSMS's own
policy: the boot gate (:mod:`csms_kit.boot`), what the station said at boot, and
the registration status, which the server keeps in the registry across the
station's connections. Subclass it and add handlers with ``@on``.

The session never touches the registry: whoever runs it (a server) registers it,
is told when it ends (``supervisor``) and stores its registration status.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Protocol

from csms_kit.boot import BootGate, BootInfo, status_of
from csms_kit.connection import RpcConnection, Supervisor
from csms_kit.exceptions import CallFailed, RpcError, StationDisconnected, UsageError
from csms_kit.hooks import Handshake
from csms_kit.protocol import IncomingCall, OutgoingCall
from csms_kit.transport import Transport
from csms_kit.versions import OcppVersion

__all__ = ["StationSession", "StationSupervisor"]

logger = logging.getLogger("csms_kit.session")


class StationSupervisor(Supervisor, Protocol):
    """A supervisor that also keeps the station's registration status (a server)."""

    async def registration_changed(self, session: StationSession) -> None:
        """The station was answered a BootNotification: remember its status."""


class StationSession(RpcConnection):
    """The CSMS side of one station's connection; subclass it to add handlers.

    Class attributes configure every session of a class: those of
    :class:`~csms_kit.connection.RpcConnection` (``routers``, ``validation``,
    ``call_timeout``, ``handler_grace``, ``limits``), and ``boot_gate`` (refuse
    CALLs with SecurityError until the station is Accepted at boot) and
    ``trigger_boot`` (ask a station of unknown status to boot again). Keyword
    arguments override the first ones per session.

    Attributes for the application: ``station_id``, ``version``, ``remote_address``,
    ``connected_at``, :attr:`last_seen`, ``handshake``, :attr:`boot_info`,
    :attr:`registration_status`, :attr:`booted`, ``stats``, and ``state``, a dict
    that is the application's own.
    """

    boot_gate: ClassVar[bool] = True
    trigger_boot: ClassVar[bool] = True
    peer_disconnected = StationDisconnected
    _observed = frozenset({"BootNotification"})

    def __init__(
        self,
        station_id: str,
        transport: Transport,
        version: OcppVersion | str,
        *,
        handshake: Handshake | None = None,
        registration_status: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(station_id, transport, version, **options)
        self.handshake = handshake
        self._boot = BootGate(registration_status, trigger_boot=self.trigger_boot)
        if self.boot_gate:
            self.endpoint.admit = self._admit

    # -- what the station said at boot ------------------------------------------------

    @property
    def boot_info(self) -> BootInfo | None:
        """What the station said in its last BootNotification on this connection.

        Set before the BootNotification handler runs, so the handler can use it.
        """
        return self._boot.info

    @property
    def registration_status(self) -> str | None:
        """The last BootNotification status given to the station (across connections).

        Set once the BootNotification handler has answered; ``None`` if unknown.
        """
        return self._boot.status

    @property
    def booted(self) -> bool:
        """Whether the station has been answered Accepted at boot."""
        return self._boot.status == "Accepted"

    def _observe_request(self, call: IncomingCall) -> None:
        self._boot.info = BootInfo.from_request(self.version, call.request)

    async def _observe_answer(self, call: IncomingCall, response: Any) -> None:
        if response is None:
            return  # answered with a CALLERROR: the status stands
        self._boot.status = status_of(response)
        registration_changed = getattr(self._supervisor, "registration_changed", None)
        if registration_changed is not None:
            # Stored before the answer goes out: a quick reconnect finds it.
            await registration_changed(self)

    # -- the boot gate -------------------------------------------------------------------

    def _admit(self, action: str) -> RpcError | None:
        refusal, ask = self._boot.refusal(action)
        if ask:
            # Unknown to us (e.g. the CSMS restarted): ask the station to boot again.
            self._spawn(self._trigger_boot(), "trigger BootNotification")
        return refusal

    async def _trigger_boot(self) -> None:
        try:
            await self.call({"requestedMessage": "BootNotification"}, action="TriggerMessage")
        except (CallFailed, UsageError) as exc:
            logger.info(
                "station %r: TriggerMessage(BootNotification) failed: %s", self.station_id, exc
            )

    def _prepare(self, request: Any, action: str | None) -> OutgoingCall:
        if self.boot_gate and self._boot.status == "Rejected":
            raise UsageError(
                f"station {self.station_id!r} was Rejected at boot: OCPP forbids the CSMS "
                "to send it messages until a later BootNotification is accepted"
            )
        outgoing = super()._prepare(request, action)
        if outgoing.action == "TriggerMessage":
            self._boot.expect(request)
        return outgoing
