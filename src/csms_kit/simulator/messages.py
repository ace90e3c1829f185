"""What a simulated station says, as JSON payloads in its OCPP version's words.

:class:`Messages16` (StartTransaction, MeterValues, StopTransaction) and
:class:`Messages2x` (TransactionEvent, for 2.0.1 and 2.1) build the payload of each
message from the station's state. They hold no state of their own: one instance per
version serves every station (:func:`messages_for`). Every payload they build is
valid against the OCA schema of its version; the station's connection checks it
again before sending.
"""

from __future__ import annotations

import random
from typing import Any

from csms_kit.simulator.meter import Sample
from csms_kit.simulator.state import Connector, Transaction
from csms_kit.versions import OcppVersion

__all__ = ["Messages", "Messages2x", "Messages16", "messages_for"]

#: 1.6 status -> 2.x connectorStatus.
_STATUS_2X = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}

#: 1.6 StopTransaction reason -> 2.x (triggerReason, stoppedReason).
_STOP_2X = {
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "EmergencyStop": ("AbnormalCondition", "EmergencyStop"),
    "EVDisconnected": ("EVDeparted", "EVDisconnected"),
    "HardReset": ("ResetCommand", "ImmediateReset"),
    "Local": ("StopAuthorized", "Local"),
    "Other": ("AbnormalCondition", "Other"),
    "PowerLoss": ("AbnormalCondition", "PowerLoss"),
    "Reboot": ("ResetCommand", "Reboot"),
    "Remote": ("RemoteStop", "Remote"),
    "SoftReset": ("ResetCommand", "ImmediateReset"),
    "UnlockCommand": ("UnlockCommand", "Other"),
}

#: (measurand, unit, Sample attribute, decimals in 1.6's text) of a periodic reading.
_MEASURANDS = (
    ("Energy.Active.Import.Register", "Wh", "energy_wh", 1),
    ("Power.Active.Import", "W", "power_w", 1),
    ("Current.Import", "A", "current_a", 2),
    ("Voltage", "V", "voltage_v", 1),
)


class Messages:
    """The messages of one OCPP version family (see the module docstring)."""

    version: OcppVersion
    #: The answer's key for the CSMS's verdict on an id token.
    token_info: str
    #: The messages TriggerMessage may ask for.
    triggerable: frozenset[str]
    #: The idle notifications TriggerMessage may ask for: action -> payload.
    idle_notifications: dict[str, dict[str, Any]]

    def boot(
        self, vendor: str, model: str, serial: str, firmware: str, reason: str
    ) -> dict[str, Any]:
        """BootNotification; ``reason`` is 2.x's (1.6 has none)."""
        raise NotImplementedError

    def reported_status(self, status: str) -> str:
        """A status (1.6's words) in this version's words."""
        raise NotImplementedError

    def status(self, connector_id: int, status: str, timestamp: str) -> dict[str, Any]:
        """StatusNotification of ``status`` (1.6 words), connector (2.x: EVSE) ``connector_id``."""
        raise NotImplementedError

    def authorize(self, id_token: str) -> dict[str, Any]:
        """Authorize for ``id_token``."""
        raise NotImplementedError

    def started(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        """The transaction began (``trigger``: 2.x's triggerReason)."""
        raise NotImplementedError

    def updated(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        """A meter reading during the transaction (``trigger``: 2.x's triggerReason)."""
        raise NotImplementedError

    def ended(self, transaction: Transaction, sample: Sample) -> tuple[str, dict[str, Any]]:
        """The transaction ended for ``transaction.stop_reason``."""
        raise NotImplementedError

    def meter_values(self, connector: Connector, sample: Sample) -> dict[str, Any]:
        """MeterValues asked for by TriggerMessage."""
        raise NotImplementedError

    def new_transaction_id(self) -> str | None:
        """The id a station gives its own transaction (2.x), or ``None`` (1.6: the CSMS's)."""
        return None

    def token_status(self, response: Any) -> str | None:
        """The CSMS's verdict on an id token in ``response``, if it gave one."""
        info = getattr(response, self.token_info, None)
        status = info.get("status") if isinstance(info, dict) else getattr(info, "status", None)
        return None if status is None else str(status)


class Messages16(Messages):
    """OCPP 1.6: StartTransaction, MeterValues, StopTransaction."""

    version = OcppVersion.V16
    token_info = "id_tag_info"
    triggerable = frozenset(
        {
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
        }
    )
    idle_notifications = {  # noqa: RUF012 - read only, shared by every station
        "DiagnosticsStatusNotification": {"status": "Idle"},
        "FirmwareStatusNotification": {"status": "Idle"},
    }

    def boot(
        self, vendor: str, model: str, serial: str, firmware: str, reason: str
    ) -> dict[str, Any]:
        return {
            "chargePointVendor": vendor,
            "chargePointModel": model,
            "chargePointSerialNumber": serial,
            "firmwareVersion": firmware,
        }

    def reported_status(self, status: str) -> str:
        return status

    def status(self, connector_id: int, status: str, timestamp: str) -> dict[str, Any]:
        return {
            "connectorId": connector_id,
            "errorCode": "OtherError" if status == "Faulted" else "NoError",
            "status": status,
            "timestamp": timestamp,
        }

    def authorize(self, id_token: str) -> dict[str, Any]:
        return {"idTag": id_token}

    @staticmethod
    def _readings(sample: Sample, context: str, full: bool) -> list[dict[str, Any]]:
        measurands = _MEASURANDS if full else _MEASURANDS[:1]
        return [
            {
                "value": f"{getattr(sample, attribute):.{decimals}f}",
                "context": context,
                "measurand": measurand,
                "location": "Outlet",
                "unit": unit,
            }
            for measurand, unit, attribute, decimals in measurands
        ]

    def started(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        return "StartTransaction", {
            "connectorId": transaction.connector.id,
            "idTag": transaction.id_token,
            "meterStart": transaction.meter_start,
            "timestamp": sample.timestamp,
        }

    def updated(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        # transactionId is filled in when it is sent: it may not be known yet.
        context = "Trigger" if trigger == "Trigger" else "Sample.Periodic"
        return "MeterValues", {
            "connectorId": transaction.connector.id,
            "meterValue": [
                {
                    "timestamp": sample.timestamp,
                    "sampledValue": self._readings(sample, context, full=True),
                }
            ],
        }

    def ended(self, transaction: Transaction, sample: Sample) -> tuple[str, dict[str, Any]]:
        reason = transaction.stop_reason or "Local"
        payload: dict[str, Any] = {
            "meterStop": int(sample.energy_wh),
            "timestamp": sample.timestamp,
            "reason": reason,
            "transactionData": [
                {
                    "timestamp": sample.timestamp,
                    "sampledValue": self._readings(sample, "Transaction.End", full=False),
                }
            ],
        }
        if reason == "Local":  # stopped with the same card
            payload["idTag"] = transaction.id_token
        return "StopTransaction", payload

    def meter_values(self, connector: Connector, sample: Sample) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "connectorId": connector.id,
            "meterValue": [
                {
                    "timestamp": sample.timestamp,
                    "sampledValue": self._readings(sample, "Trigger", full=True),
                }
            ],
        }
        transaction = connector.transaction
        if transaction is not None and isinstance(transaction.id, int):
            payload["transactionId"] = transaction.id
        return payload


class Messages2x(Messages):
    """OCPP 2.0.1 and 2.1: TransactionEvent Started, Updated and Ended with seqNo."""

    token_info = "id_token_info"
    idle_notifications = {  # noqa: RUF012 - read only, shared by every station
        "LogStatusNotification": {"status": "Idle"},
        "FirmwareStatusNotification": {"status": "Idle"},
    }
    triggerable = frozenset(
        {
            "BootNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "LogStatusNotification",
            "MeterValues",
            "StatusNotification",
            "TransactionEvent",
        }
    )

    def __init__(self, version: OcppVersion) -> None:
        self.version = version

    def boot(
        self, vendor: str, model: str, serial: str, firmware: str, reason: str
    ) -> dict[str, Any]:
        return {
            "reason": reason,
            "chargingStation": {
                "vendorName": vendor,
                "model": model,
                "serialNumber": serial,
                "firmwareVersion": firmware,
            },
        }

    def reported_status(self, status: str) -> str:
        return _STATUS_2X[status]

    def status(self, connector_id: int, status: str, timestamp: str) -> dict[str, Any]:
        return {
            "timestamp": timestamp,
            "connectorStatus": _STATUS_2X[status],
            "evseId": connector_id,
            "connectorId": 1,
        }

    def authorize(self, id_token: str) -> dict[str, Any]:
        return {"idToken": {"idToken": id_token, "type": "ISO14443"}}

    def new_transaction_id(self) -> str:
        return f"{random.getrandbits(64):016x}"

    @staticmethod
    def _meter_value(sample: Sample, context: str, full: bool) -> list[dict[str, Any]]:
        measurands = _MEASURANDS if full else _MEASURANDS[:1]
        return [
            {
                "timestamp": sample.timestamp,
                "sampledValue": [
                    {
                        "value": getattr(sample, attribute),
                        "context": context,
                        "measurand": measurand,
                        "unitOfMeasure": {"unit": unit},
                    }
                    for measurand, unit, attribute, _ in measurands
                ],
            }
        ]

    @staticmethod
    def _event(
        event: str, transaction: Transaction, sample: Sample, trigger: str
    ) -> dict[str, Any]:
        seq_no = transaction.seq_no
        transaction.seq_no += 1
        return {
            "eventType": event,
            "timestamp": sample.timestamp,
            "triggerReason": trigger,
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": transaction.id},
        }

    def started(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        payload = self._event("Started", transaction, sample, trigger)
        payload["transactionInfo"]["chargingState"] = "Charging"
        if transaction.remote_start_id is not None:
            payload["transactionInfo"]["remoteStartId"] = transaction.remote_start_id
        payload["idToken"] = {"idToken": transaction.id_token, "type": transaction.id_token_type}
        payload["evse"] = {"id": transaction.connector.id, "connectorId": 1}
        payload["meterValue"] = self._meter_value(sample, "Transaction.Begin", full=False)
        return "TransactionEvent", payload

    def updated(
        self, transaction: Transaction, sample: Sample, trigger: str
    ) -> tuple[str, dict[str, Any]]:
        payload = self._event("Updated", transaction, sample, trigger)
        context = "Trigger" if trigger == "Trigger" else "Sample.Periodic"
        payload["meterValue"] = self._meter_value(sample, context, full=True)
        return "TransactionEvent", payload

    def ended(self, transaction: Transaction, sample: Sample) -> tuple[str, dict[str, Any]]:
        trigger, stopped = _STOP_2X[transaction.stop_reason or "Local"]
        payload = self._event("Ended", transaction, sample, trigger)
        info = payload["transactionInfo"]
        info["chargingState"] = "Idle" if trigger == "EVDeparted" else "EVConnected"
        info["stoppedReason"] = stopped
        payload["meterValue"] = self._meter_value(sample, "Transaction.End", full=False)
        return "TransactionEvent", payload

    def meter_values(self, connector: Connector, sample: Sample) -> dict[str, Any]:
        return {"evseId": connector.id, "meterValue": self._meter_value(sample, "Trigger", True)}


_MESSAGES: dict[OcppVersion, Messages] = {
    OcppVersion.V16: Messages16(),
    OcppVersion.V201: Messages2x(OcppVersion.V201),
    OcppVersion.V21: Messages2x(OcppVersion.V21),
}


def messages_for(version: OcppVersion) -> Messages:
    """The (shared) message builder of ``version``."""
    return _MESSAGES[version]
