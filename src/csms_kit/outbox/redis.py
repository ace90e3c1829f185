"""An outbox store shared through Redis: :class:`RedisStore`.

With the cluster registry (:class:`~csms_kit.cluster.RedisRegistry`), every node of a
cluster and every API process reads and writes one outbox, so whichever node a station
lands on delivers its commands. Keys and channels, under a prefix (default
``csms_kit:outbox``):

================================  =====================================================
``{prefix}:submission:{id}``      a submission: a hash of the fields of
                                  :meth:`Submission.to_dict`, each one a JSON value
``{prefix}:sequence``             a counter: each submission's ``sequence``
``{prefix}:pending:{station}``    a sorted set of the station's pending ids by sequence
``{prefix}:stations``             a set of the stations with pending submissions
``{prefix}:expiry``               a sorted set of pending ids by expiry (epoch seconds)
``{prefix}:supersede:{station}``  a hash of supersede key (as JSON) to the id of the
                                  station's newest submission with that key
``{prefix}:all``                  a sorted set of every id by sequence
``{prefix}:history:{station}``    a sorted set of the station's ids by sequence
``{prefix}:finished``             a sorted set of final ids by when they finished
``{prefix}:schema``               the version of this layout
``{prefix}:submitted``            the channel on which each submission's station id is
                                  published when it is added
``{prefix}:finished``             also the channel on which each submission's id is
                                  published when it becomes final
================================  =====================================================

Each change is one Lua script, atomic in Redis, that applies only to a pending
submission (so a delivery and a ``cancel`` racing from two processes never both win)
and keeps every index above in step. The scripts write fields, never re-encode them:
Lua's JSON library would turn an empty list into an object and round numbers to 14
digits, so a request or a result is stored as the JSON text Python wrote. One round
trip per call: ``add`` (with the supersede, the indexes and the publish),
``next_pending``, ``mark_sent`` and ``finish`` are each one script.

The scripts name keys built from the prefix and the stored data, as the registry's
do: one Redis server (with replicas or Sentinel), not Redis Cluster. Commands are not
retried by default (pass redis-py's ``retry=`` to change it): a script whose answer
was lost may have run, and running it again would count an attempt twice.

Resource handling: :meth:`RedisStore.open` makes one connection pool (with ``listen``,
one subscription and the task reading it); :meth:`RedisStore.aclose` ends them.

Error handling: Redis unreachable or refusing a command raises
:class:`~csms_kit.outbox.OutboxStoreError` naming the URL (its password masked).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from csms_kit.outbox.store import (
    FinishedListener,
    OutboxStore,
    OutboxStoreError,
    SubmittedListener,
)
from csms_kit.outbox.submission import Status, Submission, timestamp
from csms_kit.stopping import cancel_and_wait

__all__ = ["RedisStore"]

logger = logging.getLogger("csms_kit.outbox")

_SCHEMA_VERSION = 1
#: Submissions expired or purged per script: Redis serves nobody else while one runs.
_BATCH = 500
#: Submissions read per round trip when ``find`` filters on status.
_FIND_PAGE = 200
#: Connection pool options unless given: bounded waits, so a dead server fails fast.
_DEFAULTS: dict[str, Any] = {
    "max_connections": 64,
    "timeout": 30.0,  # seconds a request waits for a free connection
    "socket_connect_timeout": 5.0,
    "socket_timeout": 10.0,
}

# What every script starts with. ARGV[1] is the prefix. finish() gives a pending
# submission its final status and takes it out of the pending indexes (its arguments
# are JSON texts, then the finishing time in epoch seconds); false if not pending.
_COMMON = """
local P = ARGV[1]
local function submission_key(id)
  return P .. ':submission:' .. id
end
local function is_pending(key)
  local status = redis.call('HGET', key, 'status')
  return status == '"queued"' or status == '"sent"'
end
local function finish(id, status, result, error, error_code, at, at_seconds)
  local key = submission_key(id)
  if not is_pending(key) then
    return false
  end
  local station = cjson.decode(redis.call('HGET', key, 'station_id'))
  redis.call('HSET', key, 'status', status, 'result', result, 'error', error,
    'error_code', error_code, 'finished_at', at)
  local pending = P .. ':pending:' .. station
  redis.call('ZREM', pending, id)
  if redis.call('EXISTS', pending) == 0 then
    redis.call('SREM', P .. ':stations', station)
  end
  redis.call('ZREM', P .. ':expiry', id)
  redis.call('ZADD', P .. ':finished', at_seconds, id)
  local supersede_key = redis.call('HGET', key, 'supersede_key')
  if supersede_key ~= 'null' then
    local index = P .. ':supersede:' .. station
    if redis.call('HGET', index, supersede_key) == id then
      redis.call('HDEL', index, supersede_key)
    end
  end
  redis.call('PUBLISH', P .. ':finished', id)
  return redis.call('HGETALL', key)
end
"""
# Store a new submission; supersede the station's queued one with the same key.
# ARGV: prefix, id, station id, supersede key as JSON ('' for none), expiry (epoch s),
# then for what it supersedes: finished_at (JSON), finished_at (epoch s), error (JSON);
# then the new submission's fields and values. Returns {sequence, superseded or false}.
_ADD = (
    _COMMON
    + """
local id, station = ARGV[2], ARGV[3]
local key = submission_key(id)
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('a submission with id ' .. id .. ' is already stored')
end
local sequence = redis.call('INCR', P .. ':sequence')
local superseded = false
if ARGV[4] ~= '' then
  local index = P .. ':supersede:' .. station
  local older = redis.call('HGET', index, ARGV[4])
  if older and redis.call('HGET', submission_key(older), 'status') == '"queued"' then
    superseded = finish(older, '"superseded"', 'null', ARGV[8], 'null', ARGV[6], ARGV[7])
  end
  redis.call('HSET', index, ARGV[4], id)
end
redis.call('HSET', key, unpack(ARGV, 9))
redis.call('HSET', key, 'sequence', sequence)
redis.call('ZADD', P .. ':pending:' .. station, sequence, id)
redis.call('SADD', P .. ':stations', station)
redis.call('ZADD', P .. ':expiry', ARGV[5], id)
redis.call('ZADD', P .. ':all', sequence, id)
redis.call('ZADD', P .. ':history:' .. station, sequence, id)
redis.call('PUBLISH', P .. ':submitted', station)
return {sequence, superseded}
"""
)
# Record an attempt. ARGV: prefix, id, messageId (JSON). The submission, or false.
_MARK_SENT = (
    _COMMON
    + """
local key = submission_key(ARGV[2])
if not is_pending(key) then
  return false
end
redis.call('HSET', key, 'status', '"sent"', 'message_id', ARGV[3])
redis.call('HINCRBY', key, 'attempts', 1)
return redis.call('HGETALL', key)
"""
)
# ARGV: prefix, id, status, result, error, error_code, finished_at (JSON texts),
# finished_at (epoch s). The submission, or false if it was not pending.
_FINISH = (
    _COMMON
    + """
return finish(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""
)
# ARGV: prefix, station id. Its pending submission with the lowest sequence, or false.
_NEXT_PENDING = (
    _COMMON
    + """
local ids = redis.call('ZRANGE', P .. ':pending:' .. ARGV[2], 0, 0)
if #ids == 0 then
  return false
end
return redis.call('HGETALL', submission_key(ids[1]))
"""
)
# Expire up to a batch of pending submissions due by now. ARGV: prefix, now (epoch s),
# now (JSON), error (JSON), batch size. Returns {ids looked at, expired submissions}.
_EXPIRE = (
    _COMMON
    + """
local ids = redis.call('ZRANGEBYSCORE', P .. ':expiry', '-inf', ARGV[2], 'LIMIT', 0, ARGV[5])
local expired = {}
for _, id in ipairs(ids) do
  local done = finish(id, '"expired"', 'null', ARGV[4], 'null', ARGV[3], ARGV[2])
  redis.call('ZREM', P .. ':expiry', id)
  if done then
    expired[#expired + 1] = done
  end
end
return {#ids, expired}
"""
)
# Delete up to a batch of submissions finished before a time. ARGV: prefix, the time
# (epoch s, excluded), batch size. Returns how many.
_PURGE = (
    _COMMON
    + """
local ids = redis.call('ZRANGEBYSCORE', P .. ':finished', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local key = submission_key(id)
  local station = redis.call('HGET', key, 'station_id')
  if station then
    redis.call('ZREM', P .. ':history:' .. cjson.decode(station), id)
  end
  redis.call('DEL', key)
  redis.call('ZREM', P .. ':all', id)
  redis.call('ZREM', P .. ':finished', id)
end
return #ids
"""
)


class RedisStore(OutboxStore):
    """Submissions in the Redis server at ``url`` (``redis://host:6379/0``, ``rediss://``).

    ``prefix`` names the keys, so that several outboxes may share one server.
    ``options`` go to redis-py's connection pool (``max_connections``, default 64;
    ``socket_connect_timeout``, default 5 s; ``socket_timeout``, default 10 s; ``retry``;
    TLS options...).
    """

    def __init__(self, url: str, *, prefix: str = "csms_kit:outbox", **options: Any) -> None:
        self.url = url
        self.prefix = prefix
        self.options = options
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._listeners: list[tuple[SubmittedListener, FinishedListener | None]] = []

    def __repr__(self) -> str:
        return f"RedisStore({_masked(self.url)!r}, prefix={self.prefix!r})"

    # -- lifetime -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check that Redis answers and takes writes; else raise
        :class:`~csms_kit.outbox.OutboxStoreError` (after one attempt, not retries)."""
        if self._redis is not None:
            return
        options: dict[str, Any] = {**_DEFAULTS, **self.options, "decode_responses": True}
        try:
            pool = aioredis.BlockingConnectionPool.from_url(self.url, **options)
        except ValueError as exc:
            raise OutboxStoreError(f"outbox store {_masked(self.url)}: {exc}") from exc
        client = aioredis.Redis.from_pool(pool)  # the client owns it: aclose() closes it
        key = self._key("schema")
        try:
            with self._errors("cannot use Redis"):
                await client.ping()
                # Also proves Redis takes writes (not a read-only replica) now.
                await client.set(key, _SCHEMA_VERSION, nx=True)
                version = int(await client.get(key) or 0)
        except BaseException:
            await _quietly(client.aclose())
            raise
        if version > _SCHEMA_VERSION:
            await _quietly(client.aclose())
            raise OutboxStoreError(
                f"outbox store {_masked(self.url)} (prefix {self.prefix!r}) has schema "
                f"version {version}, newer than this csms_kit's ({_SCHEMA_VERSION}): "
                "upgrade csms_kit"
            )
        self._redis = client
        self._add = client.register_script(_ADD)
        self._mark_sent = client.register_script(_MARK_SENT)
        self._finish = client.register_script(_FINISH)
        self._next_pending = client.register_script(_NEXT_PENDING)
        self._expire = client.register_script(_EXPIRE)
        self._purge = client.register_script(_PURGE)

    async def aclose(self) -> None:
        """Stop listening and close the connections; never raises for a dead server."""
        listener, pubsub, client = self._listener, self._pubsub, self._redis
        self._listener = self._pubsub = self._redis = None
        self._listeners.clear()
        await cancel_and_wait(listener)
        if pubsub is not None:
            await _quietly(pubsub.aclose())
        if client is not None:
            await _quietly(client.aclose())

    async def listen(
        self, submitted: SubmittedListener, finished: FinishedListener | None = None
    ) -> None:
        """Have ``submitted`` called with the station id of each submission added by any
        process (a message on ``{prefix}:submitted``), and ``finished`` with the id of
        each submission any process brought to a final status (``{prefix}:finished``).

        A message published while the subscription is lost (Redis restarting) is not
        heard: delivery's periodic look at :meth:`pending_stations`, and waiters'
        reading of the store, cover it.
        """
        client = self._client()
        listeners = (submitted, finished)
        self._listeners.append(listeners)
        if self._pubsub is not None:
            return
        pubsub = client.pubsub()
        try:
            with self._errors("cannot subscribe"):
                await pubsub.subscribe(self._key("submitted"), self._key("finished"))
                # Read Redis' confirmations: from here on, every change is heard.
                for _ in range(2):
                    await pubsub.get_message(timeout=self._timeout)
        except BaseException:
            self._listeners.remove(listeners)
            await _quietly(pubsub.aclose())
            raise
        self._pubsub = pubsub
        self._listener = asyncio.get_running_loop().create_task(
            self._hear(pubsub), name="csms_kit outbox redis listener"
        )

    async def _hear(self, pubsub: Any) -> None:
        finished_channel = self._key("finished")
        # Until aclose() (not `while True`): redis-py may swallow a cancellation.
        while self._pubsub is pubsub:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                # The next get_message connects and subscribes again.
                logger.warning("outbox: Redis subscription lost (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            if message is None:
                continue
            subject = str(message["data"])
            is_finished = str(message["channel"]) == finished_channel
            for submitted, finished in list(self._listeners):
                listener = finished if is_finished else submitted
                if listener is None:
                    continue
                try:
                    listener(subject)
                except Exception:
                    logger.exception("outbox: a listener failed on %r", subject)

    # -- writes ---------------------------------------------------------------------------

    async def add(self, submission: Submission) -> tuple[Submission, list[Submission]]:
        client = self._client()
        # What is stored is a new submission, whatever state the one given claims.
        stored = Submission(
            id=submission.id,
            station_id=submission.station_id,
            action=submission.action,
            request=submission.request,
            submitted_at=submission.submitted_at,
            expires_at=submission.expires_at,
            supersede_key=submission.supersede_key,
        )
        key = stored.supersede_key
        with self._errors():
            sequence, superseded = await self._add(
                args=[
                    self.prefix,
                    stored.id,
                    stored.station_id,
                    "" if key is None else _json(key),
                    timestamp(stored.expires_at),
                    _json(stored.submitted_at.isoformat()),
                    timestamp(stored.submitted_at),
                    _json(f"superseded by submission {stored.id}"),
                    *_fields(stored),
                ],
                client=client,
            )
        stored = replace(stored, sequence=int(sequence))
        return stored, [] if superseded is None else [_submission(superseded)]

    async def mark_sent(self, submission_id: str, message_id: str) -> Submission | None:
        client = self._client()
        with self._errors():
            found = await self._mark_sent(
                args=[self.prefix, submission_id, _json(message_id)], client=client
            )
        return None if found is None else _submission(found)

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
        client = self._client()
        with self._errors():
            found = await self._finish(
                args=[
                    self.prefix,
                    submission_id,
                    _json(status),
                    _json(result),
                    _json(error),
                    _json(error_code),
                    _json(at.isoformat()),
                    timestamp(at),
                ],
                client=client,
            )
        return None if found is None else _submission(found)

    async def expire(self, now: datetime.datetime) -> list[Submission]:
        client = self._client()
        expired: list[Submission] = []
        while True:
            with self._errors():
                looked_at, done = await self._expire(
                    args=[
                        self.prefix,
                        timestamp(now),
                        _json(now.isoformat()),
                        _json("expired"),
                        _BATCH,
                    ],
                    client=client,
                )
            expired += (_submission(fields) for fields in done)
            if int(looked_at) < _BATCH:
                return sorted(expired, key=lambda s: s.sequence)

    async def purge(self, before: datetime.datetime) -> int:
        client = self._client()
        purged = 0
        while True:
            with self._errors():
                count = int(
                    await self._purge(args=[self.prefix, timestamp(before), _BATCH], client=client)
                )
            purged += count
            if count < _BATCH:
                return purged

    # -- reads ----------------------------------------------------------------------------

    async def next_pending(self, station_id: str) -> Submission | None:
        client = self._client()
        with self._errors():
            found = await self._next_pending(args=[self.prefix, station_id], client=client)
        return None if found is None else _submission(found)

    async def get(self, submission_id: str) -> Submission | None:
        client = self._client()
        with self._errors():
            fields = cast(
                "dict[str, str]", await client.hgetall(self._key("submission", submission_id))
            )
        return _submission(fields) if fields else None

    async def find(
        self, *, station_id: str | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Submission]:
        client = self._client()
        index = self._key("all") if station_id is None else self._key("history", station_id)
        # Without a status, one page holds the answer; with one, read pages from the
        # newest down until enough match (by sequence, so new submissions shift nothing).
        page = limit if status is None else max(limit, _FIND_PAGE)
        found: list[Submission] = []
        below = "+inf"
        while len(found) < limit:
            with self._errors():
                ids = cast(
                    "list[tuple[str, float]]",
                    await client.zrevrangebyscore(
                        index, below, "-inf", start=0, num=page, withscores=True
                    ),
                )
                pipe = client.pipeline(transaction=False)
                for submission_id, _ in ids:
                    pipe.hgetall(self._key("submission", submission_id))
                rows = await pipe.execute()
            for fields in rows:
                if fields:  # else purged meanwhile
                    submission = _submission(fields)
                    if status is None or submission.status == status:
                        found.append(submission)
            if len(ids) < page:
                break
            below = f"({int(ids[-1][1])}"
        return found[:limit]

    async def pending_stations(self) -> list[str]:
        client = self._client()
        with self._errors():
            stations = cast("set[str]", await client.smembers(self._key("stations")))
        return sorted(stations)

    # -- helpers --------------------------------------------------------------------------

    @property
    def _timeout(self) -> float | None:
        timeout: float | None = self.options.get("socket_timeout", _DEFAULTS["socket_timeout"])
        return timeout

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise OutboxStoreError(f"outbox store {_masked(self.url)} is not open")
        return self._redis

    @contextlib.contextmanager
    def _errors(self, doing: str = "Redis failed") -> Iterator[None]:
        """Raise Redis' errors as :class:`OutboxStoreError` naming the URL."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise OutboxStoreError(f"outbox store {_masked(self.url)}: {doing}: {exc}") from exc


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _fields(submission: Submission) -> list[str]:
    """The hash's fields and values: each field of ``to_dict`` as JSON."""
    return [
        text
        for name, value in submission.to_dict().items()
        if name != "sequence"  # the script gives it
        for text in (name, _json(value))
    ]


def _submission(fields: Mapping[str, str] | Sequence[str]) -> Submission:
    """The submission stored as ``fields`` (a hash: a mapping, or a script's flat list)."""
    if not isinstance(fields, Mapping):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    try:
        return Submission.from_dict({name: json.loads(text) for name, text in fields.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise OutboxStoreError(f"a stored submission is unreadable ({exc}): {fields}") from exc


def _masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def _quietly(closing: Any) -> None:
    """Await ``closing``; a server already gone is no error when closing."""
    with contextlib.suppress(RedisError, OSError):
        await closing
