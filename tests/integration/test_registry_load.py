"""The registry under load over real loopback WebSockets, and the example server end to end.

Client and server share the process and the loop: every connection costs two file
descriptors. Every test waits (with a deadline) for every server-side session to
finish before it asserts on the registry, and closes everything it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import websockets
from ocpp.routing import on as station_on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus
from websockets.protocol import State

from csms_kit import (
    CallError,
    CsmsServer,
    ErrorCode,
    InMemoryRegistry,
    RegistryEvent,
    StationNotConnected,
    StationSession,
    connect_station,
    on,
    serve,
)
from csms_kit.admission import CLOSE_POLICY_VIOLATION
from csms_kit.demo.csms import DemoCsms
from csms_kit.registry import REPLACED_CODE, REPLACED_REASON
from tests.helpers import wait_until

DEADLINE = 15.0
NOW = "2026-11-27T10:00:00Z"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_station_server.py"


async def eventually(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``deadline`` seconds."""
    await wait_until(condition, deadline, what)


@dataclass
class Watch:
    """Follows a registry's events: the sessions in order, and who is connected by them."""

    connected: list[StationSession] = field(default_factory=list)
    disconnected: list[StationSession] = field(default_factory=list)
    live: dict[str, StationSession] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __call__(self, event: RegistryEvent) -> None:
        assert event.session is not None
        if event.kind == "connected":
            self.connected.append(event.session)
            self.live[event.station_id] = event.session
        else:
            self.disconnected.append(event.session)
            if self.live.get(event.station_id) is not event.session:
                self.errors.append(f"disconnected event for a session not live: {event}")
            self.live.pop(event.station_id, None)


@contextlib.asynccontextmanager
async def csms(
    registry: InMemoryRegistry, session_class: type[StationSession] = DemoCsms, **options: Any
) -> AsyncIterator[tuple[CsmsServer, str]]:
    """A csms_kit server on a free loopback port; yields (server, ws:// URL)."""
    async with serve(session_class, "127.0.0.1", 0, registry=registry, **options) as server:
        yield server, f"ws://127.0.0.1:{server.port}"


class HoldHandshakes:
    """An authenticate hook that, while armed, holds every handshake until ``size`` have
    arrived, then releases them all at once: they reach the duplicate check together.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.armed = False
        self.arrived = 0
        self.all_here = asyncio.Event()

    def arm(self, armed: bool) -> None:
        self.armed, self.arrived, self.all_here = armed, 0, asyncio.Event()

    async def __call__(self, handshake: Any) -> None:
        if not self.armed:
            return
        self.arrived += 1
        if self.arrived >= self.size:
            self.all_here.set()
        await asyncio.wait_for(self.all_here.wait(), DEADLINE)


class FarRegistry(InMemoryRegistry):
    """An in-memory registry whose membership query takes a moment, like a cluster's.

    Racers released together then all pass the server's early duplicate check (HTTP
    409) before any of them registers: registration itself must refuse the others.
    """

    async def is_connected(self, station_id: str) -> bool:
        answer = await super().is_connected(station_id)
        await asyncio.sleep(0.005)  # the answer travels back, already a little stale
        return answer


async def open_raw(url: str, station_id: str, version: str = "1.6") -> ClientConnection:
    """A bare websockets client connection offering one OCPP version."""
    return await websockets.connect(
        f"{url}/{station_id}",
        subprotocols=[websockets.Subprotocol(f"ocpp{version}")],
        compression=None,
        open_timeout=30,
    )


def port_of(connection: ClientConnection) -> int:
    port: int = connection.local_address[1]
    return port


async def close_all(connections: list[ClientConnection]) -> None:
    await asyncio.gather(*(c.close() for c in connections))


# -- (1) racing duplicate connects ------------------------------------------------------

RACERS = 20
ROUNDS = 4


async def test_racing_duplicates_with_replace_leave_exactly_the_last() -> None:
    """20 racing connects of one identity, several rounds: the last to register stays."""
    registry = InMemoryRegistry(duplicate_policy="replace")
    watch = Watch()
    registry.subscribe(watch)
    hold = HoldHandshakes(RACERS)
    async with csms(registry, authenticate=hold) as (server, url):
        for round_number in range(ROUNDS):
            hold.arm(round_number % 2 == 1)
            station_id = f"RACE-{round_number}"
            before = len(watch.connected)
            clients = await asyncio.gather(*(open_raw(url, station_id) for _ in range(RACERS)))
            try:
                await eventually(
                    lambda before=before: (
                        len(watch.connected) - before == RACERS and len(server.sessions) == 1
                    ),
                    "all racers registered and the replaced sessions finished",
                )
                winner = watch.connected[-1]  # the last to register
                assert winner.station_id == station_id
                assert registry.get(station_id) is winner and not winner.ended
                assert server.sessions == frozenset({winner})
                assert await registry.count() == 1
                assert await registry.station_ids() == [station_id]
                assert all(s.ended for s in watch.connected[before:-1])
                assert all(s.station_id != station_id for s in watch.disconnected)

                by_port = {port_of(c): c for c in clients}
                winner_client = by_port[winner.remote_address[1]]
                losers = [c for c in clients if c is not winner_client]
                await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in losers)), 10)
                assert {(c.close_code, c.close_reason) for c in losers} == {
                    (REPLACED_CODE, REPLACED_REASON)
                }
                assert winner_client.state is State.OPEN
            finally:
                await close_all(clients)
            await eventually(lambda: len(registry) == 0 and not server.sessions, "the winner left")
            assert watch.disconnected[-1] is winner
            assert [s for s in watch.disconnected if s.station_id == station_id] == [winner]
        assert watch.errors == []
        assert watch.live == {}


async def test_racing_duplicates_with_reject_accept_exactly_one() -> None:
    """20 racing connects of one identity, several rounds: one is accepted, 19 refused."""
    registry = FarRegistry(duplicate_policy="reject")
    watch = Watch()
    registry.subscribe(watch)
    hold = HoldHandshakes(RACERS)
    async with csms(registry, authenticate=hold) as (server, url):
        for round_number in range(ROUNDS):
            hold.arm(round_number % 2 == 1)
            station_id = f"RACE-{round_number}"
            before = len(watch.connected)
            outcomes = await asyncio.gather(
                *(open_raw(url, station_id) for _ in range(RACERS)), return_exceptions=True
            )
            clients = [o for o in outcomes if isinstance(o, ClientConnection)]
            try:
                refused_by_http = [o for o in outcomes if isinstance(o, InvalidStatus)]
                assert len(clients) + len(refused_by_http) == RACERS, outcomes
                assert {o.response.status_code for o in refused_by_http} <= {409}
                await eventually(lambda sid=station_id: sid in registry, "one racer registered")
                winner = registry.get(station_id)
                assert winner is not None
                winner_client = {port_of(c): c for c in clients}[winner.remote_address[1]]
                losers = [c for c in clients if c is not winner_client]
                await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in losers)), 10)
                assert {c.close_code for c in losers} <= {CLOSE_POLICY_VIOLATION}
                assert len(losers) + len(refused_by_http) == RACERS - 1
                if hold.armed:  # all passed the early check: registration refused them
                    assert refused_by_http == [] and len(losers) == RACERS - 1
                await eventually(lambda: len(server.sessions) == 1, "one session runs")
                assert watch.connected[before:] == [winner]
                assert server.sessions == frozenset({winner}) and not winner.ended
                assert winner_client.state is State.OPEN
                assert await registry.count() == 1
            finally:
                await close_all(clients)
            await eventually(lambda: len(registry) == 0 and not server.sessions, "the winner left")
            assert watch.disconnected[-1] is winner
        assert watch.errors == []


async def test_reject_refuses_at_handshake_when_already_connected() -> None:
    """With "reject", a connect while the station is connected gets HTTP 409."""
    registry = InMemoryRegistry(duplicate_policy="reject")
    async with csms(registry) as (server, url):
        first = await open_raw(url, "CP-1")
        try:
            await registry.wait_connected("CP-1", timeout=5)
            with pytest.raises(InvalidStatus) as caught:
                await open_raw(url, "CP-1")
            assert caught.value.response.status_code == 409
            assert first.state is State.OPEN
        finally:
            await first.close()
        await eventually(lambda: not server.sessions and len(registry) == 0, "CP-1 left")
        again = await open_raw(url, "CP-1")  # once gone, it may connect again
        try:
            await registry.wait_connected("CP-1", timeout=5)
        finally:
            await again.close()
        await eventually(lambda: not server.sessions, "CP-1 left again")


class SlowHeartbeat(StationSession):
    """A CSMS whose Heartbeat handler takes a while: its session outlives its connection."""

    boot_gate = False

    @on("Heartbeat")
    async def heartbeat(self, request: Any) -> dict[str, str]:
        self.state["handling"] = True
        await asyncio.sleep(1.5)
        self.state["handled"] = True
        return {"currentTime": NOW}


async def drop_while_handling(url: str, registry: InMemoryRegistry, station_id: str) -> Any:
    """Connect, send a Heartbeat, close while it is handled; return the old session."""
    connection = await open_raw(url, station_id)
    await connection.send('[2,"hb-1","Heartbeat",{}]')

    def handling() -> bool:
        session = registry.get(station_id)
        return session is not None and bool(session.state.get("handling"))

    await eventually(handling, "the Heartbeat is being handled")
    old = registry.get(station_id)
    assert old is not None
    await connection.close()
    await eventually(lambda: old.ended, "the session saw the connection end")
    assert "handled" not in old.state  # its handler is still running
    return old


async def test_ended_connection_is_not_reported_connected_while_handlers_finish() -> None:
    """An ended connection is not reported connected while its old handlers still run."""
    registry = InMemoryRegistry()
    async with csms(registry, SlowHeartbeat) as (server, url):
        await drop_while_handling(url, registry, "CP-1")
        with pytest.raises(StationNotConnected):
            await registry.call("CP-1", call16.ClearCache())
        assert not await registry.is_connected("CP-1")
        assert await registry.station_ids() == []
        assert await registry.count() == 0
        await eventually(lambda: not server.sessions, "the old handler finished")


async def test_reject_lets_a_dropped_station_reconnect_while_old_handlers_finish() -> None:
    """With "reject", a dropped station may reconnect while its old handlers still run."""
    registry = InMemoryRegistry(duplicate_policy="reject")
    async with csms(registry, SlowHeartbeat) as (server, url):
        old = await drop_while_handling(url, registry, "CP-1")
        try:
            again = await open_raw(url, "CP-1")
        except InvalidStatus as refused:
            pytest.fail(
                f"reconnect refused with HTTP {refused.response.status_code} although the "
                "old connection had ended"
            )
        try:
            await eventually(
                lambda: registry.get("CP-1") not in (None, old), "the new session registered"
            )
            assert again.state is State.OPEN
        finally:
            await again.close()
        await eventually(lambda: not server.sessions, "both sessions finished")


# -- (2) 520 stations connecting and dropping concurrently ------------------------------

STATIONS = 520
BOOT16 = '[2,"boot-1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'


@dataclass
class Churn:
    """What the test knows: the open connection of each station it believes connected."""

    current: dict[str, ClientConnection] = field(default_factory=dict)
    replaced: list[ClientConnection] = field(default_factory=list)
    dropped: list[ClientConnection] = field(default_factory=list)
    booted: set[str] = field(default_factory=set)
    plans: dict[str, str] = field(default_factory=dict)
    #: Bounds the handshakes in progress, so a slow machine queues them instead of
    #: timing them out.
    handshakes: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))

    async def open(self, url: str, station_id: str) -> ClientConnection:
        async with self.handshakes:
            return await open_raw(url, station_id)


async def live_a_life(url: str, number: int, churn: Churn, rng: random.Random) -> None:
    """One station: connect, and then stay, drop, abort, reconnect or connect twice."""
    station_id = f"LOAD-{number:03d}"
    plan = rng.choice(["stay", "drop", "abort", "reconnect", "replace", "flap"])
    churn.plans[station_id] = plan
    pause = rng.uniform
    await asyncio.sleep(pause(0, 1.5))
    connection = await churn.open(url, station_id)
    if rng.random() < 0.3:
        await connection.send(BOOT16)
        answer = await asyncio.wait_for(connection.recv(), 10)
        assert '"Accepted"' in str(answer)
        churn.booted.add(station_id)
    await asyncio.sleep(pause(0, 0.5))
    if plan == "stay":
        churn.current[station_id] = connection
    elif plan == "drop":
        await connection.close()
        churn.dropped.append(connection)
    elif plan == "abort":  # vanishes without a closing handshake
        connection.transport.abort()
        await asyncio.wait_for(connection.wait_closed(), 10)
        churn.dropped.append(connection)
    elif plan == "reconnect":
        await connection.close()
        churn.dropped.append(connection)
        await asyncio.sleep(pause(0, 0.3))
        connection = await churn.open(url, station_id)
        if rng.random() < 0.5:
            churn.current[station_id] = connection
        else:
            await asyncio.sleep(pause(0, 0.3))
            await connection.close()
            churn.dropped.append(connection)
    elif plan == "replace":  # half-open: a new connection while the old one is still up
        newer = await churn.open(url, station_id)
        churn.replaced.append(connection)
        if rng.random() < 0.7:
            churn.current[station_id] = newer
        else:
            await asyncio.wait_for(connection.wait_closed(), 10)  # replaced before we leave
            await asyncio.sleep(pause(0, 0.3))
            await newer.close()
            churn.dropped.append(newer)
    else:  # flap: several quick connects and drops, ending connected or not
        for _ in range(rng.randint(1, 3)):
            await connection.close()
            churn.dropped.append(connection)
            connection = await churn.open(url, station_id)
        if rng.random() < 0.5:
            churn.current[station_id] = connection
        else:
            connection.transport.abort()
            await asyncio.wait_for(connection.wait_closed(), 10)
            churn.dropped.append(connection)


@pytest.mark.slow
async def test_520_stations_connecting_and_dropping_leave_the_registry_exact() -> None:
    """520 stations connect, stay, drop, abort, reconnect and replace: the registry is exact."""
    registry = InMemoryRegistry()
    watch = Watch()
    registry.subscribe(watch)
    churn = Churn()
    rng = random.Random(20261127)
    seeds = [rng.getrandbits(32) for _ in range(STATIONS)]
    async with csms(registry) as (server, url):
        try:
            lives = [live_a_life(url, n, churn, random.Random(seeds[n])) for n in range(STATIONS)]
            results = await asyncio.wait_for(asyncio.gather(*lives, return_exceptions=True), 60)
            failures = [r for r in results if isinstance(r, BaseException)]
            assert failures == [], failures[:5]
            expected = set(churn.current)
            assert 0 < len(expected) < STATIONS
            assert len(set(churn.plans.values())) == 6  # every behaviour was exercised

            await eventually(
                lambda: (
                    {s.station_id for s in server.sessions} == expected
                    and len(server.sessions) == len(expected)
                ),
                "every server-side session of a gone connection has finished",
            )
            assert set(await registry.station_ids()) == expected
            assert await registry.count() == len(expected) == len(registry)
            assert set(registry) == expected
            for station_id, connection in churn.current.items():
                session = registry.get(station_id)
                assert session is not None and not session.ended
                assert session.remote_address[1] == port_of(connection)
                assert session in server.sessions
                assert connection.state is State.OPEN
            assert watch.errors == []
            assert set(watch.live) == expected
            assert all(watch.live[s] is registry.get(s) for s in expected)
            for station_id in churn.booted:
                assert await registry.registration_status(station_id) == "Accepted"

            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in churn.replaced)), 10)
            assert {(c.close_code, c.close_reason) for c in churn.replaced} == {
                (REPLACED_CODE, REPLACED_REASON)
            }
        finally:
            await close_all(list(churn.current.values()))
        await eventually(
            lambda: len(registry) == 0 and not server.sessions, "every station has left"
        )
        assert await registry.count() == 0
        assert watch.live == {} and watch.errors == []
        assert len({id(s) for s in watch.disconnected}) == len(watch.disconnected)
        assert all(s.ended for s in watch.connected)


# -- (3) registry calls from outside any handler ----------------------------------------


async def test_registry_calls_stations_from_outside_any_handler() -> None:
    """Application code calls stations of every version through the registry."""
    registry = InMemoryRegistry()
    async with csms(registry) as (server, url):
        waiting = asyncio.create_task(registry.wait_connected("CP-16", timeout=10))
        async with (
            connect_station(url, "CP-16", "1.6") as cp16,
            connect_station(url, "CP-201", "2.0.1") as cp201,
            connect_station(url, "CP-21", "2.1") as cp21,
        ):
            await waiting
            await cp16.call(
                call16.BootNotification(charge_point_vendor="V", charge_point_model="M")
            )
            boot2x = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
            await cp201.call(boot2x, action="BootNotification")
            await cp21.call(boot2x, action="BootNotification")
            await registry.wait_connected("CP-21", timeout=10)
            token = types201.IdTokenType(id_token="REMOTE", type="Central")
            answers = await asyncio.gather(
                registry.call("CP-16", call16.RemoteStartTransaction(id_tag="T", connector_id=1)),
                registry.call(
                    "CP-201", call201.RequestStartTransaction(id_token=token, remote_start_id=1)
                ),
                registry.call(
                    "CP-21",
                    {"idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 2},
                    action="RequestStartTransaction",
                ),
                registry.call("CP-16", call16.GetConfiguration(key=["A", "B"]), timeout=5),
            )
            assert isinstance(answers[0], result16.RemoteStartTransaction)
            assert isinstance(answers[1], result201.RequestStartTransaction)
            assert [a.status for a in answers[:3]] == ["Accepted"] * 3
            assert answers[3].unknown_key == ["A", "B"]
            with pytest.raises(CallError) as caught:
                await registry.call("CP-16", call16.GetDiagnostics(location="ftp://x"))
            assert caught.value.code is ErrorCode.NOT_SUPPORTED
            with pytest.raises(StationNotConnected):
                await registry.call("CP-unknown", call16.ClearCache())
            assert sorted(await registry.station_ids()) == ["CP-16", "CP-201", "CP-21"]
            assert await registry.registration_status("CP-201") == "Accepted"
        await eventually(lambda: len(registry) == 0 and not server.sessions, "all left")
        with pytest.raises(StationNotConnected):
            await registry.call("CP-16", call16.ClearCache())


# -- (4) the ocpp package's ChargePoint against examples/multi_station_server.py ---------


def load_example() -> ModuleType:
    """Import examples/multi_station_server.py as a module."""
    name = "csms_kit_example_multi_station_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def example_server() -> AsyncIterator[int]:
    """Run the example's ``main`` on a free port; yield the port; cancel it after."""
    example = load_example()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(example.main("127.0.0.1", 0, ready))
    try:
        port = await asyncio.wait_for(asyncio.shield(ready), 10)
        yield port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def charge_point(
    cls: type, port: int, station_id: str, subprotocol: str
) -> AsyncIterator[Any]:
    """An ``ocpp`` ChargePoint connected to the example, its reader running."""
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/{station_id}", subprotocols=[websockets.Subprotocol(subprotocol)]
    ) as ws:
        assert ws.subprotocol == subprotocol
        station = cls(station_id, ws)
        reader = asyncio.create_task(station.start())
        try:
            yield station
        finally:
            await ws.close()
            with contextlib.suppress(websockets.ConnectionClosed):
                await reader


class Station16(ChargePoint16):
    """A 1.6 station that accepts a remote start and notes it."""

    remote_starts: list[dict[str, Any]]
    started: asyncio.Event

    @station_on("RemoteStartTransaction")
    def remote_start(self, id_tag: str, **kwargs: Any) -> result16.RemoteStartTransaction:
        self.remote_starts.append({"id_tag": id_tag, **kwargs})
        self.started.set()
        return result16.RemoteStartTransaction(status="Accepted")


class Station201(ChargePoint201):
    """A 2.0.1 station that accepts a remote start and notes it."""

    remote_starts: list[dict[str, Any]]
    started: asyncio.Event

    @station_on("RequestStartTransaction")
    def request_start(
        self, id_token: dict[str, Any], remote_start_id: int, **kwargs: Any
    ) -> result201.RequestStartTransaction:
        self.remote_starts.append({"id_token": id_token, "remote_start_id": remote_start_id})
        self.started.set()
        return result201.RequestStartTransaction(status="Accepted")


def prepared(station: Any) -> Any:
    station.remote_starts = []
    station.started = asyncio.Event()
    return station


async def test_ocpp16_chargepoint_against_the_example() -> None:
    """1.6: boot, heartbeat, status, authorize, a transaction; the job remote-starts it."""
    async with (
        example_server() as port,
        charge_point(Station16, port, "station_016", "ocpp1.6") as cp,
    ):
        prepared(cp)
        boot = await cp.call(
            call16.BootNotification(
                charge_point_model="M", charge_point_vendor="V", charge_point_serial_number="S"
            ),
            suppress=False,
        )
        assert boot.status == "Accepted" and boot.interval == 300
        heartbeat = await cp.call(call16.Heartbeat(), suppress=False)
        assert heartbeat.current_time
        status = await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
            suppress=False,
        )
        assert isinstance(status, result16.StatusNotification)
        authorized = await cp.call(call16.Authorize(id_tag="TAG-1"), suppress=False)
        assert authorized.id_tag_info["status"] == "Accepted"
        started = await cp.call(
            call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=NOW),
            suppress=False,
        )
        assert started.id_tag_info["status"] == "Accepted"
        assert isinstance(started.transaction_id, int)
        stopped = await cp.call(
            call16.StopTransaction(
                meter_stop=1500, timestamp=NOW, transaction_id=started.transaction_id
            ),
            suppress=False,
        )
        assert isinstance(stopped, result16.StopTransaction)

        await asyncio.wait_for(cp.started.wait(), 10)
        assert cp.remote_starts == [{"id_tag": "REMOTE-1", "connector_id": 1}]


async def test_ocpp201_chargepoint_against_the_example() -> None:
    """2.0.1: boot, heartbeat, status, authorize, a transaction; the job remote-starts it."""
    async with (
        example_server() as port,
        charge_point(Station201, port, "station_201", "ocpp2.0.1") as cp,
    ):
        prepared(cp)
        boot = await cp.call(
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V", "serial_number": "S"},
                reason="PowerUp",
            ),
            suppress=False,
        )
        assert boot.status == "Accepted" and boot.interval == 300
        assert (await cp.call(call201.Heartbeat(), suppress=False)).current_time
        status = await cp.call(
            call201.StatusNotification(
                timestamp=NOW, connector_status="Available", evse_id=1, connector_id=1
            ),
            suppress=False,
        )
        assert isinstance(status, result201.StatusNotification)
        token = {"id_token": "TAG-1", "type": "ISO14443"}
        authorized = await cp.call(call201.Authorize(id_token=token), suppress=False)
        assert authorized.id_token_info["status"] == "Accepted"
        for seq_no, (event, trigger) in enumerate(
            (("Started", "Authorized"), ("Ended", "EVDeparted"))
        ):
            result = await cp.call(
                call201.TransactionEvent(
                    event_type=event,
                    timestamp=NOW,
                    trigger_reason=trigger,
                    seq_no=seq_no,
                    transaction_info={"transaction_id": "tx-1"},
                    id_token=token if event == "Started" else None,
                    evse={"id": 1, "connector_id": 1} if event == "Started" else None,
                ),
                suppress=False,
            )
            assert isinstance(result, result201.TransactionEvent)

        await asyncio.wait_for(cp.started.wait(), 10)
        [remote_start] = cp.remote_starts
        assert remote_start["id_token"] == {"id_token": "REMOTE-1", "type": "Central"}
        assert remote_start["remote_start_id"] == 1
