"""The embedded outbox store: one SQLite file (stdlib ``sqlite3``).

Every query runs in one thread of the store's own, so the event loop never waits on
the disk. The file is in WAL mode with ``synchronous=NORMAL``: a write survives the
process being killed (what the outbox promises); a power cut may lose the last ones.
Several processes of one machine may share the file.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from csms_kit.outbox.store import OutboxStore, OutboxStoreError
from csms_kit.outbox.submission import Status, Submission, from_timestamp, timestamp

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    station_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    supersede_key TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    result TEXT,
    error TEXT,
    error_code TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS submissions_pending
    ON submissions (station_id, sequence) WHERE status IN ('queued', 'sent');
CREATE INDEX IF NOT EXISTS submissions_expiry
    ON submissions (expires_at) WHERE status IN ('queued', 'sent');
CREATE INDEX IF NOT EXISTS submissions_finished
    ON submissions (finished_at) WHERE finished_at IS NOT NULL;
"""
_COLUMNS = (
    "sequence, id, station_id, action, request, submitted_at, expires_at, supersede_key, "
    "status, attempts, message_id, result, error, error_code, finished_at"
)
_PENDING = "status IN ('queued', 'sent')"


class SqliteStore(OutboxStore):
    """Submissions in the SQLite file at ``path`` (created if missing).

    ``busy_timeout`` (seconds) is how long a write waits for another process holding
    the file.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None or self._db is None:
            raise OutboxStoreError(f"outbox store {self.path} is not open")
        db = self._db
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, db)

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="csms_kit-outbox")
        try:
            self._db = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._connect
            )
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> sqlite3.Connection:
        if sqlite3.sqlite_version_info < (3, 35):
            raise OutboxStoreError(
                f"the outbox needs SQLite 3.35 or newer; Python has {sqlite3.sqlite_version}"
            )
        if not self.path.parent.is_dir():
            raise OutboxStoreError(f"outbox store {self.path}: no directory {self.path.parent}")
        try:
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OutboxStoreError(f"outbox store {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise OutboxStoreError(
                    f"outbox store {self.path} has schema version {version}, newer than "
                    f"this csms_kit's ({_SCHEMA_VERSION}): upgrade csms_kit"
                )
            with _transaction(db):
                _create_schema(db)
                # Also proves the file is writable now, not at the first submission.
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            db.close()
            raise OutboxStoreError(f"outbox store {self.path} is unusable: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return db

    async def aclose(self) -> None:
        executor, db = self._executor, self._db
        self._executor = self._db = None
        if executor is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.close)
        executor.shutdown(wait=False)

    # -- writes ---------------------------------------------------------------------------

    async def add(self, submission: Submission) -> tuple[Submission, list[Submission]]:
        def work(db: sqlite3.Connection) -> tuple[Submission, list[Submission]]:
            with _transaction(db):
                superseded = []
                if submission.supersede_key is not None:
                    superseded = _finish_where(
                        db,
                        "station_id = ? AND supersede_key = ? AND status = 'queued'",
                        (submission.station_id, submission.supersede_key),
                        "superseded",
                        submission.submitted_at,
                        error=f"superseded by submission {submission.id}",
                    )
                row = db.execute(
                    "INSERT INTO submissions (id, station_id, action, request, submitted_at,"
                    " expires_at, supersede_key, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')"
                    f" RETURNING {_COLUMNS}",
                    (
                        submission.id,
                        submission.station_id,
                        submission.action,
                        json.dumps(submission.request),
                        timestamp(submission.submitted_at),
                        timestamp(submission.expires_at),
                        submission.supersede_key,
                    ),
                ).fetchone()
            return _submission(row), superseded

        return await self._run(work)

    async def mark_sent(self, submission_id: str, message_id: str) -> Submission | None:
        def work(db: sqlite3.Connection) -> Submission | None:
            row = db.execute(
                f"UPDATE submissions SET status = 'sent', attempts = attempts + 1,"
                f" message_id = ? WHERE id = ? AND {_PENDING} RETURNING {_COLUMNS}",
                (message_id, submission_id),
            ).fetchone()
            return None if row is None else _submission(row)

        return await self._run(work)

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
        def work(db: sqlite3.Connection) -> Submission | None:
            done = _finish_where(
                db, "id = ?", (submission_id,), status, at, result, error, error_code
            )
            return done[0] if done else None

        return await self._run(work)

    async def expire(self, now: datetime.datetime) -> list[Submission]:
        return await self._run(
            lambda db: _finish_where(
                db, "expires_at <= ?", (timestamp(now),), "expired", now, error="expired"
            )
        )

    async def purge(self, before: datetime.datetime) -> int:
        def work(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM submissions WHERE finished_at IS NOT NULL AND finished_at < ?",
                (timestamp(before),),
            )
            return cursor.rowcount

        return await self._run(work)

    # -- reads ----------------------------------------------------------------------------

    async def next_pending(self, station_id: str) -> Submission | None:
        return await self._run(
            lambda db: _one(db, f"station_id = ? AND {_PENDING} ORDER BY sequence", (station_id,))
        )

    async def get(self, submission_id: str) -> Submission | None:
        return await self._run(lambda db: _one(db, "id = ?", (submission_id,)))

    async def find(
        self, *, station_id: str | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Submission]:
        clauses, values = ["1"], []
        if station_id is not None:
            clauses.append("station_id = ?")
            values.append(station_id)
        if status is not None:
            clauses.append("status = ?")
            values.append(status)
        where = " AND ".join(clauses)

        def work(db: sqlite3.Connection) -> list[Submission]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM submissions WHERE {where} ORDER BY sequence DESC LIMIT ?",
                (*values, limit),
            )
            return [_submission(row) for row in rows]

        return await self._run(work)

    async def pending_stations(self) -> list[str]:
        def work(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(f"SELECT DISTINCT station_id FROM submissions WHERE {_PENDING}")
            return [row[0] for row in rows]

        return await self._run(work)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one atomic write."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _create_schema(db: sqlite3.Connection) -> None:
    # executescript would COMMIT the open transaction; run statement by statement.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _one(db: sqlite3.Connection, where: str, values: tuple[Any, ...]) -> Submission | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM submissions WHERE {where} LIMIT 1", values)
    found = row.fetchone()
    return None if found is None else _submission(found)


def _finish_where(
    db: sqlite3.Connection,
    where: str,
    values: tuple[Any, ...],
    status: Status,
    at: datetime.datetime,
    result: Any = None,
    error: str | None = None,
    error_code: str | None = None,
) -> list[Submission]:
    rows = db.execute(
        f"UPDATE submissions SET status = ?, result = ?, error = ?, error_code = ?,"
        f" finished_at = ? WHERE {where} AND {_PENDING} RETURNING {_COLUMNS}",
        (
            status,
            None if result is None else json.dumps(result),
            error,
            error_code,
            timestamp(at),
            *values,
        ),
    ).fetchall()
    return sorted((_submission(row) for row in rows), key=lambda s: s.sequence)


def _submission(row: tuple[Any, ...]) -> Submission:
    (sequence, id_, station_id, action, request, submitted_at, expires_at, supersede_key,
     status, attempts, message_id, result, error, error_code, finished_at) = row  # fmt: skip
    return Submission(
        id=id_,
        station_id=station_id,
        action=action,
        request=json.loads(request),
        submitted_at=from_timestamp(submitted_at),
        expires_at=from_timestamp(expires_at),
        supersede_key=supersede_key,
        sequence=sequence,
        status=status,
        attempts=attempts,
        message_id=message_id,
        result=None if result is None else json.loads(result),
        error=error,
        error_code=error_code,
        finished_at=None if finished_at is None else from_timestamp(finished_at),
    )
