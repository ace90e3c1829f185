"""A registry shared through Redis: :class:`RedisRegistry`.

Keys and channels, under a prefix (default ``csms_kit``):

=============================  ====================================================
``{prefix}:station:{id}``      who holds the station: a hash of ``node``, ``epoch``
                               and ``record`` (JSON), with a TTL: the holder's lease
``{prefix}:epochs``            a counter: each registration's fencing token
``{prefix}:status:{id}``       the registration status and boot info, across
                               connections
``{prefix}:held:{node_id}``    a node's index: a hash of station id to record, so
                               that a survivor can tell who a dead node held
``{prefix}:nodes``             a sorted set of node ids by the time their own lease
                               ends (renewed with the stations')
``{prefix}:node:{node_id}``    the channel a node listens on: calls, sends, replies,
                               and "close your connection of this station"
``{prefix}:events``            connect and disconnect events of every node
=============================  ====================================================

Presence is a lease: the holder renews every station's key each ``lease_ttl / 3``
seconds; a node that dies stops renewing, and its stations vanish within
``lease_ttl``: the first node to see the dead node's lease lapse removes what is left
of its stations and tells every node they disconnected. Every write of a station's key
compares the epoch first (Lua scripts, atomic in Redis): a stale holder can neither
remove nor renew a newer registration.

A call to a station held elsewhere is published on the holder's channel; Redis says
how many listened, so when the holder is gone the call fails at once with
:class:`~csms_kit.exceptions.StationNotConnected`. The holder runs it through the
station's own session (one outstanding CALL and FIFO hold whoever calls) and
publishes the answer, or the exception as data, on the caller's channel. While a
caller waits, it checks each second that the holder still listens: a holder that died
mid-call ends the call with :class:`~csms_kit.exceptions.StationDisconnected`.

Node ids must be unique among running processes: a node that starts reaps what an
earlier process of the same id left behind.

Resource handling: ``async with RedisRegistry(url)`` (or :meth:`start` and
:meth:`aclose`) owns one Redis connection pool, a subscription and two tasks (the
listener and the lease renewal), all ended by :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from typing_extensions import Unpack

from csms_kit.boot import BootInfo
from csms_kit.cluster.base import RegistryOptions, SharedRegistry
from csms_kit.exceptions import (
    BrokerUnavailable,
    DuplicateConnection,
)
from csms_kit.registry import StationRecord
from csms_kit.stopping import cancel_and_wait

if TYPE_CHECKING:
    from csms_kit.session import StationSession

__all__ = ["RedisRegistry"]

logger = logging.getLogger("csms_kit.cluster")

# Claim a station: under "reject" refuse if held; else take it over, moving it from
# the previous holder's index to ours. Returns {claimed, previous node, previous epoch}.
# KEYS: the station's key, our index. ARGV: node, epoch, record, policy, TTL (ms),
# the index keys' prefix, station id.
_CLAIM = """
local node = redis.call('HGET', KEYS[1], 'node')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if node and ARGV[4] == 'reject' then
  return {0, node, epoch}
end
if node then
  redis.call('HDEL', ARGV[6] .. node, ARGV[7])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', ARGV[2], 'record', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], ARGV[7], ARGV[3])
if node then
  return {1, node, epoch}
end
return {1}
"""
# Compare-and-delete: only the registration with this epoch is removed (and leaves our
# index). KEYS: the station's key, our index. ARGV: epoch, station id.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
# Rewrite our record and renew our lease (compare the epoch): 1. When the key is gone
# (it lapsed while Redis was unreachable or we were reaped, or Redis restarted),
# restore it: 2. 0 when a newer registration holds it. KEYS: the station's key, our
# index. ARGV: epoch, TTL (ms), record, node, station id.
_REWRITE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch and epoch ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'node', ARGV[4], 'epoch', ARGV[1], 'record', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[3])
if epoch then
  return 1
end
return 2
"""
# Renew many leases in one command (KEYS: the stations' keys; ARGV: the TTL, then
# their epochs): 1 renewed, 0 held by a newer registration, 3 lost (restore it).
_RENEW_MANY = """
local codes = {}
for i, key in ipairs(KEYS) do
  local epoch = redis.call('HGET', key, 'epoch')
  if not epoch then
    codes[i] = 3
  elseif epoch == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    codes[i] = 1
  else
    codes[i] = 0
  end
end
return codes
"""
# Say that our node is alive until now + TTL (ms), in one sorted set of deadlines by
# Redis' clock; remove and return the nodes whose deadline passed (each is returned
# to one caller only: that one reaps it). KEYS: the set. ARGV: node, TTL (ms).
_ALIVE = """
if redis.replicate_commands then
  redis.replicate_commands()
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local reaped = {}
for _, node in ipairs(dead) do
  if node ~= ARGV[1] then
    redis.call('ZREM', KEYS[1], node)
    reaped[#reaped + 1] = node
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return reaped
"""
# Remove stations of a dead node from its index, and their keys where it still holds
# them. 1: it is gone (tell everyone it disconnected), 0: another node holds it now.
# KEYS: the stations' keys, then the dead node's index. ARGV: its node, station ids.
_REAP_MANY = """
local index = KEYS[#KEYS]
local codes = {}
for i = 1, #KEYS - 1 do
  local node = redis.call('HGET', KEYS[i], 'node')
  redis.call('HDEL', index, ARGV[i + 1])
  if not node then
    codes[i] = 1
  elseif node == ARGV[1] then
    redis.call('DEL', KEYS[i])
    codes[i] = 1
  else
    codes[i] = 0
  end
end
return codes
"""
#: Leases renewed per command: few objects per renewal (no garbage-collector pauses
#: with tens of thousands of stations), and the loop serves stations in between.
_RENEW_BATCH = 1000
#: Keys read per round trip when listing stations (SCAN's hint, and one pipeline).
_LIST_BATCH = 1000


class RedisRegistry(SharedRegistry):
    """The stations connected to every process sharing one Redis server.

    ``url`` is a redis-py URL (``redis://host:6379/0``, ``rediss://`` for TLS);
    ``max_connections`` bounds the connections to Redis (more requests at once wait
    their turn). The other options are every shared registry's (``lease_ttl``,
    ``call_timeout``... : see :class:`~csms_kit.cluster.base.SharedRegistry`).
    """

    def __init__(
        self, url: str, *, max_connections: int = 64, **options: Unpack[RegistryOptions]
    ) -> None:
        super().__init__(url, **options)
        self.max_connections = max_connections
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None

    # -- names ------------------------------------------------------------------------

    def _station_key(self, station_id: str) -> str:
        return f"{self.prefix}:station:{station_id}"

    def _index_key(self, node: str) -> str:
        return f"{self.prefix}:held:{node}"

    def _status_key(self, station_id: str) -> str:
        return f"{self.prefix}:status:{station_id}"

    def _channel(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    @property
    def _events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.lease_ttl * 1000))

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe; raise :class:`BrokerUnavailable` naming the URL if not."""
        self.attach()
        if self._redis is not None:
            return
        # A blocking pool: a burst of connecting stations waits for a free connection
        # instead of failing with "too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, decode_responses=True, max_connections=self.max_connections, timeout=30
        )
        client = aioredis.Redis.from_pool(pool)  # the client owns it: aclose() closes it
        try:
            await client.ping()
            pubsub = client.pubsub()
            await pubsub.subscribe(self._channel(self.node_id), self._events)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise BrokerUnavailable(self.url, str(exc)) from exc
        self._redis, self._pubsub = client, pubsub
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._rewrite = client.register_script(_REWRITE)
        self._renew_many = client.register_script(_RENEW_MANY)
        self._alive = client.register_script(_ALIVE)
        self._reap_many = client.register_script(_REAP_MANY)
        try:
            await self._claim_dead_nodes()
            await self._reap_node(self.node_id)  # what an earlier life of ours left
        except BrokerUnavailable:
            await self.aclose()
            raise
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen(), name="csms_kit redis listener")
        self._start_keeping_leases()

    async def aclose(self) -> None:
        """Stop listening and renewing, fail calls still waiting, close the connections."""
        await self._stop_keeping_leases()
        await cancel_and_wait(self._listener)
        self._listener = None
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_waiting_calls()
        if self._redis is not None:
            await self._pubsub.aclose()
            await self._redis.aclose()
            self._redis = self._pubsub = None

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise BrokerUnavailable(self.url, "the registry is not started (use async with)")
        return self._redis

    # -- membership -------------------------------------------------------------------

    async def register(self, session: StationSession) -> None:
        self.attach()
        client = self._client()
        station_id = session.station_id
        old = self._local_duplicate(session)
        record = StationRecord.of(session, self.node_id)
        try:
            epoch = int(await client.incr(f"{self.prefix}:epochs"))
            claimed = await self._claim(
                keys=[self._station_key(station_id), self._index_key(self.node_id)],
                args=[
                    self.node_id,
                    epoch,
                    json.dumps(record.to_dict()),
                    self.duplicate_policy,
                    self._ttl_ms,
                    self._index_key(""),
                    station_id,
                ],
            )
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        if not int(claimed[0]):
            raise DuplicateConnection(station_id)
        previous = (str(claimed[1]), claimed[2]) if len(claimed) > 1 else None
        await self._hold(session, record, epoch, old, previous)

    async def unregister(self, session: StationSession) -> None:
        station_id = session.station_id
        epoch = self._let_go(session)
        if epoch is None:
            return
        try:
            released = await self._release(
                keys=[self._station_key(station_id), self._index_key(self.node_id)],
                args=[epoch, station_id],
            )
        except (RedisError, OSError) as exc:
            # The lease will lapse by itself within lease_ttl.
            logger.warning("could not release station %r in Redis: %s", station_id, exc)
            released = 1
        if int(released):
            await self._announce("disconnected", StationRecord.of(session, self.node_id), session)

    async def _stored_record(self, station_id: str) -> str | None:
        try:
            text = await self._client().hget(self._station_key(station_id), "record")
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return None if text is None else str(text)

    async def stations(self) -> list[StationRecord]:
        client = self._client()
        try:
            pattern = self._station_key("*")
            keys = [key async for key in client.scan_iter(match=pattern, count=_LIST_BATCH)]
            texts = []
            for start in range(0, len(keys), _LIST_BATCH):  # a round trip per batch
                pipe = client.pipeline(transaction=False)
                for key in keys[start : start + _LIST_BATCH]:
                    pipe.hget(key, "record")
                texts += await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return [StationRecord.from_dict(json.loads(text)) for text in texts if text]

    # -- boot status memory -----------------------------------------------------------

    async def registration_status(self, station_id: str) -> str | None:
        try:
            status = await self._client().hget(self._status_key(station_id), "status")
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return None if status is None else str(status)

    async def set_registration_status(
        self, station_id: str, status: str, boot: BootInfo | None = None
    ) -> None:
        client = self._client()
        key = self._status_key(station_id)
        boot_text = json.dumps(None if boot is None else boot.to_dict())
        try:
            await client.hset(key, items=["status", status, "boot", boot_text])
            await client.expire(key, max(1, round(self.remember_statuses_for)))
            session = self._sessions.get(station_id)
            if session is not None:  # our record carries the status too
                await self._write_record(session, self._tokens[station_id])
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    # -- calls to other nodes -----------------------------------------------------------

    async def _request(self, node: str, message: dict[str, Any]) -> bool:
        return bool(await self._tell(node, {**message, "reply_to": self.node_id}))

    async def _notify(self, node: str, message: dict[str, Any]) -> None:
        await self._tell(node, message)

    async def _tell(self, node: str, message: dict[str, Any]) -> int:
        """Publish ``message`` on ``node``'s channel; how many listened."""
        try:
            return int(await self._client().publish(self._channel(node), json.dumps(message)))
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    # -- what other nodes tell us -----------------------------------------------------

    async def _listen(self) -> None:
        assert self._pubsub is not None
        mine = self._channel(self.node_id)
        # Until aclose() (not `while True`): redis-py may swallow a cancellation.
        while not self._stopping.is_set():
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Redis subscription lost (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            if message is None:
                continue
            try:
                data = json.loads(message["data"])
            except (TypeError, ValueError):
                logger.warning("ignored a message that is not JSON on %s", message["channel"])
                continue
            if message["channel"] == mine:
                self._dispatch(data)
            else:
                await self._heard(data)

    def _dispatch(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "reply":
            self._replied(str(data.get("id")), data)
        elif kind in ("call", "send"):
            self._spawn(self._answer(data))
        elif kind == "close":
            self._close_if_current(data)

    async def _answer(self, data: dict[str, Any]) -> None:
        """Serve a forwarded call or send; publish the reply on the caller's channel."""
        reply = {"type": "reply", "id": data.get("id"), **await self._serve(data)}
        try:
            await self._tell(str(data.get("reply_to")), reply)
        except BrokerUnavailable as exc:
            logger.warning(
                "could not answer a forwarded call for %r: %s", data.get("station"), exc
            )

    async def _publish_event(self, message: dict[str, Any]) -> None:
        try:
            await self._client().publish(self._events, json.dumps(message))
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    # -- leases -------------------------------------------------------------------------

    async def _renew_all(self) -> None:
        """Renew the lease of every station held here, a batch per command.

        Leases Redis lost are restored from the stations' records (written only then:
        a renewal costs no JSON). A station a newer registration holds elsewhere has
        its connection here closed.
        """
        held = [(i, self._tokens[i], s) for i, s in list(self._sessions.items()) if not s.ended]
        lost = []
        for start in range(0, len(held), _RENEW_BATCH):
            batch = held[start : start + _RENEW_BATCH]
            try:
                codes = await self._renew_many(
                    keys=[self._station_key(i) for i, _, _ in batch],
                    args=[self._ttl_ms, *(e for _, e, _ in batch)],
                )
            except (RedisError, OSError) as exc:
                logger.warning("could not renew leases in Redis (%s); retrying", exc)
                return
            for (station_id, epoch, session), code in zip(batch, codes, strict=True):
                if self._tokens.get(station_id) != epoch:
                    continue  # it left or reconnected meanwhile
                if int(code) == 3:
                    lost.append((station_id, epoch, session))
                elif not int(code):
                    logger.warning("station %r is held by a newer connection; closing", station_id)
                    self._close_replaced(session)
        for station_id, epoch, session in lost:
            if self._tokens.get(station_id) != epoch:
                continue  # it left while earlier ones were restored
            try:
                restored, record = await self._write_record(session, epoch)
            except (RedisError, OSError) as exc:
                logger.warning("could not restore leases in Redis (%s); retrying", exc)
                return
            if restored == 2:
                logger.info("station %r: presence restored in Redis", station_id)
                # Other nodes may have seen it vanish; our own listeners never did.
                await self._announce("connected", record, session, local=False)

    async def _write_record(
        self, session: StationSession, epoch: int
    ) -> tuple[int, StationRecord]:
        """Write ``session``'s record with ``epoch`` (see ``_REWRITE``); its code, the record."""
        station_id = session.station_id
        record = StationRecord.of(session, self.node_id)
        code = await self._rewrite(
            keys=[self._station_key(station_id), self._index_key(self.node_id)],
            args=[epoch, self._ttl_ms, json.dumps(record.to_dict()), self.node_id, station_id],
        )
        return int(code), record

    # -- dead nodes ---------------------------------------------------------------------

    async def _claim_dead_nodes(self) -> list[str]:
        try:
            dead = await self._alive(
                keys=[f"{self.prefix}:nodes"], args=[self.node_id, self._ttl_ms]
            )
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return [str(node) for node in dead]

    async def _reap(self, node: str) -> list[StationRecord]:
        client = self._client()
        index = self._index_key(node)
        gone: list[StationRecord] = []
        cursor = 0
        try:
            while True:
                cursor, found = await client.hscan(index, cursor, count=_RENEW_BATCH)
                held = cast("dict[str, str]", found)  # decode_responses=True
                if held:
                    ids = list(held)
                    codes = await self._reap_many(
                        keys=[*(self._station_key(i) for i in ids), index], args=[node, *ids]
                    )
                    gone += [
                        StationRecord.from_dict(json.loads(held[i]))
                        for i, code in zip(ids, codes, strict=True)
                        if int(code)
                    ]
                if not cursor:
                    return gone
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    async def _node_alive(self, node: str) -> bool:
        try:
            counts = await self._client().pubsub_numsub(self._channel(node))
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return bool(counts and int(counts[0][1]))
