"""InMemoryRegistry with real sessions over in-memory transports (most never run)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from csms_kit import (
    ConnectionRegistry,
    DuplicateConnection,
    InMemoryRegistry,
    RegistryEvent,
    StationNotConnected,
    StationSession,
    on,
)
from csms_kit.admission import Admission, Ticket
from csms_kit.exceptions import TransportClosed
from csms_kit.hooks import Handshake, Hooks
from csms_kit.instruments import Instruments
from csms_kit.registry import REPLACED_CODE, REPLACED_REASON
from csms_kit.testing import MemoryTransport, ScriptedStation, memory_transport_pair
from csms_kit.versions import OcppVersion
from tests.helpers import wait_until


def make_session(
    station_id: str = "CP1", version: str = "1.6", **options: Any
) -> tuple[StationSession, MemoryTransport]:
    """A session for ``station_id`` and the station's end of its transport."""
    csms_side, station_side = memory_transport_pair()
    return StationSession(station_id, csms_side, version, **options), station_side


def recorder(registry: ConnectionRegistry) -> list[tuple[str, str, StationSession | None]]:
    """Subscribe a sync listener; return the list it fills with (kind, id, session)."""
    events: list[tuple[str, str, StationSession | None]] = []
    registry.subscribe(lambda e: events.append((e.kind, e.station_id, e.session)))
    return events


# -- membership -------------------------------------------------------------------------


async def test_register_and_unregister() -> None:
    """A registered session is found under its station id; unregistering removes it."""
    registry = InMemoryRegistry()
    session, _ = make_session("CP1")
    assert registry.get("CP1") is None
    await registry.register(session)
    assert registry.get("CP1") is session
    assert registry.local_session("CP1") is session
    await registry.unregister(session)
    assert registry.get("CP1") is None
    assert registry.local_session("CP1") is None


async def test_sync_views() -> None:
    """`in`, len, iteration, get and sessions() reflect the registered stations."""
    registry = InMemoryRegistry()
    a, _ = make_session("A")
    b, _ = make_session("B")
    assert len(registry) == 0 and list(registry) == [] and registry.sessions() == []
    await registry.register(a)
    await registry.register(b)
    assert "A" in registry and "B" in registry and "C" not in registry
    assert 42 not in registry  # anything may be asked, nothing breaks
    assert len(registry) == 2
    assert sorted(registry) == ["A", "B"]
    assert registry.get("B") is b and registry.get("C") is None
    assert set(registry.sessions()) == {a, b}
    await registry.unregister(a)
    assert "A" not in registry and len(registry) == 1 and list(registry) == ["B"]
    assert registry.sessions() == [b]


async def test_iteration_is_a_snapshot() -> None:
    """Iterating while stations come and go does not break: it walks a snapshot."""
    registry = InMemoryRegistry()
    sessions = [make_session(f"CP{n}")[0] for n in range(5)]
    for session in sessions:
        await registry.register(session)
    seen = []
    for station_id in registry:
        seen.append(station_id)
        await registry.unregister(registry.get(station_id))  # type: ignore[arg-type]
    assert sorted(seen) == [f"CP{n}" for n in range(5)]
    assert len(registry) == 0


async def test_coroutine_queries() -> None:
    """is_connected, count and station_ids answer like the sync views."""
    registry = InMemoryRegistry()
    assert await registry.count() == 0
    assert await registry.station_ids() == []
    assert not await registry.is_connected("A")
    a, _ = make_session("A")
    b, _ = make_session("B")
    await registry.register(a)
    await registry.register(b)
    assert await registry.is_connected("A")
    assert not await registry.is_connected("C")
    assert await registry.count() == 2
    assert sorted(await registry.station_ids()) == ["A", "B"]
    await registry.unregister(b)
    assert await registry.count() == 1
    assert await registry.station_ids() == ["A"]
    assert not await registry.is_connected("B")


async def test_unregister_unknown_session_is_harmless() -> None:
    """Unregistering a session that was never registered changes nothing."""
    registry = InMemoryRegistry()
    events = recorder(registry)
    session, _ = make_session("A")
    await registry.unregister(session)
    assert len(registry) == 0 and events == []


async def test_registries_are_independent() -> None:
    """Two registries never see each other's stations: there is no global state."""
    first, second = InMemoryRegistry(), InMemoryRegistry()
    session, _ = make_session("A")
    await first.register(session)
    assert "A" in first and "A" not in second
    await second.set_registration_status("A", "Accepted")
    assert await first.registration_status("A") is None


# -- wait_connected ---------------------------------------------------------------------


async def test_wait_connected_returns_at_once_when_connected() -> None:
    """wait_connected for a connected station returns without waiting."""
    registry = InMemoryRegistry()
    session, _ = make_session("A")
    await registry.register(session)
    await asyncio.wait_for(registry.wait_connected("A", timeout=0), 1)
    assert registry._waiters == {}


async def test_wait_connected_returns_when_station_connects_later() -> None:
    """Every waiter for a station wakes up when it registers; others keep waiting."""
    registry = InMemoryRegistry()
    first = asyncio.create_task(registry.wait_connected("A", timeout=5))
    second = asyncio.create_task(registry.wait_connected("A"))
    other = asyncio.create_task(registry.wait_connected("B", timeout=5))
    await asyncio.sleep(0.01)
    assert not first.done() and not second.done()
    session, _ = make_session("A")
    await registry.register(session)
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert not other.done()
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    assert registry._waiters == {}


async def test_wait_connected_timeout_raises_and_leaves_no_waiter() -> None:
    """After the timeout, TimeoutError is raised and no waiter is left behind."""
    registry = InMemoryRegistry()
    with pytest.raises(TimeoutError, match="'A'"):
        await registry.wait_connected("A", timeout=0.02)
    assert registry._waiters == {}
    session, _ = make_session("A")
    await registry.register(session)  # nothing stale to wake
    assert "A" in registry


async def test_wait_connected_timeout_keeps_other_waiters() -> None:
    """One waiter timing out does not remove another waiter for the same station."""
    registry = InMemoryRegistry()
    patient = asyncio.create_task(registry.wait_connected("A", timeout=5))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await registry.wait_connected("A", timeout=0.02)
    assert len(registry._waiters["A"]) == 1
    session, _ = make_session("A")
    await registry.register(session)
    await asyncio.wait_for(patient, 1)
    assert registry._waiters == {}


async def test_cancelled_wait_connected_leaves_no_waiter() -> None:
    """Cancelling a waiter removes it."""
    registry = InMemoryRegistry()
    task = asyncio.create_task(registry.wait_connected("A"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry._waiters == {}


# -- events -----------------------------------------------------------------------------


async def test_events_reach_sync_and_async_listeners_in_order() -> None:
    """Connect and disconnect events reach every listener, in order, listener by listener."""
    registry = InMemoryRegistry()
    log: list[tuple[str, str, str]] = []

    def sync_listener(event: RegistryEvent) -> None:
        log.append(("sync", event.kind, event.station_id))

    async def async_listener(event: RegistryEvent) -> None:
        await asyncio.sleep(0.001)
        log.append(("async", event.kind, event.station_id))

    registry.subscribe(sync_listener)
    registry.subscribe(async_listener)
    events = recorder(registry)
    a, _ = make_session("A")
    b, _ = make_session("B")
    await registry.register(a)
    await registry.register(b)
    await registry.unregister(a)
    await registry.unregister(b)
    assert log == [
        ("sync", "connected", "A"),
        ("async", "connected", "A"),
        ("sync", "connected", "B"),
        ("async", "connected", "B"),
        ("sync", "disconnected", "A"),
        ("async", "disconnected", "A"),
        ("sync", "disconnected", "B"),
        ("async", "disconnected", "B"),
    ]
    assert events == [
        ("connected", "A", a),
        ("connected", "B", b),
        ("disconnected", "A", a),
        ("disconnected", "B", b),
    ]


async def test_listener_sees_the_registry_already_updated() -> None:
    """A connected listener finds the station registered; a disconnected one finds it gone."""
    registry = InMemoryRegistry()
    seen: list[tuple[str, bool]] = []
    registry.subscribe(lambda e: seen.append((e.kind, e.station_id in registry)))
    session, _ = make_session("A")
    await registry.register(session)
    await registry.unregister(session)
    assert seen == [("connected", True), ("disconnected", False)]


async def test_unsubscribe() -> None:
    """After unsubscribing, a listener hears nothing more; unsubscribing twice is harmless."""
    registry = InMemoryRegistry()
    heard: list[str] = []
    unsubscribe = registry.subscribe(lambda e: heard.append(e.kind))
    kept = recorder(registry)
    a, _ = make_session("A")
    await registry.register(a)
    unsubscribe()
    unsubscribe()
    await registry.unregister(a)
    assert heard == ["connected"]
    assert [kind for kind, _, _ in kept] == ["connected", "disconnected"]


async def test_failing_listener_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged; later listeners still hear the event."""
    registry = InMemoryRegistry()

    def failing_listener(event: RegistryEvent) -> None:
        raise RuntimeError("listener broke")

    async def failing_async_listener(event: RegistryEvent) -> None:
        raise RuntimeError("async listener broke")

    registry.subscribe(failing_listener)
    registry.subscribe(failing_async_listener)
    events = recorder(registry)
    session, _ = make_session("A")
    with caplog.at_level(logging.ERROR, logger="csms_kit.hooks"):
        await registry.register(session)
        await registry.unregister(session)
    assert [kind for kind, _, _ in events] == ["connected", "disconnected"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum(m.endswith(".failing_listener failed") for m in messages) == 2
    assert sum(m.endswith(".failing_async_listener failed") for m in messages) == 2
    assert len(registry) == 0


# -- duplicate policy "replace" ---------------------------------------------------------


async def test_replace_closes_old_session_with_1000_and_reason() -> None:
    """A second connection wins: the old session is closed with 1000 and the reason."""
    registry = InMemoryRegistry()
    assert registry.duplicate_policy == "replace"
    old, old_station = make_session("A")
    new, _ = make_session("A")
    await registry.register(old)
    await registry.register(new)
    await registry.aclose()
    assert registry.get("A") is new
    assert len(registry) == 1
    assert old.ended and not new.ended
    assert (old.close_code, old.close_reason) == (REPLACED_CODE, REPLACED_REASON)
    with pytest.raises(TransportClosed) as caught:
        await asyncio.wait_for(old_station.recv(), 1)
    assert caught.value.code == REPLACED_CODE == 1000
    assert caught.value.reason == REPLACED_REASON
    assert "replaced" in REPLACED_REASON


async def test_replaced_session_leaving_does_not_remove_the_new_one() -> None:
    """Unregistering the replaced session later leaves the new one: no ghost, no event."""
    registry = InMemoryRegistry()
    events = recorder(registry)
    old, _ = make_session("A")
    new, _ = make_session("A")
    await registry.register(old)
    await registry.register(new)
    await registry.unregister(old)
    await registry.aclose()
    assert registry.get("A") is new
    assert await registry.is_connected("A")
    assert await registry.count() == 1
    assert events == [("connected", "A", old), ("connected", "A", new)]
    await registry.unregister(new)
    assert events[-1] == ("disconnected", "A", new)
    assert len(registry) == 0


async def test_replace_chain_keeps_only_the_last() -> None:
    """Several replacements in a row: only the last stays, all earlier ones are closed."""
    registry = InMemoryRegistry()
    sessions = [make_session("A")[0] for _ in range(5)]
    for session in sessions:
        await registry.register(session)
    for session in sessions:  # they leave in any order; none removes the last
        if session is not sessions[-1]:
            await registry.unregister(session)
    await registry.aclose()
    assert registry.get("A") is sessions[-1]
    assert all(s.ended for s in sessions[:-1]) and not sessions[-1].ended


async def test_replacing_does_not_touch_other_stations() -> None:
    """Replacing station A leaves station B alone."""
    registry = InMemoryRegistry()
    a, _ = make_session("A")
    b, _ = make_session("B")
    a2, _ = make_session("A")
    for session in (a, b, a2):
        await registry.register(session)
    await registry.aclose()
    assert registry.get("B") is b and not b.ended
    assert registry.get("A") is a2 and a.ended


async def test_registering_the_same_session_twice_does_not_close_it() -> None:
    """Registering the already registered session again does not close it."""
    registry = InMemoryRegistry(duplicate_policy="reject")
    session, _ = make_session("A")
    await registry.register(session)
    await registry.register(session)
    await registry.aclose()
    assert registry.get("A") is session and not session.ended


# -- duplicate policy "reject" ----------------------------------------------------------


async def test_reject_refuses_a_second_connection() -> None:
    """With "reject", a second connection raises DuplicateConnection; the first stays."""
    registry = InMemoryRegistry(duplicate_policy="reject")
    events = recorder(registry)
    old, _ = make_session("A")
    new, _ = make_session("A")
    await registry.register(old)
    with pytest.raises(DuplicateConnection) as caught:
        await registry.register(new)
    assert caught.value.station_id == "A"
    await registry.aclose()
    assert registry.get("A") is old and not old.ended
    assert events == [("connected", "A", old)]
    await registry.unregister(new)  # the refused one leaving changes nothing
    assert registry.get("A") is old


async def test_reject_accepts_when_old_one_is_already_closed() -> None:
    """With "reject", a station whose old session already ended may connect again."""
    registry = InMemoryRegistry(duplicate_policy="reject")
    old, _ = make_session("A")
    new, _ = make_session("A")
    await registry.register(old)
    await old.close()
    await registry.register(new)
    assert registry.get("A") is new
    await registry.unregister(old)  # the old one's server handler finishing late
    assert registry.get("A") is new


async def test_replace_with_closed_old_session_does_not_close_again() -> None:
    """With "replace", an old session that already ended is simply superseded."""
    registry = InMemoryRegistry()
    old, old_station = make_session("A")
    new, _ = make_session("A")
    await registry.register(old)
    await old.close(1001, "going away")
    await registry.register(new)
    await registry.aclose()
    with pytest.raises(TransportClosed) as caught:
        await asyncio.wait_for(old_station.recv(), 1)
    assert (caught.value.code, caught.value.reason) == (1001, "going away")
    assert registry.get("A") is new


@pytest.mark.parametrize("policy", ["keep", "", "REPLACE", None])
def test_invalid_policy(policy: Any) -> None:
    """An unknown duplicate policy is refused with ValueError."""
    with pytest.raises(ValueError, match="duplicate_policy"):
        InMemoryRegistry(duplicate_policy=policy)


# -- registration status memory ---------------------------------------------------------


async def test_registration_status_memory() -> None:
    """The last status given to a station is remembered, per station, across connections."""
    registry = InMemoryRegistry()
    assert await registry.registration_status("A") is None
    await registry.set_registration_status("A", "Pending")
    await registry.set_registration_status("A", "Accepted")
    await registry.set_registration_status("B", "Rejected")
    assert await registry.registration_status("A") == "Accepted"
    assert await registry.registration_status("B") == "Rejected"
    session, _ = make_session("A")
    await registry.register(session)
    await registry.unregister(session)
    assert await registry.registration_status("A") == "Accepted"


async def test_registration_status_memory_is_bounded() -> None:
    """Past remember_statuses, the station whose status was set longest ago is forgotten."""
    registry = InMemoryRegistry(remember_statuses=2)
    await registry.set_registration_status("A", "Accepted")
    await registry.set_registration_status("B", "Accepted")
    await registry.set_registration_status("A", "Pending")  # A is now the most recent
    await registry.set_registration_status("C", "Accepted")
    assert await registry.registration_status("B") is None
    assert await registry.registration_status("A") == "Pending"
    assert await registry.registration_status("C") == "Accepted"


@asynccontextmanager
async def admitted(
    registry: ConnectionRegistry, session_class: type[StationSession], station_id: str = "A"
) -> AsyncIterator[tuple[StationSession, ScriptedStation]]:
    """A station run by a transport-neutral Admission over an in-memory transport."""
    admission = Admission(
        {OcppVersion.V16: session_class},
        [OcppVersion.V16],
        registry=registry,
        hooks=Hooks(),
        instruments=Instruments(),
    )
    path = f"/{station_id}"
    ticket = await admission.admit(
        path, lambda sid: Handshake(sid, path, {}, ("memory", 0), ("ocpp1.6",))
    )
    assert isinstance(ticket, Ticket)
    csms_side, station_side = memory_transport_pair()
    run = asyncio.create_task(admission.run(ticket, csms_side, OcppVersion.V16))
    await wait_until(lambda: registry.local_session(station_id) is not None, 5)
    session = registry.local_session(station_id)
    assert session is not None
    try:
        yield session, ScriptedStation(station_side)
    finally:
        await station_side.close()
        await asyncio.wait_for(run, 5)


async def test_session_takes_remembered_status_when_it_runs() -> None:
    """A reconnecting station's new session starts with the status the registry remembers."""
    registry = InMemoryRegistry()
    await registry.set_registration_status("A", "Accepted")
    async with admitted(registry, StationSession) as (session, _):
        assert session.registration_status == "Accepted"
        assert session.booted


async def test_accepted_boot_is_remembered_by_the_registry() -> None:
    """A session's answered BootNotification status is written to the registry."""

    class Booting(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> result16.BootNotification:
            return result16.BootNotification("2026-11-27T10:00:00Z", 60, "Accepted")

    registry = InMemoryRegistry()
    async with admitted(registry, Booting) as (session, station):
        assert await registry.registration_status("A") is None
        answer = await station.call(
            "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
        # stored before the answer went out
        assert await registry.registration_status("A") == "Accepted"
        assert session.booted
        record = await registry.record("A")
        assert record is not None and record.registration_status == "Accepted"
        assert record.boot is not None and record.boot.vendor == "V"
    assert "A" not in registry


async def test_the_session_never_touches_the_registry() -> None:
    """A session run on its own (no supervisor) neither registers nor leaves a registry."""
    registry = InMemoryRegistry()
    session, station_side = make_session("A")
    await registry.register(session)
    task = asyncio.create_task(session.run())
    await station_side.close()
    await asyncio.wait_for(task, 5)
    assert session.ended
    assert registry.get("A") is session  # only whoever registered it unregisters it


# -- commands ---------------------------------------------------------------------------


async def test_call_and_send_unknown_station_raise_station_not_connected() -> None:
    """call() and send() to a station that is not registered raise StationNotConnected."""
    registry = InMemoryRegistry()
    with pytest.raises(StationNotConnected) as caught:
        await registry.call("nobody", call16.ClearCache())
    assert caught.value.station_id == "nobody"
    with pytest.raises(StationNotConnected):
        await registry.send("nobody", {"data": "x"}, action="NotifyPeriodicEventStream")


async def test_call_and_send_closed_station_raise_station_not_connected() -> None:
    """call() and send() to a registered but closed session raise StationNotConnected."""
    registry = InMemoryRegistry()
    session, _ = make_session("A", "2.1")
    await registry.register(session)
    await session.close()
    assert "A" in registry  # its handler has not unregistered it yet
    with pytest.raises(StationNotConnected):
        await registry.call("A", {}, action="ClearCache")
    with pytest.raises(StationNotConnected):
        await registry.send("A", {"data": "x"}, action="NotifyPeriodicEventStream")


async def test_call_goes_to_the_registered_session() -> None:
    """call() through the registry reaches the station and returns its typed answer."""
    registry = InMemoryRegistry()
    session, station_side = make_session("A")
    await registry.register(session)
    task = asyncio.create_task(session.run())
    station = ScriptedStation(station_side)
    try:
        pending = asyncio.create_task(registry.call("A", call16.ClearCache(), timeout=5))
        frame = await station.recv()
        assert frame[0] == 2 and frame[2] == "ClearCache"
        await station.send([3, frame[1], {"status": "Accepted"}])
        answer = await pending
        assert isinstance(answer, result16.ClearCache) and answer.status == "Accepted"
    finally:
        await station.close()
        await asyncio.wait_for(task, 5)


# -- aclose -----------------------------------------------------------------------------


class SlowClosing(MemoryTransport):
    """A transport whose close takes until ``gate`` is set."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.gate.wait()
        await super().close(code, reason)


async def test_aclose_waits_for_replaced_connections_to_close() -> None:
    """aclose() returns only once connections closed as replaced have closed."""
    registry = InMemoryRegistry()
    gate = asyncio.Event()
    slow = SlowClosing(gate)
    old = StationSession("A", slow, "1.6")
    new, _ = make_session("A")
    await registry.register(old)
    await registry.register(new)
    closing = asyncio.create_task(registry.aclose())
    await asyncio.sleep(0.02)
    assert not closing.done()
    assert not slow.closed
    gate.set()
    await asyncio.wait_for(closing, 1)
    assert slow.closed


async def test_aclose_with_nothing_to_wait_for() -> None:
    """aclose() on a registry with no replaced connections returns at once."""
    registry = InMemoryRegistry()
    await asyncio.wait_for(registry.aclose(), 1)
    session, _ = make_session("A")
    await registry.register(session)
    await asyncio.wait_for(registry.aclose(), 1)
    assert not session.ended


class CountingRegistry(InMemoryRegistry):
    """Counts aclose() calls."""

    closes = 0

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()


async def test_a_server_closes_only_the_registry_it_created() -> None:
    """A registry given to serve() stays the application's: the server never closes it."""
    from csms_kit import serve

    mine = CountingRegistry()
    async with serve(StationSession, "127.0.0.1", 0, registry=mine, ping_interval=None):
        pass
    assert mine.closes == 0
    closed: list[ConnectionRegistry] = []
    async with serve(StationSession, "127.0.0.1", 0, ping_interval=None) as server:
        owned = server.registry
        original = owned.aclose

        async def counted() -> None:
            closed.append(owned)
            await original()

        owned.aclose = counted  # type: ignore[method-assign]
    assert closed == [owned]
