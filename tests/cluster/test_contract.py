"""The contract every ConnectionRegistry keeps, run against each backend.

``make_registry`` builds entered registries of one backend: ``await
make_registry("A")`` is node A. Registries of a shared backend (Redis) made in one
test form one cluster (they share a key prefix no other test uses); in-memory ones
are independent, so tests about several nodes are marked ``shared`` and run only
for shared backends. Every registry is closed when its test ends.

Sessions are real :class:`~csms_kit.StationSession` objects over in-memory transports,
registered by hand as a server would; the call tests run a real server on node A with
a scripted station connected over a WebSocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms_kit import (
    CallError,
    CallTimeout,
    ConnectionRegistry,
    DuplicateConnection,
    ErrorCode,
    InMemoryRegistry,
    OcppVersion,
    RegistryEvent,
    StationDisconnected,
    StationNotConnected,
    StationSession,
    serve,
)
from csms_kit.registry import DuplicatePolicy
from csms_kit.testing import ScriptedStation, connect_scripted, memory_transport_pair
from tests.helpers import wait_until

HOST = "127.0.0.1"
#: Seconds to wait for anything that should happen (far more than it takes).
TIMEOUT = 5.0
#: Seconds within which a call to a station nobody holds must fail (issue 9: 2 s).
FAIL_FAST = 2.0
#: Seconds to wait for something that must not happen (a late event, a second CALL).
SETTLE = 0.3
#: A short lease keeps a dead test's stations from lingering, yet outlives every test.
LEASE_TTL = 5.0

#: Each backend, and whether its registries share their state (form a cluster).
BACKENDS = {"memory": False, "redis": True, "nats": True}

T = TypeVar("T")
RegistryBuilder = Callable[[str, DuplicatePolicy], AbstractAsyncContextManager[ConnectionRegistry]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test for every backend, or for the shared ones if it is marked ``shared``."""
    if "backend" in metafunc.fixturenames:
        shared_only = metafunc.definition.get_closest_marker("shared") is not None
        backends = [name for name, shared in BACKENDS.items() if shared or not shared_only]
        metafunc.parametrize("backend", backends)


class RegistryFactory:
    """``await factory("A")``: a new, entered registry named node A of this backend."""

    def __init__(self, backend: str, build: RegistryBuilder, stack: AsyncExitStack) -> None:
        self.backend = backend
        #: Whether registries made here share their stations (a cluster) or not.
        self.shared = BACKENDS[backend]
        self._build = build
        self._stack = stack

    async def __call__(
        self, node_id: str = "A", *, duplicate_policy: DuplicatePolicy = "replace"
    ) -> ConnectionRegistry:
        return await self._stack.enter_async_context(self._build(node_id, duplicate_policy))


@asynccontextmanager
async def _memory_registry(
    node_id: str, duplicate_policy: DuplicatePolicy
) -> AsyncIterator[ConnectionRegistry]:
    registry = InMemoryRegistry(node_id=node_id, duplicate_policy=duplicate_policy)
    try:
        yield registry
    finally:
        await registry.aclose()


def _builder(request: pytest.FixtureRequest, backend: str, prefix: str) -> RegistryBuilder:
    if backend == "memory":
        return _memory_registry
    if backend in ("redis", "nats"):
        # here: the suite imports without the cluster extras
        from csms_kit.cluster import NatsRegistry, RedisRegistry

        cls = RedisRegistry if backend == "redis" else NatsRegistry
        url = request.getfixturevalue(f"{backend}_url")

        def build(
            node_id: str, duplicate_policy: DuplicatePolicy
        ) -> AbstractAsyncContextManager[ConnectionRegistry]:
            return cls(
                url,
                node_id=node_id,
                prefix=prefix,
                duplicate_policy=duplicate_policy,
                lease_ttl=LEASE_TTL,
            )

        return build
    raise AssertionError(f"unknown backend {backend!r}")


@pytest.fixture
async def make_registry(
    request: pytest.FixtureRequest, backend: str, prefix: str
) -> AsyncIterator[RegistryFactory]:
    """Build registries of ``backend``; all of them are closed when the test ends."""
    async with AsyncExitStack() as stack:
        yield RegistryFactory(backend, _builder(request, backend, prefix), stack)


# -- helpers ----------------------------------------------------------------------------


def make_session(station_id: str = "CP1", version: str = "1.6") -> StationSession:
    """A session of ``station_id`` over an in-memory transport (not running)."""
    csms_side, _station_side = memory_transport_pair()
    return StationSession(station_id, csms_side, version)


def listen(registry: ConnectionRegistry) -> list[RegistryEvent]:
    """Subscribe to ``registry``; return the list its events go to."""
    events: list[RegistryEvent] = []
    registry.subscribe(events.append)
    return events


def summary(events: list[RegistryEvent]) -> list[tuple[str, str, StationSession | None]]:
    return [(event.kind, event.station_id, event.session) for event in events]


@asynccontextmanager
async def background(coroutine: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Task[T]]:
    """Run ``coroutine`` in a task for the block; cancel it if it is still running after."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Csms(StationSession):
    """Sessions that let a station be called at once: no boot gate, no TriggerMessage."""

    boot_gate = False
    trigger_boot = False


@asynccontextmanager
async def station_on(
    registry: ConnectionRegistry, station_id: str = "CP1", version: str = "1.6"
) -> AsyncIterator[ScriptedStation]:
    """A scripted station connected to a real server whose registry is ``registry``."""
    async with (
        serve(Csms, HOST, 0, registry=registry, ping_interval=None, close_timeout=1) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", station_id, version) as station,
    ):
        await registry.wait_connected(station_id, TIMEOUT)
        yield station


async def next_call(station: ScriptedStation, *calls: asyncio.Task[Any]) -> list[Any]:
    """The next frame the station receives, which must be a CALL made by one of ``calls``.

    If one of ``calls`` ends first, its own error (or result) is the failure, rather
    than a timeout waiting for a CALL that will never come.
    """
    receiving = asyncio.ensure_future(station.recv())
    try:
        await asyncio.wait({receiving, *calls}, return_when=asyncio.FIRST_COMPLETED)
        if not receiving.done():
            ended = next(call for call in calls if call.done())
            raise AssertionError(f"a call ended before the station saw it: {ended.result()!r}")
        frame = receiving.result()
    finally:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    assert frame[0] == 2, f"expected a CALL, got {frame!r}"
    return frame


# -- membership -------------------------------------------------------------------------


async def test_nothing_is_connected_at_first(make_registry: RegistryFactory) -> None:
    """A new registry knows no station."""
    node = await make_registry("A")
    assert node.local_session("CP1") is None
    assert await node.record("CP1") is None
    assert not await node.is_connected("CP1")
    assert await node.stations() == []
    assert await node.count() == 0
    assert await node.station_ids() == []


async def test_registered_station_is_listed_with_its_record(
    make_registry: RegistryFactory,
) -> None:
    """A registered station is found everywhere, its record naming this node and its version."""
    node = await make_registry("A")
    session = make_session("CP1", "1.6")
    await node.register(session)
    assert node.local_session("CP1") is session
    record = await node.record("CP1")
    assert record is not None
    assert (record.station_id, record.node, record.version) == ("CP1", "A", OcppVersion.V16)
    assert record.connected_at == session.connected_at
    assert await node.is_connected("CP1")
    assert await node.stations() == [record]
    assert await node.count() == 1
    assert await node.station_ids() == ["CP1"]


async def test_unregistered_station_is_gone(make_registry: RegistryFactory) -> None:
    """Unregistering removes the station from every view."""
    node = await make_registry("A")
    session = make_session("CP1")
    await node.register(session)
    await node.unregister(session)
    assert node.local_session("CP1") is None
    assert await node.record("CP1") is None
    assert not await node.is_connected("CP1")
    assert await node.stations() == []
    assert await node.count() == 0


async def test_listing_several_stations(make_registry: RegistryFactory) -> None:
    """Several stations of several versions are listed, each with its own version."""
    node = await make_registry("A")
    await node.register(make_session("CP1", "1.6"))
    await node.register(make_session("CP2", "2.0.1"))
    await node.register(make_session("CP3", "2.1"))
    records = sorted(await node.stations(), key=lambda record: record.station_id)
    assert [(r.station_id, r.version, r.node) for r in records] == [
        ("CP1", OcppVersion.V16, "A"),
        ("CP2", OcppVersion.V201, "A"),
        ("CP3", OcppVersion.V21, "A"),
    ]
    assert sorted(await node.station_ids()) == ["CP1", "CP2", "CP3"]
    assert await node.count() == 3


async def test_unregistering_a_session_never_registered_changes_nothing(
    make_registry: RegistryFactory,
) -> None:
    """Unregistering an unknown session leaves the registered one of that id alone."""
    node = await make_registry("A")
    events = listen(node)
    registered, stranger = make_session("CP1"), make_session("CP1")
    await node.register(registered)
    await node.unregister(stranger)
    assert node.local_session("CP1") is registered
    assert await node.is_connected("CP1")
    await asyncio.sleep(SETTLE)
    assert summary(events) == [("connected", "CP1", registered)]


@pytest.mark.shared
async def test_other_node_sees_the_station(make_registry: RegistryFactory) -> None:
    """A station registered on A is listed on B with A as its node, and gone when A leaves it."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    session = make_session("CP1", "2.0.1")
    await node_a.register(session)
    record = await node_b.record("CP1")
    assert record is not None
    assert (record.station_id, record.node, record.version) == ("CP1", "A", OcppVersion.V201)
    assert record.connected_at == session.connected_at
    assert record == await node_a.record("CP1")
    assert node_b.local_session("CP1") is None
    assert await node_b.is_connected("CP1")
    assert await node_b.stations() == [record]
    assert await node_b.count() == 1
    assert await node_b.station_ids() == ["CP1"]
    await node_a.unregister(session)
    assert await node_b.record("CP1") is None
    assert not await node_b.is_connected("CP1")
    assert await node_b.stations() == []


@pytest.mark.shared
async def test_listing_spans_every_node(make_registry: RegistryFactory) -> None:
    """Each node lists the stations of every node, each with the node that holds it."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    await node_a.register(make_session("CP1", "1.6"))
    await node_b.register(make_session("CP2", "2.1"))
    for node in (node_a, node_b):
        records = sorted(await node.stations(), key=lambda record: record.station_id)
        assert [(r.station_id, r.node, r.version) for r in records] == [
            ("CP1", "A", OcppVersion.V16),
            ("CP2", "B", OcppVersion.V21),
        ]
        assert await node.count() == 2
        assert sorted(await node.station_ids()) == ["CP1", "CP2"]
    assert node_a.local_session("CP2") is None and node_b.local_session("CP1") is None


# -- wait_connected ---------------------------------------------------------------------


async def test_wait_connected_returns_at_once_when_connected(
    make_registry: RegistryFactory,
) -> None:
    """wait_connected on a connected station returns without waiting."""
    node = await make_registry("A")
    await node.register(make_session("CP1"))
    await asyncio.wait_for(node.wait_connected("CP1", timeout=0.1), 1)


async def test_wait_connected_returns_when_the_station_registers(
    make_registry: RegistryFactory,
) -> None:
    """wait_connected waits until the station registers, and no longer."""
    node = await make_registry("A")
    async with background(node.wait_connected("CP1", timeout=TIMEOUT)) as waiter:
        await asyncio.sleep(SETTLE)
        assert not waiter.done()
        await node.register(make_session("CP1"))
        await asyncio.wait_for(waiter, TIMEOUT)


async def test_wait_connected_times_out(make_registry: RegistryFactory) -> None:
    """wait_connected raises TimeoutError when the station does not come in time."""
    node = await make_registry("A")
    await node.register(make_session("CP2"))  # another station does not count
    async with background(node.wait_connected("CP1", timeout=0.2)) as waiter:
        # Not wait_for: its own timeout would be a TimeoutError too, and hide a waiter
        # that ignores its timeout.
        await asyncio.wait({waiter}, timeout=FAIL_FAST)
        assert waiter.done(), "wait_connected outlived its timeout"
        with pytest.raises(TimeoutError):
            waiter.result()


@pytest.mark.shared
async def test_wait_connected_hears_another_node(make_registry: RegistryFactory) -> None:
    """wait_connected on B returns when the station registers on A."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with background(node_b.wait_connected("CP1", timeout=TIMEOUT)) as waiter:
        await asyncio.sleep(SETTLE)
        assert not waiter.done()
        await node_a.register(make_session("CP1"))
        await asyncio.wait_for(waiter, TIMEOUT)


# -- registration status ----------------------------------------------------------------


async def test_registration_status_is_remembered_across_connections(
    make_registry: RegistryFactory,
) -> None:
    """The last status set is read back, whether the station is connected or not."""
    node = await make_registry("A")
    assert await node.registration_status("CP1") is None
    await node.set_registration_status("CP1", "Pending")
    assert await node.registration_status("CP1") == "Pending"
    session = make_session("CP1")
    await node.register(session)
    await node.set_registration_status("CP1", "Accepted")
    await node.unregister(session)
    assert await node.registration_status("CP1") == "Accepted"
    assert await node.registration_status("CP2") is None


@pytest.mark.shared
async def test_registration_status_is_shared(make_registry: RegistryFactory) -> None:
    """A status set on A is read on B, and the last write wins whoever made it."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    await node_a.set_registration_status("CP1", "Accepted")
    assert await node_b.registration_status("CP1") == "Accepted"
    await node_b.set_registration_status("CP1", "Rejected")
    assert await node_a.registration_status("CP1") == "Rejected"


# -- events -----------------------------------------------------------------------------


async def test_listener_hears_connect_and_disconnect_once(make_registry: RegistryFactory) -> None:
    """A listener hears each connect and disconnect once, by the time the call returns."""
    node = await make_registry("A")
    events = listen(node)
    session = make_session("CP1")
    await node.register(session)
    assert summary(events) == [("connected", "CP1", session)]
    await node.unregister(session)
    assert summary(events) == [("connected", "CP1", session), ("disconnected", "CP1", session)]
    for event in events:
        assert event.record is not None
        assert (event.record.station_id, event.record.node) == ("CP1", "A")
        assert event.record.version == OcppVersion.V16
    await asyncio.sleep(SETTLE)
    assert len(events) == 2  # nothing arrives twice (e.g. echoed back by a broker)


async def test_unsubscribed_listener_hears_nothing(make_registry: RegistryFactory) -> None:
    """After unsubscribing, a listener hears no more events; others still do."""
    node = await make_registry("A")
    gone: list[RegistryEvent] = []
    unsubscribe = node.subscribe(gone.append)
    kept = listen(node)
    unsubscribe()
    session = make_session("CP1")
    await node.register(session)
    await node.unregister(session)
    await asyncio.sleep(SETTLE)
    assert gone == []
    assert [event.kind for event in kept] == ["connected", "disconnected"]


@pytest.mark.shared
async def test_listener_on_another_node_hears_events(make_registry: RegistryFactory) -> None:
    """A listener on B hears A's connects and disconnects, with A's record and no session."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    events = listen(node_b)
    session = make_session("CP1", "2.0.1")
    await node_a.register(session)
    await wait_until(lambda: len(events) >= 1, TIMEOUT, "B hears the connect")
    await node_a.unregister(session)
    await wait_until(lambda: len(events) >= 2, TIMEOUT, "B hears the disconnect")
    await asyncio.sleep(SETTLE)
    assert summary(events) == [("connected", "CP1", None), ("disconnected", "CP1", None)]
    for event in events:
        assert event.record is not None
        assert (event.record.station_id, event.record.node) == ("CP1", "A")
        assert event.record.version == OcppVersion.V201


# -- duplicates -------------------------------------------------------------------------


async def test_replace_closes_the_first_session(make_registry: RegistryFactory) -> None:
    """Under "replace", a second session of a station wins and the first is closed with 1000."""
    node = await make_registry("A", duplicate_policy="replace")
    first, second = make_session("CP1"), make_session("CP1")
    await node.register(first)
    await node.register(second)
    await wait_until(lambda: first.ended, TIMEOUT, "the first session is closed")
    assert first.close_code == 1000
    assert "replaced" in first.close_reason
    assert not second.ended
    assert node.local_session("CP1") is second
    assert await node.count() == 1


async def test_reject_refuses_a_second_session(make_registry: RegistryFactory) -> None:
    """Under "reject", a second session of a station raises DuplicateConnection."""
    node = await make_registry("A", duplicate_policy="reject")
    first, second = make_session("CP1"), make_session("CP1")
    await node.register(first)
    with pytest.raises(DuplicateConnection):
        await node.register(second)
    await asyncio.sleep(SETTLE)
    assert not first.ended and not second.ended
    assert node.local_session("CP1") is first
    assert await node.count() == 1


async def test_stale_session_leaving_keeps_the_newer_one(make_registry: RegistryFactory) -> None:
    """Unregistering a replaced session never removes the newer registration."""
    node = await make_registry("A")
    events = listen(node)
    old, new = make_session("CP1"), make_session("CP1")
    await node.register(old)
    await node.register(new)
    await node.unregister(old)
    assert node.local_session("CP1") is new
    record = await node.record("CP1")
    assert record is not None and record.connected_at == new.connected_at
    assert await node.is_connected("CP1")
    await asyncio.sleep(SETTLE)
    assert summary(events) == [("connected", "CP1", old), ("connected", "CP1", new)]


@pytest.mark.shared
async def test_replace_across_nodes(make_registry: RegistryFactory) -> None:
    """Under "replace", B registering A's station wins: A's session is closed with 1000."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    on_a, on_b = make_session("CP1"), make_session("CP1")
    await node_a.register(on_a)
    await node_b.register(on_b)
    await wait_until(lambda: on_a.ended, TIMEOUT, "A closes its session")
    assert on_a.close_code == 1000
    assert "replaced" in on_a.close_reason
    assert not on_b.ended
    assert node_b.local_session("CP1") is on_b
    for node in (node_a, node_b):
        record = await node.record("CP1")
        assert record is not None and record.node == "B"


@pytest.mark.shared
async def test_stale_holder_leaving_keeps_the_other_nodes_registration(
    make_registry: RegistryFactory,
) -> None:
    """A's replaced session leaving never removes B's registration, nor tells anyone it left."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    events = listen(node_b)
    on_a, on_b = make_session("CP1"), make_session("CP1")
    await node_a.register(on_a)
    await node_b.register(on_b)
    await wait_until(lambda: on_a.ended, TIMEOUT, "A closes its session")
    await node_a.unregister(on_a)  # what A's server does once the session has ended
    await asyncio.sleep(SETTLE)
    for node in (node_a, node_b):
        record = await node.record("CP1")
        assert record is not None and record.node == "B"
        assert await node.count() == 1
    assert node_b.local_session("CP1") is on_b
    assert "disconnected" not in [event.kind for event in events]


@pytest.mark.shared
async def test_reject_across_nodes(make_registry: RegistryFactory) -> None:
    """Under "reject", B registering A's station raises DuplicateConnection; A keeps it."""
    node_a = await make_registry("A", duplicate_policy="reject")
    node_b = await make_registry("B", duplicate_policy="reject")
    on_a, on_b = make_session("CP1"), make_session("CP1")
    await node_a.register(on_a)
    with pytest.raises(DuplicateConnection):
        await node_b.register(on_b)
    await asyncio.sleep(SETTLE)
    assert not on_a.ended
    assert node_b.local_session("CP1") is None
    record = await node_b.record("CP1")
    assert record is not None and record.node == "A"


@pytest.mark.shared
async def test_reject_across_nodes_admits_once_the_holder_left(
    make_registry: RegistryFactory,
) -> None:
    """Under "reject", B may register the station once A has unregistered it."""
    node_a = await make_registry("A", duplicate_policy="reject")
    node_b = await make_registry("B", duplicate_policy="reject")
    on_a, on_b = make_session("CP1"), make_session("CP1")
    await node_a.register(on_a)
    await node_a.unregister(on_a)
    await node_b.register(on_b)
    record = await node_a.record("CP1")
    assert record is not None and record.node == "B"


# -- calls ------------------------------------------------------------------------------


async def test_call_on_the_holding_node(make_registry: RegistryFactory) -> None:
    """A call on the node holding the station returns the station's typed answer."""
    node_a = await make_registry("A")
    async with (
        station_on(node_a) as station,
        background(node_a.call("CP1", call16.Reset(type="Soft"))) as task,
    ):
        frame = await next_call(station, task)
        assert frame[2:] == ["Reset", {"type": "Soft"}]
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert await asyncio.wait_for(task, TIMEOUT) == result16.Reset(status="Accepted")


async def test_call_to_a_station_nobody_holds_fails_fast(make_registry: RegistryFactory) -> None:
    """Calling a station that is connected nowhere raises StationNotConnected at once."""
    node_a = await make_registry("A")
    with pytest.raises(StationNotConnected) as caught:
        await asyncio.wait_for(node_a.call("nobody", call16.Reset(type="Soft")), FAIL_FAST)
    assert caught.value.station_id == "nobody"


@pytest.mark.shared
async def test_call_from_another_node(make_registry: RegistryFactory) -> None:
    """A call on B reaches the station held by A and returns its typed answer."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        assert node_b.local_session("CP1") is None
        async with background(node_b.call("CP1", call16.Reset(type="Soft"))) as task:
            frame = await next_call(station, task)
            assert frame[2:] == ["Reset", {"type": "Soft"}]
            await station.send([3, frame[1], {"status": "Accepted"}])
            assert await asyncio.wait_for(task, TIMEOUT) == result16.Reset(status="Accepted")


@pytest.mark.shared
async def test_call_from_a_node_that_does_not_know_the_version(
    make_registry: RegistryFactory,
) -> None:
    """A typed call on B to a 2.0.1 station on A returns the 2.0.1 response dataclass."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a, "CP1", "2.0.1") as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        async with background(node_b.call("CP1", call201.Reset(type="Immediate"))) as task:
            frame = await next_call(station, task)
            assert frame[2:] == ["Reset", {"type": "Immediate"}]
            await station.send([3, frame[1], {"status": "Scheduled"}])
            response = await asyncio.wait_for(task, TIMEOUT)
            assert response == result201.Reset(status="Scheduled")


@pytest.mark.shared
async def test_call_error_from_another_node(make_registry: RegistryFactory) -> None:
    """The station's CALLERROR to a call made on B raises CallError on B, with its code."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        async with background(node_b.call("CP1", call16.Reset(type="Hard"))) as task:
            frame = await next_call(station, task)
            await station.send([4, frame[1], "NotSupported", "no reset here", {"why": "x"}])
            with pytest.raises(CallError) as caught:
                await asyncio.wait_for(task, TIMEOUT)
    error = caught.value
    assert error.code == ErrorCode.NOT_SUPPORTED
    assert (error.station_id, error.action, error.message_id) == ("CP1", "Reset", frame[1])
    assert (error.description, error.details) == ("no reset here", {"why": "x"})


@pytest.mark.shared
async def test_call_timeout_from_another_node(make_registry: RegistryFactory) -> None:
    """A call made on B that the station does not answer raises CallTimeout on B."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        call = node_b.call("CP1", call16.Reset(type="Soft"), timeout=0.5)
        async with background(call) as task:
            frame = await next_call(station, task)
            with pytest.raises(CallTimeout) as caught:
                await asyncio.wait_for(task, TIMEOUT)
    assert (caught.value.station_id, caught.value.action) == ("CP1", "Reset")
    assert caught.value.message_id == frame[1]


@pytest.mark.shared
async def test_station_leaving_mid_call_from_another_node(make_registry: RegistryFactory) -> None:
    """A station that disconnects during a call made on B makes it raise StationDisconnected."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        async with background(node_b.call("CP1", call16.Reset(type="Soft"))) as task:
            await next_call(station, task)
            await station.close()
            with pytest.raises(StationDisconnected) as caught:
                await asyncio.wait_for(task, TIMEOUT)
    assert caught.value.station_id == "CP1"


@pytest.mark.shared
async def test_calls_from_two_nodes_keep_one_call_outstanding(
    make_registry: RegistryFactory,
) -> None:
    """Calls made on A and on B at once reach the station one at a time, each answered right."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        async with (
            background(node_a.call("CP1", call16.Reset(type="Soft"))) as on_a,
            background(node_b.call("CP1", call16.Reset(type="Hard"))) as on_b,
        ):
            first = await next_call(station, on_a, on_b)
            assert await station.nothing_more(SETTLE)  # the second waits for the first
            await station.send([3, first[1], {"status": "Accepted"}])
            second = await next_call(station, on_b if first[3]["type"] == "Soft" else on_a)
            await station.send([3, second[1], {"status": "Rejected"}])
            answers = {
                "Soft": await asyncio.wait_for(on_a, TIMEOUT),
                "Hard": await asyncio.wait_for(on_b, TIMEOUT),
            }
    assert {first[3]["type"], second[3]["type"]} == {"Soft", "Hard"}
    assert answers[first[3]["type"]] == result16.Reset(status="Accepted")
    assert answers[second[3]["type"]] == result16.Reset(status="Rejected")


@pytest.mark.shared
async def test_call_from_another_node_to_a_station_nobody_holds_fails_fast(
    make_registry: RegistryFactory,
) -> None:
    """On B, a call to a station connected nowhere, or no more, fails at once."""
    node_a, node_b = await make_registry("A"), await make_registry("B")
    async with station_on(node_a) as station:
        await node_b.wait_connected("CP1", TIMEOUT)
        with pytest.raises(StationNotConnected):
            await asyncio.wait_for(node_b.call("nobody", call16.Reset(type="Soft")), FAIL_FAST)
        await station.close()
    await wait_until(lambda: node_a.local_session("CP1") is None, TIMEOUT, "A lets CP1 go")
    with pytest.raises(StationNotConnected) as caught:
        await asyncio.wait_for(node_b.call("CP1", call16.Reset(type="Soft")), FAIL_FAST)
    assert caught.value.station_id == "CP1"


@pytest.mark.shared
async def test_broadcast_reaches_stations_on_every_node(make_registry: RegistryFactory) -> None:
    """A broadcast from a third node gets each station's answer, and the error of a missing one."""
    node_a, node_b, node_c = [await make_registry(n) for n in "ABC"]
    async with station_on(node_a, "CP1") as one, station_on(node_b, "CP2") as two:
        await node_c.wait_connected("CP1", TIMEOUT)
        await node_c.wait_connected("CP2", TIMEOUT)
        request = call16.Reset(type="Soft")
        async with background(node_c.broadcast(["CP1", "CP2", "nobody"], request)) as task:
            for station in (one, two):
                frame = await next_call(station, task)
                await station.send([3, frame[1], {"status": "Accepted"}])
            outcomes = await asyncio.wait_for(task, TIMEOUT)
    assert outcomes["CP1"] == outcomes["CP2"] == result16.Reset(status="Accepted")
    assert isinstance(outcomes["nobody"], StationNotConnected)
    assert list(outcomes) == ["CP1", "CP2", "nobody"]


async def test_broadcast_on_one_node(make_registry: RegistryFactory) -> None:
    """A broadcast on the holding node answers per station; duplicates are called once."""
    node_a = await make_registry("A")
    async with station_on(node_a, "CP1") as station:
        calls = node_a.broadcast(["CP1", "CP1", "nobody"], {"type": "Hard"}, action="Reset")
        async with background(calls) as task:
            frame = await next_call(station, task)
            await station.send([4, frame[1], "NotSupported", "no", {}])
            outcomes = await asyncio.wait_for(task, TIMEOUT)
            assert await station.nothing_more()
    assert isinstance(outcomes["CP1"], CallError) and outcomes["CP1"].code == "NotSupported"
    assert isinstance(outcomes["nobody"], StationNotConnected)


async def test_a_burst_of_connections_all_register(make_registry: RegistryFactory) -> None:
    """150 stations connecting at once are all registered (no pool or broker limit hit)."""
    node_a = await make_registry("A")
    count = 150
    async with (
        serve(Csms, HOST, 0, registry=node_a, ping_interval=None) as server,
        AsyncExitStack() as stack,
    ):
        await asyncio.gather(
            *(
                stack.enter_async_context(
                    connect_scripted(f"ws://{HOST}:{server.port}", f"B{n}", "1.6")
                )
                for n in range(count)
            )
        )
        await wait_until(lambda: len(server.sessions) == count, TIMEOUT * 2)
        records = await node_a.stations()
        assert sorted(r.station_id for r in records) == sorted(f"B{n}" for n in range(count))
