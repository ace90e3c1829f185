"""The CSMS's boot policy for one station: :class:`BootGate` and :class:`BootInfo`.

OCPP wants a station to be Accepted at boot before it sends anything else (1.6
errata §3.8; 2.0.1 B02/B03): until then its CALLs are answered SecurityError, except
those the CSMS asked for with TriggerMessage. A station whose status the CSMS does
not know (the CSMS restarted, say) is asked once to boot again.

Only the CSMS role has a gate: :class:`~csms_kit.session.StationSession` puts one on
its connection as the role's policy.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import CallFailed, RpcError, UsageError
from csms_kit.logs import station_fields
from csms_kit.protocol.events import IncomingCall, OutgoingCall
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from csms_kit.connection import RpcConnection

__all__ = ["BootGate", "BootInfo"]

logger = logging.getLogger("csms_kit.session")


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a station said about itself in its BootNotification.

    ``request`` is the whole BootNotification request as its dataclass (``None`` in
    a record from another process: only the four fields cross).
    """

    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    request: Any = field(default=None, repr=False, compare=False)

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

    def to_dict(self) -> dict[str, str | None]:
        """The four fields as plain data (the request stays behind)."""
        return {
            "vendor": self.vendor,
            "model": self.model,
            "serial_number": self.serial_number,
            "firmware_version": self.firmware_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BootInfo:
        return cls(
            data.get("vendor"),
            data.get("model"),
            data.get("serial_number"),
            data.get("firmware_version"),
        )


class BootGate:
    """The CSMS's boot policy on one station's connection (a role policy).

    Holds the registration status and what the station said at boot; refuses CALLs
    until it is Accepted (wired into the endpoint as ``admit``); asks a station of
    unknown status to boot again, once per connection; lets the messages asked for
    with TriggerMessage through; forbids calls to a Rejected station.
    """

    __slots__ = ("_asked", "_connection", "_triggered", "gate", "info", "status", "trigger_boot")

    #: The policy observes BootNotification CALLs.
    observed = frozenset({"BootNotification"})

    def __init__(
        self,
        connection: RpcConnection,
        status: str | None,
        *,
        gate: bool,
        trigger_boot: bool,
    ) -> None:
        self._connection = connection
        #: The last BootNotification status given (``None``: unknown).
        self.status = status
        #: What the station said in its last BootNotification.
        self.info: BootInfo | None = None
        self.gate = gate
        self.trigger_boot = trigger_boot
        self._asked = False  # TriggerMessage(BootNotification) sent on this connection
        self._triggered: set[str] | None = None  # created on first use
        if gate:
            connection.endpoint.admit = self.admit

    def admit(self, action: str) -> RpcError | None:
        """The SecurityError for a CALL the gate stops, or ``None`` to let it through."""
        if action == "BootNotification" or self.status == "Accepted":
            return None
        if self._triggered and action in self._triggered:
            # OCPP allows the messages the CSMS asked for with TriggerMessage.
            self._triggered.discard(action)
            return None
        if self.status is None and self.trigger_boot and not self._asked:
            # Unknown to us (e.g. the CSMS restarted): ask the station to boot again.
            self._asked = True
            self._connection.spawn(self._trigger_boot(), "trigger BootNotification")
        return RpcError(
            ErrorCode.SECURITY_ERROR,
            f"BootNotification not accepted (status: {self.status or 'none yet'})",
        )

    async def _trigger_boot(self) -> None:
        try:
            await self._connection.call(
                {"requestedMessage": "BootNotification"}, action="TriggerMessage"
            )
        except (CallFailed, UsageError) as exc:
            logger.info(
                "station %r: TriggerMessage(BootNotification) failed: %s",
                self._connection.station_id,
                exc,
                extra=station_fields(self._connection.station_id),
            )

    def observe_request(self, call: IncomingCall) -> None:
        # Before the handler runs, so that the handler can use it.
        self.info = BootInfo.from_request(self._connection.version, call.request)

    async def observe_answer(self, call: IncomingCall, response: Any) -> None:
        if response is None:
            return  # answered with a CALLERROR: the status stands
        self.status = status_of(response)
        supervisor = self._connection.supervisor
        registration_changed = getattr(supervisor, "registration_changed", None)
        if registration_changed is not None:
            # Stored before the answer goes out: a quick reconnect finds it.
            await registration_changed(self._connection.owner)

    def check_call(self, request: Any, action: str | None) -> None:
        if self.gate and self.status == "Rejected":
            raise UsageError(
                f"station {self._connection.station_id!r} was Rejected at boot: OCPP forbids "
                "the CSMS to send it messages until a later BootNotification is accepted"
            )

    def call_prepared(self, outgoing: OutgoingCall, request: Any) -> None:
        if outgoing.action in _TRIGGERS:
            # Let the message it asks for through the gate once.
            if self._triggered is None:
                self._triggered = set()
            self._triggered.add(_triggered_action(request))


#: The CALLs that ask a station to send a message (1.6's security extension adds one).
_TRIGGERS = frozenset({"TriggerMessage", "ExtendedTriggerMessage"})


def _triggered_action(request: Any) -> str:
    """The action a (Extended)TriggerMessage request asks the station to send."""
    wanted = _text(_get(request, "requested_message", "requestedMessage"))
    # Certificate signing requests are triggered by purpose (2.x) or as
    # SignChargePointCertificate (1.6); they arrive as SignCertificate.
    return "SignCertificate" if wanted.startswith("Sign") else wanted


def status_of(response: Any) -> str:
    """The ``status`` of a BootNotification response (dataclass or dict) as text."""
    return _text(_get(response, "status", "status"))


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def _get(value: Any, attribute: str, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key, value.get(attribute))
    return getattr(value, attribute, None)
