"""csms_kit.metrics over real loopback WebSockets: what a scrape of the registry shows
after real traffic through ``serve()`` (each test on a registry of its own)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms_kit import (
    CallError,
    CallTimeout,
    CsmsServer,
    Handshake,
    Limits,
    RateLimit,
    Rejection,
    StationDisconnected,
    StationSession,
    UsageError,
    connect_station,
    serve,
)
from csms_kit.metrics import OTHER_ACTION, PrometheusMetrics
from csms_kit.testing import connect_scripted
from tests.helpers import wait_until
from tests.observability.exposition import Samples, scrape, total, value
from tests.test_instruments import Csms

HOST = "127.0.0.1"
TIMEOUT = 5.0


@asynccontextmanager
async def metered(
    session: type[StationSession] = Csms, **options: Any
) -> AsyncIterator[tuple[CsmsServer, CollectorRegistry]]:
    """A server on a free loopback port, metered into a registry of its own."""
    registry = CollectorRegistry()
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 1)
    async with serve(
        session, HOST, 0, instruments=[PrometheusMetrics(registry)], **options
    ) as server:
        yield server, registry


def url(server: CsmsServer) -> str:
    return f"ws://{HOST}:{server.port}"


async def until(registry: CollectorRegistry, what: str, check: Any) -> Samples:
    """Scrape until ``check(samples)`` holds; the last scrape."""
    last: dict[str, Samples] = {}

    def holds() -> bool:
        last["samples"] = scrape(registry)
        return bool(check(last["samples"]))

    await wait_until(holds, TIMEOUT, what)
    return last["samples"]


def label_values(samples: Samples) -> set[str]:
    return {label_value for _, labels in samples for _, label_value in labels}


# -- calls and frames ---------------------------------------------------------------------


async def test_three_heartbeats_from_a_201_station() -> None:
    """3 Heartbeats from a 2.0.1 station: calls, durations, frames and the connected gauge."""
    async with metered() as (server, registry):
        async with connect_station(url(server), "CP-201", "2.0.1") as station:
            for _ in range(3):
                await station.call({}, action="Heartbeat")
            calls = {"direction": "in", "action": "Heartbeat", "outcome": "result"}
            samples = await until(
                registry,
                "3 Heartbeats counted",
                lambda s: value(s, "csms_kit_calls_total", **calls) == 3,
            )
            assert value(samples, "csms_kit_call_duration_seconds_count", **calls) == 3
            assert value(samples, "csms_kit_call_duration_seconds_bucket", le="+Inf", **calls) == 3
            assert 0 < value(samples, "csms_kit_call_duration_seconds_sum", **calls) < 3  # type: ignore[operator]
            frames_in = {"direction": "in", "type": "call", "action": "Heartbeat"}
            frames_out = {"direction": "out", "type": "result", "action": "Heartbeat"}
            assert value(samples, "csms_kit_frames_total", **frames_in) == 3
            assert value(samples, "csms_kit_frames_total", **frames_out) == 3
            assert total(samples, "csms_kit_frames_total") == 6
            assert value(samples, "csms_kit_connected_stations", version="2.0.1") == 1
            assert value(samples, "csms_kit_connected_stations", version="1.6") == 0
            assert value(samples, "csms_kit_connections_total", version="2.0.1") == 1
            assert total(samples, "csms_kit_calls_total", direction="out") == 0
        samples = await until(
            registry,
            "the station gone",
            lambda s: value(s, "csms_kit_connected_stations", version="2.0.1") == 0,
        )
        assert value(samples, "csms_kit_disconnections_total", code="1000") == 1
        assert "CP-201" not in label_values(samples)  # never a label: unbounded


async def test_outgoing_calls_by_outcome() -> None:
    """Reset to a 1.6 station answered, refused, unanswered, cut off: one count per outcome."""
    async with metered() as (server, registry):
        async with connect_scripted(url(server), "CP-1", "1.6") as station:
            await server.registry.wait_connected("CP-1", TIMEOUT)

            async def reset(answer: str, timeout: float = TIMEOUT) -> None:
                task = asyncio.create_task(
                    server.registry.call("CP-1", {"type": "Soft"}, action="Reset", timeout=timeout)
                )
                frame = await station.recv()
                assert frame[2] == "Reset"
                if answer == "result":
                    await station.send([3, frame[1], {"status": "Accepted"}])
                    assert (await task).status == "Accepted"
                elif answer == "callerror":
                    await station.send([4, frame[1], "NotSupported", "no", {}])
                    with pytest.raises(CallError):
                        await task
                elif answer == "silence":
                    with pytest.raises(CallTimeout):
                        await task
                else:
                    await station.close(4000, "bye")
                    with pytest.raises(StationDisconnected):
                        await task

            await reset("result")
            await reset("callerror")
            await reset("silence", timeout=0.2)
            await reset("close")
        out = {"direction": "out", "action": "Reset"}
        samples = await until(
            registry,
            "4 Resets counted and the station gone",
            lambda s: (
                total(s, "csms_kit_calls_total", **out) == 4
                and total(s, "csms_kit_connected_stations") == 0
            ),
        )
        for outcome in ("result", "error", "timeout", "disconnected"):
            assert value(samples, "csms_kit_calls_total", outcome=outcome, **out) == 1, outcome
            assert value(samples, "csms_kit_call_duration_seconds_count", outcome=outcome, **out)
        timed_out = value(samples, "csms_kit_call_duration_seconds_sum", outcome="timeout", **out)
        # At least the 0.2 s timeout (a timer may fire a clock tick early).
        assert timed_out is not None and 0.2 - 1e-6 <= timed_out < 2
        assert value(samples, "csms_kit_frames_total", type="call", **out) == 4
        received = {"direction": "in", "action": "Reset"}
        assert value(samples, "csms_kit_frames_total", type="result", **received) == 1
        assert value(samples, "csms_kit_frames_total", type="error", **received) == 1
        assert value(samples, "csms_kit_disconnections_total", code="4xxx") == 1


async def test_handler_failures_and_callerrors() -> None:
    """A crashing handler counts a failure and an error; an RpcError only an error."""
    async with (
        metered() as (server, registry),
        connect_scripted(url(server), "CP-1", "2.0.1") as station,
    ):
        assert (await station.call("1", "DataTransfer", {"vendorId": "crash"}))[2] == (
            "InternalError"
        )
        assert (await station.call("2", "DataTransfer", {"vendorId": "rpc"}))[2] == "GenericError"
        assert (await station.call("3", "DataTransfer", {"vendorId": "ok"}))[0] == 3
        calls = {"direction": "in", "action": "DataTransfer"}
        samples = await until(
            registry,
            "3 DataTransfers",
            lambda s: total(s, "csms_kit_calls_total", **calls) == 3,
        )
        assert value(samples, "csms_kit_calls_total", outcome="error", **calls) == 2
        assert value(samples, "csms_kit_calls_total", outcome="result", **calls) == 1
        assert value(samples, "csms_kit_handler_failures_total", action="DataTransfer") == 1
        errors = {"direction": "out", "type": "error", "action": "DataTransfer"}
        assert value(samples, "csms_kit_frames_total", **errors) == 2


async def test_made_up_actions_are_counted_as_other() -> None:
    """CALLs of 8 made-up actions: counted under action "other", none by its own name."""
    async with (
        metered() as (server, registry),
        connect_scripted(url(server), "CP-1", "1.6") as station,
    ):
        for n in range(8):
            answer = await station.call(f"m-{n}", f"MadeUp{n}", {})
            assert answer[2] == "NotImplemented"
        await station.call("hb", "Heartbeat", {})
        samples = await until(
            registry,
            "the Heartbeat counted",
            lambda s: total(s, "csms_kit_calls_total", action="Heartbeat") == 1,
        )
        other = {"direction": "in", "type": "call", "action": OTHER_ACTION}
        assert value(samples, "csms_kit_frames_total", **other) == 8
        refused = {"handling": "refused", "code": "NotImplemented", "malformed": "false"}
        assert value(samples, "csms_kit_bad_frames_total", **refused) == 8
        # The CALLERRORs carry no action of their own: labelled "".
        assert (
            value(samples, "csms_kit_frames_total", direction="out", type="error", action="") == 8
        )
        assert not [v for v in label_values(samples) if v.startswith("MadeUp")]


async def test_malformed_and_unexpected_frames() -> None:
    """Garbage text is refused (malformed); an unsolicited CALLRESULT is dropped."""
    async with (
        metered() as (server, registry),
        connect_scripted(url(server), "CP-1", "2.0.1") as station,
    ):
        await station.send("this is not json")
        assert (await station.recv())[0] == 4
        await station.send([3, "nobody-asked", {}])
        assert await station.nothing_more()
        samples = await until(
            registry,
            "two bad frames",
            lambda s: total(s, "csms_kit_bad_frames_total") == 2,
        )
        assert total(s := samples, "csms_kit_bad_frames_total", handling="refused") == 1
        assert total(s, "csms_kit_bad_frames_total", handling="refused", malformed="true") == 1
        dropped = {"handling": "dropped", "code": "", "malformed": "false"}
        assert value(s, "csms_kit_bad_frames_total", **dropped) == 1
        assert value(s, "csms_kit_frames_total", direction="in", type="invalid", action="") == 1


# -- connections ----------------------------------------------------------------------


async def test_handshake_rejections_by_status() -> None:
    """A malformed identity (400) and a refused one (401): counted by status, no connection."""

    def authenticate(handshake: Handshake) -> Rejection | None:
        return Rejection(401, "no\n") if handshake.station_id == "BAD" else None

    async with metered(authenticate=authenticate) as (server, registry):
        for path, status in ((f"/{'x' * 49}", 400), ("/BAD", 401)):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{url(server)}{path}", open_timeout=TIMEOUT):
                    pass  # pragma: no cover - the handshake must fail
            assert refused.value.response.status_code == status
        samples = scrape(registry)
    assert value(samples, "csms_kit_handshake_rejections_total", status="400") == 1
    assert value(samples, "csms_kit_handshake_rejections_total", status="401") == 1
    assert total(samples, "csms_kit_connections_total") == 0


async def test_a_station_replacing_its_connection_keeps_the_gauge_right() -> None:
    """CP-1 on 1.6, then CP-1 again on 2.0.1 (replacing it): the gauge follows each version."""
    async with metered() as (server, registry):
        async with connect_scripted(url(server), "CP-1", "1.6") as old:
            await old.call("1", "Heartbeat", {})
            async with connect_scripted(url(server), "CP-1", "2.0.1") as new:
                await new.call("2", "Heartbeat", {})
                samples = await until(
                    registry,
                    "the old connection gone",
                    lambda s: value(s, "csms_kit_connected_stations", version="1.6") == 0,
                )
                assert value(samples, "csms_kit_connected_stations", version="2.0.1") == 1
                assert total(samples, "csms_kit_connections_total") == 2
        await until(
            registry,
            "no station left",
            lambda s: total(s, "csms_kit_connected_stations") == 0,
        )


async def test_close_codes_are_bucketed() -> None:
    """Close codes keep RFC 6455's own (1000-1015); the 3000s and 4000s are one label each."""
    async with metered() as (server, registry):
        for n, code in enumerate((1001, 3001, 3999, 4321)):
            async with connect_scripted(url(server), f"CP-{n}", "1.6") as station:
                await station.call("1", "Heartbeat", {})
                await station.close(code, "bye")
        samples = await until(
            registry,
            "4 stations gone",
            lambda s: total(s, "csms_kit_disconnections_total") == 4,
        )
    assert value(samples, "csms_kit_disconnections_total", code="1001") == 1
    assert value(samples, "csms_kit_disconnections_total", code="3xxx") == 2
    assert value(samples, "csms_kit_disconnections_total", code="4xxx") == 1


async def test_keepalive_timeout_is_counted() -> None:
    """A station that stops reading (so never answers a ping) is closed and counted once."""
    async with (
        metered(ping_interval=0.1, ping_timeout=0.2) as (server, registry),
        connect_scripted(url(server), "CP-1", "1.6") as station,
    ):
        await station.call("1", "Heartbeat", {})
        assert scrape(registry)[("csms_kit_keepalive_timeouts_total", frozenset())] == 0
        station.connection.transport.pause_reading()  # type: ignore[attr-defined]
        samples = await until(
            registry,
            "the station closed for its silence",
            lambda s: total(s, "csms_kit_connected_stations") == 0,
        )
        assert value(samples, "csms_kit_keepalive_timeouts_total") == 1
        station.connection.transport.resume_reading()  # type: ignore[attr-defined]


class Strict(Csms):
    limits = Limits(frames=RateLimit(rate=20, burst=2))


async def test_a_fast_station_is_slowed_and_counted() -> None:
    """Back-to-back Heartbeats past a burst of 2: slowed (one episode), never refused."""
    async with (
        metered(Strict) as (server, registry),
        connect_scripted(url(server), "CP-1", "1.6") as station,
    ):
        for n in range(6):
            assert (await station.call(str(n), "Heartbeat", {}))[0] == 3
        samples = await until(
            registry,
            "6 Heartbeats",
            lambda s: total(s, "csms_kit_calls_total", action="Heartbeat") == 6,
        )
        assert value(samples, "csms_kit_throttled_total", how="slowed") == 1
        assert value(samples, "csms_kit_throttled_total", how="refused") is None


# -- the instrument itself ----------------------------------------------------------------


async def test_registries_are_isolated() -> None:
    """Traffic metered into one registry leaves another instrument's registry at zero."""
    quiet = CollectorRegistry()
    PrometheusMetrics(quiet)
    async with (
        metered() as (server, registry),
        connect_scripted(url(server), "CP-1", "1.6") as station,
    ):
        await station.call("1", "Heartbeat", {})
        await until(registry, "counted", lambda s: total(s, "csms_kit_calls_total") == 1)
    assert total(scrape(quiet), "csms_kit_calls_total") == 0
    assert total(scrape(quiet), "csms_kit_connections_total") == 0


def test_a_second_instrument_on_one_registry_is_refused() -> None:
    """prometheus_client refuses the same metric names twice in one registry."""
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)


def test_action_labels() -> None:
    """Known actions of any version keep their name; extra_actions too; others are "other"."""
    metrics = PrometheusMetrics(CollectorRegistry(), extra_actions=["AcmeSelfTest"])
    assert metrics.action_label("Heartbeat") == "Heartbeat"  # every version
    assert metrics.action_label("TransactionEvent") == "TransactionEvent"  # 2.x
    assert metrics.action_label("StartTransaction") == "StartTransaction"  # 1.6
    assert metrics.action_label("AcmeSelfTest") == "AcmeSelfTest"
    assert metrics.action_label("heartbeat") == OTHER_ACTION
    assert metrics.action_label(None) == ""


def test_one_instrument_counts_from_one_thread(caplog: pytest.LogCaptureFixture) -> None:
    """Servers in two threads sharing one instrument: the second thread's station is not
    counted as connected, and the UsageError saying what to do is logged."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)

    async def one_station() -> None:
        async with (
            serve(Csms, HOST, 0, ping_interval=None, instruments=[metrics]) as server,
            connect_scripted(url(server), "CP-1", "1.6") as station,
        ):
            await station.call("1", "Heartbeat", {})

    asyncio.run(one_station())
    with caplog.at_level(logging.ERROR, logger="csms_kit.instruments"):
        thread = threading.Thread(target=asyncio.run, args=(one_station(),))
        thread.start()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    (record,) = [r for r in caplog.records if r.name == "csms_kit.instruments"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], UsageError)
    assert "an instrument of their own" in str(record.exc_info[1])
    assert value(scrape(registry), "csms_kit_connections_total", version="1.6") == 1
