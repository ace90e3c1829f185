"""csms_kit.tracing over real loopback WebSockets: the spans the SDK exports (in memory)
after real traffic through ``serve()``, with their kinds, attributes, status and parents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from csms_kit import (
    CallTimeout,
    CsmsServer,
    ErrorCode,
    RpcError,
    StationDisconnected,
    StationSession,
    connect_station,
    on,
    serve,
)
from csms_kit.testing import connect_scripted
from csms_kit.tracing import OpenTelemetryTracing
from tests.helpers import wait_until

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 5.0

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
#: The tracer "the application's" handlers use, on the same provider.
app_tracer = provider.get_tracer("tests.app")


class Csms(StationSession):
    """Handlers that make spans of their own, sync (on the reader) and async (in a task)."""

    boot_gate = False
    handler_grace = 0.3

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        with app_tracer.start_as_current_span("sync work"):
            return {"currentTime": NOW}

    @on("StatusNotification")
    async def status(self, request: Any) -> dict[str, Any]:
        with app_tracer.start_as_current_span("async work"):
            await asyncio.sleep(0)
            with app_tracer.start_as_current_span("nested work"):
                await asyncio.sleep(0)
        # A call back to the station from the handler: a CLIENT span, child of this one.
        await self.call({"requestedMessage": "Heartbeat"}, action="TriggerMessage")
        return {}

    @on("DataTransfer")
    async def data_transfer(self, request: Any) -> dict[str, Any]:
        if request.vendor_id == "rpc":
            raise RpcError(ErrorCode.GENERIC_ERROR, "refused on purpose")
        if request.vendor_id == "crash":
            raise RuntimeError("boom")
        if request.vendor_id == "slow":
            # Answers once the station is gone.
            await wait_until(lambda: self.ended, TIMEOUT, "the station gone")
        if request.vendor_id == "stuck":
            await asyncio.sleep(60)  # cancelled handler_grace after the station left
        return {"status": "Accepted"}


@pytest.fixture(autouse=True)
def clear_spans() -> None:
    exporter.clear()


@asynccontextmanager
async def traced() -> AsyncIterator[CsmsServer]:
    """A server on a free loopback port with the tracing instrument on the test provider."""
    async with serve(
        Csms,
        HOST,
        0,
        ping_interval=None,
        close_timeout=1,
        instruments=[OpenTelemetryTracing(provider)],
    ) as server:
        yield server


def url(server: CsmsServer) -> str:
    return f"ws://{HOST}:{server.port}"


async def spans_named(name: str, count: int) -> list[ReadableSpan]:
    """Wait until ``count`` spans named ``name`` have ended; all the spans ended so far."""
    await wait_until(
        lambda: len([s for s in exporter.get_finished_spans() if s.name == name]) >= count,
        TIMEOUT,
        f"{count} x {name}",
    )
    return list(exporter.get_finished_spans())


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_a_server_span_per_incoming_call() -> None:
    """3 Heartbeats from a 2.0.1 station: 3 SERVER spans, each a trace root, with attributes."""
    async with traced() as server, connect_station(url(server), "CP-201", "2.0.1") as station:
        for _ in range(3):
            await station.call({}, action="Heartbeat")
        spans = await spans_named("OCPP Heartbeat", 3)
    calls = [s for s in spans if s.name == "OCPP Heartbeat"]
    assert len(calls) == 3
    for span in calls:
        assert span.kind is SpanKind.SERVER
        assert span.parent is None  # the station started it: nothing of ours was current
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        message_id = attributes.pop("ocpp.message_id")
        assert isinstance(message_id, str) and message_id
        assert attributes == {
            "rpc.system": "ocpp",
            "rpc.method": "Heartbeat",
            "ocpp.station_id": "CP-201",
            "ocpp.action": "Heartbeat",
            "ocpp.version": "2.0.1",
            "ocpp.outcome": "result",
        }
    assert len({trace_id(s) for s in calls}) == 3  # nothing leaks from one call to the next
    assert len({s.attributes["ocpp.message_id"] for s in calls}) == 3  # type: ignore[index]


async def test_a_sync_handlers_spans_are_children_of_its_call() -> None:
    """A sync handler (run on the reader) creates a span: its parent is the CALL's span."""
    async with traced() as server, connect_scripted(url(server), "CP-1", "1.6") as station:
        await station.call("hb-1", "Heartbeat", {})
        await station.call("hb-2", "Heartbeat", {})
        spans = await spans_named("OCPP Heartbeat", 2)
    calls = [s for s in spans if s.name == "OCPP Heartbeat"]
    work = [s for s in spans if s.name == "sync work"]
    assert len(work) == 2
    for call, child in zip(calls, work, strict=True):
        assert parent_of(child) == span_id(call)
        assert trace_id(child) == trace_id(call)
        assert call.attributes is not None and call.attributes["ocpp.version"] == "1.6"


async def test_an_async_handlers_work_and_its_call_to_the_station_are_children() -> None:
    """An async handler's spans, nested ones, and its CALL back to the station: one tree."""
    async with traced() as server, connect_scripted(url(server), "CP-1", "2.0.1") as station:
        payload = {
            "timestamp": NOW,
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        }
        await station.send([2, "sn-1", "StatusNotification", payload])
        trigger = await station.recv()
        assert trigger[2] == "TriggerMessage"
        await station.send([3, trigger[1], {"status": "Accepted"}])
        assert await station.recv() == [3, "sn-1", {}]
        spans = await spans_named("OCPP StatusNotification", 1)
    call = only(spans, "OCPP StatusNotification")
    work = only(spans, "async work")
    nested = only(spans, "nested work")
    out = only(spans, "OCPP TriggerMessage")
    assert call.kind is SpanKind.SERVER and out.kind is SpanKind.CLIENT
    assert parent_of(work) == span_id(call)
    assert parent_of(nested) == span_id(work)
    assert parent_of(out) == span_id(call)
    assert {trace_id(s) for s in (call, work, nested, out)} == {trace_id(call)}
    assert out.attributes is not None
    assert out.attributes["ocpp.message_id"] == trigger[1]
    assert out.attributes["ocpp.outcome"] == "result"
    assert out.attributes["ocpp.version"] == "2.0.1"
    # The CALL's span lasts until its answer: it encloses the call back to the station.
    assert call.start_time is not None and call.end_time is not None
    assert out.start_time is not None and out.end_time is not None
    assert call.start_time <= out.start_time and out.end_time <= call.end_time


@pytest.mark.parametrize("vendor_id", ["rpc", "crash"])
async def test_a_callerror_answer_sets_error_status(vendor_id: str) -> None:
    """A handler's RpcError or crash: ERROR status, outcome "error"; a crash is recorded too."""
    async with traced() as server, connect_scripted(url(server), "CP-1", "1.6") as station:
        answer = await station.call("dt-1", "DataTransfer", {"vendorId": vendor_id})
        assert answer[0] == 4
        spans = await spans_named("OCPP DataTransfer", 1)
    span = only(spans, "OCPP DataTransfer")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "error"
    assert span.attributes is not None and span.attributes["ocpp.outcome"] == "error"
    exceptions = [e for e in span.events if e.name == "exception"]
    if vendor_id == "crash":
        (event,) = exceptions
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "RuntimeError"
        assert event.attributes["exception.message"] == "boom"
    else:
        assert exceptions == []  # an RpcError is an answer, not a failure


@pytest.mark.parametrize(
    ("answer", "outcome"), [("silence", "timeout"), ("close", "disconnected")]
)
async def test_an_outgoing_call_that_fails_sets_error_status(answer: str, outcome: str) -> None:
    """Our CALL timing out or cut off: a CLIENT span with ERROR status, a child of the caller's."""
    async with traced() as server, connect_scripted(url(server), "CP-1", "1.6") as station:
        await server.registry.wait_connected("CP-1", TIMEOUT)
        with app_tracer.start_as_current_span("api request") as request_span:
            task = asyncio.create_task(
                server.registry.call("CP-1", {"type": "Soft"}, action="Reset", timeout=0.2)
            )
            frame = await station.recv()
            if answer == "close":
                await station.close(4000, "bye")
            with pytest.raises(CallTimeout if answer == "silence" else StationDisconnected):
                await task
            assert trace.get_current_span() is request_span  # the call left it current
        spans = await spans_named("OCPP Reset", 1)
    span = only(spans, "OCPP Reset")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == outcome
    assert span.attributes is not None
    assert span.attributes["ocpp.outcome"] == outcome
    assert span.attributes["ocpp.message_id"] == frame[1]
    assert parent_of(span) == span_id(only(spans, "api request"))


@pytest.mark.parametrize("vendor_id", ["slow", "stuck"])
async def test_an_incoming_call_whose_station_left_is_disconnected(vendor_id: str) -> None:
    """The station leaves while its handler runs (or is cancelled): outcome "disconnected"."""
    async with traced() as server:
        async with connect_scripted(url(server), "CP-1", "1.6") as station:
            await station.send([2, "dt-1", "DataTransfer", {"vendorId": vendor_id}])
            await wait_until(
                lambda: any(s.endpoint.calls_in_progress for s in server.sessions),
                TIMEOUT,
                "the handler running",
            )
        spans = await spans_named("OCPP DataTransfer", 1)
    span = only(spans, "OCPP DataTransfer")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "disconnected"
    assert span.attributes is not None and span.attributes["ocpp.outcome"] == "disconnected"


async def test_an_instrument_on_the_global_provider_uses_it_lazily() -> None:
    """Without a provider, the instrument follows the global one (a no-op until one is set)."""
    instrument = OpenTelemetryTracing()
    async with (
        serve(Csms, HOST, 0, ping_interval=None, instruments=[instrument]) as server,
        connect_scripted(url(server), "CP-1", "1.6") as station,
    ):
        assert (await station.call("hb-1", "Heartbeat", {}))[0] == 3
    # No global provider is set in these tests: only the handler's own span was exported.
    assert [s.name for s in exporter.get_finished_spans()] == ["sync work"]


def test_points_out_of_order_are_ignored() -> None:
    """A call_finished with no open span of that id ends nothing; a station never seen
    opening gets a span without ocpp.version."""
    instrument = OpenTelemetryTracing(provider)
    instrument.call_finished("CP-9", "in", "Heartbeat", "never-started", "result", 0.0)
    assert exporter.get_finished_spans() == ()
    instrument.call_started("CP-9", "out", "Reset", "m-1")
    instrument.call_started("CP-9", "in", "Heartbeat", "m-2")
    # Finishing the outer one first ends it, and drops the inner one from the stack.
    instrument.call_finished("CP-9", "out", "Reset", "m-1", "result", 0.0)
    instrument.call_finished("CP-9", "in", "Heartbeat", "m-2", "result", 0.0)
    (span,) = exporter.get_finished_spans()
    assert span.name == "OCPP Reset"
    assert span.attributes is not None and "ocpp.version" not in span.attributes
    assert trace.get_current_span() is not span  # nothing of it left current
