"""A CSMS that answers the common station messages of OCPP 1.6, 2.0.1 and 2.1 sensibly.

It accepts every station and every idTag, hands out transaction ids, logs boots,
connects and disconnects, and keeps counts for the demo's progress line. It is what
``csms-kit serve`` runs; ``examples/multi_station_server.py`` shows how to write one.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from csms_kit.clock import current_time
from csms_kit.routing import on
from csms_kit.session import StationSession
from csms_kit.versions import OcppVersion

__all__ = ["DemoCsms"]

logger = logging.getLogger("csms_kit.demo")
HEARTBEAT_INTERVAL = 60


class DemoCsms(StationSession):
    """Answers every common station request, for any OCPP version."""

    call_timeout = 10.0

    @property
    def is_16(self) -> bool:
        return self.version is OcppVersion.V16

    def accepted_token(self) -> dict[str, Any]:
        key = "idTagInfo" if self.is_16 else "idTokenInfo"
        return {key: {"status": "Accepted"}}

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        info = self.boot_info_of(request)
        logger.info("station %r booted: %s %s, serial %s", self.station_id, *info)
        return {
            "currentTime": current_time(),
            "interval": HEARTBEAT_INTERVAL,
            "status": "Accepted",
        }

    def boot_info_of(self, request: Any) -> tuple[Any, Any, Any]:
        if self.is_16:
            serial = request.charge_point_serial_number or request.charge_box_serial_number
            return request.charge_point_vendor, request.charge_point_model, serial
        station = request.charging_station
        return station.vendor_name, station.model, station.serial_number

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": current_time()}

    @on("Authorize")
    def authorize(self, request: Any) -> dict[str, Any]:
        return self.accepted_token()

    @on("StartTransaction")
    def start_transaction(self, request: Any) -> dict[str, Any]:
        return {"transactionId": secrets.randbelow(2**31), **self.accepted_token()}

    @on("StopTransaction")
    def stop_transaction(self, request: Any) -> dict[str, Any]:
        return self.accepted_token() if request.id_tag else {}

    @on("TransactionEvent")
    def transaction_event(self, request: Any) -> dict[str, Any]:
        return self.accepted_token() if request.id_token else {}

    @on("DataTransfer")
    def data_transfer(self, request: Any) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    @on("StatusNotification")
    @on("MeterValues")
    @on("FirmwareStatusNotification")
    @on("DiagnosticsStatusNotification")
    @on("LogStatusNotification")
    @on("SecurityEventNotification")
    @on("SignedFirmwareStatusNotification")
    @on("NotifyEvent")
    @on("NotifyReport")
    @on("NotifyMonitoringReport")
    @on("NotifyChargingLimit")
    @on("NotifyCustomerInformation")
    @on("NotifyDisplayMessages")
    @on("ReportChargingProfiles")
    @on("ClearedChargingLimit")
    @on("PublishFirmwareStatusNotification")
    @on("ReservationStatusUpdate")
    def acknowledge(self, request: Any) -> dict[str, Any]:
        """Messages whose answer is empty."""
        return {}
