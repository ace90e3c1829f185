"""One command API for every OCPP version: ``csms_kit.commands``.

Each function sends one command to one station, whatever its OCPP version (1.6, 2.0.1,
2.1), and returns a version-neutral result::

    from csms_kit import commands

    result = await commands.reset(registry, "CP-1", kind="hard")
    if not result.accepted:
        ...
    await commands.set_configuration(session, key="HeartbeatInterval", value=300)

The first argument is the target: a :class:`~csms_kit.ConnectionRegistry` with the
station's id (the station may be connected to any process sharing the registry), or
a :class:`~csms_kit.StationSession`. Arguments that say what to do are keyword-only.

The seam (for a durable outbox, a job queue, a REST layer): every function is
``await SomeCommand(...).send(target, station_id)``, and a :class:`Command` is plain
data that can wait: :meth:`Command.to_dict` / :meth:`Command.from_dict` store it as
JSON, :meth:`Command.request` builds its CALL once the station's version is known,
:meth:`Command.result` reads the station's answer. See :mod:`csms_kit.commands.base`.

Error handling: input a station's version cannot express (a 2.x-only message for a
1.6 station, a 1.6 key that 2.x has no variable for...) raises
:class:`~csms_kit.exceptions.UsageError` before anything is sent; a payload that
breaks the OCPP schema raises :class:`~csms_kit.exceptions.InvalidPayload` (also a
UsageError), unsent. A call's errors are raised as they come:
:class:`~csms_kit.exceptions.StationNotConnected`,
:class:`~csms_kit.exceptions.CallError`, :class:`~csms_kit.exceptions.CallTimeout`...
A station that answers "Rejected" is not an error: ``result.accepted`` is false.

What maps to what, and what is lost on the way, is in ``docs/commands.md``.
"""

from csms_kit.commands.base import Command, CommandResult, Target
from csms_kit.commands.charging import (
    ChargingProfile,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ClearChargingProfile,
    SetChargingProfile,
    clear_charging_profile,
    set_charging_profile,
)
from csms_kit.commands.configuration import (
    ConfigurationKey,
    ConfigurationResult,
    ConfigurationValue,
    GetConfiguration,
    SetConfiguration,
    get_configuration,
    set_configuration,
)
from csms_kit.commands.control import (
    ChangeAvailability,
    ClearCache,
    DataTransfer,
    DataTransferResult,
    Reset,
    ResetKind,
    TriggerMessage,
    UnlockConnector,
    change_availability,
    clear_cache,
    data_transfer,
    reset,
    trigger_message,
    unlock_connector,
)
from csms_kit.commands.keys import (
    STANDARD_KEYS,
    DeviceVariable,
    key_for_variable,
    variable_for_key,
)
from csms_kit.commands.maintenance import (
    GetLog,
    LogResult,
    LogType,
    UpdateFirmware,
    UpdateFirmwareResult,
    get_log,
    update_firmware,
)
from csms_kit.commands.transactions import (
    RemoteStart,
    RemoteStartResult,
    RemoteStop,
    remote_start,
    remote_stop,
)

__all__ = [
    "STANDARD_KEYS",
    "ChangeAvailability",
    "ChargingProfile",
    "ChargingSchedule",
    "ChargingSchedulePeriod",
    "ClearCache",
    "ClearChargingProfile",
    "Command",
    "CommandResult",
    "ConfigurationKey",
    "ConfigurationResult",
    "ConfigurationValue",
    "DataTransfer",
    "DataTransferResult",
    "DeviceVariable",
    "GetConfiguration",
    "GetLog",
    "LogResult",
    "LogType",
    "RemoteStart",
    "RemoteStartResult",
    "RemoteStop",
    "Reset",
    "ResetKind",
    "SetChargingProfile",
    "SetConfiguration",
    "Target",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
    "UpdateFirmwareResult",
    "change_availability",
    "clear_cache",
    "clear_charging_profile",
    "data_transfer",
    "get_configuration",
    "get_log",
    "key_for_variable",
    "remote_start",
    "remote_stop",
    "reset",
    "set_charging_profile",
    "set_configuration",
    "trigger_message",
    "unlock_connector",
    "update_firmware",
    "variable_for_key",
]
