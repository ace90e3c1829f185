"""What the outbox can deliver, stored as JSON: a raw call, or a version-neutral command.

The outbox stores a command before it knows which OCPP version the station will
speak when it is back, so what it stores must turn into a request *at delivery*:
:class:`Deliverable` says how. :class:`RawCall` is an action and payload given as
is (the application picked the version); a command of :mod:`csms_kit.commands` is
built for the station's version when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from csms_kit.commands.base import Command
from csms_kit.versions import OcppVersion

__all__ = ["Deliverable", "RawCall", "deliverable_from_dict"]


@runtime_checkable
class Deliverable(Protocol):
    """Something the outbox can store and send (a :class:`RawCall`, a command)."""

    @property
    def name(self) -> str:
        """What to call it in listings: the action, or the command's name."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data that :func:`deliverable_from_dict` reads back."""

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        """The CALL's action and payload for a station speaking ``version``.

        Raises :class:`~csms_kit.exceptions.UsageError` if it cannot be said in that
        version.
        """

    def result(self, version: OcppVersion, payload: dict[str, Any]) -> Any:
        """What the station's answer (the CALLRESULT payload) means: kept as the
        submission's result, as JSON data (a dataclass becomes a dict)."""


@dataclass(frozen=True)
class RawCall:
    """A CALL given as ``action`` and JSON ``payload``; kept as the station answers it."""

    action: str
    payload: dict[str, Any]

    @property
    def name(self) -> str:
        return self.action

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "raw", "action": self.action, "payload": self.payload}

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        return self.action, self.payload

    def result(self, version: OcppVersion, payload: dict[str, Any]) -> Any:
        return payload


def deliverable_from_dict(data: dict[str, Any]) -> Deliverable:
    """The deliverable stored as ``data`` (see :meth:`Deliverable.to_dict`).

    Raises ``ValueError`` for data that names nothing known.
    """
    if data.get("kind") == "raw":
        return RawCall(str(data["action"]), dict(data["payload"]))
    if "command" in data:
        return Command.from_dict(data)
    raise ValueError(f"not an outbox request: {data!r:.200}")
