"""What every cluster registry shares, whatever its broker: :class:`SharedRegistry`.

A backend (Redis, NATS) stores presence and carries messages; this base keeps the
stations held by this process, wakes ``wait_connected`` waiters, runs calls other
processes forward to it on the station's own session, turns what it hears into
registry events, and closes a connection a newer registration replaced.

Every ``lease_ttl / 3`` seconds each node renews its stations' leases and its own,
and looks for nodes whose own lease lapsed (they died, or stalled for longer than the
TTL): one survivor claims each dead node, removes what is left of its stations and
tells every node they disconnected. A caller waiting for a forwarded call checks each
second that the holder is still there, so a holder that dies mid-call ends the call
with :class:`~csms_kit.exceptions.StationDisconnected` instead of a timeout.

A backend implements the presence methods of
:class:`~csms_kit.registry.ConnectionRegistry` and the abstract methods below (carry a
request to a node, tell one node or all of them, renew leases, find and reap dead
nodes); it hands requests it receives to :meth:`SharedRegistry._serve` and events to
:meth:`SharedRegistry._heard`.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from csms_kit.exceptions import (
    BrokerUnavailable,
    CallFailed,
    CallTimeout,
    CsmsKitError,
    DuplicateConnection,
    StationDisconnected,
    StationNotConnected,
    error_from_dict,
)
from csms_kit.registry import (
    REPLACED_CODE,
    REPLACED_REASON,
    ConnectionRegistry,
    DuplicatePolicy,
    RegistryEvent,
    StationRecord,
)
from csms_kit.stopping import cancel_and_wait

if TYPE_CHECKING:
    from csms_kit.session import StationSession

__all__ = ["RegistryOptions", "SharedRegistry"]

logger = logging.getLogger("csms_kit.cluster")


class RegistryOptions(TypedDict, total=False):
    """The keyword arguments every :class:`SharedRegistry` takes (see it)."""

    node_id: str | None
    prefix: str
    duplicate_policy: DuplicatePolicy
    lease_ttl: float
    call_timeout: float
    call_margin: float
    remember_statuses_for: float


#: Seconds between checks that the holder of a station is still there, while waiting
#: for its answer to a forwarded call.
HOLDER_CHECK_INTERVAL = 1.0
#: The close code a call ends with when the holder's process is gone (abnormal closure).
HOLDER_GONE_CODE = 1006


class SharedRegistry(ConnectionRegistry):
    """A registry that several processes share through a broker (see the module).

    ``url`` names the broker. ``lease_ttl`` (seconds) bounds how long a dead node's
    stations stay listed; ``call_timeout`` is the default timeout of calls forwarded to
    another node (the caller waits a little longer, ``call_margin``, for the holder's
    own timeout error); ``remember_statuses_for`` (seconds) keeps registration
    statuses across connections; ``prefix`` names the broker's keys or buckets, so
    that several clusters may share one broker.
    """

    def __init__(
        self,
        url: str,
        *,
        node_id: str | None = None,
        prefix: str = "csms_kit",
        duplicate_policy: DuplicatePolicy = "replace",
        lease_ttl: float = 15.0,
        call_timeout: float = 30.0,
        call_margin: float = 2.0,
        remember_statuses_for: float = 30 * 24 * 3600,
    ) -> None:
        super().__init__(duplicate_policy=duplicate_policy, node_id=node_id)
        if not lease_ttl > 0:
            raise ValueError("lease_ttl must be positive")
        self.url = url
        self.prefix = prefix
        self.lease_ttl = lease_ttl
        self.call_timeout = call_timeout
        self.call_margin = call_margin
        self.remember_statuses_for = remember_statuses_for
        #: The stations held by this process, and each one's fencing token (Redis: the
        #: registration's epoch; NATS: the revision this process last wrote).
        self._sessions: dict[str, StationSession] = {}
        self._tokens: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        #: Forwarded calls waiting for their reply: request id -> (station id, reply).
        self._replies: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Set when closing: the lease loop ends between rounds, never in the middle
        #: of one (a client library may leak what an interrupted request opened).
        self._stopping = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    # -- to implement -------------------------------------------------------------------

    @abc.abstractmethod
    async def _request(self, node: str, message: dict[str, Any]) -> bool:
        """Send ``message`` (JSON-ready, with its ``id``) to ``node``, asking for a reply.

        The backend hands the reply, when it comes, to :meth:`_replied`. ``False``
        when it knows at once that nobody listens at ``node``.
        """

    @abc.abstractmethod
    async def _stored_record(self, station_id: str) -> str | bytes | None:
        """The record of ``station_id`` as the broker holds it (JSON), or ``None``."""

    @abc.abstractmethod
    async def _publish_event(self, message: dict[str, Any]) -> None:
        """Tell every node of a connect or disconnect (``message`` is JSON-ready)."""

    @abc.abstractmethod
    async def _notify(self, node: str, message: dict[str, Any]) -> None:
        """Send ``message`` (JSON-ready, no reply expected) to ``node``."""

    @abc.abstractmethod
    async def _node_alive(self, node: str) -> bool:
        """Whether ``node``'s process still listens for requests."""

    @abc.abstractmethod
    async def _renew_all(self) -> None:
        """Renew the lease of every station held here (restore lost ones, close
        replaced ones); log, never raise, when the broker cannot be reached."""

    @abc.abstractmethod
    async def _claim_dead_nodes(self) -> list[str]:
        """Renew this node's own lease; the nodes whose lease lapsed, each claimed by
        exactly one caller across the cluster (which then reaps it)."""

    @abc.abstractmethod
    async def _reap(self, node: str) -> list[StationRecord]:
        """Remove what dead ``node`` left of its stations; the records of those gone
        (not those another node holds now)."""

    # -- stations held here -------------------------------------------------------------

    def local_session(self, station_id: str) -> StationSession | None:
        return self._sessions.get(station_id)

    async def record(self, station_id: str) -> StationRecord | None:
        session = self._sessions.get(station_id)
        if session is not None and not session.ended:
            return StationRecord.of(session, self.node_id)
        stored = await self._stored_record(station_id)
        if not stored:
            return None
        record = StationRecord.from_dict(json.loads(stored))
        return None if record.node == self.node_id else record  # ours, but it left

    def _local_duplicate(self, session: StationSession) -> StationSession | None:
        """The older session here that ``session`` replaces; under "reject", refuse it."""
        old = self._sessions.get(session.station_id)
        if old is None or old is session or old.ended:
            return None
        if self.duplicate_policy == "reject":
            raise DuplicateConnection(session.station_id)
        return old

    async def wait_connected(self, station_id: str, timeout: float | None = None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(station_id, []).append(waiter)
        try:
            if await self.record(station_id) is not None:
                return
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
            raise TimeoutError(f"station {station_id!r} did not connect in {timeout} s") from None
        finally:
            waiters = self._waiters.get(station_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(station_id, None)

    async def _hold(
        self,
        session: StationSession,
        record: StationRecord,
        token: int,
        old: StationSession | None,
        previous: tuple[str, Any] | None,
    ) -> None:
        """``session`` (its ``record``) now holds its station with ``token``.

        Closes what it replaced (``old`` here, or ``previous``, a (node, token) held
        elsewhere), wakes the waiters and announces it.
        """
        station_id = session.station_id
        if old is not None:
            self._close_replaced(old)
        elif previous is not None and previous[0] != self.node_id:
            # Held by another node: it closes its connection (if still that token).
            message = {"type": "close", "station": station_id, "token": previous[1]}
            await self._notify(previous[0], message)
        self._sessions[station_id] = session
        self._tokens[station_id] = token
        self._wake(station_id)
        await self._announce("connected", record, session)

    def _let_go(self, session: StationSession) -> int | None:
        """Forget ``session``; its token, or ``None`` if a newer connection holds it."""
        station_id = session.station_id
        if self._sessions.get(station_id) is not session:
            return None  # replaced by a newer connection, which stays
        del self._sessions[station_id]
        return self._tokens.pop(station_id)

    def _close_if_current(self, data: dict[str, Any]) -> None:
        """Another node took over a station: close our connection if ``data`` names its token."""
        session = self._sessions.get(str(data.get("station")))
        if session is not None and str(self._tokens.get(session.station_id)) == str(
            data.get("token")
        ):
            self._close_replaced(session)

    def _wake(self, station_id: str) -> None:
        for waiter in self._waiters.pop(station_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    # -- calls to other nodes -----------------------------------------------------------

    async def forward_call(
        self, record: StationRecord, action: str, payload: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        timeout = self.call_timeout if timeout is None else timeout
        message = {"type": "call", "action": action, "payload": payload, "timeout": timeout}
        reply = await self._ask_holder(record, message, timeout + self.call_margin, action)
        answer: dict[str, Any] = reply["payload"]
        return answer

    async def forward_send(
        self, record: StationRecord, action: str, payload: dict[str, Any]
    ) -> None:
        message = {"type": "send", "action": action, "payload": payload}
        await self._ask_holder(record, message, self.call_margin + 5.0, action)

    async def _ask_holder(
        self, record: StationRecord, message: dict[str, Any], wait: float, action: str
    ) -> dict[str, Any]:
        """Send ``message`` to the holder of the station; its reply (its error raised).

        Waits at most ``wait`` seconds, and stops waiting as soon as the holder's
        process is seen gone (checked each ``HOLDER_CHECK_INTERVAL``).
        """
        station_id = record.station_id
        request_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._replies[request_id] = (station_id, reply)
        try:
            message = {**message, "id": request_id, "station": station_id}
            if not await self._request(record.node, message):
                raise StationNotConnected(station_id)  # nobody listens: the holder is gone
            deadline = loop.time() + wait
            while not reply.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise CallTimeout(station_id, action, None, wait)
                await asyncio.wait({reply}, timeout=min(remaining, HOLDER_CHECK_INTERVAL))
                if not reply.done() and not await self._node_alive(record.node):
                    gone = f"node {record.node!r}, which held it, is gone"
                    raise StationDisconnected(station_id, HOLDER_GONE_CODE, gone)
        finally:
            del self._replies[request_id]
        answer = reply.result()
        if answer.get("error") is not None:
            raise error_from_dict(answer["error"])
        return answer

    def _replied(self, request_id: str, reply: dict[str, Any] | None) -> None:
        """The reply to request ``request_id`` came (``None``: nobody listened)."""
        waiting = self._replies.get(request_id)
        if waiting is None or waiting[1].done():
            return  # its caller gave up
        station_id, future = waiting
        if reply is None:
            future.set_exception(StationNotConnected(station_id))
        else:
            future.set_result(reply)

    def _fail_waiting_calls(self) -> None:
        """The registry closes: calls waiting for a reply fail (they would wait in vain)."""
        for _, future in self._replies.values():
            if not future.done():
                future.set_exception(BrokerUnavailable(self.url, "the registry was closed"))

    async def _serve(self, data: dict[str, Any]) -> dict[str, Any]:
        """Run a call or send another node forwarded on our session; the reply to send."""
        station_id = str(data.get("station"))
        reply: dict[str, Any] = {}
        try:
            session = self._sessions.get(station_id)
            if session is None or session.ended:
                raise StationNotConnected(station_id)
            if data.get("type") == "call":
                reply["payload"] = await session.call_payload(
                    data["action"], data["payload"], timeout=data.get("timeout")
                )
            else:
                await session.send(data["payload"], action=data["action"])
        except CsmsKitError as exc:
            reply["error"] = exc.to_dict()
        except Exception as exc:  # the caller must hear of it, typed
            logger.exception("a forwarded %s to %r failed", data.get("type"), station_id)
            reply["error"] = CallFailed(f"station {station_id!r}: {exc!r}").to_dict()
        return reply

    # -- events ---------------------------------------------------------------------------

    async def _announce(
        self,
        kind: Literal["connected", "disconnected"],
        record: StationRecord,
        session: StationSession | None,
        *,
        local: bool = True,
    ) -> None:
        """Tell local listeners (with the session) and the other nodes (with the record)."""
        if local:
            await self._publish(RegistryEvent(kind, record.station_id, session, record))
        try:
            await self._publish_event(
                {"kind": kind, "node": self.node_id, "record": record.to_dict()}
            )
        except CsmsKitError as exc:
            logger.warning("could not publish a %s event: %s", kind, exc)

    async def _heard(self, data: dict[str, Any]) -> None:
        """An event another node published: wake waiters, tell the listeners."""
        if data.get("node") == self.node_id:
            return  # ours: local listeners heard it already
        try:
            record = StationRecord.from_dict(data["record"])
        except (KeyError, TypeError, ValueError):
            logger.warning("ignored a malformed registry event")
            return
        if data.get("kind") == "connected":
            self._wake(record.station_id)
            await self._publish(RegistryEvent("connected", record.station_id, None, record))
        elif data.get("kind") == "disconnected":
            await self._publish(RegistryEvent("disconnected", record.station_id, None, record))

    # -- leases and dead nodes ---------------------------------------------------------

    async def _keep_leases(self) -> None:
        """Renew leases and reap dead nodes every ``lease_ttl / 3`` seconds, until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.lease_ttl / 3)
                return
            except asyncio.TimeoutError:
                pass
            await self._renew_all()
            try:
                for node in await self._claim_dead_nodes():
                    await self._reap_node(node)
            except CsmsKitError as exc:
                logger.warning("could not look for dead nodes (%s); retrying", exc)

    def _start_keeping_leases(self) -> None:
        self._stopping.clear()
        self._renewer = asyncio.get_running_loop().create_task(
            self._keep_leases(), name=f"csms_kit {type(self).__name__} leases"
        )

    async def _stop_keeping_leases(self) -> None:
        """End the lease loop: after its round, or by cancelling it if the round takes
        too long."""
        self._stopping.set()
        task, self._renewer = self._renewer, None
        if task is None:
            return
        await asyncio.wait({task}, timeout=self.lease_ttl / 3)
        await cancel_and_wait(task)

    async def _reap_node(self, node: str) -> None:
        """Remove what ``node`` left; tell every node (but ``node``) its stations left."""
        records = await self._reap(node)
        if records:
            logger.info("node %r is gone: %d of its stations left with it", node, len(records))
        for record in records:
            # Published in the dead node's name: every live node's listeners hear it.
            message = {"kind": "disconnected", "node": node, "record": record.to_dict()}
            try:
                await self._publish_event(message)
            except CsmsKitError as exc:
                logger.warning("could not publish a disconnected event: %s", exc)

    # -- helpers ------------------------------------------------------------------------

    def _close_replaced(self, session: StationSession) -> None:
        logger.info("station %r connected again; closing its older connection", session.station_id)
        self._spawn(session.close(REPLACED_CODE, REPLACED_REASON))

    def _spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` in a task the registry owns (awaited by ``aclose``)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
