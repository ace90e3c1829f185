"""Smart charging: a version-neutral :class:`ChargingProfile`, and the commands that set
and clear profiles.

A profile is the part 1.6 and 2.x share: one schedule of periods, each a limit in A
or W from a start offset. 2.x's extras (several schedules, sales tariffs, 2.1's
setpoints and price schedules) are not expressed here: send those with
:meth:`~csms_kit.StationSession.call` directly.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from csms_kit.commands.base import (
    V16,
    V201,
    Command,
    CommandResult,
    Target,
    check_choice,
    compact,
    optional_timestamp,
    simple_result,
    transaction_id_for,
)
from csms_kit.exceptions import UsageError
from csms_kit.versions import OcppVersion

__all__ = [
    "ChargingProfile",
    "ChargingSchedule",
    "ChargingSchedulePeriod",
    "ClearChargingProfile",
    "SetChargingProfile",
    "clear_charging_profile",
    "set_charging_profile",
]

#: Profile purposes in 2.x's words (2.1 adds the last two).
PURPOSES = (
    "ChargingStationMaxProfile",
    "TxDefaultProfile",
    "TxProfile",
    "ChargingStationExternalConstraints",
    "PriorityCharging",
    "LocalGeneration",
)
#: 1.6's name of each purpose it has.
_PURPOSE_16 = {
    "ChargingStationMaxProfile": "ChargePointMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}
_PURPOSE_ALIASES = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}
_PURPOSES_201 = PURPOSES[:4]
#: Profile kinds (2.1 adds Dynamic).
KINDS = ("Absolute", "Recurring", "Relative", "Dynamic")


def _purpose(value: str, what: str) -> str:
    """``value`` in 2.x's words (1.6's ChargePointMaxProfile is accepted)."""
    value = _PURPOSE_ALIASES.get(value, value)
    check_choice(value, PURPOSES, what)
    return value


def _purpose_for(version: OcppVersion, purpose: str, what: str) -> str:
    if version is V16:
        if purpose not in _PURPOSE_16:
            raise UsageError(f"{what} for an OCPP 1.6 station: 1.6 has no {purpose}")
        return _PURPOSE_16[purpose]
    if version is V201 and purpose not in _PURPOSES_201:
        raise UsageError(f"{what} for an OCPP 2.0.1 station: only 2.1 has {purpose}")
    return purpose


def _tenths(value: float) -> float:
    """``value`` rounded down to tenths: 1.6's schemas take rates in tenths, and a limit
    must not grow on the way."""
    exact = decimal.Decimal(repr(value))  # the shortest repr: 2.3, not 2.29999...
    return float(exact.quantize(decimal.Decimal("0.1"), rounding=decimal.ROUND_FLOOR))


@dataclass(frozen=True)
class ChargingSchedulePeriod:
    """From ``start`` seconds into the schedule, at most ``limit`` (A or W), on
    ``phases`` phases (the station's default when ``None``)."""

    start: int
    limit: float
    phases: int | None = None

    def payload(self, version: OcppVersion) -> dict[str, Any]:
        limit = _tenths(self.limit) if version is V16 else self.limit
        return compact({"startPeriod": self.start, "limit": limit, "numberPhases": self.phases})


@dataclass(frozen=True)
class ChargingSchedule:
    """A profile's schedule: limits in ``rate_unit`` (``"A"`` or ``"W"``) over time.

    ``start``: when it begins (for Absolute and Recurring profiles); ``duration`` in
    seconds; ``min_rate``: the lowest rate the station should charge at; ``id``: the
    2.x schedule id (the profile's id when ``None``; 1.6 has none).
    """

    rate_unit: Literal["A", "W"]
    periods: Sequence[ChargingSchedulePeriod]
    start: datetime.datetime | str | None = None
    duration: int | None = None
    min_rate: float | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        check_choice(self.rate_unit, ("A", "W"), "charging schedule: rate_unit")
        periods = tuple(
            ChargingSchedulePeriod(**p) if isinstance(p, Mapping) else p for p in self.periods
        )
        if not periods:
            raise UsageError("charging schedule: at least one period")
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "start", optional_timestamp(self.start, "charging schedule"))

    def payload(self, version: OcppVersion, profile_id: int) -> dict[str, Any]:
        return compact(
            {
                "id": None if version is V16 else (profile_id if self.id is None else self.id),
                "startSchedule": self.start,
                "duration": self.duration,
                "chargingRateUnit": self.rate_unit,
                "chargingSchedulePeriod": [p.payload(version) for p in self.periods],
                "minChargingRate": None
                if self.min_rate is None
                else (_tenths(self.min_rate) if version is V16 else self.min_rate),
            }
        )


@dataclass(frozen=True)
class ChargingProfile:
    """A charging profile, as 1.6 and 2.x both have it.

    ``purpose`` in 2.x's words: ``"ChargingStationMaxProfile"`` (1.6's
    ChargePointMaxProfile, which is accepted too), ``"TxDefaultProfile"``,
    ``"TxProfile"``; 2.x-only purposes raise
    :class:`~csms_kit.exceptions.UsageError` for a 1.6 station. ``kind``:
    ``"Absolute"``, ``"Recurring"`` (with ``recurrency`` ``"Daily"`` or
    ``"Weekly"``), ``"Relative"``. ``transaction_id``: the transaction a TxProfile is
    for (an integer in 1.6, a string in 2.x; either is converted).
    """

    id: int
    stack_level: int
    purpose: str
    schedule: ChargingSchedule
    kind: str = "Absolute"
    recurrency: str | None = None
    valid_from: datetime.datetime | str | None = None
    valid_to: datetime.datetime | str | None = None
    transaction_id: int | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "purpose", _purpose(self.purpose, "charging profile: purpose"))
        check_choice(self.kind, KINDS, "charging profile: kind")
        if self.recurrency is not None:
            check_choice(self.recurrency, ("Daily", "Weekly"), "charging profile: recurrency")
        if self.transaction_id is not None and self.purpose != "TxProfile":
            raise UsageError("charging profile: only a TxProfile has a transaction_id")
        if isinstance(self.schedule, Mapping):
            object.__setattr__(self, "schedule", ChargingSchedule(**self.schedule))
        for name in ("valid_from", "valid_to"):
            value = optional_timestamp(getattr(self, name), f"charging profile: {name}")
            object.__setattr__(self, name, value)

    def payload(self, version: OcppVersion, what: str) -> dict[str, Any]:
        """The profile as ``version`` writes it (1.6 ``csChargingProfiles``, 2.x
        ``chargingProfile``); ``what`` names the command in errors."""
        purpose = _purpose_for(version, self.purpose, what)
        if self.kind == "Dynamic" and version is not OcppVersion.V21:
            raise UsageError(
                f"{what} for an OCPP {version} station: only 2.1 has Dynamic profiles"
            )
        transaction_id = (
            None
            if self.transaction_id is None
            else transaction_id_for(version, self.transaction_id, what)
        )
        return compact(
            {
                "chargingProfileId" if version is V16 else "id": self.id,
                "stackLevel": self.stack_level,
                "chargingProfilePurpose": purpose,
                "chargingProfileKind": self.kind,
                "recurrencyKind": self.recurrency,
                "validFrom": self.valid_from,
                "validTo": self.valid_to,
                "transactionId": transaction_id,
                "chargingSchedule": self.schedule.payload(version, self.id)
                if version is V16
                else [self.schedule.payload(version, self.id)],
            }
        )


@dataclass(frozen=True)
class SetChargingProfile(Command[CommandResult]):
    """Install a profile on an EVSE (0: the station): SetChargingProfile.

    1.6 ``connectorId`` is ``evse_id``. A 2.x TxProfile names its transaction
    (``transaction_id``); 1.6 applies one without it to the connector's transaction.
    Limits go to a 1.6 station rounded down to tenths (its schema's precision).
    """

    name: ClassVar[str] = "set_charging_profile"
    evse_id: int
    profile: ChargingProfile

    def __post_init__(self) -> None:
        if isinstance(self.profile, Mapping):
            object.__setattr__(self, "profile", ChargingProfile(**self.profile))

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        profile = self.profile.payload(version, self.name)
        if version is V16:
            return "SetChargingProfile", {
                "connectorId": self.evse_id,
                "csChargingProfiles": profile,
            }
        if self.profile.purpose == "TxProfile" and self.profile.transaction_id is None:
            raise self._unsupported(
                version, "a 2.x TxProfile names its transaction: give transaction_id"
            )
        return "SetChargingProfile", {"evseId": self.evse_id, "chargingProfile": profile}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload)


@dataclass(frozen=True)
class ClearChargingProfile(Command[CommandResult]):
    """Remove profiles: the one with ``profile_id``, or those that match every criterion
    given (``evse_id``, ``purpose``, ``stack_level``); all of them when none is.
    Accepted when the station removed some (it answers Unknown when none matched)."""

    name: ClassVar[str] = "clear_charging_profile"
    profile_id: int | None = None
    evse_id: int | None = None
    purpose: str | None = None
    stack_level: int | None = None

    def __post_init__(self) -> None:
        if self.purpose is not None:
            object.__setattr__(self, "purpose", _purpose(self.purpose, f"{self.name}: purpose"))

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        purpose = None if self.purpose is None else _purpose_for(version, self.purpose, self.name)
        if version is V16:
            return "ClearChargingProfile", compact(
                {
                    "id": self.profile_id,
                    "connectorId": self.evse_id,
                    "chargingProfilePurpose": purpose,
                    "stackLevel": self.stack_level,
                }
            )
        criteria = compact(
            {
                "evseId": self.evse_id,
                "chargingProfilePurpose": purpose,
                "stackLevel": self.stack_level,
            }
        )
        return "ClearChargingProfile", compact(
            {"chargingProfileId": self.profile_id, "chargingProfileCriteria": criteria or None}
        )

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        return simple_result(payload)


async def set_charging_profile(
    target: Target,
    station_id: str | None = None,
    *,
    evse_id: int,
    profile: ChargingProfile,
    timeout: float | None = None,
) -> CommandResult:
    """Install a charging profile (see :class:`SetChargingProfile`)."""
    command = SetChargingProfile(evse_id, profile)
    return await command.send(target, station_id, timeout=timeout)


async def clear_charging_profile(
    target: Target,
    station_id: str | None = None,
    *,
    profile_id: int | None = None,
    evse_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
    timeout: float | None = None,
) -> CommandResult:
    """Remove charging profiles (see :class:`ClearChargingProfile`)."""
    command = ClearChargingProfile(profile_id, evse_id, purpose, stack_level)
    return await command.send(target, station_id, timeout=timeout)
