"""What the probe station sends: small, valid payloads per OCPP version.

Written out by hand rather than built with the ``ocpp`` package's dataclasses, so
that the checker depends on nothing that could hide a bug in what it sends.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from csms_kit.versions import OcppVersion

__all__ = [
    "VENDOR",
    "boot_notification",
    "csms_only_action",
    "data_transfer",
    "incomplete_boot_notification",
    "send_message",
]

#: The vendor the probe station claims to be.
VENDOR = "csms_kit.conformance"


def boot_notification(version: OcppVersion) -> dict[str, Any]:
    """A minimal BootNotification request."""
    if version is OcppVersion.V16:
        return {"chargePointVendor": VENDOR, "chargePointModel": "probe"}
    return {"reason": "PowerUp", "chargingStation": {"vendorName": VENDOR, "model": "probe"}}


def incomplete_boot_notification() -> tuple[str, dict[str, Any]]:
    """BootNotification without its required properties: every CSMS handles the action."""
    return "BootNotification", {}


def csms_only_action(version: OcppVersion) -> tuple[str, dict[str, Any]]:
    """A valid request of an action OCPP defines for the CSMS to send: Reset.

    A CSMS knows the action but has no business handling it from a station:
    the answer OCPP-J gives for that is NotSupported, not NotImplemented.
    """
    if version is OcppVersion.V16:
        return "Reset", {"type": "Soft"}
    return "Reset", {"type": "Immediate"}


def data_transfer(size: int) -> dict[str, Any]:
    """A DataTransfer request whose ``data`` makes the frame about ``size`` bytes."""
    return {"vendorId": VENDOR, "data": "x" * max(0, size)}


def send_message() -> tuple[str, dict[str, Any]]:
    """An OCPP 2.1 SEND-only message: NotifyPeriodicEventStream."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "NotifyPeriodicEventStream", {
        "id": 1,
        "pending": 0,
        "basetime": now,
        "data": [{"t": 0, "v": "1"}],
    }
