"""A station's settings, as the CSMS sees them: OCPP 1.6 configuration keys
(:class:`Configuration`) and the OCPP 2.x device model (:class:`DeviceModel`).

Both keep only what differs from the defaults, so thousands of stations share one
table. Three settings drive the station itself, whichever version it speaks:
:attr:`~Settings.heartbeat_interval`, :attr:`~Settings.meter_interval` (seconds
between meter readings in a transaction) and :attr:`~Settings.authorize_remote_start`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["CONFIGURATION_KEYS", "DEVICE_MODEL", "Configuration", "DeviceModel", "Settings"]

Kind = Literal["integer", "boolean", "string", "MemberList"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its default (as OCPP writes it), its type, whether the CSMS may change it."""

    default: str
    kind: Kind = "string"
    readonly: bool = False


def _valid(setting: Setting, value: str) -> str | None:
    """``value`` as stored (booleans in lower case), or ``None`` if it does not fit."""
    if setting.kind == "integer":
        return value if value.isdigit() else None
    if setting.kind == "boolean":
        lowered = value.lower()
        return lowered if lowered in ("true", "false") else None
    return value


#: The OCPP 1.6 configuration keys a simulated station has (NumberOfConnectors aside).
CONFIGURATION_KEYS: Mapping[str, Setting] = {
    "AuthorizeRemoteTxRequests": Setting("false", "boolean"),
    "ClockAlignedDataInterval": Setting("0", "integer"),
    "ConnectionTimeOut": Setting("60", "integer"),
    "GetConfigurationMaxKeys": Setting("50", "integer", readonly=True),
    "HeartbeatInterval": Setting("60", "integer"),
    "LocalAuthListEnabled": Setting("true", "boolean"),
    "LocalAuthorizeOffline": Setting("true", "boolean"),
    "LocalPreAuthorize": Setting("false", "boolean"),
    "MeterValueSampleInterval": Setting("60", "integer"),
    "MeterValuesSampledData": Setting(
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
    ),
    "ResetRetries": Setting("1", "integer"),
    "StopTransactionOnEVSideDisconnect": Setting("true", "boolean", readonly=True),
    "SupportedFeatureProfiles": Setting(
        "Core,LocalAuthListManagement,RemoteTrigger", readonly=True
    ),
    "TransactionMessageAttempts": Setting("3", "integer"),
    "TransactionMessageRetryInterval": Setting("60", "integer"),
    "UnlockConnectorOnEVSideDisconnect": Setting("true", "boolean"),
}

#: The OCPP 2.x device model of a simulated station: (component, variable) -> setting.
DEVICE_MODEL: Mapping[tuple[str, str], Setting] = {
    ("AuthCtrlr", "AuthorizeRemoteStart"): Setting("false", "boolean"),
    ("AuthCtrlr", "LocalAuthorizeOffline"): Setting("true", "boolean"),
    ("AuthCtrlr", "LocalPreAuthorize"): Setting("false", "boolean"),
    ("LocalAuthListCtrlr", "Enabled"): Setting("true", "boolean"),
    ("OCPPCommCtrlr", "HeartbeatInterval"): Setting("60", "integer"),
    ("OCPPCommCtrlr", "OfflineThreshold"): Setting("300", "integer"),
    ("SampledDataCtrlr", "TxUpdatedInterval"): Setting("60", "integer"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): Setting(
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage", "MemberList"
    ),
    ("TxCtrlr", "EVConnectionTimeOut"): Setting("60", "integer"),
    ("TxCtrlr", "StopTxOnEVSideDisconnect"): Setting("true", "boolean", readonly=True),
}


class Settings(Protocol):
    """What the station reads from its settings, whichever version it speaks."""

    @property
    def heartbeat_interval(self) -> int: ...

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: int) -> None: ...

    @property
    def meter_interval(self) -> int: ...

    @property
    def authorize_remote_start(self) -> bool: ...


class Configuration:
    """OCPP 1.6 configuration keys: GetConfiguration and ChangeConfiguration."""

    __slots__ = ("_changed", "connectors")

    def __init__(self, connectors: int) -> None:
        self.connectors = connectors
        self._changed: dict[str, str] | None = None  # only what differs from the table

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None`` if the station has no such key."""
        if key == "NumberOfConnectors":
            return str(self.connectors)
        if self._changed is not None and key in self._changed:
            return self._changed[key]
        setting = CONFIGURATION_KEYS.get(key)
        return None if setting is None else setting.default

    def set(self, key: str, value: str) -> None:
        """Store ``value`` for the station's own ``key``, without the CSMS's checks."""
        if key not in CONFIGURATION_KEYS:
            raise KeyError(key)
        if self._changed is None:
            self._changed = {}
        self._changed[key] = value

    def report(self, keys: Iterable[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """The GetConfiguration answer: ``(configurationKey, unknownKey)`` for ``keys``
        (every key when ``None`` or empty)."""
        names = list(keys or ()) or ["NumberOfConnectors", *CONFIGURATION_KEYS]
        known: list[dict[str, Any]] = []
        unknown: list[str] = []
        for name in names:
            value = self.get(name)
            if value is None:
                unknown.append(name)
            else:
                readonly = name == "NumberOfConnectors" or CONFIGURATION_KEYS[name].readonly
                known.append({"key": name, "readonly": readonly, "value": value})
        return known, unknown

    def change(self, key: str, value: str) -> str:
        """Apply the CSMS's ChangeConfiguration; its status."""
        setting = CONFIGURATION_KEYS.get(key)
        if setting is None:
            return "Rejected" if key == "NumberOfConnectors" else "NotSupported"
        stored = _valid(setting, value)
        if setting.readonly or stored is None:
            return "Rejected"
        self.set(key, stored)
        return "Accepted"

    @property
    def heartbeat_interval(self) -> int:
        return int(self.get("HeartbeatInterval") or 0)

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: int) -> None:
        self.set("HeartbeatInterval", str(seconds))

    @property
    def meter_interval(self) -> int:
        return int(self.get("MeterValueSampleInterval") or 0)

    @property
    def authorize_remote_start(self) -> bool:
        return self.get("AuthorizeRemoteTxRequests") == "true"


class DeviceModel:
    """The OCPP 2.x device model: GetVariables, SetVariables and base reports.

    Variables belong to station-wide components (no ``instance``, no ``evse``) and
    have only the ``Actual`` attribute.
    """

    __slots__ = ("_changed",)

    def __init__(self) -> None:
        self._changed: dict[tuple[str, str], str] | None = None

    def get(self, component: str, variable: str) -> str | None:
        """The value of ``component.variable``, or ``None`` if there is none."""
        key = (component, variable)
        if self._changed is not None and key in self._changed:
            return self._changed[key]
        setting = DEVICE_MODEL.get(key)
        return None if setting is None else setting.default

    def set(self, component: str, variable: str, value: str) -> None:
        """Store ``value`` for the station's own variable, without the CSMS's checks."""
        if (component, variable) not in DEVICE_MODEL:
            raise KeyError((component, variable))
        if self._changed is None:
            self._changed = {}
        self._changed[component, variable] = value

    def _find(self, item: Any) -> tuple[str, tuple[str, str] | None]:
        """The status a Get/SetVariables item earns before its value is looked at."""
        component, variable = item.component, item.variable
        known = any(name == component.name for name, _ in DEVICE_MODEL)
        if not known or component.instance is not None or component.evse is not None:
            return "UnknownComponent", None
        key = (component.name, variable.name)
        if key not in DEVICE_MODEL or variable.instance is not None:
            return "UnknownVariable", None
        if item.attribute_type not in (None, "Actual"):
            return "NotSupportedAttributeType", None
        return "Accepted", key

    def get_variables(self, items: Iterable[Any]) -> list[dict[str, Any]]:
        """The ``getVariableResult`` list answering ``getVariableData`` items."""
        results = []
        for item in items:
            status, key = self._find(item)
            result: dict[str, Any] = {
                "attributeStatus": status,
                "attributeType": item.attribute_type,
                "component": item.component,
                "variable": item.variable,
            }
            if key is not None:
                result["attributeValue"] = self.get(*key)
            results.append(result)
        return results

    def set_variables(self, items: Iterable[Any]) -> list[dict[str, Any]]:
        """The ``setVariableResult`` list answering ``setVariableData`` items."""
        results = []
        for item in items:
            status, key = self._find(item)
            if key is not None:
                setting = DEVICE_MODEL[key]
                stored = _valid(setting, item.attribute_value)
                if setting.readonly or stored is None:
                    status = "Rejected"
                else:
                    self.set(*key, stored)
            results.append(
                {
                    "attributeStatus": status,
                    "attributeType": item.attribute_type,
                    "component": item.component,
                    "variable": item.variable,
                }
            )
        return results

    def report(self, base: str) -> list[dict[str, Any]]:
        """The ``reportData`` of a NotifyReport for ``reportBase`` ``base``.

        ``ConfigurationInventory`` has the variables the CSMS may set,
        ``FullInventory`` every one, ``SummaryInventory`` the read-only ones.
        """
        data = []
        for (component, variable), setting in DEVICE_MODEL.items():
            if base == "ConfigurationInventory" and setting.readonly:
                continue
            if base == "SummaryInventory" and not setting.readonly:
                continue
            data.append(
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "variableAttribute": [
                        {
                            "type": "Actual",
                            "value": self.get(component, variable),
                            "mutability": "ReadOnly" if setting.readonly else "ReadWrite",
                        }
                    ],
                    "variableCharacteristics": {
                        "dataType": setting.kind,
                        "supportsMonitoring": False,
                    },
                }
            )
        return data

    @property
    def heartbeat_interval(self) -> int:
        return int(self.get("OCPPCommCtrlr", "HeartbeatInterval") or 0)

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: int) -> None:
        self.set("OCPPCommCtrlr", "HeartbeatInterval", str(seconds))

    @property
    def meter_interval(self) -> int:
        return int(self.get("SampledDataCtrlr", "TxUpdatedInterval") or 0)

    @property
    def authorize_remote_start(self) -> bool:
        return self.get("AuthCtrlr", "AuthorizeRemoteStart") == "true"
