"""The CSMS side of one station's connection: :class:`StationSession`.

A session is a :class:`~csms_kit.role.Role` (handlers, ``call``/``send``,
lifecycle, run by an :class:`~csms_kit.connection.RpcConnection`: see that module for
the rules) plus the CSMS's own policy: the boot gate (:mod:`csms_kit.boot`), what
the station said at boot, and
the registration status, which the server keeps in the registry across the
station's connections. Subclass it and add handlers with ``@on``.

The session never touches the registry: whoever runs it (a server) registers it,
is told when it ends (``supervisor``) and stores its registration status.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from csms_kit.boot import BootGate, BootInfo
from csms_kit.connection import Supervisor
from csms_kit.exceptions import StationDisconnected
from csms_kit.hooks import Handshake
from csms_kit.role import Role
from csms_kit.transport import Transport
from csms_kit.versions import OcppVersion

__all__ = ["StationSession", "StationSupervisor"]


class StationSupervisor(Supervisor, Protocol):
    """A supervisor that also keeps the station's registration status (a server)."""

    async def registration_changed(self, session: StationSession) -> None:
        """The station was answered a BootNotification: remember its status."""


class StationSession(Role):
    """The CSMS side of one station's connection; subclass it to add handlers.

    Class attributes configure every session of a class: those of
    :class:`~csms_kit.role.Role` (``routers``, ``validation``,
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
        self._boot = BootGate(
            self._connection,
            registration_status,
            gate=self.boot_gate,
            trigger_boot=self.trigger_boot,
        )
        self._connection.policy = self._boot

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
