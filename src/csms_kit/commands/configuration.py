"""Reading and changing a station's settings: 1.6 configuration keys, 2.x variables.

A setting is named by a string, a 1.6 configuration key, or by a
:class:`~csms_kit.commands.DeviceVariable`, a 2.x variable. Each is translated for the
station's version through :data:`~csms_kit.commands.STANDARD_KEYS`: a standard 1.6 key
becomes its 2.x variable, a 2.x variable with a standard 1.6 key becomes that key. A
string that is not a standard key goes to a 1.6 station as it is (vendors add their
own keys); a variable with no 1.6 key goes to a 2.x station as it is. What cannot be
translated raises :class:`~csms_kit.exceptions.UsageError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from csms_kit.commands.base import V16, Command, CommandResult, Target, reason_of, simple_result
from csms_kit.commands.keys import DeviceVariable, key_for_variable, variable_for_key
from csms_kit.exceptions import UsageError
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = [
    "ConfigurationKey",
    "ConfigurationResult",
    "ConfigurationValue",
    "GetConfiguration",
    "SetConfiguration",
    "get_configuration",
    "set_configuration",
]

#: A setting: a 1.6 configuration key, or a 2.x variable.
ConfigurationKey: TypeAlias = str | DeviceVariable


def _check_key(key: Any, what: str) -> None:
    if not isinstance(key, (str, DeviceVariable)):
        raise UsageError(f"{what}: a key is a string or a DeviceVariable, not {key!r}")


def _key_from_data(key: Any) -> ConfigurationKey:
    """A key from :meth:`~csms_kit.commands.Command.to_dict`'s data (a variable is a dict)."""
    return DeviceVariable(**key) if isinstance(key, Mapping) else cast(ConfigurationKey, key)


def _key_for(version: OcppVersion, key: ConfigurationKey) -> str | DeviceVariable:
    """``key`` as ``version`` names it: a 1.6 key string, or a 2.x variable."""
    if version is V16:
        return key if isinstance(key, str) else key_for_variable(key)
    return key if isinstance(key, DeviceVariable) else variable_for_key(key)


def _identity(component: Mapping[str, Any], variable: Mapping[str, Any]) -> DeviceVariable:
    return DeviceVariable.from_payload(component, variable)


@dataclass(frozen=True)
class ConfigurationValue:
    """One setting in a :class:`ConfigurationResult`.

    ``key`` as it was asked for (or, for all of a 1.6 station's keys, as reported);
    ``value`` (``None`` when there is none); ``status``: 2.x's ``attributeStatus``
    (``"Accepted"``, ``"UnknownVariable"``, ``"UnknownComponent"``, ``"Rejected"``...);
    for 1.6, ``"Accepted"`` for a reported key and ``"UnknownVariable"`` for one in
    ``unknownKey``; ``"Missing"`` when the answer did not mention it. ``readonly``:
    1.6's flag (``None`` in 2.x).
    """

    key: ConfigurationKey
    value: str | None
    status: str
    readonly: bool | None = None

    @property
    def known(self) -> bool:
        """Whether the station has the setting and gave its value."""
        return self.status == "Accepted"


@dataclass(frozen=True, kw_only=True)
class ConfigurationResult(CommandResult):
    """The answer to :class:`GetConfiguration`: each setting's :class:`ConfigurationValue`.

    ``accepted`` is true when every setting asked for is known; ``status`` is
    ``None`` (each value has its own).
    """

    values: tuple[ConfigurationValue, ...] = ()

    def get(self, key: ConfigurationKey, default: str | None = None) -> str | None:
        """The value of ``key`` (as it was asked for), or ``default``."""
        for item in self.values:
            if item.key == key and item.value is not None:
                return item.value
        return default


@dataclass(frozen=True)
class GetConfiguration(Command[ConfigurationResult]):
    """Read settings: 1.6 GetConfiguration, 2.x GetVariables (the ``Actual`` values).

    ``keys`` ``None`` asks a 1.6 station for all its keys; 2.x has no such request
    in one CALL (its GetBaseReport answers with later NotifyReport messages), so
    there it raises :class:`~csms_kit.exceptions.UsageError`.
    """

    name: ClassVar[str] = "get_configuration"
    keys: Sequence[ConfigurationKey] | None = None

    def __post_init__(self) -> None:
        if self.keys is None:
            return
        if isinstance(self.keys, (str, DeviceVariable)):
            raise UsageError(f"{self.name}: keys is a list of keys, not one key")
        keys = tuple(self.keys)
        for key in keys:
            _check_key(key, self.name)
        object.__setattr__(self, "keys", keys or None)

    def _wire_keys(self, version: OcppVersion) -> list[str | DeviceVariable]:
        try:
            return [_key_for(version, key) for key in self.keys or ()]
        except UsageError as exc:
            raise self._unsupported(version, str(exc)) from None

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        if version is V16:
            return "GetConfiguration", {"key": self._wire_keys(version)} if self.keys else {}
        if not self.keys:
            raise self._unsupported(
                version,
                "OCPP 2.x cannot list every variable in one call; name the keys "
                "(or send GetBaseReport and read the NotifyReport messages)",
            )
        data = [
            {"component": v.component_payload(), "variable": v.variable_payload()}
            for v in self._wire_keys(version)
            if isinstance(v, DeviceVariable)
        ]
        return "GetVariables", {"getVariableData": data}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> ConfigurationResult:
        values = self._read_16(payload) if version is V16 else self._read_2x(version, payload)
        return ConfigurationResult(
            accepted=all(v.known for v in values),
            status=None,
            response=dict(payload),
            values=values,
        )

    def _read_16(self, payload: Mapping[str, Any]) -> tuple[ConfigurationValue, ...]:
        reported: dict[str, Mapping[str, Any]] = {}
        for entry in payload.get("configurationKey") or ():
            reported.setdefault(str(entry.get("key")).casefold(), entry)
        unknown = {str(key).casefold(): str(key) for key in payload.get("unknownKey") or ()}
        if not self.keys:
            return tuple(
                ConfigurationValue(
                    str(e.get("key")), e.get("value"), "Accepted", e.get("readonly")
                )
                for e in reported.values()
            ) + tuple(ConfigurationValue(k, None, "UnknownVariable") for k in unknown.values())
        values = []
        for asked, wire in zip(self.keys, self._wire_keys(V16), strict=True):
            folded = str(wire).casefold()
            entry = reported.get(folded)
            if entry is not None:
                value = ConfigurationValue(
                    asked, entry.get("value"), "Accepted", entry.get("readonly")
                )
            else:
                status = "UnknownVariable" if folded in unknown else "Missing"
                value = ConfigurationValue(asked, None, status)
            values.append(value)
        return tuple(values)

    def _read_2x(
        self, version: OcppVersion, payload: Mapping[str, Any]
    ) -> tuple[ConfigurationValue, ...]:
        answers: dict[DeviceVariable, Mapping[str, Any]] = {}
        for item in payload.get("getVariableResult") or ():
            identity = _identity(item.get("component") or {}, item.get("variable") or {})
            answers.setdefault(identity, item)
        values = []
        for asked, wire in zip(self.keys or (), self._wire_keys(version), strict=True):
            item = answers.get(wire) if isinstance(wire, DeviceVariable) else None
            if item is None:
                values.append(ConfigurationValue(asked, None, "Missing"))
            else:
                status = str(item.get("attributeStatus"))
                values.append(ConfigurationValue(asked, item.get("attributeValue"), status))
        return tuple(values)

    @classmethod
    def _from_arguments(cls, arguments: Mapping[str, Any]) -> GetConfiguration:
        keys = arguments.get("keys")
        rest = {k: v for k, v in arguments.items() if k != "keys"}
        return cls(None if keys is None else [_key_from_data(k) for k in keys], **rest)


@dataclass(frozen=True)
class SetConfiguration(Command[CommandResult]):
    """Change one setting: 1.6 ChangeConfiguration, 2.x SetVariables (one variable).

    ``value`` is sent as text: booleans as ``true``/``false``, numbers in decimal.
    ``accepted`` is true for Accepted and RebootRequired (the change takes effect
    after a reboot: ``status`` says which).
    """

    name: ClassVar[str] = "set_configuration"
    key: ConfigurationKey
    value: str | int | bool
    _accepted: ClassVar[tuple[str, ...]] = ("Accepted", "RebootRequired")

    def __post_init__(self) -> None:
        _check_key(self.key, self.name)
        value = self.value
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        elif not isinstance(value, str):
            raise UsageError(f"{self.name}: a value is text, a number or a boolean, not {value!r}")
        object.__setattr__(self, "value", value)

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        try:
            wire = _key_for(version, self.key)
        except UsageError as exc:
            raise self._unsupported(version, str(exc)) from None
        if isinstance(wire, str):
            return "ChangeConfiguration", {"key": wire, "value": self.value}
        item = {
            "attributeValue": self.value,
            "component": wire.component_payload(),
            "variable": wire.variable_payload(),
        }
        return "SetVariables", {"setVariableData": [item]}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        if version is V16:
            return simple_result(payload, self._accepted)
        items = payload.get("setVariableResult") or [{}]
        item = items[0]
        status = item.get("attributeStatus")
        return CommandResult(
            accepted=status in self._accepted,
            status=None if status is None else str(status),
            reason=reason_of(item, "attributeStatusInfo"),
            response=dict(payload),
        )

    @classmethod
    def _from_arguments(cls, arguments: Mapping[str, Any]) -> SetConfiguration:
        rest = {k: v for k, v in arguments.items() if k != "key"}
        return cls(_key_from_data(arguments.get("key")), **rest)


async def get_configuration(
    target: Target,
    station_id: str | None = None,
    *,
    keys: Sequence[ConfigurationKey] | None = None,
    timeout: float | None = None,
) -> ConfigurationResult:
    """Read settings of a station (see :class:`GetConfiguration`).

    ``(await get_configuration(registry, "CP-1", keys=["HeartbeatInterval"]))
    .get("HeartbeatInterval")`` is the interval, whatever the station's version.
    """
    return await GetConfiguration(keys).send(target, station_id, timeout=timeout)


async def set_configuration(
    target: Target,
    station_id: str | None = None,
    *,
    key: ConfigurationKey,
    value: str | int | bool,
    timeout: float | None = None,
) -> CommandResult:
    """Change one setting of a station (see :class:`SetConfiguration`)."""
    return await SetConfiguration(key, value).send(target, station_id, timeout=timeout)
