"""A registry shared through NATS: :class:`NatsRegistry`.

Presence lives in a JetStream key-value bucket (``{prefix}_stations``) whose entries
expire after ``lease_ttl`` seconds unless rewritten: the holder rewrites each of its
stations every ``lease_ttl / 3`` seconds, always with compare-and-set on the revision
it last wrote. A revision is the registration's fencing token: a stale holder's
write or delete names an old revision and fails, so it can neither remove nor renew a
newer registration. Registration statuses live in ``{prefix}_status``.

Each node also keeps its own lease in ``{prefix}_nodes`` (same TTL), and an index in
``{prefix}_held``: its membership (key: the node) and each station it holds (key:
node.station, value: the record). A node whose lease lapsed is claimed by one survivor
(compare-and-delete of its membership), which removes what is left of its stations
and tells every node they disconnected. Node ids must be unique among running
processes: a node that starts reaps what an earlier process of the same id left.

Calls use NATS request/reply on the holder's subject ``{prefix}.node.<node>``: when
no process listens there, NATS answers "no responders" at once and the call fails with
:class:`~csms_kit.exceptions.StationNotConnected`; while a caller waits, it pings
the holder each second, and a holder gone mid-call ends the call with
:class:`~csms_kit.exceptions.StationDisconnected`. Events go on ``{prefix}.events``.

Needs a NATS server with JetStream enabled (``nats-server -js``).

Resource handling: ``async with NatsRegistry(url)`` (or :meth:`start` and
:meth:`aclose`) owns one NATS connection, two subscriptions and the lease task.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoStreamResponseError,
)
from typing_extensions import Unpack

from csms_kit.boot import BootInfo
from csms_kit.cluster.base import HOLDER_CHECK_INTERVAL, RegistryOptions, SharedRegistry
from csms_kit.exceptions import (
    BrokerUnavailable,
    DuplicateConnection,
)
from csms_kit.registry import StationRecord

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue

    Entry = KeyValue.Entry

    from csms_kit.session import StationSession

__all__ = ["NatsRegistry"]

logger = logging.getLogger("csms_kit.cluster")

#: JetStream's error code for a compare-and-set that found another revision.
_WRONG_LAST_SEQUENCE = 10071
#: Entries read concurrently when listing a bucket.
_LIST_BATCH = 256
#: The header and status of NATS' answer to a request nobody listens to.
_STATUS, _NO_RESPONDERS = "Status", "503"
#: Seconds between attempts to reconnect to a NATS server that went away.
_RECONNECT_WAIT = 1.0
#: What NATS raises when the server cannot be reached or the connection is gone.
_UNREACHABLE = (NatsError, OSError)


@dataclass(frozen=True, slots=True)
class _Buckets:
    """The key-value buckets a started registry uses (see the module)."""

    stations: KeyValue
    statuses: KeyValue
    index: KeyValue
    nodes: KeyValue


def _token(text: str) -> str:
    """``text`` as a NATS key or subject token (identities may hold any character)."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") or "_"


class NatsRegistry(SharedRegistry):
    """The stations connected to every process sharing one NATS server (or cluster).

    ``url`` is a NATS URL (``nats://host:4222``). The options are every shared
    registry's (``lease_ttl``, ``call_timeout``... : see
    :class:`~csms_kit.cluster.base.SharedRegistry`).
    """

    def __init__(self, url: str, **options: Unpack[RegistryOptions]) -> None:
        super().__init__(url, **options)
        self._nc: Client | None = None
        self._open: _Buckets | None = None
        self._inbox = ""

    def _index_key(self, station_id: str, node: str | None = None) -> str:
        """Where ``node`` (default: this one) lists ``station_id`` in the index."""
        return f"{_token(self.node_id if node is None else node)}.{_token(station_id)}"

    def _subject(self, node: str) -> str:
        return f"{self.prefix}.node.{_token(node)}"

    @property
    def _events(self) -> str:
        return f"{self.prefix}.events"

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, open the buckets, subscribe; raise :class:`BrokerUnavailable` if not."""
        self.attach()
        if self._nc is not None:
            return
        errors: list[Exception] = []

        async def note(error: Exception) -> None:
            errors.append(error)
            del errors[:-1]
            logger.warning("NATS at %s: %s", self.url, error or type(error).__name__)

        try:
            # Two quick attempts for the first connection (a wrong URL fails, naming
            # the reason); once connected, the client reconnects for ever.
            nc = await nats.connect(
                self.url,
                connect_timeout=5,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                error_cb=note,
            )
        except (*_UNREACHABLE, asyncio.TimeoutError) as exc:
            reason = errors[-1] if errors else exc
            raise BrokerUnavailable(self.url, str(reason) or type(reason).__name__) from exc
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = _RECONNECT_WAIT
        try:
            self._open = await self._open_buckets(nc)
            self._inbox = nc.new_inbox()
            await nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
            await nc.subscribe(self._subject(self.node_id), cb=self._on_request)
            await nc.subscribe(self._events, cb=self._on_event)
        except _UNREACHABLE as exc:
            await nc.close()
            raise BrokerUnavailable(self.url, f"{exc} (is JetStream on? nats-server -js)") from exc
        self._nc = nc
        try:
            await self._claim_dead_nodes()
            await self._reap_node(self.node_id)  # what an earlier life of ours left
        except BrokerUnavailable:
            await self.aclose()
            raise
        self._start_keeping_leases()

    async def _open_buckets(self, nc: Client) -> _Buckets:
        """Open the buckets, creating those that do not exist."""
        js = nc.jetstream()
        return _Buckets(
            stations=await self._bucket(js, f"{self.prefix}_stations", self.lease_ttl),
            statuses=await self._bucket(js, f"{self.prefix}_status", self.remember_statuses_for),
            index=await self._bucket(js, f"{self.prefix}_held", 0),
            nodes=await self._bucket(js, f"{self.prefix}_nodes", self.lease_ttl),
        )

    @staticmethod
    async def _bucket(js: Any, name: str, ttl: float) -> KeyValue:
        """The bucket ``name``, created with entries living ``ttl`` seconds (0: for ever)."""
        try:
            bucket: KeyValue = await js.create_key_value(bucket=name, ttl=ttl or None)
        except BadRequestError:
            bucket = await js.key_value(name)  # exists with other settings: use it
        return bucket

    async def aclose(self) -> None:
        """Stop renewing, finish the tasks, close the connection."""
        await self._stop_keeping_leases()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_waiting_calls()
        if self._nc is not None:
            nc, self._nc, self._open = self._nc, None, None
            # In its own task: when the broker has just died, nats-py's reconnect task,
            # cancelled by close(), may cancel what close() awaits. Closing must not
            # raise for a broker that is gone.
            closing = asyncio.ensure_future(nc.close())
            await asyncio.wait({closing})
            if not closing.cancelled() and closing.exception() is not None:
                logger.warning("NATS connection closed uncleanly: %r", closing.exception())

    def _client(self) -> Client:
        """The connection; :class:`BrokerUnavailable` at once while it is down (NATS
        would otherwise hold requests until it is back, or time out)."""
        if self._nc is None:
            raise BrokerUnavailable(self.url, "the registry is not started (use async with)")
        if not self._nc.is_connected:
            raise BrokerUnavailable(self.url, "the connection is lost; reconnecting")
        return self._nc

    def _buckets(self) -> _Buckets:
        self._client()
        assert self._open is not None  # set with the client
        return self._open

    # -- membership -------------------------------------------------------------------

    async def register(self, session: StationSession) -> None:
        self.attach()
        kv = self._buckets().stations
        station_id = session.station_id
        old = self._local_duplicate(session)
        record = StationRecord.of(session, self.node_id)
        value = json.dumps(record.to_dict()).encode()
        key = _token(station_id)
        previous: tuple[str, Any] | None = None
        try:
            while True:
                try:
                    entry = await kv.get(key)
                except KeyNotFoundError:
                    entry = None
                if entry is None or entry.value is None:
                    try:
                        revision = await kv.create(key, value)
                        break
                    except KeyWrongLastSequenceError:
                        continue  # someone registered meanwhile: look again
                if self.duplicate_policy == "reject":
                    raise DuplicateConnection(station_id)
                try:
                    revision = await kv.update(key, value, last=entry.revision)
                except KeyWrongLastSequenceError:
                    continue
                holder = StationRecord.from_dict(json.loads(entry.value)).node
                previous = (holder, entry.revision)
                break
            await self._buckets().index.put(self._index_key(station_id), value)
            if previous is not None and previous[0] != self.node_id:
                await self._buckets().index.delete(self._index_key(station_id, previous[0]))
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        await self._hold(session, record, revision, old, previous)

    async def unregister(self, session: StationSession) -> None:
        station_id = session.station_id
        revision = self._let_go(session)
        if revision is None:
            return
        try:
            released = await self._release(session, revision)
            if released:
                await self._buckets().index.delete(self._index_key(station_id))
        except _UNREACHABLE as exc:
            logger.warning("could not release station %r in NATS: %s", station_id, exc)
            released = True  # the lease lapses by itself
        if released:
            await self._announce("disconnected", StationRecord.of(session, self.node_id), session)

    async def _release(self, session: StationSession, revision: int) -> bool:
        """Delete the session's entry if it is still the session's; whether it was.

        The revision is the fencing token, and a lease renewal in flight when the
        session ended writes a newer one that nobody keeps: an entry at another
        revision is still ours when it names this node and this connection.
        """
        kv = self._buckets().stations
        key = _token(session.station_id)
        for _ in range(3):
            try:
                await kv.delete(key, last=revision)
                return True
            except BadRequestError as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    raise BrokerUnavailable(self.url, str(exc)) from exc
            try:
                current = await kv.get(key)
            except KeyNotFoundError:
                return False  # gone already (its lease lapsed)
            if not current.value or current.revision is None:
                return False
            record = StationRecord.from_dict(json.loads(current.value))
            if record.node != self.node_id or record.connected_at != session.connected_at:
                return False  # a newer registration holds it
            revision = current.revision
        return False

    async def _stored_record(self, station_id: str) -> bytes | None:
        try:
            entry = await self._buckets().stations.get(_token(station_id))
        except KeyNotFoundError:
            return None
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        value: bytes | None = entry.value
        return value

    async def stations(self) -> list[StationRecord]:
        try:
            entries = await self._entries("stations", ">")
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return [StationRecord.from_dict(json.loads(e.value)) for e in entries if e.value]

    # -- boot status memory -----------------------------------------------------------

    async def registration_status(self, station_id: str) -> str | None:
        try:
            entry = await self._buckets().statuses.get(_token(station_id))
        except KeyNotFoundError:
            return None
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        if not entry.value:
            return None
        status = json.loads(entry.value).get("status")
        return None if status is None else str(status)

    async def set_registration_status(
        self, station_id: str, status: str, boot: BootInfo | None = None
    ) -> None:
        value = {"status": status, "boot": None if boot is None else boot.to_dict()}
        try:
            await self._buckets().statuses.put(_token(station_id), json.dumps(value).encode())
            session = self._sessions.get(station_id)
            if session is not None:  # our record carries the status too
                await self._rewrite(station_id, session, index=True)
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    # -- calls to other nodes -----------------------------------------------------------

    async def _request(self, node: str, message: dict[str, Any]) -> bool:
        # Our own reply subjects, not nc.request(): the registry owns the wait (it
        # watches the holder meanwhile), as with Redis.
        data = json.dumps(message).encode()
        try:
            await self._client().publish(
                self._subject(node), data, reply=f"{self._inbox}.{message['id']}"
            )
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return True  # if nobody listens, NATS says so on the reply subject

    async def _on_reply(self, msg: Msg) -> None:
        request_id = msg.subject.rpartition(".")[2]
        if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS:
            self._replied(request_id, None)  # the holder is gone
            return
        try:
            reply = json.loads(msg.data)
        except ValueError:
            logger.warning("ignored a reply that is not JSON on %s", msg.subject)
            return
        self._replied(request_id, reply)

    # -- what other nodes tell us -----------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
        except ValueError:
            logger.warning("ignored a message that is not JSON on %s", msg.subject)
            return
        if data.get("type") == "close":
            self._close_if_current(data)
            return
        if data.get("type") == "ping":  # a caller checks that we are still here
            await msg.respond(b"{}")
            return
        # Each request in its own task: a slow station must not hold up the others.
        self._spawn(self._answer(msg, data))

    async def _answer(self, msg: Msg, data: dict[str, Any]) -> None:
        """Serve a forwarded call or send; respond to the caller's request."""
        reply = await self._serve(data)
        try:
            await msg.respond(json.dumps(reply).encode())
        except _UNREACHABLE as exc:
            logger.warning(
                "could not answer a forwarded call for %r: %s", data.get("station"), exc
            )

    async def _on_event(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
        except ValueError:
            logger.warning("ignored a message that is not JSON on %s", msg.subject)
            return
        await self._heard(data)

    async def _notify(self, node: str, message: dict[str, Any]) -> None:
        try:
            await self._client().publish(self._subject(node), json.dumps(message).encode())
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    async def _publish_event(self, message: dict[str, Any]) -> None:
        try:
            await self._client().publish(self._events, json.dumps(message).encode())
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc

    # -- leases -------------------------------------------------------------------------

    async def _renew_all(self) -> None:
        for station_id, session in list(self._sessions.items()):
            if session.ended or self._sessions.get(station_id) is not session:
                continue
            try:
                await self._rewrite(station_id, session)
            except NoStreamResponseError:
                # The server forgot our buckets (it restarted with an empty store):
                # create them again; the next round restores every lease.
                logger.warning("NATS has lost the registry's buckets; creating them again")
                try:
                    self._open = await self._open_buckets(self._client())
                except (*_UNREACHABLE, BrokerUnavailable) as exc:
                    logger.warning("could not create the buckets in NATS (%s); retrying", exc)
                return
            except (*_UNREACHABLE, BrokerUnavailable) as exc:
                logger.warning("could not renew leases in NATS (%s); retrying", exc)
                return

    async def _rewrite(
        self, station_id: str, session: StationSession, *, index: bool = False
    ) -> None:
        """Rewrite our entry (a renewed lease; with ``index``, also our index's); restore
        both if it lapsed; close our connection if a newer registration holds it."""
        kv = self._buckets().stations
        key = _token(station_id)
        record = StationRecord.of(session, self.node_id)
        value = json.dumps(record.to_dict()).encode()
        try:
            revision = await kv.update(key, value, last=self._tokens[station_id])
        except KeyWrongLastSequenceError:
            if self._sessions.get(station_id) is not session:
                return  # it ended meanwhile, and its release removed the entry
            try:
                current = await kv.get(key)
            except KeyNotFoundError:
                current = None
            if current is not None and current.value:
                logger.warning("station %r is held by a newer connection; closing", station_id)
                self._close_replaced(session)
                return
            try:
                revision = await kv.create(key, value)
            except KeyWrongLastSequenceError:
                return  # someone registered it meanwhile: the next round sees who
            index = True
            logger.info("station %r: presence restored in NATS", station_id)
            await self._announce("connected", record, session, local=False)
        if self._sessions.get(station_id) is session:
            self._tokens[station_id] = revision
        if index:
            await self._buckets().index.put(self._index_key(station_id), value)

    async def _entries(self, kind: str, keys: str) -> list[Entry]:
        """The live entries of bucket ``{prefix}_{kind}`` whose keys match ``keys`` (a
        subject pattern).

        Listed from the bucket's stream (its subjects), then read, a batch of requests
        at a time: a KV watcher would leave a consumer on the server for minutes after
        each listing, and nats-py leaks the tasks of a watch whose set-up fails.
        """
        name = f"{self.prefix}_{kind}"
        bucket: KeyValue = getattr(self._buckets(), kind if kind != "held" else "index")
        prefix = f"$KV.{name}."  # JetStream's naming of a bucket's stream and subjects
        info = (
            await self._client()
            .jetstream()
            .stream_info(f"KV_{name}", subjects_filter=prefix + keys)
        )

        async def read(key: str) -> Entry | None:
            try:
                return await bucket.get(key)
            except KeyNotFoundError:
                return None  # deleted, or gone meanwhile

        names = [subject[len(prefix) :] for subject in info.state.subjects or {}]
        entries = []
        for start in range(0, len(names), _LIST_BATCH):  # so many requests in flight at once
            batch = names[start : start + _LIST_BATCH]
            for entry in await asyncio.gather(*(read(key) for key in batch)):
                if entry is not None and entry.value:
                    entries.append(entry)
        return entries

    # -- dead nodes ---------------------------------------------------------------------

    async def _claim_dead_nodes(self) -> list[str]:
        buckets = self._buckets()
        me = _token(self.node_id)
        dead = []
        try:
            await buckets.nodes.put(me, self.node_id.encode())
            await buckets.index.put(me, self.node_id.encode())  # a member (again, if reaped)
            alive = {entry.key for entry in await self._entries("nodes", "*")}
            for member in await self._entries("held", "*"):
                if member.key in alive or not member.value:
                    continue
                try:  # only one survivor deletes this revision: that one reaps it
                    await buckets.index.delete(member.key, last=member.revision)
                except (KeyWrongLastSequenceError, BadRequestError):
                    continue
                dead.append(member.value.decode())
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return dead

    async def _reap(self, node: str) -> list[StationRecord]:
        kv = self._buckets().stations
        gone = []
        try:
            for held in await self._entries("held", f"{_token(node)}.*"):
                if not held.value:
                    continue
                record = StationRecord.from_dict(json.loads(held.value))
                key = _token(record.station_id)
                try:
                    current = await kv.get(key)
                except KeyNotFoundError:
                    current = None
                if current is None or not current.value:
                    gone.append(record)
                elif StationRecord.from_dict(json.loads(current.value)).node == node:
                    try:
                        await kv.delete(key, last=current.revision)
                        gone.append(record)
                    except (KeyWrongLastSequenceError, BadRequestError):
                        pass  # someone registered it meanwhile
                await self._buckets().index.delete(held.key)
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return gone

    async def _node_alive(self, node: str) -> bool:
        try:
            await self._client().request(
                self._subject(node), b'{"type": "ping"}', HOLDER_CHECK_INTERVAL
            )
        except NoRespondersError:
            return False
        except NatsTimeout:
            return True  # busy, but there
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(self.url, str(exc)) from exc
        return True
