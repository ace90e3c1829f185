"""The seam between building a command and sending it: :class:`Command`, :class:`CommandResult`.

A :class:`Command` is plain data: what to ask a station, in terms that do not depend on
its OCPP version. It does no I/O. Three methods make it usable by anyone who sends:

- :meth:`Command.request` gives the CALL for one version, ``(action, payload)``, or
  raises :class:`~csms_kit.exceptions.UsageError` when that version cannot express it;
- :meth:`Command.result` reads the station's answer (the CALLRESULT payload) into a
  version-neutral :class:`CommandResult`;
- :meth:`Command.to_dict` and :meth:`Command.from_dict` turn it into JSON-ready data
  and back, so that it can wait in a store (SQLite, Redis) for a station to come back.

:meth:`Command.send` puts the three together over a registry or a session. A durable
outbox does the same steps itself, apart in time: it stores ``to_dict()`` at
submission, and at delivery, once the station's version is known, sends
``request(version)`` with ``call_payload`` and keeps the answer's payload; the
result is ``result(version, payload)``, which may be read again later from what was
stored. Every command is exactly one CALL.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from csms_kit.exceptions import StationNotConnected, UsageError
from csms_kit.registry import ConnectionRegistry
from csms_kit.session import StationSession
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ["Command", "CommandResult", "Target"]

#: Where a command goes: a registry (with a station id) or one station's session.
Target: TypeAlias = ConnectionRegistry | StationSession

V16 = OcppVersion.V16
V201 = OcppVersion.V201
V21 = OcppVersion.V21

ResultT = TypeVar("ResultT", bound="CommandResult")


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """A station's answer to a command, in terms that do not depend on its version.

    ``accepted``: the station will do what was asked (now, or later where it says
    Scheduled). ``status``: the status it answered, as it spelled it (``None`` when
    the version's answer has none, e.g. 1.6 UpdateFirmware). ``reason``: 2.x
    ``statusInfo.reasonCode``, if given. ``response``: the answer's payload as
    received, for anything else it holds.
    """

    accepted: bool
    status: str | None
    reason: str | None = None
    response: dict[str, Any] = field(default_factory=dict, repr=False)


class Command(abc.ABC, Generic[ResultT]):
    """One CALL to a station, in version-neutral terms: plain, JSON-ready data.

    Subclasses are frozen dataclasses named for what they do (:class:`Reset`,
    :class:`SetConfiguration`...); ``name`` is the word :meth:`to_dict` stores. See
    the module docstring for how the outbox uses the seam.

    A command of your own (a vendor's DataTransfer, say) is a subclass too: a frozen
    dataclass of JSON values with a ``name`` no other command has, and
    :meth:`request` and :meth:`result`. :meth:`from_dict` knows it once its class
    is defined.
    """

    #: The command's name in :meth:`to_dict`'s data, e.g. ``"reset"``.
    name: ClassVar[str]
    _kinds: ClassVar[dict[str, type[Command[Any]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None:
            if name in Command._kinds:
                raise TypeError(f"two commands are named {name!r}")
            Command._kinds[name] = cls

    @abc.abstractmethod
    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        """The CALL for a station of ``version``: ``(action, payload)``.

        Pure: no I/O, the same answer every time. Raises
        :class:`~csms_kit.exceptions.UsageError` when ``version`` cannot express the
        command (call it for each version a station may speak to refuse such a
        command before storing it). The payload is checked against the OCPP schema
        when it is sent, as every outgoing CALL is.
        """

    @abc.abstractmethod
    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> ResultT:
        """The result of the station's answer ``payload`` to :meth:`request` (``version``)."""

    async def send(
        self, target: Target, station_id: str | None = None, *, timeout: float | None = None
    ) -> ResultT:
        """Send the command to a station and return its result.

        ``target`` is a :class:`~csms_kit.ConnectionRegistry` with the ``station_id``
        (the station may be connected to any process sharing the registry), or a
        :class:`~csms_kit.StationSession` (``station_id``, if given, must be its own).
        The station's version comes from its record (or session); ``timeout``
        overrides the session's call timeout.

        Error handling: raises :class:`~csms_kit.exceptions.UsageError` for a command
        the station's version cannot express (nothing is sent), and what a call
        raises: :class:`~csms_kit.exceptions.StationNotConnected`,
        :class:`~csms_kit.exceptions.CallError`,
        :class:`~csms_kit.exceptions.CallTimeout`...
        """
        if isinstance(target, ConnectionRegistry):
            if station_id is None:
                raise UsageError(f"{self.name}: a registry needs the station id to call")
            record = await target.record(station_id)
            if record is None:
                raise StationNotConnected(station_id)
            version = record.version
            action, payload = self.request(version)
            answer = await target.call_payload(station_id, action, payload, timeout=timeout)
        elif isinstance(target, StationSession):
            if station_id is not None and station_id != target.station_id:
                raise UsageError(
                    f"{self.name}: station id {station_id!r} given with the session of "
                    f"{target.station_id!r}"
                )
            version = target.version
            action, payload = self.request(version)
            answer = await target.call_payload(action, payload, timeout=timeout)
        else:
            raise UsageError(
                f"{self.name}: send to a ConnectionRegistry (with a station id) or a "
                f"StationSession, not {type(target).__name__}"
            )
        return self.result(version, answer)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``{"command": name, "arguments": {...}}``; :meth:`from_dict`
        reads it back into an equal command."""
        arguments = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"command": self.name, "arguments": arguments}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Command[Any]:
        """The command :meth:`to_dict` gave ``data`` for.

        Raises ``ValueError`` for data that names no known command or arguments it
        does not take, and :class:`~csms_kit.exceptions.UsageError` for arguments
        the command refuses.
        """
        name = data.get("command")
        cls = Command._kinds.get(name) if isinstance(name, str) else None
        arguments = data.get("arguments", {})
        if cls is None or not isinstance(arguments, Mapping):
            raise ValueError(f"not a command's data: {dict(data)!r:.200}")
        try:
            return cls._from_arguments(arguments)
        except TypeError as exc:
            raise ValueError(f"{name}: {exc}") from None

    @classmethod
    def _from_arguments(cls, arguments: Mapping[str, Any]) -> Command[Any]:
        """Build from :meth:`to_dict`'s arguments; commands with nested data override it."""
        return cls(**arguments)

    def _unsupported(self, version: OcppVersion, what: str) -> UsageError:
        return UsageError(f"{self.name} for an OCPP {version} station: {what}")


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data (nested dataclasses become dicts, tuples lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


# -- helpers shared by the commands -----------------------------------------------------


def new_request_id() -> int:
    """A fresh positive 31-bit id (requestId, remoteStartId) for a command."""
    return secrets.randbelow(2**31 - 1) + 1


def timestamp(value: datetime.datetime | str, what: str) -> str:
    """An OCPP date-time: an aware ``datetime`` in UTC (``...Z``), or a string as given."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise UsageError(
            f"{what}: a datetime without a time zone is ambiguous; give an aware one "
            "(e.g. datetime.now(timezone.utc))"
        )
    text = value.astimezone(datetime.timezone.utc).isoformat()
    return text.removesuffix("+00:00") + "Z"


def optional_timestamp(value: datetime.datetime | str | None, what: str) -> str | None:
    return None if value is None else timestamp(value, what)


def transaction_id_for(version: OcppVersion, value: int | str, what: str) -> int | str:
    """A transaction id as ``version`` writes it: an integer in 1.6, a string in 2.x."""
    if version is not V16:
        return str(value)
    if isinstance(value, int):
        return value
    if value.isascii() and value.isdigit():
        return int(value)
    raise UsageError(
        f"{what} for an OCPP 1.6 station: 1.6 transaction ids are integers, not {value!r}"
    )


def compact(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` without its ``None`` values (OCPP omits empty optional fields)."""
    return {key: value for key, value in payload.items() if value is not None}


def status_of(payload: Mapping[str, Any]) -> str | None:
    status = payload.get("status")
    return None if status is None else str(status)


def reason_of(payload: Mapping[str, Any], key: str = "statusInfo") -> str | None:
    info = payload.get(key)
    if isinstance(info, Mapping) and info.get("reasonCode") is not None:
        return str(info["reasonCode"])
    return None


def status_result(
    payload: Mapping[str, Any],
    accepted_statuses: tuple[str, ...],
    kind: type[ResultT],
    **data: Any,
) -> ResultT:
    """A ``kind`` result of an answer with a status (and, in 2.x, a statusInfo), plus
    the command's own ``data`` fields."""
    status = status_of(payload)
    return kind(
        accepted=status in accepted_statuses,
        status=status,
        reason=reason_of(payload),
        response=dict(payload),
        **data,
    )


def simple_result(
    payload: Mapping[str, Any], accepted_statuses: tuple[str, ...] = ("Accepted",)
) -> CommandResult:
    """The result of an answer that is a status (and, in 2.x, a statusInfo)."""
    return status_result(payload, accepted_statuses, CommandResult)


def check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise UsageError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
