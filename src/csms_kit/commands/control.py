"""Commands that act on the station and its connectors: reset, availability, unlock,
trigger a message, clear the authorization cache, vendor data.

EVSEs and connectors: OCPP 1.6 numbers a station's connectors 1, 2, ... (0 is the
station itself); 2.x has EVSEs numbered so, each with connectors of its own. Here
``evse_id`` is the 2.x EVSE and the 1.6 ``connectorId`` (a 1.6 connector is an EVSE
with one connector); ``connector_id`` is the connector within a 2.x EVSE, which 1.6
cannot name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from csms_kit.commands.base import (
    V16,
    V21,
    Command,
    CommandResult,
    Target,
    check_choice,
    simple_result,
    status_result,
)
from csms_kit.exceptions import UsageError
from csms_kit.versions import OcppVersion

__all__ = [
    "ChangeAvailability",
    "ClearCache",
    "DataTransfer",
    "DataTransferResult",
    "Reset",
    "ResetKind",
    "TriggerMessage",
    "UnlockConnector",
    "change_availability",
    "clear_cache",
    "data_transfer",
    "reset",
    "trigger_message",
    "unlock_connector",
]

ResetKind = Literal["hard", "soft"]
_NO_CONNECTOR_16 = "1.6 has no connectors within an EVSE; give its connectorId as evse_id"


def _evse(evse_id: int | None, connector_id: int | None) -> dict[str, Any] | None:
    """The 2.x ``evse`` object; ``None`` for the whole station (no id, or 0)."""
    if not evse_id:
        return None
    evse: dict[str, Any] = {"id": evse_id}
    if connector_id is not None:
        evse["connectorId"] = connector_id
    return evse


def _check_connector(name: str, evse_id: int | None, connector_id: int | None) -> None:
    if connector_id is not None and not evse_id:
        raise UsageError(f"{name}: a connector_id needs the evse_id it belongs to")


# -- Reset --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reset(Command[CommandResult]):
    """Restart the station: 1.6 Reset Hard/Soft, 2.x Reset Immediate/OnIdle.

    ``"hard"`` is 1.6 Hard and 2.x Immediate; ``"soft"`` is 1.6 Soft and 2.x OnIdle.
    Approximated: a 1.6 soft reset stops a transaction at once (gracefully), a 2.x
    OnIdle reset waits for it to end (the station answers Scheduled, which counts as
    accepted). ``evse_id`` resets one EVSE (2.x only).
    """

    name: ClassVar[str] = "reset"
    kind: ResetKind = "soft"
    evse_id: int | None = None

    def __post_init__(self) -> None:
        check_choice(self.kind, ("hard", "soft"), f"{self.name}: kind")

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        hard = self.kind == "hard"
        if version is V16:
            if self.evse_id is not None:
                raise self._unsupported(version, "1.6 resets the whole station (no evse_id)")
            return "Reset", {"type": "Hard" if hard else "Soft"}
        payload: dict[str, Any] = {"type": "Immediate" if hard else "OnIdle"}
        if self.evse_id is not None:
            payload["evseId"] = self.evse_id
        return "Reset", payload

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload, ("Accepted", "Scheduled"))


async def reset(
    target: Target,
    station_id: str | None = None,
    *,
    kind: ResetKind = "soft",
    evse_id: int | None = None,
    timeout: float | None = None,
) -> CommandResult:
    """Restart a station (see :class:`Reset`)."""
    return await Reset(kind, evse_id).send(target, station_id, timeout=timeout)


# -- ChangeAvailability -------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeAvailability(Command[CommandResult]):
    """Make the station, an EVSE or a connector operative or inoperative.

    ``evse_id`` ``None`` (or 0): the whole station. Accepted and Scheduled (once a
    transaction ends) count as accepted.
    """

    name: ClassVar[str] = "change_availability"
    operative: bool
    evse_id: int | None = None
    connector_id: int | None = None

    def __post_init__(self) -> None:
        _check_connector(self.name, self.evse_id, self.connector_id)

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        status = "Operative" if self.operative else "Inoperative"
        if version is V16:
            if self.connector_id is not None:
                raise self._unsupported(version, _NO_CONNECTOR_16)
            return "ChangeAvailability", {"connectorId": self.evse_id or 0, "type": status}
        payload: dict[str, Any] = {"operationalStatus": status}
        evse = _evse(self.evse_id, self.connector_id)
        if evse is not None:
            payload["evse"] = evse
        return "ChangeAvailability", payload

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload, ("Accepted", "Scheduled"))


async def change_availability(
    target: Target,
    station_id: str | None = None,
    *,
    operative: bool,
    evse_id: int | None = None,
    connector_id: int | None = None,
    timeout: float | None = None,
) -> CommandResult:
    """Make a station, EVSE or connector (in)operative (see :class:`ChangeAvailability`)."""
    command = ChangeAvailability(operative, evse_id, connector_id)
    return await command.send(target, station_id, timeout=timeout)


# -- UnlockConnector ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnlockConnector(Command[CommandResult]):
    """Unlock a connector's cable: accepted when the station answers Unlocked.

    1.6 names it by ``evse_id`` alone (its ``connectorId``); ``connector_id`` is the
    connector within a 2.x EVSE, 1 unless told.
    """

    name: ClassVar[str] = "unlock_connector"
    evse_id: int
    connector_id: int = 1

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        if version is V16:
            if self.connector_id != 1:
                raise self._unsupported(version, _NO_CONNECTOR_16)
            return "UnlockConnector", {"connectorId": self.evse_id}
        return "UnlockConnector", {"evseId": self.evse_id, "connectorId": self.connector_id}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload, ("Unlocked",))


async def unlock_connector(
    target: Target,
    station_id: str | None = None,
    *,
    evse_id: int,
    connector_id: int = 1,
    timeout: float | None = None,
) -> CommandResult:
    """Unlock a connector (see :class:`UnlockConnector`)."""
    return await UnlockConnector(evse_id, connector_id).send(target, station_id, timeout=timeout)


# -- TriggerMessage -----------------------------------------------------------------------

#: What each version calls a message TriggerMessage may ask for: 1.6 ``(action,
#: requestedMessage)``, 2.0.1 and 2.1 ``requestedMessage``; ``None``: no counterpart.
_TRIGGERS: dict[str, tuple[tuple[str, str] | None, str | None, str | None]] = {
    name: (("TriggerMessage", name), name, name)
    for name in (
        "BootNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    )
}
_TRIGGERS["LogStatusNotification"] = (
    ("TriggerMessage", "DiagnosticsStatusNotification"),
    "LogStatusNotification",
    "LogStatusNotification",
)
_TRIGGERS["SignChargingStationCertificate"] = (
    ("ExtendedTriggerMessage", "SignChargePointCertificate"),
    "SignChargingStationCertificate",
    "SignChargingStationCertificate",
)
for _name in (
    "PublishFirmwareStatusNotification",
    "SignCombinedCertificate",
    "SignV2GCertificate",
    "TransactionEvent",
):
    _TRIGGERS[_name] = (None, _name, _name)
_TRIGGERS["SignV2G20Certificate"] = (None, None, "SignV2G20Certificate")
#: 1.6 names of the same messages.
_ALIASES = {
    "DiagnosticsStatusNotification": "LogStatusNotification",
    "SignChargePointCertificate": "SignChargingStationCertificate",
}


@dataclass(frozen=True)
class TriggerMessage(Command[CommandResult]):
    """Ask the station to send a message now: 1.6 TriggerMessage, 2.x TriggerMessage.

    ``message`` is the message's name in either version: ``LogStatusNotification`` is
    1.6's DiagnosticsStatusNotification; ``SignChargingStationCertificate`` goes to a
    1.6 station as ExtendedTriggerMessage SignChargePointCertificate (security
    whitepaper). Messages only 2.x has (``TransactionEvent``...) raise
    :class:`~csms_kit.exceptions.UsageError` for a 1.6 station. ``evse_id`` (and
    ``connector_id``, 2.x only) narrow it to an EVSE.
    """

    name: ClassVar[str] = "trigger_message"
    message: str
    evse_id: int | None = None
    connector_id: int | None = None

    def __post_init__(self) -> None:
        _check_connector(self.name, self.evse_id, self.connector_id)
        if _ALIASES.get(self.message, self.message) not in _TRIGGERS:
            names = ", ".join(sorted([*_TRIGGERS, *_ALIASES]))
            raise UsageError(f"{self.name}: cannot ask for {self.message!r}; one of {names}")

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        v16, v201, v21 = _TRIGGERS[_ALIASES.get(self.message, self.message)]
        if version is V16:
            if v16 is None:
                raise self._unsupported(version, f"1.6 cannot ask for {self.message}")
            if self.connector_id is not None:
                raise self._unsupported(version, _NO_CONNECTOR_16)
            action, wanted = v16
            payload: dict[str, Any] = {"requestedMessage": wanted}
            if self.evse_id is not None:
                payload["connectorId"] = self.evse_id
            return action, payload
        wanted_2x = v21 if version is V21 else v201
        if wanted_2x is None:
            raise self._unsupported(version, f"only OCPP 2.1 can ask for {self.message}")
        payload = {"requestedMessage": wanted_2x}
        evse = _evse(self.evse_id, self.connector_id)
        if evse is not None:
            payload["evse"] = evse
        return "TriggerMessage", payload

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload)


async def trigger_message(
    target: Target,
    station_id: str | None = None,
    *,
    message: str,
    evse_id: int | None = None,
    connector_id: int | None = None,
    timeout: float | None = None,
) -> CommandResult:
    """Ask a station to send ``message`` now (see :class:`TriggerMessage`)."""
    command = TriggerMessage(message, evse_id, connector_id)
    return await command.send(target, station_id, timeout=timeout)


# -- ClearCache ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClearCache(Command[CommandResult]):
    """Clear the station's authorization cache: ClearCache in every version."""

    name: ClassVar[str] = "clear_cache"

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        return "ClearCache", {}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload)


async def clear_cache(
    target: Target, station_id: str | None = None, *, timeout: float | None = None
) -> CommandResult:
    """Clear a station's authorization cache (see :class:`ClearCache`)."""
    return await ClearCache().send(target, station_id, timeout=timeout)


# -- DataTransfer -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DataTransferResult(CommandResult):
    """The answer to :class:`DataTransfer`; ``data`` is what the station sent back."""

    data: Any = None


@dataclass(frozen=True)
class DataTransfer(Command[DataTransferResult]):
    """Vendor-specific data: DataTransfer in every version.

    ``data`` is any JSON value. 1.6 carries text only: data that is not a string
    goes to a 1.6 station as JSON text, and its answer's ``data`` comes back as the
    text it sent.
    """

    name: ClassVar[str] = "data_transfer"
    vendor_id: str
    message_id: str | None = None
    data: Any = None

    def __post_init__(self) -> None:
        try:
            json.dumps(self.data, allow_nan=False)
        except (TypeError, ValueError):
            raise UsageError(f"{self.name}: data must be JSON, not {self.data!r:.100}") from None

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"vendorId": self.vendor_id}
        if self.message_id is not None:
            payload["messageId"] = self.message_id
        if self.data is not None:
            text_only = version is V16 and not isinstance(self.data, str)
            payload["data"] = (
                json.dumps(self.data, separators=(",", ":")) if text_only else self.data
            )
        return "DataTransfer", payload

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> DataTransferResult:
        return status_result(payload, ("Accepted",), DataTransferResult, data=payload.get("data"))


async def data_transfer(
    target: Target,
    station_id: str | None = None,
    *,
    vendor_id: str,
    message_id: str | None = None,
    data: Any = None,
    timeout: float | None = None,
) -> DataTransferResult:
    """Send vendor-specific data to a station (see :class:`DataTransfer`)."""
    command = DataTransfer(vendor_id, message_id, data)
    return await command.send(target, station_id, timeout=timeout)
