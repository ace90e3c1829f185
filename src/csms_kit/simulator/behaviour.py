"""What a simulated station does on its own: :class:`StationBehaviour`.

It connects, boots (honouring Pending and Rejected), reports each connector's status,
sends heartbeats at the interval, charges, and when the CSMS goes away keeps its
transaction messages until it is back (:mod:`csms_kit.simulator.offline`). What it
answers to the CSMS's commands is :class:`~csms_kit.simulator.SimulatedStation`'s,
the class to use and subclass.

The station is one :class:`~csms_kit.role.Role` for its whole life: each connection
gets a fresh :class:`~csms_kit.connection.RpcConnection`, the station's state (its
settings, connectors, transactions, queue) stays.

Resource handling:
    :meth:`StationBehaviour.run` is the station's one long-lived task: it connects,
    reads until the connection ends, waits, connects again. Heartbeats are timer
    callbacks, not tasks; a heartbeat, a boot or a replay runs in a short task owned
    by the connection, and ends with it. Charging sessions (:meth:`charge`, remote
    starts) run in tasks owned by the station (:meth:`spawn`), which go on while it is
    offline; :meth:`stop` cancels them, then closes the connection and ends
    :meth:`run`.

Error handling:
    Whatever goes wrong in the station's own tasks (a CALLERROR, a timeout, a refused
    connection) is logged, kept in :attr:`errors` (the last 100) and told to the
    ``monitor``; a dropped connection is reported once, by :meth:`run`, never again by
    each call it interrupted. The methods users call (``charge()``, ``heartbeat()``...)
    raise instead, as :meth:`~csms_kit.role.Role.call` does.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import zlib
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, cast

from typing_extensions import Self
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from csms_kit.client import StationClient
from csms_kit.clock import current_time
from csms_kit.connection import RpcConnection
from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import (
    CallError,
    CallTimeout,
    ConnectFailed,
    ConnectionEnded,
    CsmsDisconnected,
    InvalidResponse,
    TransportClosed,
    UsageError,
)
from csms_kit.hooks import Hooks
from csms_kit.instruments import Instruments
from csms_kit.protocol.validation import ValidationPolicy
from csms_kit.simulator.connect import ConnectOptions, open_link
from csms_kit.simulator.messages import messages_for
from csms_kit.simulator.offline import Backoff, OfflineQueue, QueuedMessage
from csms_kit.simulator.settings import Configuration, DeviceModel, Settings
from csms_kit.simulator.state import Connector, InstalledProfile, Transaction
from csms_kit.stopping import cancel_and_wait
from csms_kit.versions import OcppVersion
from csms_kit.websocket import WebSocketTransport

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["StationBehaviour", "StationMonitor", "error_kind"]

logger = logging.getLogger("csms_kit.simulator")

#: How many errors a station keeps in :attr:`StationBehaviour.errors`.
_KEPT_ERRORS = 100


def error_kind(error: BaseException) -> str:
    """The kind an error is counted as: ``"callerror"``, ``"timeout"``, ``"invalid"``,
    ``"disconnected"``, a :class:`~csms_kit.exceptions.ConnectFailed` ``kind``
    (``"refused"``, ``"tls"``, ``"handshake"``, ``"timeout"``), or ``"internal"``
    (a bug: in the station's code, or in a subclass's)."""
    if isinstance(error, ConnectFailed):
        return error.kind
    if isinstance(error, CallError):
        return "callerror"
    if isinstance(error, CallTimeout):
        return "timeout"
    if isinstance(error, InvalidResponse):
        return "invalid"
    if isinstance(error, ConnectionEnded):
        return "disconnected"
    return "internal"


class StationMonitor:
    """What stations tell whoever runs many of them (a load run); override what you need.

    Each method is synchronous, called once per occurrence, and must be quick: it runs
    inside the station's tasks.
    """

    def station_connected(self, station: StationBehaviour) -> None:
        """The station's WebSocket is open (it has not booted on it yet)."""

    def station_disconnected(self, station: StationBehaviour) -> None:
        """That connection has ended, whoever ended it."""

    def station_online(self, station: StationBehaviour) -> None:
        """The station is Accepted, has reported its status and sends its messages."""

    def station_failed(self, station: StationBehaviour, kind: str, error: BaseException) -> None:
        """Something went wrong; ``kind`` is :func:`error_kind`'s."""

    def transaction_started(self, station: StationBehaviour, transaction: Transaction) -> None:
        """A transaction began (its start message is made)."""

    def transaction_ended(self, station: StationBehaviour, transaction: Transaction) -> None:
        """A transaction ended (its end message is made)."""


_NO_MONITOR = StationMonitor()


class _NotConnected:
    """The transport of a station that has not connected yet: everything fails at once."""

    remote_address = None

    async def recv(self) -> str:
        raise TransportClosed(1006, "not connected")

    async def send(self, message: str) -> None:
        raise TransportClosed(1006, "not connected")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


_NOT_CONNECTED = _NotConnected()
_DEFAULT_OPTIONS = ConnectOptions()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class StationBehaviour(StationClient):
    """A charging station's own behaviour; use :class:`~csms_kit.simulator.SimulatedStation`.

    See :class:`~csms_kit.simulator.SimulatedStation` for the arguments.
    """

    #: What the station says of itself at boot.
    vendor: ClassVar[str] = "csms_kit"
    model: ClassVar[str] = "Simulator"
    firmware_version: ClassVar[str] = "1.0.0"
    #: When to reconnect after a drop or a failed attempt.
    backoff: ClassVar[Backoff] = Backoff()
    #: Seconds a Reset keeps the station away.
    reboot_time: ClassVar[float] = 1.0
    #: Seconds before booting again after Pending or Rejected with an interval of 0.
    boot_retry: ClassVar[float] = 30.0
    #: Transaction messages kept while offline (then the oldest readings go).
    queue_limit: ClassVar[int] = 1000

    def __init__(
        self,
        url: str,
        station_id: str,
        version: OcppVersion | str = OcppVersion.V16,
        *,
        connectors: int = 1,
        options: ConnectOptions | None = None,
        serial_number: str | None = None,
        id_token: str | None = None,
        heartbeat_interval: float | None = None,
        boot_on_reconnect: bool = False,
        monitor: StationMonitor | None = None,
        validation: ValidationPolicy | None = None,
        call_timeout: float | None = None,
        handler_grace: float | None = None,
        hooks: Hooks | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        if connectors < 1:
            raise UsageError("a station has at least one connector")
        try:
            parse_uri(url)
        except InvalidURI as exc:
            raise UsageError(f"{url!r} is not a WebSocket URL: {exc}") from None
        # Resolved once: each connection of the station is built with the same settings.
        self._connection_settings: dict[str, Any] = {
            "validation": validation or self.validation,
            "call_timeout": self.call_timeout if call_timeout is None else call_timeout,
            "handler_grace": self.handler_grace if handler_grace is None else handler_grace,
            "hooks": hooks,
            "limits": self.limits,
            "instruments": instruments,
        }
        super().__init__(station_id, _NOT_CONNECTED, version, **self._connection_settings)
        self.url = url
        self.options = options or _DEFAULT_OPTIONS
        # Both at most 25 characters in every version.
        self.serial_number = serial_number or station_id[-25:]
        self.id_token = id_token or f"{zlib.crc32(station_id.encode()):08X}"
        self.connectors = [Connector(n) for n in range(1, connectors + 1)]
        self.settings: Settings = (
            Configuration(connectors) if self.version is OcppVersion.V16 else DeviceModel()
        )
        self.boot_on_reconnect = boot_on_reconnect
        #: The status of the last BootNotification answer (kept across connections).
        self.registration_status: str | None = None
        #: How many times the station was Accepted at boot.
        self.boots = 0
        self.local_list_version = 0
        #: The charging profiles the CSMS installed, by id.
        self.charging_profiles: dict[int, InstalledProfile] = {}
        self._messages = messages_for(self.version)
        self._monitor = monitor or _NO_MONITOR
        self._heartbeat_override = heartbeat_interval
        self._main_status = "Available"  # 1.6 connector 0: the charge point itself
        self._queue = OfflineQueue(self.queue_limit)
        self._life: asyncio.Task[None] | None = None
        self._open = False  # a WebSocket of ours is open
        self._online = False
        self._stopping = False
        self._leaving = False  # we end the connection on purpose (reboot, drop)
        self._reconnect_in: float | None = None
        self._boot_reason = "PowerUp"
        self._booting = False
        self._boot_wake: asyncio.Future[None] | None = None
        self._beat: asyncio.TimerHandle | None = None
        self._beat_interval = 0.0
        self._flusher: object | None = None
        self._reset_when_idle = False
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._online_waiters: list[asyncio.Future[None]] | None = None
        self._start_waiter: asyncio.Future[None] | None = None
        self._errors: list[BaseException] | None = None

    # -- facts ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the station's WebSocket is open."""
        return self._open and not self.ended

    @property
    def online(self) -> bool:
        """Whether it is connected, Accepted at boot and sending its messages."""
        return self._online

    @property
    def booted(self) -> bool:
        """Whether its last boot was Accepted."""
        return self.registration_status == "Accepted"

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats: as given, else as the CSMS said (0: none)."""
        if self._heartbeat_override is not None:
            return self._heartbeat_override
        return float(self.settings.heartbeat_interval)

    @property
    def meter_interval(self) -> float:
        """Seconds between meter readings in a transaction the CSMS started (0: none)."""
        return float(self.settings.meter_interval)

    @property
    def transactions(self) -> list[Transaction]:
        """The transactions in progress."""
        return [c.transaction for c in self.connectors if c.transaction is not None]

    @property
    def queued(self) -> int:
        """Transaction messages not yet answered by the CSMS (kept while offline)."""
        return len(self._queue)

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """The last errors the station's own tasks met (see the module docstring)."""
        return tuple(self._errors or ())

    @property
    def configuration(self) -> Configuration:
        """The OCPP 1.6 configuration keys (1.6 stations only)."""
        if not isinstance(self.settings, Configuration):
            raise UsageError(f"an OCPP {self.version} station has a device_model")
        return self.settings

    @property
    def device_model(self) -> DeviceModel:
        """The OCPP 2.x device model (2.0.1 and 2.1 stations only)."""
        if not isinstance(self.settings, DeviceModel):
            raise UsageError("an OCPP 1.6 station has a configuration")
        return self.settings

    def connector(self, connector_id: int) -> Connector:
        """Connector (2.x: EVSE) ``connector_id``, counted from 1."""
        found = self._connector(connector_id)
        if found is None:
            raise UsageError(
                f"station {self.station_id!r} has connectors 1 to {len(self.connectors)}"
            )
        return found

    def _connector(self, connector_id: int | None) -> Connector | None:
        if connector_id is None or not 1 <= connector_id <= len(self.connectors):
            return None
        return self.connectors[connector_id - 1]

    # -- life: connect, run, reconnect -----------------------------------------------------

    async def start(self, *, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Run the station in a task of its own (:meth:`run`).

        With ``wait``, return once it is online (connected, Accepted, status reported);
        if it cannot connect, raise :class:`~csms_kit.exceptions.ConnectFailed`, and
        after ``timeout`` seconds (still Pending, say) :class:`TimeoutError`; either way
        the station is stopped. Without ``wait``, return at once: it keeps trying.
        """
        if self._life is not None:
            raise UsageError(f"station {self.station_id!r} is already started")
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._start_waiter = waiter = loop.create_future() if wait else None
        self._life = loop.create_task(self.run(), name=f"csms_kit station {self.station_id}")
        if waiter is None:
            return
        try:
            await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await self.stop()
            raise TimeoutError(
                f"station {self.station_id!r} not online after {timeout:g} s "
                f"(registration status {self.registration_status})"
            ) from None
        except BaseException:
            await self.stop()
            raise
        finally:
            self._start_waiter = None

    async def stop(self) -> None:
        """Stop: cancel its sessions (no more messages), close the connection (1000),
        and wait for :meth:`run` to end. Idempotent."""
        self._stopping = True
        self._cancel_heartbeat()
        if self._boot_wake is not None:
            _wake(self._boot_wake)
        # Closed first: a session cancelled mid-call would leave its answer unmatched.
        if self.connected:
            await self.close(1000, "station stopped")
        await cancel_and_wait(*(t for t in (self._tasks or ()) if t is not asyncio.current_task()))
        life, self._life = self._life, None
        if life is None:
            return
        if not life.done():
            life.cancel()  # not connected: waiting to reconnect, or connecting
        try:
            await life
        except asyncio.CancelledError:
            if not life.cancelled():
                raise  # we were cancelled ourselves

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Connect, boot and stay connected until :meth:`stop` or cancellation.

        After a drop or a failed attempt it waits as :attr:`backoff` says and connects
        again; back online, it reports its status and sends the transaction messages
        it kept. It boots again only after a reboot, if the CSMS asks (TriggerMessage)
        or no longer knows it (SecurityError), or with ``boot_on_reconnect``.
        """
        failures = 0
        lost = False
        try:
            while not self._stopping:
                delay, self._reconnect_in = self._reconnect_in, None
                if delay is None and (failures or lost):
                    delay = self.backoff.delay(failures)
                if delay:
                    await asyncio.sleep(delay)
                try:
                    websocket = await open_link(
                        self.url, self.station_id, self.version, self.options
                    )
                except ConnectFailed as exc:
                    failures += 1
                    self._failed(exc)
                    continue
                failures, lost = 0, True
                await self._connected(websocket)
        except Exception as exc:
            self._failed(exc)  # a bug: logged, and raised to whoever awaits run()
            raise
        finally:
            self._went_offline()

    async def _connected(self, websocket: ClientConnection) -> None:
        """Run one connection, from its first frame to its end."""
        transport = WebSocketTransport(websocket)
        connection = RpcConnection(self, transport, supervisor=self, **self._connection_settings)
        self._connection = connection
        self.transport = transport
        self.endpoint = connection.endpoint
        self.stats = connection.stats
        self.remote_address = transport.remote_address
        self.connected_at = datetime.datetime.now(datetime.timezone.utc)
        self._open = True
        self._leaving = False
        self._monitor.station_connected(self)
        connection.spawn(self._background(self._come_online()), "going online")
        await connection.run()
        self._went_offline()

    def connection_ended(self, role: Any) -> None:
        """The connection ended (its supervisor hears it first): stop what needs it."""
        self._online = False
        self._cancel_heartbeat()
        if self._boot_wake is not None:
            _wake(self._boot_wake)
        self._queue.release_waiters()  # what waits to be sent waits for the next connection
        if self.version is not OcppVersion.V16:
            for message in self._queue:
                message.payload["offline"] = True

    def _went_offline(self) -> None:
        """The connection's tasks are done too."""
        if not self._open:
            return
        self._open = False
        self._flusher = None  # a flusher ends with its connection
        self.connection_ended(self)
        self._monitor.station_disconnected(self)
        if not (self._stopping or self._leaving):
            self._failed(CsmsDisconnected(self.station_id, self.close_code, self.close_reason))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection on purpose; the station connects again as after a drop
        (use :meth:`stop` to end it)."""
        self._leaving = True
        await super().close(code, reason)

    def drop(self, *, reconnect_in: float | None = None) -> None:
        """Lose the connection as a network failure does: no closing handshake.

        The station connects again after ``reconnect_in`` seconds, or as
        :attr:`backoff` says; the drop is not counted as an error.
        """
        if not self.connected:
            return
        self._leaving = True
        self._reconnect_in = reconnect_in
        websocket = cast(WebSocketTransport, self.transport).connection
        websocket.transport.abort()

    async def reboot(self, reason: str = "RemoteReset", *, stop_reason: str = "HardReset") -> None:
        """Stop every transaction (``stop_reason``), disconnect, come back after
        :attr:`reboot_time` seconds and boot with ``reason`` (2.x's BootReason)."""
        self._reset_when_idle = False
        for transaction in self.transactions:
            await self.stop_transaction(transaction, stop_reason)
        self.registration_status = None
        self._boot_reason = reason
        self._reconnect_in = self.reboot_time
        await self.close(1000, "rebooting")

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until the station is online (see :attr:`online`)."""
        if self._online:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._online_waiters is None:
            self._online_waiters = []
        self._online_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        finally:
            if waiter in self._online_waiters:
                self._online_waiters.remove(waiter)

    def spawn(self, work: Coroutine[Any, Any, Any], what: str = "task") -> asyncio.Task[None]:
        """Run ``work`` in a task the station owns: :meth:`stop` cancels it; its
        failures are reported as the station's own (see the module docstring)."""
        task = asyncio.get_running_loop().create_task(
            self._background(work), name=f"csms_kit station {self.station_id} {what}"
        )
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _background(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except ConnectionEnded:
            pass  # the drop is reported once, by run()
        except Exception as exc:
            if isinstance(exc, CallError) and exc.code is ErrorCode.SECURITY_ERROR:
                self._registration_lost()
            self._failed(exc)

    def _failed(self, error: BaseException) -> None:
        kind = error_kind(error)
        if kind == "internal":
            logger.error("station %r failed", self.station_id, exc_info=error)
        else:
            level = logging.WARNING if self._monitor is _NO_MONITOR else logging.DEBUG
            logger.log(level, "%s", error)  # each of these names the station
        if self._errors is None:
            self._errors = []
        self._errors.append(error)
        del self._errors[:-_KEPT_ERRORS]
        self._monitor.station_failed(self, kind, error)
        waiter = self._start_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)  # start() fails on the first problem

    # -- boot, status, heartbeats ----------------------------------------------------------

    async def _come_online(self) -> None:
        if self.registration_status != "Accepted" or self.boot_on_reconnect:
            await self._boot(self._boot_reason)
        else:
            await self._go_online()

    async def _boot(self, reason: str) -> None:
        """Boot until Accepted: after Pending or Rejected, again after the interval."""
        if self._booting:  # TriggerMessage while we wait: boot now
            self._boot_reason = reason
            if self._boot_wake is not None:
                _wake(self._boot_wake)
            return
        self._booting = True
        try:
            while True:
                request = self._messages.boot(
                    self.vendor, self.model, self.serial_number, self.firmware_version, reason
                )
                answer = await self.call(request, action="BootNotification")
                self.registration_status = status = str(answer.status)
                interval = int(answer.interval)
                if status == "Accepted":
                    break
                # Pending, Rejected: nothing but the boot (and what the CSMS asks for).
                self._online = False
                self._cancel_heartbeat()
                self._boot_wake = wake = asyncio.get_running_loop().create_future()
                timer = asyncio.get_running_loop().call_later(
                    interval or self.boot_retry, _wake, wake
                )
                try:
                    await wake
                finally:
                    timer.cancel()
                    self._boot_wake = None
                if self._stopping or self.ended:
                    return
                reason = self._boot_reason
        finally:
            self._booting = False
        if interval > 0:
            self.settings.heartbeat_interval = interval
        self.boots += 1
        self._boot_reason = "Unknown"  # a later boot without a reboot has no better reason
        await self._go_online()

    def _registration_lost(self) -> None:
        """The CSMS answered SecurityError: it does not know us as booted. Boot again."""
        self.registration_status = None
        self._online = False
        self._cancel_heartbeat()
        if self.connected and not self._booting:
            self._connection.spawn(self._background(self._boot("Unknown")), "boot")

    async def _go_online(self) -> None:
        """Send what was kept, report every status, start the heartbeats.

        Kept messages first: the CSMS hears a transaction end before the connector's
        status says it is free.
        """
        was_online, self._online = self._online, True
        if self._flusher is None:
            await self._flush()
            if not self._online:
                return  # dropped, or the CSMS wants a boot first
        if self.version is OcppVersion.V16:
            await self._report(0, self._main_status)
        for connector in self.connectors:
            await self._report_status(connector, force=True)
        if not was_online:
            self._monitor.station_online(self)
            self._heartbeat_changed(force=True)
        for waiter in [self._start_waiter, *(self._online_waiters or ())]:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _report(self, connector_id: int, status: str) -> None:
        request = self._messages.status(connector_id, status, current_time())
        await self.call(request, action="StatusNotification")

    async def _report_status(self, connector: Connector, *, force: bool = False) -> None:
        """Tell the CSMS the connector's status if it changed (in the version's words)."""
        reported = self._messages.reported_status(connector.status)
        if not self._online or (reported == connector.reported and not force):
            return
        connector.reported = reported
        try:
            await self._report(connector.id, connector.status)
        except ConnectionEnded:
            connector.reported = None  # reported again once back

    async def send_status(self, connector_id: int, status: str) -> None:
        """Set connector ``connector_id``'s status and report it.

        ``status`` in 1.6's words (``"Faulted"``, ``"SuspendedEV"``...; 2.x's
        ``"Occupied"`` is taken as ``"Preparing"``); connector 0 is a 1.6 charge point
        as a whole.
        """
        status = "Preparing" if status == "Occupied" else status
        if connector_id == 0 and self.version is OcppVersion.V16:
            self._main_status = status
            await self._report(0, status)
            return
        connector = self.connector(connector_id)
        connector.status = status
        connector.reported = self._messages.reported_status(status)
        await self._report(connector_id, status)

    async def heartbeat(self) -> str:
        """Send a Heartbeat; the CSMS's current time."""
        answer = await self.call({}, action="Heartbeat")
        return str(answer.current_time)

    def _cancel_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None

    def _heartbeat_changed(self, *, force: bool = False) -> None:
        """(Re)start the heartbeats if the interval changed (or ``force``)."""
        interval = self.heartbeat_interval
        if not self._online or (interval == self._beat_interval and not force):
            return
        self._cancel_heartbeat()
        self._beat_interval = interval
        if interval > 0:
            self._beat = asyncio.get_running_loop().call_later(interval, self._heartbeat_due)

    def _heartbeat_due(self) -> None:
        self._beat = None
        if self._online:
            self._connection.spawn(self._background(self._beat_once()), "heartbeat")

    async def _beat_once(self) -> None:
        try:
            await self.heartbeat()
        finally:
            if self._online and self._beat is None:
                self._heartbeat_changed(force=True)

    # -- transactions ----------------------------------------------------------------------

    async def authorize(self, id_token: str | None = None) -> str:
        """Send Authorize; the CSMS's verdict (``"Accepted"``, ``"Invalid"``...)."""
        request = self._messages.authorize(id_token or self.id_token)
        answer = await self.call(request, action="Authorize")
        return self._messages.token_status(answer) or "Unknown"

    async def charge(
        self,
        connector_id: int = 1,
        id_token: str | None = None,
        *,
        samples: int = 3,
        interval: float = 1.0,
        reason: str = "EVDisconnected",
    ) -> Transaction | None:
        """A whole charging session: Authorize (when online; offline the station lets
        the driver charge), start, ``samples`` meter readings ``interval`` seconds
        apart, stop for ``reason``. ``None`` if the CSMS refused the id token.

        A transaction the CSMS stops meanwhile ends the session early.
        """
        token = id_token or self.id_token
        # The driver plugs in first: the connector is taken while the card is checked.
        transaction = self._claim(self._free(connector_id), token, "ISO14443")
        if self._online:
            await self._report_status(transaction.connector)
            try:
                verdict = await self.authorize(token)
            except BaseException:
                self._release(transaction)
                raise
            if verdict != "Accepted":
                self._release(transaction)
                await self._report_status(transaction.connector)
                return None
        await self._announce(transaction, "Authorized")
        for _ in range(samples):
            if await self._wait_for_end(transaction, interval):
                return transaction
            await self.send_meter_values(transaction)
        await self.stop_transaction(transaction, reason)
        return transaction

    async def start_transaction(
        self,
        connector_id: int = 1,
        id_token: str | None = None,
        *,
        id_token_type: str = "ISO14443",
        remote_start_id: int | None = None,
    ) -> Transaction:
        """Start a transaction on a free connector: status Preparing, the start message
        (1.6 StartTransaction, 2.x TransactionEvent Started), status Charging.

        Returns once the CSMS answered (at once when offline: the message waits). A
        token the CSMS does not accept ends the transaction again (DeAuthorized).
        """
        connector = self._free(connector_id)
        transaction = self._claim(connector, id_token or self.id_token, id_token_type)
        transaction.remote_start_id = remote_start_id
        await self._announce(transaction, "Authorized")
        return transaction

    def _free(self, connector_id: int) -> Connector:
        connector = self.connector(connector_id)
        if connector.transaction is not None or not connector.operative:
            raise UsageError(f"connector {connector_id} of {self.station_id!r} is not free")
        return connector

    def _claim(self, connector: Connector, id_token: str, id_token_type: str) -> Transaction:
        """A new transaction on ``connector``, before any message about it."""
        transaction = Transaction(
            connector,
            id_token,
            id_token_type,
            meter_start=int(connector.meter.energy_wh),
            id=self._messages.new_transaction_id(),
        )
        connector.transaction = transaction
        connector.status = "Preparing"
        return transaction

    def _release(self, transaction: Transaction) -> None:
        """Give up a claimed transaction that never started."""
        connector = transaction.connector
        transaction.end("DeAuthorized")
        connector.transaction = None
        connector.status = "Available" if connector.operative else "Unavailable"

    async def _announce(self, transaction: Transaction, trigger: str) -> None:
        """Send the start of a claimed transaction (``trigger``: 2.x's triggerReason)."""
        connector = transaction.connector
        await self._report_status(connector)
        sample = connector.meter.start()
        transaction.meter_start = int(sample.energy_wh)
        transaction.announced = True
        action, payload = self._messages.started(transaction, sample, trigger)
        connector.status = "Charging"
        self._monitor.transaction_started(self, transaction)
        await self._transaction_message(action, payload, transaction)
        if transaction.ended:
            return
        await self._report_status(connector)
        if transaction.authorization not in (None, "Accepted"):
            await self.stop_transaction(transaction, "DeAuthorized")

    async def send_meter_values(
        self, transaction: Transaction, *, trigger: str = "MeterValuePeriodic"
    ) -> None:
        """Send a meter reading of ``transaction`` (1.6 MeterValues, 2.x TransactionEvent
        Updated; ``trigger`` is 2.x's triggerReason)."""
        if transaction.ended:
            return
        sample = transaction.connector.meter.read()
        action, payload = self._messages.updated(transaction, sample, trigger)
        await self._transaction_message(action, payload, transaction, expendable=True)

    async def stop_transaction(
        self, transaction: Transaction, reason: str = "EVDisconnected"
    ) -> None:
        """End ``transaction`` for ``reason`` (1.6's StopTransaction reasons, mapped to
        2.x's trigger and stoppedReason): the end message, then the connector's status."""
        if transaction.ended:
            return
        transaction.end(reason)
        connector = transaction.connector
        sample = connector.meter.stop()
        action, payload = self._messages.ended(transaction, sample)
        connector.transaction = None
        connector.status = "Finishing"
        self._monitor.transaction_ended(self, transaction)
        await self._transaction_message(action, payload, transaction)
        await self._report_status(connector)
        if connector.transaction is None:
            connector.status = "Available" if connector.operative else "Unavailable"
            await self._report_status(connector)
        if self._reset_when_idle and not self.transactions:
            self.spawn(self.reboot(), "reboot")

    async def _wait_for_end(self, transaction: Transaction, seconds: float | None) -> bool:
        """Wait ``seconds`` (``None``: for ever) or until the transaction ends; ended?"""
        if transaction.ended:
            return True
        if transaction.finished is None:
            transaction.finished = asyncio.get_running_loop().create_future()
        await asyncio.wait({transaction.finished}, timeout=seconds)
        return transaction.ended

    async def _remote_session(self, transaction: Transaction) -> None:
        """A transaction the CSMS started: charge, with readings every
        :attr:`meter_interval`, until something stops it."""
        authorize = self._online and self.settings.authorize_remote_start
        if authorize and await self.authorize(transaction.id_token) != "Accepted":
            self._release(transaction)
            await self._report_status(transaction.connector)
            return
        await self._announce(transaction, "RemoteStart")
        while not transaction.ended:
            interval = self.meter_interval
            if await self._wait_for_end(transaction, interval or None):
                break
            await self.send_meter_values(transaction)

    # -- transaction messages: in order, kept while offline ------------------------------

    async def _transaction_message(
        self,
        action: str,
        payload: dict[str, Any],
        transaction: Transaction,
        *,
        expendable: bool = False,
    ) -> Any:
        """Send a transaction message in its turn; the CSMS's answer, or ``None`` if it
        was kept to be sent once the station is back online."""
        message = QueuedMessage(action, payload, transaction, expendable)
        self._queue.add(message)
        if not self._online:
            if self.version is not OcppVersion.V16:
                payload["offline"] = True
            return None
        message.waiter = waiter = asyncio.get_running_loop().create_future()
        if self._flusher is None:
            await self._flush(until=message)  # nothing before it: send it from here
        return await waiter

    def _kick_flush(self) -> None:
        if self._flusher is None and self._online and self._queue and not self.ended:
            self._flusher = token = object()  # taken now: no second flusher may start
            self._connection.spawn(self._background(self._flush(token)), "sending kept messages")

    async def _flush(
        self, token: object | None = None, until: QueuedMessage | None = None
    ) -> None:
        """Send queued messages in order while online (up to ``until``, if given)."""
        if token is None:
            self._flusher = token = object()
        queue = self._queue
        try:
            while queue and self._online and self._flusher is token and not self.ended:
                message = queue.head
                try:
                    answer = await self._deliver(message)
                except ConnectionEnded:
                    return  # it stays first in line
                except CallError as exc:
                    if exc.code is ErrorCode.SECURITY_ERROR:
                        self._registration_lost()
                        return  # sent again after the boot
                    queue.remove(message)
                    self._settle(message, None, exc)
                except (CallTimeout, InvalidResponse, UsageError) as exc:
                    queue.remove(message)
                    self._settle(message, None, exc)
                else:
                    queue.remove(message)
                    self._settle(message, answer, None)
                if message is until:
                    break
        finally:
            if self._flusher is token:
                self._flusher = None
                self._kick_flush()  # the caller's own message is done; others wait

    async def _deliver(self, message: QueuedMessage) -> Any:
        payload, transaction = message.payload, message.transaction
        if self.version is OcppVersion.V16 and message.action != "StartTransaction":
            # 1.6: the CSMS gives the transactionId; filled in now, it may have been
            # unknown when the message was made (offline).
            if transaction is not None and transaction.id is not None:
                payload["transactionId"] = transaction.id
            elif message.action == "StopTransaction":
                logger.info(
                    "station %r: StopTransaction dropped: the CSMS never gave the "
                    "transaction an id",
                    self.station_id,
                )
                return None
        answer = await self.call(payload, action=message.action)
        if transaction is not None:
            if message.action == "StartTransaction":
                transaction.id = int(answer.transaction_id)
            verdict = self._messages.token_status(answer)
            if verdict is not None:
                transaction.authorization = verdict
        return answer

    def _settle(self, message: QueuedMessage, answer: Any, error: Exception | None) -> None:
        waiter = message.waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(answer)
            else:
                waiter.set_exception(error)
        elif error is not None:
            self._failed(error)  # a message sent again after a drop: nobody awaits it

    # -- helpers for commands -------------------------------------------------------------

    def _transaction_by_id(self, transaction_id: Any) -> Transaction | None:
        for transaction in self.transactions:
            if transaction.id is not None and transaction.id == transaction_id:
                return transaction
        return None

    def _targets(self, connector_id: int | None) -> list[Connector] | None:
        """The connectors a command names: all for ``None`` or 0, else the one (or
        ``None`` if there is no such connector)."""
        if not connector_id:
            return list(self.connectors)
        connector = self._connector(connector_id)
        return None if connector is None else [connector]

    def free_connector(self, connector_id: int | None = None) -> Connector | None:
        """Connector ``connector_id`` if it is free, or the first free one (``None``:
        none is: in a transaction, unavailable or faulted)."""
        candidates = self.connectors if connector_id is None else [self._connector(connector_id)]
        for connector in candidates:
            if (
                connector is not None
                and connector.transaction is None
                and connector.operative
                and connector.status == "Available"
            ):
                return connector
        return None
