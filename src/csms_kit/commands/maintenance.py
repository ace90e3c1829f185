"""Firmware updates and log uploads: the station fetches or sends a file, then reports.

Both answer at once whether the station will do it; how it goes comes later in the
station's own messages (1.6 FirmwareStatusNotification and
DiagnosticsStatusNotification, 2.x FirmwareStatusNotification and LogStatusNotification
with the command's ``request_id``), which the application handles as any other.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from csms_kit.commands.base import (
    V16,
    V21,
    Command,
    CommandResult,
    Target,
    check_choice,
    compact,
    new_request_id,
    optional_timestamp,
    status_result,
    timestamp,
)
from csms_kit.versions import OcppVersion

__all__ = [
    "GetLog",
    "LogResult",
    "LogType",
    "UpdateFirmware",
    "UpdateFirmwareResult",
    "get_log",
    "update_firmware",
]

LogType = Literal["DiagnosticsLog", "SecurityLog", "DataCollectorLog"]
_ACCEPTED = ("Accepted", "AcceptedCanceled")


@dataclass(frozen=True, kw_only=True)
class UpdateFirmwareResult(CommandResult):
    """The answer to :class:`UpdateFirmware`; ``request_id``: the id the station's status
    notifications carry (``None`` for a 1.6 UpdateFirmware, whose answer is empty and
    always accepted)."""

    request_id: int | None = None


@dataclass(frozen=True)
class UpdateFirmware(Command[UpdateFirmwareResult]):
    """Have the station download firmware from ``location`` from ``retrieve_at`` on.

    2.x UpdateFirmware. For a 1.6 station: UpdateFirmware, or, when the firmware is
    signed (``signing_certificate`` and ``signature``), SignedUpdateFirmware (1.6
    security whitepaper), the only 1.6 message that takes ``install_at``.
    ``request_id``: random unless given, kept in the command.
    """

    name: ClassVar[str] = "update_firmware"
    location: str
    retrieve_at: datetime.datetime | str
    retries: int | None = None
    retry_interval: int | None = None
    install_at: datetime.datetime | str | None = None
    signing_certificate: str | None = None
    signature: str | None = None
    request_id: int = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retrieve_at", timestamp(self.retrieve_at, self.name))
        object.__setattr__(self, "install_at", optional_timestamp(self.install_at, self.name))

    def _firmware(self) -> dict[str, Any]:
        return compact(
            {
                "location": self.location,
                "retrieveDateTime": self.retrieve_at,
                "installDateTime": self.install_at,
                "signingCertificate": self.signing_certificate,
                "signature": self.signature,
            }
        )

    def _signed_request(self) -> dict[str, Any]:
        return compact(
            {
                "requestId": self.request_id,
                "retries": self.retries,
                "retryInterval": self.retry_interval,
                "firmware": self._firmware(),
            }
        )

    def _is_plain_16(self, version: OcppVersion) -> bool:
        """Whether a 1.6 station gets the plain UpdateFirmware (unsigned firmware)."""
        return version is V16 and self.signing_certificate is None and self.signature is None

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        if version is not V16:
            return "UpdateFirmware", self._signed_request()
        if not self._is_plain_16(version):
            if self.signing_certificate is None or self.signature is None:
                raise self._unsupported(
                    version,
                    "a signed 1.6 update (SignedUpdateFirmware) needs both "
                    "signing_certificate and signature",
                )
            return "SignedUpdateFirmware", self._signed_request()
        if self.install_at is not None:
            raise self._unsupported(
                version,
                "1.6 UpdateFirmware installs once downloaded; install_at needs signed "
                "firmware (SignedUpdateFirmware)",
            )
        return "UpdateFirmware", compact(
            {
                "location": self.location,
                "retrieveDate": self.retrieve_at,
                "retries": self.retries,
                "retryInterval": self.retry_interval,
            }
        )

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> UpdateFirmwareResult:
        if self._is_plain_16(version):
            return UpdateFirmwareResult(accepted=True, status=None, response=dict(payload))
        return status_result(payload, _ACCEPTED, UpdateFirmwareResult, request_id=self.request_id)


@dataclass(frozen=True, kw_only=True)
class LogResult(CommandResult):
    """The answer to :class:`GetLog`: ``file_name`` the station will upload (if it said),
    ``request_id`` its LogStatusNotification messages carry (``None`` for 1.6
    GetDiagnostics, which has none)."""

    file_name: str | None = None
    request_id: int | None = None


@dataclass(frozen=True)
class GetLog(Command[LogResult]):
    """Have the station upload a log to ``location`` (a URL).

    2.x GetLog. For a 1.6 station, a ``"DiagnosticsLog"`` is GetDiagnostics (the
    station answers with the file's name, or none when it has nothing: not accepted)
    and a ``"SecurityLog"`` is GetLog (1.6 security whitepaper). ``"DataCollectorLog"``
    is 2.1's. ``oldest`` and ``latest`` bound the entries' time.
    """

    name: ClassVar[str] = "get_log"
    location: str
    log_type: LogType = "DiagnosticsLog"
    oldest: datetime.datetime | str | None = None
    latest: datetime.datetime | str | None = None
    retries: int | None = None
    retry_interval: int | None = None
    request_id: int = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        check_choice(
            self.log_type,
            ("DiagnosticsLog", "SecurityLog", "DataCollectorLog"),
            f"{self.name}: log_type",
        )
        object.__setattr__(self, "oldest", optional_timestamp(self.oldest, self.name))
        object.__setattr__(self, "latest", optional_timestamp(self.latest, self.name))

    def _is_diagnostics_16(self, version: OcppVersion) -> bool:
        return version is V16 and self.log_type == "DiagnosticsLog"

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        if self.log_type == "DataCollectorLog" and version is not V21:
            raise self._unsupported(version, "only OCPP 2.1 has the DataCollectorLog")
        if self._is_diagnostics_16(version):
            return "GetDiagnostics", compact(
                {
                    "location": self.location,
                    "retries": self.retries,
                    "retryInterval": self.retry_interval,
                    "startTime": self.oldest,
                    "stopTime": self.latest,
                }
            )
        log = compact(
            {
                "remoteLocation": self.location,
                "oldestTimestamp": self.oldest,
                "latestTimestamp": self.latest,
            }
        )
        return "GetLog", compact(
            {
                "logType": self.log_type,
                "requestId": self.request_id,
                "retries": self.retries,
                "retryInterval": self.retry_interval,
                "log": log,
            }
        )

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> LogResult:
        if self._is_diagnostics_16(version):
            file_name = payload.get("fileName")
            return LogResult(
                accepted=file_name is not None,
                status=None,
                response=dict(payload),
                file_name=file_name,
            )
        return status_result(
            payload,
            _ACCEPTED,
            LogResult,
            file_name=payload.get("filename"),
            request_id=self.request_id,
        )


async def update_firmware(
    target: Target,
    station_id: str | None = None,
    *,
    location: str,
    retrieve_at: datetime.datetime | str,
    retries: int | None = None,
    retry_interval: int | None = None,
    install_at: datetime.datetime | str | None = None,
    signing_certificate: str | None = None,
    signature: str | None = None,
    timeout: float | None = None,
) -> UpdateFirmwareResult:
    """Have a station update its firmware (see :class:`UpdateFirmware`)."""
    command = UpdateFirmware(
        location,
        retrieve_at,
        retries,
        retry_interval,
        install_at,
        signing_certificate,
        signature,
    )
    return await command.send(target, station_id, timeout=timeout)


async def get_log(
    target: Target,
    station_id: str | None = None,
    *,
    location: str,
    log_type: LogType = "DiagnosticsLog",
    oldest: datetime.datetime | str | None = None,
    latest: datetime.datetime | str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    timeout: float | None = None,
) -> LogResult:
    """Have a station upload a log (1.6: diagnostics) to ``location`` (see :class:`GetLog`)."""
    command = GetLog(location, log_type, oldest, latest, retries, retry_interval)
    return await command.send(target, station_id, timeout=timeout)
