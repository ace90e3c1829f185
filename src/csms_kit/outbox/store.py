"""What an outbox store does: :class:`OutboxStore`, and :func:`store_from_url`.

A store keeps submissions durably and answers the few questions delivery asks: the
next pending submission of a station, which stations have any, which have expired.
Each change is one atomic write that applies only to a pending submission, so two
processes racing (a delivery and a ``cancel``) never both win.
"""

from __future__ import annotations

import abc
import datetime
from collections.abc import Callable
from typing import Any

from csms_kit.exceptions import CsmsKitError, UsageError
from csms_kit.outbox.submission import Status, Submission

__all__ = [
    "FinishedListener",
    "OutboxStore",
    "OutboxStoreError",
    "SubmittedListener",
    "store_from_url",
]

#: Called with a station id when a submission for it was added (by any process).
SubmittedListener = Callable[[str], None]
#: Called with a submission's id when it became final (in any process).
FinishedListener = Callable[[str], None]


class OutboxStoreError(CsmsKitError):
    """The outbox store cannot be used: corrupt, unwritable, or unreachable."""


class OutboxStore(abc.ABC):
    """Durable storage of submissions; use with ``async with`` (or :meth:`open`)."""

    async def __aenter__(self) -> OutboxStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and check the store; raise :class:`OutboxStoreError` if unusable."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the store's resources (idempotent)."""

    @abc.abstractmethod
    async def add(self, submission: Submission) -> tuple[Submission, list[Submission]]:
        """Store a new submission, giving it its ``sequence``.

        In the same write, a queued submission for the same station with the same
        ``supersede_key`` becomes ``superseded``. Returns the stored submission and
        those it superseded.
        """

    @abc.abstractmethod
    async def next_pending(self, station_id: str) -> Submission | None:
        """The station's pending submission with the lowest sequence, if any."""

    @abc.abstractmethod
    async def mark_sent(self, submission_id: str, message_id: str) -> Submission | None:
        """Record an attempt (status ``sent``, ``attempts`` + 1, its messageId).

        ``None`` if the submission is no longer pending (cancelled meanwhile).
        """

    @abc.abstractmethod
    async def finish(
        self,
        submission_id: str,
        status: Status,
        at: datetime.datetime,
        *,
        result: Any = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> Submission | None:
        """Give a pending submission its final ``status``; ``None`` if it was not pending."""

    @abc.abstractmethod
    async def get(self, submission_id: str) -> Submission | None:
        """The submission by id, if the store has it."""

    @abc.abstractmethod
    async def find(
        self, *, station_id: str | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Submission]:
        """Submissions, newest first, optionally of one station and/or status."""

    @abc.abstractmethod
    async def pending_stations(self) -> list[str]:
        """The stations with at least one pending submission."""

    @abc.abstractmethod
    async def expire(self, now: datetime.datetime) -> list[Submission]:
        """Make every pending submission whose expiry has passed ``expired``; return them."""

    @abc.abstractmethod
    async def purge(self, before: datetime.datetime) -> int:
        """Delete final submissions that finished before ``before``; how many."""

    async def listen(  # noqa: B027 - optional
        self, submitted: SubmittedListener, finished: FinishedListener | None = None
    ) -> None:
        """Have ``submitted`` called when any process adds a submission, and
        ``finished`` when any process brings one to a final status.

        Optional: a store that cannot tell (SQLite) relies on delivery's periodic look
        at :meth:`pending_stations`, and waiters on reading the store again.
        """


def store_from_url(url: str, **options: Any) -> OutboxStore:
    """A store for ``url``: ``redis://host:port/db`` (or ``rediss://``), or SQLite as
    ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` or a plain path."""
    if url.startswith(("redis://", "rediss://")):
        from csms_kit.outbox.redis import RedisStore  # noqa: PLC0415 - optional extra

        return RedisStore(url, **options)
    path = url
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        if path == url or not path:
            raise UsageError(f"outbox store URL {url!r}: use sqlite:///relative/path.db")
    elif "://" in url:
        raise UsageError(f"unknown outbox store URL {url!r}: use sqlite:///path or redis://...")
    from csms_kit.outbox.sqlite import SqliteStore  # noqa: PLC0415 - imports store

    return SqliteStore(path, **options)
