"""The CSMS's boot policy for one station: :class:`BootGate` and :class:`BootInfo`.

OCPP wants a station to be Accepted at boot before it sends anything else (1.6
errata §3.8; 2.0.1 B02/B03): until then its CALLs are answered SecurityError, except
those the CSMS asked for with TriggerMessage. A station whose status the CSMS does
not know (the CSMS restarted, say) is asked once to boot again.

Only the CSMS role has a gate; it is plain state, with no I/O of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import RpcError
from csms_kit.versions import OcppVersion

__all__ = ["BootGate", "BootInfo"]


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
    """One station's registration status, and what it may send before it is Accepted."""

    __slots__ = ("_asked", "_triggered", "info", "status", "trigger_boot")

    def __init__(self, status: str | None, *, trigger_boot: bool) -> None:
        #: The last BootNotification status given (``None``: unknown).
        self.status = status
        #: What the station said in its last BootNotification.
        self.info: BootInfo | None = None
        self.trigger_boot = trigger_boot
        self._asked = False  # TriggerMessage(BootNotification) sent on this connection
        self._triggered: set[str] | None = None  # created on first use

    def refusal(self, action: str) -> tuple[RpcError | None, bool]:
        """The SecurityError for a CALL the gate stops (``None``: let it through), and
        whether to ask the station to boot now (once per connection)."""
        if action == "BootNotification" or self.status == "Accepted":
            return None, False
        if self._triggered and action in self._triggered:
            # OCPP allows the messages the CSMS asked for with TriggerMessage.
            self._triggered.discard(action)
            return None, False
        ask = self.status is None and self.trigger_boot and not self._asked
        self._asked = self._asked or ask
        return RpcError(
            ErrorCode.SECURITY_ERROR,
            f"BootNotification not accepted (status: {self.status or 'none yet'})",
        ), ask

    def expect(self, trigger_request: Any) -> None:
        """A TriggerMessage is going out: let the message it asks for through once."""
        if self._triggered is None:
            self._triggered = set()
        self._triggered.add(_triggered_action(trigger_request))


def _triggered_action(request: Any) -> str:
    """The action a TriggerMessage request asks the station to send."""
    wanted = _text(_get(request, "requested_message", "requestedMessage"))
    # 2.x triggers certificate signing requests by purpose; they arrive as SignCertificate.
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
