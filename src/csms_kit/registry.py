"""Who is connected, and how to reach a station from anywhere in the application.

:class:`ConnectionRegistry` is the interface; :class:`InMemoryRegistry`, the default,
keeps one process's stations in a dict. Cluster backends (several processes sharing
one registry) implement the same interface, which is why membership queries are
coroutines: the answer may come from another machine.

Each connected station has a :class:`StationRecord`: plain data (identity, OCPP
version, since when, on which node, what it said at boot) that any process can read.

A call goes to the station's session directly when it is connected to this process.
Otherwise it goes down to the payload level: the request is checked and encoded for
the station's version (from its record), :meth:`ConnectionRegistry.forward_call`
carries the JSON payload to the process that holds the station, and the answer comes
back as the same typed response, or the same exception, as a local call gives. The
in-memory registry has no other process to forward to: it raises
:class:`~csms_kit.exceptions.StationNotConnected`. A backend implements the
forwarding (and answers forwarded calls with :meth:`ConnectionRegistry.call_payload`
on its own stations), nothing else of the call path.

A registry belongs to the event loop that first uses it. Code running in other
threads calls stations with :meth:`ConnectionRegistry.call_from_thread`; a call
made from another event loop fails at once with a
:class:`~csms_kit.exceptions.UsageError` saying so.

A registry is shared by every server of a process that should see the same
stations (one per security profile, say) and is never global.

Duplicate identities: with ``duplicate_policy="replace"`` (the default) a new
connection of a station that is already connected wins and the old one is closed
with code 1000 and a stated reason (half-open sockets are common: the station knows
its old connection is gone long before the CSMS does). With ``"reject"`` the new one
is refused. Either way, at any moment at most one session is registered per
identity, and a session leaving never removes its successor: no ghosts.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import datetime
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from typing_extensions import Self

from csms_kit.boot import BootInfo
from csms_kit.exceptions import DuplicateConnection, StationNotConnected, UsageError
from csms_kit.hooks import call_hook
from csms_kit.protocol import Endpoint
from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from csms_kit.session import StationSession

__all__ = [
    "ConnectionRegistry",
    "DuplicatePolicy",
    "InMemoryRegistry",
    "RegistryEvent",
    "RegistryListener",
    "StationRecord",
]

logger = logging.getLogger("csms_kit.registry")

DuplicatePolicy = Literal["replace", "reject"]

#: Close frame sent to a connection replaced by a newer one of the same station.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a newer connection of the same station"


@dataclass(frozen=True, slots=True)
class StationRecord:
    """What every process may know of a connected station: plain data."""

    station_id: str
    version: OcppVersion
    #: When its connection was accepted (UTC).
    connected_at: datetime.datetime
    #: The node (process) holding its connection.
    node: str
    #: The last BootNotification status given to it (``None``: not known).
    registration_status: str | None = None
    #: What it said at boot (without the request itself when read from another node).
    boot: BootInfo | None = None

    @classmethod
    def of(cls, session: StationSession, node: str) -> StationRecord:
        """The record of a local session."""
        return cls(
            session.station_id,
            session.version,
            session.connected_at,
            node,
            session.registration_status,
            session.boot_info,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; :meth:`from_dict` reads it back."""
        return {
            "station_id": self.station_id,
            "version": str(self.version),
            "connected_at": self.connected_at.isoformat(),
            "node": self.node,
            "registration_status": self.registration_status,
            "boot": None if self.boot is None else self.boot.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StationRecord:
        boot = data.get("boot")
        return cls(
            str(data["station_id"]),
            OcppVersion.parse(data["version"]),
            datetime.datetime.fromisoformat(data["connected_at"]),
            str(data["node"]),
            data.get("registration_status"),
            None if boot is None else BootInfo.from_dict(boot),
        )


@dataclass(frozen=True)
class RegistryEvent:
    """A station connected or disconnected.

    ``session`` is the local session, or ``None`` when the station is connected to
    another process of a cluster; ``record`` is the station's record either way.
    """

    kind: Literal["connected", "disconnected"]
    station_id: str
    session: StationSession | None
    record: StationRecord | None = None


RegistryListener = Callable[[RegistryEvent], Any]


class ConnectionRegistry(abc.ABC):
    """The stations connected to a CSMS, and a way to call them.

    Whoever runs a session (a server) calls :meth:`register` and :meth:`unregister`;
    the application uses the rest. Listeners added with :meth:`subscribe` hear about
    every connect and disconnect, in order; they may be sync or async and should be
    quick (start a task for slow work): they are awaited before the station's
    messages are read. ``node_id`` names this process in the records (default:
    host name and process id).
    """

    def __init__(
        self, *, duplicate_policy: DuplicatePolicy = "replace", node_id: str | None = None
    ) -> None:
        if duplicate_policy not in ("replace", "reject"):
            raise ValueError("duplicate_policy must be 'replace' or 'reject'")
        self.duplicate_policy: DuplicatePolicy = duplicate_policy
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}"
        self._listeners: list[RegistryListener] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- used by the server ---------------------------------------------------------------

    @abc.abstractmethod
    async def register(self, session: StationSession) -> None:
        """Add a new connection, applying the duplicate policy.

        Raises :class:`~csms_kit.exceptions.DuplicateConnection` under ``"reject"``
        when the station is already connected.
        """

    @abc.abstractmethod
    async def unregister(self, session: StationSession) -> None:
        """Remove ``session`` if it is still the one registered for its station."""

    # -- lookups ----------------------------------------------------------------------

    @abc.abstractmethod
    def local_session(self, station_id: str) -> StationSession | None:
        """The session of ``station_id`` in this process, if it is connected here."""

    @abc.abstractmethod
    async def record(self, station_id: str) -> StationRecord | None:
        """The record of ``station_id`` if it is connected (to any process), else ``None``."""

    @abc.abstractmethod
    async def stations(self) -> list[StationRecord]:
        """The records of the connected stations, at this moment."""

    async def is_connected(self, station_id: str) -> bool:
        """Whether ``station_id`` is connected (to any process sharing the registry)."""
        return await self.record(station_id) is not None

    async def count(self) -> int:
        """How many stations are connected."""
        return len(await self.stations())

    async def station_ids(self) -> list[str]:
        """The identities of the connected stations, at this moment."""
        return [record.station_id for record in await self.stations()]

    @abc.abstractmethod
    async def wait_connected(self, station_id: str, timeout: float | None = None) -> None:
        """Return once ``station_id`` is connected; raise ``TimeoutError`` after ``timeout``."""

    # -- boot status memory -------------------------------------------------------------

    @abc.abstractmethod
    async def registration_status(self, station_id: str) -> str | None:
        """The last BootNotification status given to ``station_id``, across connections."""

    @abc.abstractmethod
    async def set_registration_status(
        self, station_id: str, status: str, boot: BootInfo | None = None
    ) -> None:
        """Remember the BootNotification status given to ``station_id`` (and its boot info)."""

    # -- commands ---------------------------------------------------------------------

    async def call(
        self,
        station_id: str,
        request: Any,
        *,
        action: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`Role.call <csms_kit.role.Role.call>` on ``station_id``.

        Works from any process sharing the registry: a station held elsewhere is
        reached through :meth:`forward_call`, with the same typed response or the
        same exception. Raises :class:`~csms_kit.exceptions.StationNotConnected` if no
        process holds it, and whatever the session's ``call`` raises.
        """
        session = self._live_session(station_id)
        if session is not None:
            return await session.call(request, action=action, timeout=timeout)
        record = await self._holder(station_id)
        endpoint = Endpoint(record.version)
        action, payload = endpoint.call_payload(request, action)
        answer = await self.forward_call(record, action, payload, timeout)
        return endpoint.decode_response(action, answer)

    async def broadcast(
        self,
        station_ids: Iterable[str],
        request: Any,
        *,
        action: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """:meth:`call` on many stations at once; each station's response or exception.

        Every call runs concurrently and ends on its own: the result maps each station
        id to its typed response, or to the exception its call raised
        (``StationNotConnected``, ``CallError``...), never raising for one of them. A
        dict payload with ``action`` suits a fleet of mixed versions when it is valid
        in each.
        """
        ids = list(dict.fromkeys(station_ids))
        outcomes = await asyncio.gather(
            *(self.call(i, request, action=action, timeout=timeout) for i in ids),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a station's answer
        return dict(zip(ids, outcomes, strict=True))

    async def call_payload(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """:meth:`call` with JSON payloads in and out, for code that speaks JSON."""
        session = self._live_session(station_id)
        if session is not None:
            return await session.call_payload(action, payload, timeout=timeout)
        return await self.forward_call(await self._holder(station_id), action, payload, timeout)

    async def send(self, station_id: str, message: Any, *, action: str | None = None) -> None:
        """:meth:`~csms_kit.role.Role.send` on ``station_id`` (see :meth:`call`)."""
        session = self._live_session(station_id)
        if session is not None:
            await session.send(message, action=action)
            return
        record = await self._holder(station_id)
        action, payload = Endpoint(record.version).send_payload(message, action)
        await self.forward_send(record, action, payload)

    def _live_session(self, station_id: str) -> StationSession | None:
        """The session of ``station_id`` here if its connection is open (binds the loop)."""
        self.attach()
        session = self.local_session(station_id)
        return None if session is None or session.ended else session

    async def _holder(self, station_id: str) -> StationRecord:
        """The record of ``station_id``, held by another process."""
        record = await self.record(station_id)
        if record is None or record.node == self.node_id:
            raise StationNotConnected(station_id)
        return record

    async def forward_call(
        self, record: StationRecord, action: str, payload: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        """Carry a call to ``record.node``, the process holding the station; return the
        answer's payload.

        The holder runs it with :meth:`call_payload` on its own session and its
        exception, if any, is raised here (see :func:`~csms_kit.exceptions.error_from_dict`).
        Cluster backends implement this; here no other process exists.
        """
        raise StationNotConnected(record.station_id)

    async def forward_send(
        self, record: StationRecord, action: str, payload: dict[str, Any]
    ) -> None:
        """Carry a 2.1 SEND to ``record.node`` (see :meth:`forward_call`)."""
        raise StationNotConnected(record.station_id)

    # -- threads ----------------------------------------------------------------------

    def attach(self) -> None:
        """Bind the registry to the running event loop (a server does it as it starts).

        From then on, other threads may use :meth:`call_from_thread`. Raises
        :class:`~csms_kit.exceptions.UsageError` if it is bound to another loop.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise UsageError(
                "this registry belongs to another event loop (another thread, or another "
                "asyncio.run); from a thread, use registry.call_from_thread(...)"
            )

    def call_from_thread(
        self,
        station_id: str,
        request: Any,
        *,
        action: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`call` from a thread other than the registry's event loop; blocks until done.

        For sync code in the same process (a Flask or Django view, a worker thread):
        the call runs in the registry's loop and its answer, or its exception, is
        returned here. Raises :class:`~csms_kit.exceptions.UsageError` when called
        from the loop's own thread (it would block the loop: ``await call()`` there)
        or before the registry is in use.
        """
        return self._run_in_loop(self.call(station_id, request, action=action, timeout=timeout))

    def send_from_thread(
        self, station_id: str, message: Any, *, action: str | None = None
    ) -> None:
        """:meth:`send` from another thread (see :meth:`call_from_thread`)."""
        self._run_in_loop(self.send(station_id, message, action=action))

    def _run_in_loop(self, coroutine: Any) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            raise UsageError(
                "this registry is not in use by a running event loop yet; start the "
                "server (or await a call) first"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coroutine.close()
            raise UsageError(
                "call_from_thread was called from the registry's own event loop, which it "
                "would block; use 'await registry.call(...)' there"
            )
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind to the running loop and connect to the broker, if any; ``async with`` does it."""
        self.attach()

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Finish background work (e.g. closing replaced connections). Servers call it."""

    # -- events -----------------------------------------------------------------------

    def subscribe(self, listener: RegistryListener) -> Callable[[], None]:
        """Call ``listener(event)`` on every connect and disconnect; returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def _publish(self, event: RegistryEvent) -> None:
        for listener in list(self._listeners):
            await call_hook(listener, event)


class InMemoryRegistry(ConnectionRegistry):
    """The stations connected to this process.

    Besides the coroutine interface it offers quick synchronous views:
    ``"CP1" in registry``, ``len(registry)``, iteration over station ids and
    :meth:`get`.
    """

    def __init__(
        self,
        *,
        duplicate_policy: DuplicatePolicy = "replace",
        node_id: str | None = None,
        remember_statuses: int = 1_000_000,
    ) -> None:
        super().__init__(duplicate_policy=duplicate_policy, node_id=node_id)
        self._sessions: dict[str, StationSession] = {}
        # Bounded: without authentication, anyone can invent identities.
        self._statuses: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._remember_statuses = remember_statuses
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def get(self, station_id: str) -> StationSession | None:
        """The session of ``station_id``, or ``None``."""
        return self._sessions.get(station_id)

    def sessions(self) -> list[StationSession]:
        """The connected sessions, at this moment."""
        return list(self._sessions.values())

    async def register(self, session: StationSession) -> None:
        self.attach()
        station_id = session.station_id
        old = self._sessions.get(station_id)
        if old is not None and old is not session and not old.ended:
            if self.duplicate_policy == "reject":
                raise DuplicateConnection(station_id)
            self._replace(old)
        self._sessions[station_id] = session
        for waiter in self._waiters.pop(station_id, ()):
            if not waiter.done():
                waiter.set_result(None)
        record = StationRecord.of(session, self.node_id)
        await self._publish(RegistryEvent("connected", station_id, session, record))

    def _replace(self, old: StationSession) -> None:
        logger.info("station %r connected again; closing its older connection", old.station_id)
        task = asyncio.get_running_loop().create_task(old.close(REPLACED_CODE, REPLACED_REASON))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def unregister(self, session: StationSession) -> None:
        station_id = session.station_id
        if self._sessions.get(station_id) is not session:
            return  # replaced by a newer connection, which stays
        del self._sessions[station_id]
        record = StationRecord.of(session, self.node_id)
        await self._publish(RegistryEvent("disconnected", station_id, session, record))

    def local_session(self, station_id: str) -> StationSession | None:
        return self._sessions.get(station_id)

    async def record(self, station_id: str) -> StationRecord | None:
        session = self._sessions.get(station_id)
        if session is None or session.ended:
            return None
        return StationRecord.of(session, self.node_id)

    async def stations(self) -> list[StationRecord]:
        return [StationRecord.of(s, self.node_id) for s in list(self._sessions.values())]

    async def is_connected(self, station_id: str) -> bool:
        session = self._sessions.get(station_id)
        return session is not None and not session.ended

    async def count(self) -> int:
        return len(self._sessions)

    async def station_ids(self) -> list[str]:
        return list(self._sessions)

    async def wait_connected(self, station_id: str, timeout: float | None = None) -> None:
        if station_id in self._sessions:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(station_id, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
            raise TimeoutError(f"station {station_id!r} did not connect in {timeout} s") from None
        finally:
            waiters = self._waiters.get(station_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[station_id]

    async def registration_status(self, station_id: str) -> str | None:
        return self._statuses.get(station_id)

    async def set_registration_status(
        self, station_id: str, status: str, boot: BootInfo | None = None
    ) -> None:
        self._statuses.pop(station_id, None)
        self._statuses[station_id] = status
        while len(self._statuses) > self._remember_statuses:
            self._statuses.popitem(last=False)

    async def aclose(self) -> None:
        """Wait until connections being closed as replaced have closed."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
