"""The outbox: commands for stations, delivered when they are back, surviving restarts.

:meth:`Outbox.submit` stores a command for a station whether or not it is connected.
A server given the outbox (``serve(..., outbox=outbox)``) tells it when a station it
holds is ready: connected and accepted at boot (now, or on an earlier connection).
The outbox then sends that station's pending submissions one at a time, in submission
order, through its session (so one outstanding CALL holds), ``interval`` seconds apart,
after ``start_delay`` (let the station finish its boot chatter first), with at most
``concurrency`` stations being sent to at once: a reconnect storm is not a flood.

Semantics, plainly: delivery is at-least-once. A submission is marked ``sent`` (with
its messageId) before its CALL goes out; if the process dies before the answer is
stored, the CALL is sent again, with the same messageId, when the station is next
ready, so a station may see a command twice (OCPP 2.1 allows a resend with the same
messageId; an idempotent command is the safe kind to queue). A CALLERROR, an invalid
answer or a command the station's version cannot express makes it ``failed`` at once;
a timeout or a lost connection is retried until ``max_attempts`` sends. Every
submission ends ``answered``, ``failed``, ``expired`` (``ttl``: none waits forever),
``superseded`` or ``cancelled``. Nothing here runs per message: a station with an
empty outbox costs one store read when it becomes ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csms_kit.exceptions import (
    CallError,
    CallTimeout,
    ConnectionEnded,
    InvalidResponse,
    UsageError,
)
from csms_kit.hooks import call_hook
from csms_kit.logs import station_fields
from csms_kit.outbox.requests import Deliverable, deliverable_from_dict
from csms_kit.outbox.store import OutboxStore, store_from_url
from csms_kit.outbox.submission import Status, Submission
from csms_kit.stopping import cancel_and_wait
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from typing_extensions import Self

    from csms_kit.registry import ConnectionRegistry
    from csms_kit.session import StationSession

__all__ = ["Outbox"]

logger = logging.getLogger("csms_kit.outbox")

OnFinished = Callable[[Submission], Any]


@dataclass(eq=False)
class _Flush:
    """The task sending one session's pending submissions."""

    session: StationSession
    #: Bumped by every poke: a flush that found nothing looks again if it changed.
    generation: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Outbox:
    """Durable commands for stations; use with ``async with`` (see the module docstring).

    ``store`` is an :class:`~csms_kit.outbox.OutboxStore` or its URL (a SQLite path,
    ``sqlite:///file.db``, ``redis://...``). ``registry`` is where stations are found;
    a server given the outbox binds its own when it is left out. ``ttl``: default
    seconds a submission waits before it expires. ``call_timeout``: per CALL (default:
    the session's). ``retention``: seconds finished submissions are kept for queries.
    ``max_attempts``: sends before a timeout or a lost connection fails a submission;
    ``retry_delay``: seconds before a CALL that timed out is sent again (with its
    messageId). ``poll_interval``: how often expiry is applied and the store is checked for
    submissions other processes added. ``on_finished(submission)`` (sync or async) is
    called for each submission this process brings to a final status.
    """

    def __init__(
        self,
        store: OutboxStore | str | Path,
        *,
        registry: ConnectionRegistry | None = None,
        ttl: float = 24 * 3600,
        call_timeout: float | None = None,
        max_attempts: int = 3,
        retry_delay: float = 10.0,
        start_delay: float = 1.0,
        interval: float = 0.1,
        concurrency: int = 100,
        poll_interval: float = 5.0,
        retention: float = 7 * 24 * 3600,
        on_finished: OnFinished | None = None,
    ) -> None:
        if max_attempts < 1:
            raise UsageError("max_attempts must be at least 1")
        if ttl <= 0 or poll_interval <= 0 or concurrency < 1:
            raise UsageError("ttl and poll_interval must be positive, concurrency at least 1")
        self.store = store if isinstance(store, OutboxStore) else store_from_url(str(store))
        self._registry = registry
        self.ttl = ttl
        self.call_timeout = call_timeout
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.start_delay = start_delay
        self.interval = interval
        self.poll_interval = poll_interval
        self.retention = retention
        self.on_finished = on_finished
        self._slots = asyncio.Semaphore(concurrency)
        self._flushes: dict[str, _Flush] = {}
        # Each wait() has an event of its own: one waiter leaving takes no wake-up from
        # another waiting for the same submission.
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    # -- lifetime -------------------------------------------------------------------------

    @property
    def registry(self) -> ConnectionRegistry | None:
        """The registry stations are looked up in (``None`` until bound)."""
        return self._registry

    def bind(self, registry: ConnectionRegistry) -> None:
        """Use ``registry`` (a server binds its own); an outbox serves one registry."""
        if self._registry is None:
            self._registry = registry
        elif self._registry is not registry:
            raise UsageError("this outbox already serves another registry")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store (raising :class:`~csms_kit.outbox.OutboxStoreError` if it is
        unusable) and start applying expiry."""
        if self._started:
            return
        await self.store.open()
        await self.store.listen(self._poke_station, self._wake_waiters)
        self._started = True
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep_forever(), name="csms_kit outbox sweeper"
        )

    async def aclose(self) -> None:
        """Stop delivering (a CALL in flight stays ``sent``) and close the store."""
        if not self._started:
            return
        self._started = False
        await cancel_and_wait(self._sweeper, *(f.task for f in self._flushes.values()))
        self._sweeper = None
        self._flushes.clear()
        await self.store.aclose()

    # -- the application's side -----------------------------------------------------------

    async def submit(
        self,
        station_id: str,
        command: Deliverable,
        *,
        expires_in: float | None = None,
        expires_at: datetime.datetime | None = None,
        supersede_key: str | None = None,
    ) -> Submission:
        """Store ``command`` for ``station_id``; it is delivered when the station is ready.

        ``command`` is a :class:`~csms_kit.outbox.RawCall` or a command of
        :mod:`csms_kit.commands`. It expires ``expires_in`` seconds from now, at
        ``expires_at``, or after the outbox's ``ttl``. A queued submission of the same
        station with the same ``supersede_key`` is superseded by this one.
        """
        self._check_started()
        if not isinstance(station_id, str) or not station_id:
            raise UsageError(f"station_id must be a non-empty string, not {station_id!r}")
        if not isinstance(command, Deliverable):
            raise UsageError(f"cannot queue {command!r}: give a RawCall or a command")
        _check_expressible(command)
        now = _now()
        if expires_at is None:
            expires_at = now + datetime.timedelta(
                seconds=self.ttl if expires_in is None else expires_in
            )
        elif expires_in is not None:
            raise UsageError("give expires_in or expires_at, not both")
        if expires_at.tzinfo is None:
            raise UsageError("expires_at must be an aware datetime (e.g. in UTC)")
        if expires_at <= now:
            raise UsageError(f"the submission would expire before it is queued ({expires_at})")
        submission, superseded = await self.store.add(
            Submission(
                id=uuid.uuid4().hex,
                station_id=station_id,
                action=command.name,
                request=command.to_dict(),
                submitted_at=now,
                expires_at=expires_at,
                supersede_key=supersede_key,
            )
        )
        for older in superseded:
            await self._finished(older)
        self._poke_station(station_id)
        return submission

    async def get(self, submission_id: str) -> Submission | None:
        """The submission by id, as the store has it now."""
        self._check_started()
        return await self.store.get(submission_id)

    async def find(
        self, *, station_id: str | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Submission]:
        """Submissions, newest first, optionally of one station and/or status."""
        self._check_started()
        if limit < 1:
            raise UsageError(f"limit must be at least 1, not {limit}")
        return await self.store.find(station_id=station_id, status=status, limit=limit)

    async def cancel(self, submission_id: str) -> Submission | None:
        """Cancel a pending submission; ``None`` if it is unknown or already final.

        A CALL already sent cannot be taken back: cancelling it only stops resends.
        """
        self._check_started()
        cancelled = await self.store.finish(submission_id, "cancelled", _now(), error="cancelled")
        if cancelled is not None:
            await self._finished(cancelled)
        return cancelled

    async def wait(self, submission_id: str, timeout: float | None = None) -> Submission:
        """Wait until the submission is final and return it.

        Works for submissions delivered by another process too: a store that tells
        (Redis) wakes the wait at once, and the store is read again at least every
        ``poll_interval``. Raises ``TimeoutError`` after
        ``timeout`` seconds, :class:`~csms_kit.exceptions.UsageError` for an unknown id.
        """
        self._check_started()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        event = asyncio.Event()
        waiters = self._waiters.setdefault(submission_id, set())
        waiters.add(event)
        try:
            while True:
                submission = await self.store.get(submission_id)
                if submission is None:
                    raise UsageError(f"no submission {submission_id!r} in the outbox")
                if not submission.pending:
                    return submission
                pause = self.poll_interval
                if deadline is not None:
                    pause = min(pause, deadline - loop.time())
                    if pause <= 0:
                        raise TimeoutError(
                            f"submission {submission_id} is still {submission.status}"
                        )
                # asyncio's TimeoutError is not yet the built-in one on Python 3.10.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), pause)
                event.clear()
        finally:
            waiters.discard(event)
            if not waiters and self._waiters.get(submission_id) is waiters:
                del self._waiters[submission_id]

    # -- the server's side ----------------------------------------------------------------

    def station_accepted(self, session: StationSession) -> None:
        """A station held here is connected and accepted at boot: deliver to it."""
        if self._started:
            self._poke(session)

    def _wake_waiters(self, submission_id: str) -> None:
        """The submission became final (here or, as the store tells, elsewhere)."""
        for event in self._waiters.get(submission_id, ()):
            event.set()

    def _poke_station(self, station_id: str) -> None:
        """A submission for the station was added (here, or as the store tells, elsewhere)."""
        registry = self._registry
        session = None if registry is None else registry.local_session(station_id)
        if session is not None and _ready(session):
            self._poke(session)

    def _poke(self, session: StationSession) -> None:
        station_id = session.station_id
        flush = self._flushes.get(station_id)
        if flush is not None and flush.session is session:
            flush.generation += 1
            return
        flush = _Flush(session)
        self._flushes[station_id] = flush
        flush.task = asyncio.get_running_loop().create_task(
            self._flush(flush), name=f"csms_kit outbox {station_id}"
        )

    async def _flush(self, flush: _Flush) -> None:
        session = flush.session
        station_id = session.station_id
        try:
            await asyncio.sleep(self.start_delay)
            while self._started and _ready(session):
                seen = flush.generation
                submission = await self.store.next_pending(station_id)
                if submission is None:
                    if flush.generation == seen:
                        return
                    continue
                async with self._slots:
                    pause = await self._deliver(session, submission)
                if pause is None:
                    return
                await asyncio.sleep(pause)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed: the sweeper tries again later
            logger.warning(
                "outbox: delivery to station %r stopped: %s",
                station_id,
                exc,
                extra=station_fields(station_id),
            )
        finally:
            if self._flushes.get(station_id) is flush:
                del self._flushes[station_id]

    async def _deliver(self, session: StationSession, submission: Submission) -> float | None:
        """Send one submission and store what became of it.

        Returns the pause before the next one (nothing was sent: none; a CALL was:
        ``interval``; it timed out and is to be sent again: ``retry_delay``, which
        holds no delivery slot), or ``None`` when the station has left.
        """
        if submission.expires_at <= _now():
            await self._finish(submission, "expired", error="expired")
            return 0.0
        version = session.version
        try:
            command = deliverable_from_dict(submission.request)
            action, payload = command.request(version)
        except (UsageError, KeyError, TypeError, ValueError) as exc:
            await self._finish(submission, "failed", error=str(exc), error_code="InvalidCommand")
            return 0.0
        message_id = submission.message_id or str(uuid.uuid4())
        sent = await self.store.mark_sent(submission.id, message_id)
        if sent is None:
            return 0.0  # cancelled meanwhile
        try:
            answer = await session.call_payload(
                action, payload, timeout=self.call_timeout, message_id=message_id
            )
        except CallError as exc:
            await self._finish(sent, "failed", error=exc.description, error_code=str(exc.code))
        except InvalidResponse as exc:
            await self._finish(sent, "failed", error=str(exc), error_code="InvalidResponse")
        except UsageError as exc:  # the payload breaks this version's schema
            await self._finish(sent, "failed", error=str(exc), error_code="InvalidCommand")
        except CallTimeout as exc:
            if sent.attempts < self.max_attempts:
                # The station may still be at work on it: a resend too soon would be
                # refused as a duplicate messageId.
                return self.retry_delay
            await self._finish(sent, "failed", error=str(exc), error_code="Timeout")
        except ConnectionEnded as exc:
            if sent.attempts >= self.max_attempts:
                await self._finish(sent, "failed", error=str(exc), error_code="Disconnected")
            return None
        else:
            try:
                result = _as_json(command.result(version, answer))
            except (KeyError, TypeError, ValueError) as exc:
                await self._finish(sent, "failed", error=str(exc), error_code="InvalidResponse")
            else:
                await self._finish(sent, "answered", result=result)
        return self.interval

    async def _finish(
        self,
        submission: Submission,
        status: Status,
        *,
        result: Any = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> None:
        done = await self.store.finish(
            submission.id,
            status,
            _now(),
            result=result,
            error=error,
            error_code=error_code,
        )
        if done is not None:
            await self._finished(done)

    async def _finished(self, submission: Submission) -> None:
        self._wake_waiters(submission.id)
        if submission.status == "failed":
            logger.info(
                "outbox: %s for station %r failed: %s",
                submission.action,
                submission.station_id,
                submission.error,
                extra=station_fields(submission.station_id, submission.message_id),
            )
        if self.on_finished is not None:
            await call_hook(self.on_finished, submission)

    # -- expiry, retention, and submissions of other processes -----------------------------

    async def _sweep_forever(self) -> None:
        purged_at: datetime.datetime | None = None
        # Not `while True`: a store whose client swallowed our cancellation returns
        # normally, and the loop must still end (aclose() also cancels again).
        while self._started:
            await asyncio.sleep(self.poll_interval)
            try:
                now = _now()
                for expired in await self.store.expire(now):
                    await self._finished(expired)
                if purged_at is None or now - purged_at > datetime.timedelta(hours=1):
                    await self.store.purge(now - datetime.timedelta(seconds=self.retention))
                    purged_at = now
                for station_id in await self.store.pending_stations():
                    self._poke_station(station_id)
            except Exception as exc:
                logger.warning("outbox: could not read the store: %s", exc)

    def _check_started(self) -> None:
        if not self._started:
            raise UsageError("the outbox is not started: use `async with outbox:`")


def _check_expressible(command: Deliverable) -> None:
    """Refuse a command no OCPP version can express: it could never be delivered."""
    problems = []
    for version in OcppVersion:
        try:
            command.request(version)
        except UsageError as exc:
            problems.append(str(exc))
        else:
            return
    raise UsageError(f"cannot queue {command.name}: {'; '.join(problems)}")


def _as_json(result: Any) -> Any:
    """A command's result as JSON data: a dataclass (a CommandResult) as a dict."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return result


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _ready(session: StationSession) -> bool:
    return not session.ended and session.registration_status == "Accepted"
