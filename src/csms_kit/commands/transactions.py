"""Starting and stopping a transaction from the CSMS: remote start and remote stop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from csms_kit.commands.base import (
    V16,
    Command,
    CommandResult,
    Target,
    new_request_id,
    simple_result,
    status_result,
    transaction_id_for,
)
from csms_kit.commands.charging import ChargingProfile
from csms_kit.exceptions import UsageError
from csms_kit.versions import OcppVersion

__all__ = [
    "RemoteStart",
    "RemoteStartResult",
    "RemoteStop",
    "remote_start",
    "remote_stop",
]


@dataclass(frozen=True, kw_only=True)
class RemoteStartResult(CommandResult):
    """The answer to :class:`RemoteStart`.

    ``transaction_id``: 2.x only, when a transaction had already begun (the cable was
    plugged in first); otherwise the transaction's id comes later, in the station's
    StartTransaction (1.6) or TransactionEvent (2.x). ``remote_start_id``: the id that
    TransactionEvent will carry (2.x; ``None`` for 1.6).
    """

    transaction_id: str | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True)
class RemoteStart(Command[RemoteStartResult]):
    """Start a transaction for ``id_token``: 1.6 RemoteStartTransaction, 2.x
    RequestStartTransaction.

    ``evse_id``: where (the station chooses when ``None``). ``id_token_type``: the 2.x
    idToken type (1.6 has none: it is dropped). ``remote_start_id``: 2.x's id for the
    request, a random one unless given (kept in the command, so that a resend uses
    the same). ``charging_profile``: a TxProfile for the transaction, without a
    transaction id.
    """

    name: ClassVar[str] = "remote_start"
    id_token: str
    evse_id: int | None = None
    id_token_type: str = "Central"
    charging_profile: ChargingProfile | None = None
    remote_start_id: int = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        profile = self.charging_profile
        if isinstance(profile, Mapping):
            profile = ChargingProfile(**profile)
            object.__setattr__(self, "charging_profile", profile)
        if profile is not None and (
            profile.purpose != "TxProfile" or profile.transaction_id is not None
        ):
            raise UsageError(
                f"{self.name}: the charging profile of a remote start is a TxProfile "
                "without a transaction_id"
            )

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        profile = self.charging_profile
        payload: dict[str, Any]
        if version is V16:
            action = "RemoteStartTransaction"
            payload = {"idTag": self.id_token}
            if self.evse_id is not None:
                payload["connectorId"] = self.evse_id
        else:
            action = "RequestStartTransaction"
            payload = {
                "idToken": {"idToken": self.id_token, "type": self.id_token_type},
                "remoteStartId": self.remote_start_id,
            }
            if self.evse_id is not None:
                payload["evseId"] = self.evse_id
        if profile is not None:
            payload["chargingProfile"] = profile.payload(version, self.name)
        return action, payload

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> RemoteStartResult:
        transaction_id = payload.get("transactionId")
        return status_result(
            payload,
            ("Accepted",),
            RemoteStartResult,
            transaction_id=None if transaction_id is None else str(transaction_id),
            remote_start_id=None if version is V16 else self.remote_start_id,
        )


@dataclass(frozen=True)
class RemoteStop(Command[CommandResult]):
    """Stop a transaction: 1.6 RemoteStopTransaction, 2.x RequestStopTransaction.

    ``transaction_id`` is an integer in 1.6 and a string in 2.x; either is
    converted (a 1.6 station's id given as ``"42"`` is sent as ``42``).
    """

    name: ClassVar[str] = "remote_stop"
    transaction_id: int | str

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        transaction_id = transaction_id_for(version, self.transaction_id, self.name)
        action = "RemoteStopTransaction" if version is V16 else "RequestStopTransaction"
        return action, {"transactionId": transaction_id}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload)


async def remote_start(
    target: Target,
    station_id: str | None = None,
    *,
    id_token: str,
    evse_id: int | None = None,
    id_token_type: str = "Central",
    charging_profile: ChargingProfile | None = None,
    remote_start_id: int | None = None,
    timeout: float | None = None,
) -> RemoteStartResult:
    """Start a transaction on a station (see :class:`RemoteStart`)."""
    command = RemoteStart(
        id_token,
        evse_id,
        id_token_type,
        charging_profile,
        new_request_id() if remote_start_id is None else remote_start_id,
    )
    return await command.send(target, station_id, timeout=timeout)


async def remote_stop(
    target: Target,
    station_id: str | None = None,
    *,
    transaction_id: int | str,
    timeout: float | None = None,
) -> CommandResult:
    """Stop a transaction on a station (see :class:`RemoteStop`)."""
    return await RemoteStop(transaction_id).send(target, station_id, timeout=timeout)
