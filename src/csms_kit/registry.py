"""Who is connected, and how to reach a station from anywhere in the application.

:class:`ConnectionRegistry` is the interface; :class:`InMemoryRegistry`, the default,
keeps one process's stations in a dict. Cluster backends (several processes sharing
one registry) implement the same interface, which is why membership queries are
coroutines: the answer may come from another machine.

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
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from csms_kit.exceptions import DuplicateConnection, StationNotConnected
from csms_kit.hooks import call_hook

if TYPE_CHECKING:
    from csms_kit.session import StationSession

__all__ = [
    "ConnectionRegistry",
    "DuplicatePolicy",
    "InMemoryRegistry",
    "RegistryEvent",
    "RegistryListener",
]

logger = logging.getLogger("csms_kit.registry")

DuplicatePolicy = Literal["replace", "reject"]

#: Close frame sent to a connection replaced by a newer one of the same station.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a newer connection of the same station"


@dataclass(frozen=True)
class RegistryEvent:
    """A station connected or disconnected.

    ``session`` is the local session, or ``None`` when the station is connected to
    another process of a cluster.
    """

    kind: Literal["connected", "disconnected"]
    station_id: str
    session: StationSession | None


RegistryListener = Callable[[RegistryEvent], Any]


class ConnectionRegistry(abc.ABC):
    """The stations connected to a CSMS, and a way to call them.

    The server calls :meth:`register` and :meth:`unregister`; the application uses
    the rest. Listeners added with :meth:`subscribe` hear about every connect and
    disconnect, in order; they may be sync or async and should be quick (start a
    task for slow work): they are awaited before the station's messages are read.
    """

    def __init__(self, *, duplicate_policy: DuplicatePolicy = "replace") -> None:
        if duplicate_policy not in ("replace", "reject"):
            raise ValueError("duplicate_policy must be 'replace' or 'reject'")
        self.duplicate_policy: DuplicatePolicy = duplicate_policy
        self._listeners: list[RegistryListener] = []

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
    async def is_connected(self, station_id: str) -> bool:
        """Whether ``station_id`` is connected (to any process sharing the registry)."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many stations are connected."""

    @abc.abstractmethod
    async def station_ids(self) -> list[str]:
        """The identities of the connected stations, at this moment."""

    @abc.abstractmethod
    async def wait_connected(self, station_id: str, timeout: float | None = None) -> None:
        """Return once ``station_id`` is connected; raise ``TimeoutError`` after ``timeout``."""

    # -- boot status memory -------------------------------------------------------------

    @abc.abstractmethod
    async def registration_status(self, station_id: str) -> str | None:
        """The last BootNotification status given to ``station_id``, across connections."""

    @abc.abstractmethod
    async def set_registration_status(self, station_id: str, status: str) -> None:
        """Remember the BootNotification status given to ``station_id``."""

    # -- commands ---------------------------------------------------------------------

    async def call(
        self,
        station_id: str,
        request: Any,
        *,
        action: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`StationSession.call <csms_kit.session.StationSession.call>` on ``station_id``.

        Raises :class:`~csms_kit.exceptions.StationNotConnected` if it is not
        connected, and whatever the session's ``call`` raises.
        """
        return await self._session_for(station_id).call(request, action=action, timeout=timeout)

    async def send(self, station_id: str, message: Any, *, action: str | None = None) -> None:
        """:meth:`StationSession.send <csms_kit.session.StationSession.send>` on ``station_id``."""
        await self._session_for(station_id).send(message, action=action)

    def _session_for(self, station_id: str) -> StationSession:
        session = self.local_session(station_id)
        if session is None or session.closed:
            raise StationNotConnected(station_id)
        return session

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
        self, *, duplicate_policy: DuplicatePolicy = "replace", remember_statuses: int = 1_000_000
    ) -> None:
        super().__init__(duplicate_policy=duplicate_policy)
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
        station_id = session.station_id
        old = self._sessions.get(station_id)
        if old is not None and old is not session and not old.closed:
            if self.duplicate_policy == "reject":
                raise DuplicateConnection(station_id)
            self._replace(old)
        self._sessions[station_id] = session
        for waiter in self._waiters.pop(station_id, ()):
            if not waiter.done():
                waiter.set_result(None)
        await self._publish(RegistryEvent("connected", station_id, session))

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
        await self._publish(RegistryEvent("disconnected", station_id, session))

    def local_session(self, station_id: str) -> StationSession | None:
        return self._sessions.get(station_id)

    async def is_connected(self, station_id: str) -> bool:
        session = self._sessions.get(station_id)
        return session is not None and not session.closed

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

    async def set_registration_status(self, station_id: str, status: str) -> None:
        self._statuses.pop(station_id, None)
        self._statuses[station_id] = status
        while len(self._statuses) > self._remember_statuses:
            self._statuses.popitem(last=False)

    async def aclose(self) -> None:
        """Wait until connections being closed as replaced have closed."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
