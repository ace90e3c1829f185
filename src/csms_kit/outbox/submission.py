"""What the outbox stores about one command: a :class:`Submission`, plain data."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["FINAL", "PENDING", "Status", "Submission", "from_timestamp", "timestamp"]

#: ``queued`` (not sent yet), ``sent`` (on its way or sent without an answer known: it
#: is sent again, with the same messageId, when the station is next ready), and the
#: final ones: ``answered``, ``failed``, ``expired``, ``superseded``, ``cancelled``.
Status = Literal["queued", "sent", "answered", "failed", "expired", "superseded", "cancelled"]

PENDING: frozenset[Status] = frozenset({"queued", "sent"})
FINAL: frozenset[Status] = frozenset({"answered", "failed", "expired", "superseded", "cancelled"})


@dataclass(frozen=True, slots=True)
class Submission:
    """One command submitted for one station, and what became of it.

    ``request`` is the stored command (see :func:`csms_kit.outbox.command_from_dict`);
    ``action`` names it for people (the OCPP action, or the version-neutral command's
    name). ``sequence`` orders a station's submissions (given by the store).
    ``result`` is the station's answer once ``answered`` (JSON data); ``error`` and
    ``error_code`` say why it ``failed`` (``error_code``: the CALLERROR's code, or
    ``"Timeout"``, ``"Disconnected"``, ``"InvalidResponse"``, ``"InvalidCommand"``).
    """

    id: str
    station_id: str
    action: str
    request: dict[str, Any]
    submitted_at: datetime.datetime
    expires_at: datetime.datetime
    supersede_key: str | None = None
    sequence: int = 0
    status: Status = "queued"
    attempts: int = 0
    message_id: str | None = None
    result: Any = None
    error: str | None = None
    error_code: str | None = None
    finished_at: datetime.datetime | None = field(default=None)

    @property
    def pending(self) -> bool:
        """Whether it may still be sent (``queued`` or ``sent``)."""
        return self.status in PENDING

    def finished(
        self,
        status: Status,
        at: datetime.datetime,
        *,
        result: Any = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> Submission:
        """A copy in the final ``status``."""
        return replace(
            self, status=status, result=result, error=error, error_code=error_code, finished_at=at
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (times as ISO 8601); :meth:`from_dict` reads it back."""
        return {
            "id": self.id,
            "station_id": self.station_id,
            "action": self.action,
            "request": self.request,
            "submitted_at": self.submitted_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "supersede_key": self.supersede_key,
            "sequence": self.sequence,
            "status": self.status,
            "attempts": self.attempts,
            "message_id": self.message_id,
            "result": self.result,
            "error": self.error,
            "error_code": self.error_code,
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Submission:
        finished_at = data.get("finished_at")
        return cls(
            id=str(data["id"]),
            station_id=str(data["station_id"]),
            action=str(data["action"]),
            request=dict(data["request"]),
            submitted_at=datetime.datetime.fromisoformat(data["submitted_at"]),
            expires_at=datetime.datetime.fromisoformat(data["expires_at"]),
            supersede_key=data.get("supersede_key"),
            sequence=int(data.get("sequence", 0)),
            status=data.get("status", "queued"),
            attempts=int(data.get("attempts", 0)),
            message_id=data.get("message_id"),
            result=data.get("result"),
            error=data.get("error"),
            error_code=data.get("error_code"),
            finished_at=None
            if finished_at is None
            else datetime.datetime.fromisoformat(finished_at),
        )


def timestamp(moment: datetime.datetime) -> float:
    """Seconds since the epoch, for stores that order and compare times."""
    return moment.timestamp()


def from_timestamp(seconds: float) -> datetime.datetime:
    """The aware UTC time of a :func:`timestamp`."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
