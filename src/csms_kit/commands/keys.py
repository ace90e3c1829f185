"""OCPP 1.6 configuration keys and the OCPP 2.x device-model variables that match them.

:data:`STANDARD_KEYS` maps each standard 1.6 key (OCPP 1.6 section 9, and the keys of
the 1.6 security and ISO 15118 Plug & Charge whitepapers) to the 2.x
:class:`DeviceVariable` that holds the same setting, or to ``None`` where 2.x has none.
The table is the one in ``docs/commands.md``. Values are passed unchanged in both
directions (both versions write booleans ``true``/``false``, intervals in seconds and
lists comma-separated); the few keys whose meaning or format differs are noted there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csms_kit.exceptions import UsageError

__all__ = ["STANDARD_KEYS", "DeviceVariable", "key_for_variable", "variable_for_key"]


@dataclass(frozen=True)
class DeviceVariable:
    """A variable of the OCPP 2.x device model: a component's variable, and where it is.

    ``component`` and ``variable`` are names (``"OCPPCommCtrlr"``,
    ``"HeartbeatInterval"``); the instances and the EVSE (and connector) narrow them
    down. The ``Actual`` attribute is the one read and written.
    """

    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    def __post_init__(self) -> None:
        if self.connector_id is not None and self.evse_id is None:
            raise UsageError(f"{self}: a connector_id needs the evse_id it belongs to")

    def __str__(self) -> str:
        text = self.component
        if self.component_instance is not None:
            text += f"[{self.component_instance}]"
        if self.evse_id is not None:
            where = f"{self.evse_id}" + (
                f"/{self.connector_id}" if self.connector_id is not None else ""
            )
            text += f"@evse {where}"
        text += f".{self.variable}"
        if self.variable_instance is not None:
            text += f"[{self.variable_instance}]"
        return text

    def component_payload(self) -> dict[str, Any]:
        """The 2.x ``component`` object (``ComponentType``)."""
        component: dict[str, Any] = {"name": self.component}
        if self.component_instance is not None:
            component["instance"] = self.component_instance
        if self.evse_id is not None:
            evse: dict[str, Any] = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connectorId"] = self.connector_id
            component["evse"] = evse
        return component

    def variable_payload(self) -> dict[str, Any]:
        """The 2.x ``variable`` object (``VariableType``)."""
        variable: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            variable["instance"] = self.variable_instance
        return variable

    @classmethod
    def from_payload(
        cls, component: Mapping[str, Any], variable: Mapping[str, Any]
    ) -> DeviceVariable:
        """The variable named by a 2.x ``component`` and ``variable`` pair."""
        evse = component.get("evse")
        evse = evse if isinstance(evse, Mapping) else {}
        return cls(
            str(component.get("name")),
            str(variable.get("name")),
            component.get("instance"),
            variable.get("instance"),
            evse.get("id"),
            evse.get("connectorId"),
        )


def _v(component: str, variable: str, instance: str | None = None) -> DeviceVariable:
    return DeviceVariable(component, variable, variable_instance=instance)


#: Each standard OCPP 1.6 configuration key, and its OCPP 2.x variable (``None``: none).
STANDARD_KEYS: Mapping[str, DeviceVariable | None] = {
    # Core profile
    "AllowOfflineTxForUnknownId": _v("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
    "AuthorizationCacheEnabled": _v("AuthCacheCtrlr", "Enabled"),
    "AuthorizeRemoteTxRequests": _v("AuthCtrlr", "AuthorizeRemoteStart"),
    "BlinkRepeat": None,
    "ClockAlignedDataInterval": _v("AlignedDataCtrlr", "Interval"),
    "ConnectionTimeOut": _v("TxCtrlr", "EVConnectionTimeOut"),
    "ConnectorPhaseRotation": None,
    "ConnectorPhaseRotationMaxLength": None,
    "GetConfigurationMaxKeys": _v("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
    "HeartbeatInterval": _v("OCPPCommCtrlr", "HeartbeatInterval"),
    "LightIntensity": None,
    "LocalAuthorizeOffline": _v("AuthCtrlr", "LocalAuthorizeOffline"),
    "LocalPreAuthorize": _v("AuthCtrlr", "LocalPreAuthorize"),
    "MaxEnergyOnInvalidId": _v("TxCtrlr", "MaxEnergyOnInvalidId"),
    "MeterValuesAlignedData": _v("AlignedDataCtrlr", "Measurands"),
    "MeterValuesAlignedDataMaxLength": None,
    "MeterValuesSampledData": _v("SampledDataCtrlr", "TxUpdatedMeasurands"),
    "MeterValuesSampledDataMaxLength": None,
    "MeterValueSampleInterval": _v("SampledDataCtrlr", "TxUpdatedInterval"),
    "MinimumStatusDuration": _v("OCPPCommCtrlr", "MinimumStatusDuration"),
    "NumberOfConnectors": None,
    "ResetRetries": _v("OCPPCommCtrlr", "ResetRetries"),
    "StopTransactionOnEVSideDisconnect": _v("TxCtrlr", "StopTxOnEVSideDisconnect"),
    "StopTransactionOnInvalidId": _v("TxCtrlr", "StopTxOnInvalidId"),
    "StopTxnAlignedData": _v("AlignedDataCtrlr", "TxEndedMeasurands"),
    "StopTxnAlignedDataMaxLength": None,
    "StopTxnSampledData": _v("SampledDataCtrlr", "TxEndedMeasurands"),
    "StopTxnSampledDataMaxLength": None,
    "SupportedFeatureProfiles": None,
    "SupportedFeatureProfilesMaxLength": None,
    "TransactionMessageAttempts": _v("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
    "TransactionMessageRetryInterval": _v(
        "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"
    ),
    "UnlockConnectorOnEVSideDisconnect": _v("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"),
    "WebSocketPingInterval": _v("OCPPCommCtrlr", "WebSocketPingInterval"),
    # Local Auth List Management profile
    "LocalAuthListEnabled": _v("LocalAuthListCtrlr", "Enabled"),
    "LocalAuthListMaxLength": None,
    "SendLocalListMaxLength": _v("LocalAuthListCtrlr", "ItemsPerMessage"),
    # Reservation profile
    "ReserveConnectorZeroSupported": _v("ReservationCtrlr", "NonEvseSpecific"),
    # Smart Charging profile
    "ChargeProfileMaxStackLevel": _v("SmartChargingCtrlr", "ProfileStackLevel"),
    "ChargingScheduleAllowedChargingRateUnit": _v("SmartChargingCtrlr", "RateUnit"),
    "ChargingScheduleMaxPeriods": _v("SmartChargingCtrlr", "PeriodsPerSchedule"),
    "ConnectorSwitch3to1PhaseSupported": _v("SmartChargingCtrlr", "Phases3to1"),
    "MaxChargingProfilesInstalled": None,
    # Firmware Management profile
    "SupportedFileTransferProtocols": _v("OCPPCommCtrlr", "FileTransferProtocols"),
    # Security whitepaper (1.6 edition 2)
    "AdditionalRootCertificateCheck": _v("SecurityCtrlr", "AdditionalRootCertificateCheck"),
    "AuthorizationKey": _v("SecurityCtrlr", "BasicAuthPassword"),
    "CertificateSignedMaxChainSize": _v("SecurityCtrlr", "MaxCertificateChainSize"),
    "CertificateStoreMaxLength": None,
    "CpoName": _v("SecurityCtrlr", "OrganizationName"),
    "SecurityProfile": _v("SecurityCtrlr", "SecurityProfile"),
    # ISO 15118 Plug & Charge whitepaper (1.6)
    "CentralContractValidationAllowed": _v("ISO15118Ctrlr", "CentralContractValidationAllowed"),
    "CertSigningRepeatTimes": _v("SecurityCtrlr", "CertSigningRepeatTimes"),
    "CertSigningWaitMinimum": _v("SecurityCtrlr", "CertSigningWaitMinimum"),
    "ContractValidationOffline": _v("ISO15118Ctrlr", "ContractValidationOffline"),
    "ISO15118PnCEnabled": _v("ISO15118Ctrlr", "PnCEnabled"),
}

_KEY_OF: dict[DeviceVariable, str] = {
    variable: key for key, variable in STANDARD_KEYS.items() if variable is not None
}
_FOLDED = {key.casefold(): key for key in STANDARD_KEYS}


def variable_for_key(key: str) -> DeviceVariable:
    """The 2.x variable of the standard 1.6 ``key``.

    Raises :class:`~csms_kit.exceptions.UsageError` for a key 2.x has no variable for,
    and for a key that is not standard (name its 2.x variable with
    :class:`DeviceVariable` instead).
    """
    if key in STANDARD_KEYS:
        variable = STANDARD_KEYS[key]
        if variable is None:
            raise UsageError(
                f"the OCPP 1.6 configuration key {key!r} has no OCPP 2.x counterpart; "
                "name a 2.x variable with DeviceVariable(component, variable)"
            )
        return variable
    near = _FOLDED.get(key.casefold())
    hint = f" (did you mean {near!r}?)" if near is not None else ""
    raise UsageError(
        f"{key!r} is not a standard OCPP 1.6 configuration key{hint}; for an OCPP 2.x "
        "station name its variable with DeviceVariable(component, variable)"
    )


def key_for_variable(variable: DeviceVariable) -> str:
    """The standard 1.6 key of the 2.x ``variable``; raises
    :class:`~csms_kit.exceptions.UsageError` when 1.6 has none."""
    key = _KEY_OF.get(variable)
    if key is None:
        raise UsageError(
            f"the OCPP 2.x variable {variable} has no standard OCPP 1.6 configuration key; "
            "name the station's 1.6 key as a string"
        )
    return key
