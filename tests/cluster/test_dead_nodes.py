"""A node that dies without a word: survivors reap its stations and everyone hears it.

A registry closed without unregistering its sessions is a node that died: its leases
and its index stay behind, nobody renews them. (The SIGKILL of real processes is in
test_multinode.py; here the timing is under the test's control.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest

from csms_kit import RegistryEvent, StationSession
from csms_kit.cluster import NatsRegistry, RedisRegistry
from csms_kit.cluster.base import SharedRegistry
from csms_kit.testing import memory_transport_pair

#: Seconds to wait for what should happen (far more than it takes).
TIMEOUT = 10.0

Factory = Callable[..., SharedRegistry]


@pytest.fixture(params=["redis", "nats"])
async def make(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Factory]:
    """Build (not start) registries of one backend sharing a prefix no other test uses."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        cls: type[RedisRegistry | NatsRegistry] = RedisRegistry
    else:
        url = request.getfixturevalue("nats_url")
        cls = NatsRegistry
    async with AsyncExitStack() as stack:

        def factory(node_id: str, lease_ttl: float) -> SharedRegistry:
            registry = cls(url, node_id=node_id, prefix=prefix, lease_ttl=lease_ttl)
            stack.push_async_callback(registry.aclose)
            return registry

        yield factory


def session(station_id: str) -> StationSession:
    csms_side, _ = memory_transport_pair()
    return StationSession(station_id, csms_side, "1.6")


def gone(events: list[RegistryEvent], station_id: str) -> list[RegistryEvent]:
    return [e for e in events if e.kind == "disconnected" and e.station_id == station_id]


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_survivors_reap_a_dead_node_and_every_listener_hears_it_once(make: Factory) -> None:
    """Node A dies holding two stations: B and C each hear each disconnect exactly once,
    with A's record; the stations are no longer listed; a station that moved to B meanwhile
    is left alone."""
    a, b, c = make("a", 1.5), make("b", 1.5), make("c", 1.5)
    for registry in (a, b, c):
        await registry.start()
    heard_b: list[RegistryEvent] = []
    heard_c: list[RegistryEvent] = []
    b.subscribe(heard_b.append)
    c.subscribe(heard_c.append)
    for station_id in ("CP1", "CP2", "MOVED"):
        await a.register(session(station_id))
    await b.register(session("MOVED"))  # replaces A's: it is B's now
    await a.aclose()  # A dies: no unregister, no renewal

    await wait_for(
        lambda: len(gone(heard_b, "CP2")) > 0 and len(gone(heard_c, "CP2")) > 0,
        "a dead node's disconnects were never heard",
    )
    await asyncio.sleep(1.5)  # a second claim of the same dead node would show by now
    for heard in (heard_b, heard_c):
        for station_id in ("CP1", "CP2"):
            events = gone(heard, station_id)
            assert len(events) == 1, events
            assert events[0].session is None
            assert events[0].record is not None and events[0].record.node == "a"
        assert gone(heard, "MOVED") == []
    assert {r.station_id for r in await c.stations()} == {"MOVED"}
    record = await c.record("MOVED")
    assert record is not None and record.node == "b"


async def test_a_restarted_node_clears_what_its_earlier_life_left(make: Factory) -> None:
    """A node that comes back under the same id before its lease lapsed reaps its own
    leftovers at start: they leave at once, not after the (long) lease."""
    first = make("a", 60)
    watcher = make("w", 60)
    await first.start()
    await watcher.start()
    heard: list[RegistryEvent] = []
    watcher.subscribe(heard.append)
    await first.register(session("CP1"))
    await first.aclose()  # dies
    assert await watcher.record("CP1") is not None  # a 60 s lease: still listed

    again = make("a", 60)
    await again.start()
    assert await watcher.record("CP1") is None
    await wait_for(lambda: len(gone(heard, "CP1")) == 1, "the leftover's disconnect was not heard")
    events = gone(heard, "CP1")
    assert events[0].record is not None and events[0].record.node == "a"


async def test_a_live_node_is_never_reaped(make: Factory) -> None:
    """Nodes that keep renewing keep their stations, however many rounds go by."""
    a, b = make("a", 0.6), make("b", 0.6)
    await a.start()
    await b.start()
    heard: list[RegistryEvent] = []
    b.subscribe(heard.append)
    await a.register(held := session("CP1"))
    await asyncio.sleep(2.5)  # about a dozen rounds of renewing and looking for the dead
    assert gone(heard, "CP1") == []
    record = await b.record("CP1")
    assert record is not None and record.node == "a"
    await a.unregister(held)
    await wait_for(lambda: len(gone(heard, "CP1")) == 1, "a normal disconnect was not heard")


async def test_a_station_leaving_while_its_lease_is_renewed_is_still_announced(
    nats_url: str, prefix: str
) -> None:
    """NATS fences with the entry's revision, which each renewal changes: a session that
    ends while its renewal is in flight holds the revision before it. Its entry must
    still be removed and its disconnect heard (not taken for a newer registration)."""
    async with (
        NatsRegistry(nats_url, node_id="a", prefix=prefix, lease_ttl=30) as a,
        NatsRegistry(nats_url, node_id="b", prefix=prefix, lease_ttl=30) as b,
    ):
        heard: list[RegistryEvent] = []
        b.subscribe(heard.append)
        await a.register(held := session("CP1"))
        before = a._tokens["CP1"]
        await a._rewrite("CP1", held)  # the renewal ...
        a._tokens["CP1"] = before  # ... whose new revision the ending session missed
        await a.unregister(held)
        await wait_for(lambda: len(gone(heard, "CP1")) == 1, "the disconnect was not heard")
        assert await b.record("CP1") is None


async def test_a_newer_registration_is_not_removed_by_the_old_session(
    nats_url: str, prefix: str
) -> None:
    """The other side of the same check: an entry of another connection stays."""
    async with (
        NatsRegistry(nats_url, node_id="a", prefix=prefix, lease_ttl=30) as a,
        NatsRegistry(nats_url, node_id="b", prefix=prefix, lease_ttl=30) as b,
        NatsRegistry(nats_url, node_id="c", prefix=prefix, lease_ttl=30) as observer,
    ):
        await a.register(old := session("CP1"))
        await b.register(new := session("CP1"))  # the station reconnected to node b
        await a.unregister(old)
        record = await observer.record("CP1")  # what NATS holds, not a local view
        assert record is not None and record.node == "b"
        assert record.connected_at == new.connected_at


async def test_a_renewal_landing_after_the_station_left_does_not_bring_it_back(
    nats_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal's write arrives after the release removed the entry: it must not be
    taken for a lapsed lease to restore (a ghost listed, a false "connected")."""
    async with (
        NatsRegistry(nats_url, node_id="a", prefix=prefix, lease_ttl=30) as a,
        NatsRegistry(nats_url, node_id="b", prefix=prefix, lease_ttl=30) as b,
    ):
        heard: list[RegistryEvent] = []
        b.subscribe(heard.append)
        await a.register(held := session("CP1"))
        stations = a._buckets().stations
        update = stations.update

        async def update_after_leaving(key: str, value: bytes, last: int) -> int:
            await a.unregister(held)  # the station leaves while the renewal is on its way
            return await update(key, value, last=last)

        monkeypatch.setattr(stations, "update", update_after_leaving)
        await a._rewrite("CP1", held)
        await wait_for(lambda: len(gone(heard, "CP1")) == 1, "the disconnect was not heard")
        await asyncio.sleep(0.3)  # a false "connected" would come right after
        assert [e.kind for e in heard if e.station_id == "CP1"] == ["connected", "disconnected"]
        assert await b.record("CP1") is None
