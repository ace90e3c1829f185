"""StationSession over an in-memory transport: concurrency, calls, timeouts, endings."""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc
import types
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import RegistrationStatus
from ocpp.v21 import call_result as result21
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms_kit import (
    CallError,
    CallTimeout,
    ErrorCode,
    InvalidPayload,
    InvalidResponse,
    RpcError,
    SessionClosed,
    StationDisconnected,
    StationSession,
    UsageError,
    after,
    on,
)
from csms_kit.limits import UNLIMITED
from csms_kit.protocol.extra_types import NotifyPeriodicEventStream, StreamDataElementType
from csms_kit.testing import ScriptedStation, memory_transport_pair, run_session

NOW = "2026-11-27T10:00:00Z"
BOOT16 = {
    "chargePointVendor": "ACME",
    "chargePointModel": "Fast-1",
    "chargePointSerialNumber": "SN-9",
}


class Csms16(StationSession):
    """A 1.6 CSMS with the handlers the tests need (boot gate, limits: tested on their own)."""

    boot_gate = False
    limits = UNLIMITED

    @on("BootNotification")
    async def boot(self, request: call16.BootNotification) -> result16.BootNotification:
        return result16.BootNotification(NOW, 30, RegistrationStatus.accepted)

    @on("Heartbeat")
    def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=NOW)


def get_configuration_answer(message_id: str) -> list[Any]:
    return [3, message_id, {"configurationKey": [{"key": "K", "readonly": False, "value": "1"}]}]


async def test_handler_can_call_its_own_station() -> None:
    """A handler awaiting a call to its own station gets the answer: the reader never waits."""

    class Asking(Csms16):
        @on("Heartbeat")
        async def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
            answer = await self.call(call16.GetConfiguration(key=["K"]))
            self.state["value"] = answer.configuration_key[0].value
            return result16.Heartbeat(current_time=NOW)

    async with run_session(Asking) as (session, station):
        await station.send([2, "hb-1", "Heartbeat", {}])
        outgoing = await station.recv()
        assert outgoing[0] == 2
        assert outgoing[2] == "GetConfiguration"
        await station.send(get_configuration_answer(outgoing[1]))
        assert await station.recv() == [3, "hb-1", {"currentTime": NOW}]
        assert session.state["value"] == "1"


async def test_calls_leave_one_at_a_time_in_fifo_order() -> None:
    """Concurrent call()s go out one by one, each after the previous was answered."""
    async with run_session(Csms16) as (session, station):
        keys = ["A", "B", "C"]
        tasks = [
            asyncio.create_task(session.call(call16.GetConfiguration(key=[key]))) for key in keys
        ]
        for key in keys:
            frame = await station.recv()
            assert frame[3] == {"key": [key]}
            assert await station.nothing_more(), "next CALL sent before this one was answered"
            await station.send(
                [3, frame[1], {"configurationKey": [{"key": key, "readonly": True}]}]
            )
        answers = await asyncio.gather(*tasks)
        assert [a.configuration_key[0].key for a in answers] == keys


async def test_call_returns_typed_response() -> None:
    """call() returns the call_result dataclass with nested dataclasses."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.GetConfiguration()))
        frame = await station.recv()
        assert frame[3] == {}  # unset optionals are omitted
        await station.send(get_configuration_answer(frame[1]))
        answer = await task
        assert isinstance(answer, result16.GetConfiguration)
        assert answer.configuration_key[0].key == "K"


async def test_call_error_raises_typed_exception() -> None:
    """A CALLERROR raises CallError with code, description and details; never None."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Soft")))
        frame = await station.recv()
        await station.send([4, frame[1], "NotSupported", "no reset here", {"why": "test"}])
        with pytest.raises(CallError) as caught:
            await task
        error = caught.value
        assert error.code is ErrorCode.NOT_SUPPORTED
        assert (error.description, error.details) == ("no reset here", {"why": "test"})
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])


async def test_unknown_error_code_keeps_raw_code() -> None:
    """A CALLERROR code no version defines gives code None and the raw string."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Soft")))
        frame = await station.recv()
        await station.send([4, frame[1], "Whatever", "", {}])
        with pytest.raises(CallError) as caught:
            await task
        assert caught.value.code is None
        assert caught.value.raw_code == "Whatever"


async def test_timeout_names_station_action_and_message_id() -> None:
    """An unanswered call raises CallTimeout naming station, action and messageId."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Hard"), timeout=0.05))
        frame = await station.recv()
        with pytest.raises(CallTimeout) as caught:
            await task
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])
        assert "CP-1" in str(error) and "Reset" in str(error) and frame[1] in str(error)


async def test_timeout_while_queued_and_next_call_proceeds() -> None:
    """A call timing out in the queue says so; the queue moves on after a timed-out call."""
    async with run_session(Csms16) as (session, station):
        first = asyncio.create_task(session.call(call16.Reset(type="Hard"), timeout=0.2))
        second = asyncio.create_task(session.call(call16.Reset(type="Soft"), timeout=0.05))
        frame = await station.recv()
        with pytest.raises(CallTimeout) as caught:
            await second
        assert caught.value.message_id is None
        with pytest.raises(CallTimeout):
            await first
        third = asyncio.create_task(session.call(call16.Reset(type="Soft")))
        frame3 = await station.recv()
        assert frame3[1] != frame[1]
        await station.send([3, frame3[1], {"status": "Accepted"}])
        assert (await third).status == "Accepted"


async def test_late_answer_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """An answer arriving after its timeout is dropped, counted and logged."""
    caplog.set_level(logging.DEBUG, "csms_kit")
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Hard"), timeout=0.05))
        frame = await station.recv()
        with pytest.raises(CallTimeout):
            await task
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert await station.call("hb", "Heartbeat", {}) == [3, "hb", {"currentTime": NOW}]
        assert session.stats.unexpected_answers == 1
        assert any("no outstanding CALL" in r.getMessage() for r in caplog.records)


async def test_cancelled_call_frees_the_turn() -> None:
    """Cancelling the caller of an outstanding call lets the next queued call go."""
    async with run_session(Csms16) as (session, station):
        first = asyncio.create_task(session.call(call16.Reset(type="Hard")))
        second = asyncio.create_task(session.call(call16.Reset(type="Soft")))
        frame1 = await station.recv()
        first.cancel()
        frame2 = await station.recv()
        assert frame2[3] == {"type": "Soft"}
        await station.send([3, frame1[1], {"status": "Accepted"}])  # late: dropped
        await station.send([3, frame2[1], {"status": "Rejected"}])
        assert (await second).status == "Rejected"
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_disconnect_fails_pending_and_queued_calls() -> None:
    """When the station goes away, every waiting call fails at once with StationDisconnected."""
    async with run_session(Csms16) as (session, station):
        calls = [
            asyncio.create_task(session.call(call16.Reset(type="Hard"), timeout=30))
            for _ in range(3)
        ]
        await station.recv()
        await station.close(1001, "going away")
        for task in calls:
            with pytest.raises(StationDisconnected) as caught:
                await asyncio.wait_for(task, 1)
            assert (caught.value.code, caught.value.reason) == (1001, "going away")
        assert session.ended
        with pytest.raises(StationDisconnected):
            await session.call(call16.Reset(type="Hard"))


async def test_close_by_us_fails_calls_with_session_closed() -> None:
    """Closing the session ourselves fails waiting calls with SessionClosed."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Hard")))
        await station.recv()
        await session.close(1000, "maintenance")
        with pytest.raises(SessionClosed) as caught:
            await task
        assert caught.value.reason == "maintenance"
        assert not isinstance(caught.value, StationDisconnected)


async def test_invalid_request_raises_before_sending() -> None:
    """A request that breaks the schema raises InvalidPayload and sends nothing."""
    async with run_session(Csms16) as (session, station):
        with pytest.raises(InvalidPayload) as caught:
            await session.call(call16.ChangeConfiguration(key="k" * 51, value="v"))
        assert caught.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
        assert await station.nothing_more()
        with pytest.raises(UsageError):
            await session.call(call16.Heartbeat(), action="NoSuchAction")


async def test_invalid_answer_raises_invalid_response() -> None:
    """A CALLRESULT breaking the schema raises InvalidResponse (the station's fault)."""
    async with run_session(Csms16) as (session, station):
        task = asyncio.create_task(session.call(call16.Reset(type="Hard")))
        frame = await station.recv()
        await station.send([3, frame[1], {"status": "Maybe"}])
        with pytest.raises(InvalidResponse) as caught:
            await task
        assert caught.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
        assert session.stats.bad_frames == 1


async def test_invalid_answer_on_21_is_reported_with_callresulterror() -> None:
    """On OCPP 2.1 an invalid CALLRESULT is also answered with a CALLRESULTERROR."""
    async with run_session(StationSession, "2.1") as (session, station):
        task = asyncio.create_task(session.call({"type": "Immediate"}, action="Reset"))
        frame = await station.recv()
        await station.send([3, frame[1], {"status": 5}])
        with pytest.raises(InvalidResponse):
            await task
        report = await station.recv()
        assert report[:3] == [5, frame[1], "TypeConstraintViolation"]


async def test_unsolicited_answer_flood_keeps_memory_flat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Thousands of unsolicited CALLRESULTs: dropped and counted, memory flat, one warning."""
    caplog.set_level(logging.INFO, "csms_kit")
    async with run_session(Csms16) as (session, station):
        station.record_wire = False  # measure the session, not the station's record
        frame = '[3,"nobody-asked",{"status":"Accepted"}]'
        for _ in range(1000):  # warm-up: allocator pools and caches settle
            await station.send(frame)
        await station.call("hb0", "Heartbeat", {})
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(4_000):
                await station.send(frame)
            assert await station.call("hb1", "Heartbeat", {}) == [3, "hb1", {"currentTime": NOW}]
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert session.stats.unexpected_answers == 5_000
        assert growth < 64 * 1024, f"memory grew by {growth} bytes"
        warnings = [
            r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("csms")
        ]
        assert len(warnings) == 1


async def test_reports_of_errors_in_our_answers_warn_once_and_quote_the_station(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flood of 2.1 CALLRESULTERRORs and unknown answers: one WARNING in all, the rest
    at DEBUG, and the station's own text quoted (a newline in it cannot forge a line)."""
    caplog.set_level(logging.DEBUG, "csms_kit")
    async with run_session(StationSession, "2.1") as (_, station):
        for n in range(20):
            await station.send([5, f"r{n}", "FormatViolation", "bad\nFORGED line", {}])
            await station.send([3, f"u{n}", {}])
        await station.call("hb", "Heartbeat", {})  # answered: everything before is handled
    ours = [r for r in caplog.records if r.name.startswith("csms_kit")]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    reports = [r.getMessage() for r in ours if "error in our CALLRESULT" in r.getMessage()]
    assert len(reports) == 20
    assert all("\n" not in text and "'bad\\nFORGED line'" in text for text in reports)


async def test_handler_error_becomes_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    """Any exception in a handler answers InternalError with a safe text and logs the traceback."""

    class Failing(Csms16):
        @on("Authorize")
        def authorize(self, request: call16.Authorize) -> Any:
            raise RuntimeError("database password is hunter2")

    async with run_session(Failing) as (session, station):
        answer = await station.call("a1", "Authorize", {"idTag": "TAG"})
        assert answer[:3] == [4, "a1", "InternalError"]
        assert "hunter2" not in str(answer)
        assert session.stats.handler_errors == 1
        assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)


async def test_ocpp_error_in_handler_becomes_its_callerror() -> None:
    """RpcError raised by a handler is sent with its code (spelled per version) and details."""

    class Strict(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            raise RpcError(ErrorCode.FORMAT_VIOLATION, "bad tag", {"field": "idTag"})

    async with run_session(Strict) as (_, station):
        answer = await station.call("a1", "Authorize", {"idTag": "TAG"})
        assert answer == [4, "a1", "FormationViolation", "bad tag", {"field": "idTag"}]


async def test_uncaught_call_error_in_handler_is_internal_error() -> None:
    """A station's CALLERROR left uncaught in a handler is not relayed as our answer."""

    class Relaying(Csms16):
        @on("Heartbeat")
        async def heartbeat(self, request: call16.Heartbeat) -> Any:
            await self.call(call16.Reset(type="Soft"))

    async with run_session(Relaying) as (_, station):
        await station.send([2, "h", "Heartbeat", {}])
        frame = await station.recv()
        await station.send([4, frame[1], "NotSupported", "", {}])
        answer = await station.recv()
        assert answer[:3] == [4, "h", "InternalError"]


async def test_invalid_handler_response_is_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler returning a payload that breaks the schema answers InternalError, logged."""

    class Sloppy(Csms16):
        @on("Heartbeat")
        def heartbeat(self, request: call16.Heartbeat) -> Any:
            return {"currentTime": "yesterday"}

        @on("Authorize")
        def authorize(self, request: call16.Authorize) -> Any:
            return None

    async with run_session(Sloppy) as (_, station):
        answer = await station.call("h", "Heartbeat", {})
        assert answer[:3] == [4, "h", "InternalError"]
        answer = await station.call("a", "Authorize", {"idTag": "T"})
        assert answer[:3] == [4, "a", "InternalError"]
    assert sum("bad response" in r.getMessage() for r in caplog.records) == 2


async def test_after_hooks_run_after_the_answer_and_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """@after hooks get request (and response if asked) after the answer; a failure is logged."""
    seen: list[Any] = []

    class Hooked(Csms16):
        @after("BootNotification")
        async def remember(self, request: call16.BootNotification, response: Any) -> None:
            seen.append((request.charge_point_serial_number, response.status))

        @after("BootNotification")
        def explode(self, request: call16.BootNotification) -> None:
            raise ValueError("after hook broke")

    async with run_session(Hooked) as (session, station):
        answer = await station.call("b", "BootNotification", BOOT16)
        assert answer[0] == 3
        for _ in range(10):
            await asyncio.sleep(0)
        assert seen == [("SN-9", "Accepted")]
        assert session.stats.handler_errors == 1
    assert any("after hook" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_boot_info_is_recorded_for_16_and_201() -> None:
    """BootNotification fills boot_info and registration_status, for 1.6 and 2.0.1."""
    async with run_session(Csms16) as (session, station):
        assert session.boot_info is None
        await station.call("b", "BootNotification", BOOT16)
        assert session.boot_info is not None
        assert (session.boot_info.vendor, session.boot_info.serial_number) == ("ACME", "SN-9")
        assert session.booted

    class Csms201(StationSession):
        @on("BootNotification")
        def boot(self, request: call201.BootNotification) -> Any:
            return result201.BootNotification(NOW, 10, "Pending")

    async with run_session(Csms201, "2.0.1") as (session, station):
        boot = {
            "reason": "PowerUp",
            "chargingStation": {"vendorName": "V", "model": "M", "serialNumber": "S-1"},
        }
        await station.call("b", "BootNotification", boot)
        assert session.boot_info is not None
        assert (session.boot_info.model, session.boot_info.serial_number) == ("M", "S-1")
        assert session.registration_status == "Pending"
        assert not session.booted


async def test_calls_are_handled_in_arrival_order() -> None:
    """A slow handler does not let the next CALL overtake it."""
    order: list[str] = []

    class Slow(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            await asyncio.sleep(0.05 if request.id_tag == "slow" else 0)
            order.append(request.id_tag)
            return {"idTagInfo": {"status": "Accepted"}}

    async with run_session(Slow) as (_, station):
        await station.send([2, "1", "Authorize", {"idTag": "slow"}])
        await station.send([2, "2", "Authorize", {"idTag": "fast"}])
        answers = [await station.recv(), await station.recv()]
        assert [a[1] for a in answers] == ["1", "2"]
        assert order == ["slow", "fast"]


async def test_reused_message_id_in_progress_is_refused() -> None:
    """A CALL reusing the id of one in progress is refused; the first still gets its answer."""
    release = asyncio.Event()

    class Waiting(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            await release.wait()
            return {"idTagInfo": {"status": "Accepted"}}

    async with run_session(Waiting) as (_, station):
        await station.send([2, "same", "Authorize", {"idTag": "A"}])
        await asyncio.sleep(0.01)
        refusal = await station.call("same", "Authorize", {"idTag": "B"})
        assert refusal[:3] == [4, "same", "FormationViolation"]
        release.set()
        assert await station.recv() == [3, "same", {"idTagInfo": {"status": "Accepted"}}]


async def test_handler_finishes_after_disconnect_and_answer_is_dropped() -> None:
    """A running handler completes after the station leaves; its answer goes nowhere."""
    finished = asyncio.Event()
    gate = asyncio.Event()

    class Busy(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            await gate.wait()
            finished.set()
            return {"idTagInfo": {"status": "Accepted"}}

    csms_side, station_side = memory_transport_pair()
    session = Busy("CP-1", csms_side, "1.6")
    run = asyncio.create_task(session.run())
    await ScriptedStation(station_side).send([2, "1", "Authorize", {"idTag": "A"}])
    await asyncio.sleep(0.01)
    await station_side.close()
    await asyncio.sleep(0.01)
    assert not run.done(), "run() must wait for the handler"
    gate.set()
    await asyncio.wait_for(run, 1)
    assert finished.is_set()
    assert session.stats.sent == 0


async def test_stuck_handler_is_cancelled_after_grace() -> None:
    """A handler still running handler_grace seconds after the end is cancelled."""
    cancelled = asyncio.Event()

    class Stuck(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    csms_side, station_side = memory_transport_pair()
    session = Stuck("CP-1", csms_side, "1.6", handler_grace=0.05)
    run = asyncio.create_task(session.run())
    await ScriptedStation(station_side).send([2, "1", "Authorize", {"idTag": "A"}])
    await asyncio.sleep(0.01)
    await station_side.close()
    await asyncio.wait_for(run, 2)
    assert cancelled.is_set()


async def test_handler_calling_after_disconnect_fails_fast() -> None:
    """A handler that calls the station after it left gets StationDisconnected at once."""
    outcome: list[BaseException] = []
    gate = asyncio.Event()

    class Late(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            await gate.wait()
            try:
                await self.call(call16.Reset(type="Soft"), timeout=30)
            except StationDisconnected as exc:
                outcome.append(exc)
            return {"idTagInfo": {"status": "Accepted"}}

    csms_side, station_side = memory_transport_pair()
    session = Late("CP-1", csms_side, "1.6")
    run = asyncio.create_task(session.run())
    await ScriptedStation(station_side).send([2, "1", "Authorize", {"idTag": "A"}])
    await station_side.close()
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.wait_for(run, 1)
    assert len(outcome) == 1


async def test_cancelling_run_cancels_handlers() -> None:
    """Cancelling run() closes the session and cancels running handlers."""
    started = asyncio.Event()

    class Stuck(Csms16):
        @on("Authorize")
        async def authorize(self, request: call16.Authorize) -> Any:
            started.set()
            await asyncio.sleep(60)

    csms_side, station_side = memory_transport_pair()
    session = Stuck("CP-1", csms_side, "1.6")
    run = asyncio.create_task(session.run())
    await ScriptedStation(station_side).send([2, "1", "Authorize", {"idTag": "A"}])
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert session.ended


async def test_binary_frame_closes_with_1003() -> None:
    """A binary frame closes the connection with 1003 (unsupported data)."""
    async with run_session(Csms16) as (session, station):
        await station.send(b"\x00\x01")
        with pytest.raises(Exception) as caught:
            await station.recv()
        assert getattr(caught.value, "code", None) == 1003
        assert session.ended


async def test_bad_frames_are_answered_and_session_survives() -> None:
    """Bad frames get their CALLERROR and a good CALL after them is still answered."""
    async with run_session(Csms16) as (session, station):
        await station.send("not json")
        assert (await station.recv())[:2] == [4, "-1"]
        await station.send([2, "x", "Foo", {}])
        assert (await station.recv())[:3] == [4, "x", "NotImplemented"]
        await station.send([2, "y", "Authorize", {"idTag": "T"}])
        assert (await station.recv())[:3] == [4, "y", "NotSupported"]
        await station.send([7, "z", {}])  # unknown type on 1.6: ignored
        assert await station.call("h", "Heartbeat", {}) == [3, "h", {"currentTime": NOW}]
        assert session.stats.bad_frames == 4


async def test_send_both_ways_on_21() -> None:
    """OCPP 2.1 SEND: the station's reaches its handler unanswered; ours goes out."""
    received: list[Any] = []

    class Streams(StationSession):
        boot_gate = False

        @on("NotifyPeriodicEventStream")
        def stream(self, message: NotifyPeriodicEventStream) -> None:
            received.append(message)

        @on("Heartbeat")
        def heartbeat(self, request: Any) -> Any:
            return result21.Heartbeat(current_time=NOW)

    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "42"}]}
    async with run_session(Streams, "2.1") as (session, station):
        await station.send([6, "s1", "NotifyPeriodicEventStream", payload])
        assert await station.call("h", "Heartbeat", {}) == [3, "h", {"currentTime": NOW}]
        assert len(received) == 1
        assert received[0].data == [StreamDataElementType(t=0.5, v="42")]
        await session.send(NotifyPeriodicEventStream(2, 0, NOW, [StreamDataElementType(1, "x")]))
        frame = await station.recv()
        assert frame[0] == 6 and frame[2] == "NotifyPeriodicEventStream"
        assert frame[3]["data"] == [{"t": 1, "v": "x"}]
    async with run_session(Csms16) as (session, _):
        with pytest.raises(UsageError):
            await session.send({"id": 1}, action="NotifyPeriodicEventStream")


async def test_ocpp_package_style_handlers_keep_working() -> None:
    """Handlers written with ocpp.routing.on get snake_case kwargs and may skip validation."""
    from ocpp.routing import after as ocpp_after
    from ocpp.routing import on as ocpp_on

    seen: list[Any] = []

    class Migrated(StationSession):
        boot_gate = False

        @ocpp_on("BootNotification")
        async def boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
            seen.append((charge_point_vendor, charge_point_model, kw.get("call_unique_id")))
            return result16.BootNotification(NOW, 30, "Accepted")

        @ocpp_on("Authorize", skip_schema_validation=True)
        def authorize(self, id_tag: str, call_unique_id: str) -> Any:
            seen.append((id_tag, call_unique_id))
            return result16.Authorize(id_tag_info={"status": "Accepted"})

        @ocpp_after("BootNotification")
        def booted(self, charge_point_vendor: str, **kw: Any) -> None:
            seen.append(("after", charge_point_vendor))

    async with run_session(Migrated) as (_, station):
        answer = await station.call("b", "BootNotification", BOOT16)
        assert answer == [3, "b", {"currentTime": NOW, "interval": 30, "status": "Accepted"}]
        too_long = "T" * 30  # breaks the schema, but this route skips validation
        answer = await station.call("a", "Authorize", {"idTag": too_long})
        assert answer == [3, "a", {"idTagInfo": {"status": "Accepted"}}]
        await asyncio.sleep(0.01)
    assert len(seen) == 3
    assert set(seen) == {("ACME", "Fast-1", None), (too_long, "a"), ("after", "ACME")}


async def test_last_seen_and_stats_move() -> None:
    """last_seen advances with traffic; stats count frames in and out."""
    async with run_session(Csms16) as (session, station):
        first = session.last_seen
        await asyncio.sleep(0.01)
        await station.call("h", "Heartbeat", {})
        assert session.last_seen > first
        assert (session.stats.received, session.stats.sent) == (1, 1)
        assert session.connected_at <= first
        assert repr(session) == "<Csms16 'CP-1' OCPP 1.6>"


async def test_broken_transport_ends_the_session(caplog: pytest.LogCaptureFixture) -> None:
    """A transport whose recv raises something unexpected ends the session cleanly."""

    class Broken:
        def __init__(self) -> None:
            self.closed_with: tuple[int, str] | None = None

        async def recv(self) -> str:
            raise RuntimeError("socket exploded")

        async def send(self, message: str) -> None:
            raise AssertionError("nothing to send")

        async def close(self, code: int = 1000, reason: str = "") -> None:
            self.closed_with = (code, reason)

    transport = Broken()
    session = Csms16("CP-1", transport, "1.6")
    await asyncio.wait_for(session.run(), 1)
    assert session.ended
    assert transport.closed_with == (1011, "transport failure")
    assert any("transport failed" in r.getMessage() for r in caplog.records)


async def test_ocpp_package_errors_raised_in_handlers_keep_their_code() -> None:
    """An ocpp.exceptions error raised by a migrated handler answers with its code."""
    from ocpp.exceptions import NotSupportedError

    class Legacy(Csms16):
        @on("Authorize")
        def authorize(self, request: call16.Authorize) -> Any:
            raise NotSupportedError(description="tags are not supported", details={"x": 1})

    async with run_session(Legacy) as (_, station):
        answer = await station.call("a", "Authorize", {"idTag": "T"})
        assert answer == [4, "a", "NotSupported", "tags are not supported", {"x": 1}]


async def test_dict_boot_answer_sets_registration_status() -> None:
    """A BootNotification handler returning a dict still records the registration status."""

    class DictBoot(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> Any:
            return {"status": "Rejected", "currentTime": NOW, "interval": 5}

    async with run_session(DictBoot) as (session, station):
        answer = await station.call("b", "BootNotification", BOOT16)
        assert answer[2]["status"] == "Rejected"
        assert session.registration_status == "Rejected"
        assert session.boot_info is not None


async def test_failing_send_handler_is_logged_and_21_result_errors_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing SEND handler is logged, never answered; a CALLRESULTERROR is logged."""

    class Streams(StationSession):
        boot_gate = False

        @on("NotifyPeriodicEventStream")
        async def stream(self, message: Any) -> None:
            raise RuntimeError("stream store down")

    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0, "v": "1"}]}
    async with run_session(Streams, "2.1") as (session, station):
        await station.send([6, "s1", "NotifyPeriodicEventStream", payload])
        await station.send([5, "r1", "FormatViolation", "your result was bad", {}])
        assert await station.nothing_more(0.1)
        assert session.stats.handler_errors == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("SEND NotifyPeriodicEventStream failed" in m for m in messages)
    assert any("error in our CALLRESULT" in m and "r1" in m for m in messages)


async def test_calls_and_sends_on_a_dead_transport_raise_station_disconnected() -> None:
    """call() and send() whose frame cannot be written raise StationDisconnected."""
    csms_side, station_side = memory_transport_pair()
    session = StationSession("CP-1", csms_side, "2.1")
    await station_side.close(1006)
    with pytest.raises(StationDisconnected):
        await session.call({"type": "Immediate"}, action="Reset")
    session = StationSession("CP-2", csms_side, "2.1")
    with pytest.raises(StationDisconnected):
        await session.send(
            {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0, "v": "1"}]},
            action="NotifyPeriodicEventStream",
        )
    with pytest.raises(StationDisconnected):
        await session.send({"id": 1}, action="NotifyPeriodicEventStream")


async def test_policy_mistakes_fail_when_the_session_is_built() -> None:
    """A misspelt action or a quirk that fits no schema fails at construction, not later."""
    from csms_kit import Quirk, Validation, ValidationPolicy

    csms_side, _ = memory_transport_pair()
    bad_field = ValidationPolicy(
        quirks=(Quirk("BootNotification", "noSuchField", ("maxLength",)),)
    )
    with pytest.raises(UsageError, match="noSuchField"):
        Csms16("CP-1", csms_side, "1.6", validation=bad_field)
    with pytest.raises(UsageError, match="Heartbeet"):
        Csms16(
            "CP-1",
            csms_side,
            "1.6",
            validation=ValidationPolicy(per_action={"Heartbeet": Validation.OFF}),
        )
    with pytest.raises(UsageError, match="BootNotificaton"):
        Csms16(
            "CP-1",
            csms_side,
            "1.6",
            validation=ValidationPolicy(quirks=(Quirk("BootNotificaton", "x", ("maxLength",)),)),
        )
    # A quirk for a 2.0.1-only action is fine on a 1.6 session: it just does not apply.
    other_version = ValidationPolicy(quirks=(Quirk("TransactionEvent", "seqNo", ("minimum",)),))
    Csms16("CP-1", csms_side, "1.6", validation=other_version)


async def test_handler_returning_another_actions_dataclass_is_internal_error() -> None:
    """Returning the wrong call_result class is caught, not sent as an empty payload."""

    class Confused(Csms16):
        @on("StatusNotification")
        def status(self, request: Any) -> Any:
            return result16.Heartbeat(current_time=NOW)

    async with run_session(Confused) as (_, station):
        payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        answer = await station.call("s", "StatusNotification", payload)
        assert answer[:3] == [4, "s", "InternalError"]


async def test_cancelling_run_closes_the_connection() -> None:
    """Cancelling run() sends the station a 1001 close."""
    from csms_kit.exceptions import TransportClosed

    csms_side, station_side = memory_transport_pair()
    run = asyncio.create_task(Csms16("CP-1", csms_side, "1.6").run())
    await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    with pytest.raises(TransportClosed) as caught:
        await station_side.recv()
    assert caught.value.code == 1001


async def test_ocpp_style_after_hook_gets_call_unique_id() -> None:
    """An ocpp.routing.after hook declaring call_unique_id receives the messageId."""
    from ocpp.routing import after as ocpp_after

    seen: list[str] = []

    class Legacy(Csms16):
        @ocpp_after("Heartbeat")
        def later(self, call_unique_id: str, **kwargs: Any) -> None:
            seen.append(call_unique_id)

    async with run_session(Legacy) as (_, station):
        await station.call("hb-7", "Heartbeat", {})
        await asyncio.sleep(0.01)
    assert seen == ["hb-7"]


async def test_boot_gate_refuses_unhandled_actions_too() -> None:
    """Before boot, even an action without a handler gets SecurityError (not NotSupported)."""

    class Gated(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> Any:
            return {"status": "Accepted", "currentTime": NOW, "interval": 5}

    async with run_session(Gated) as (_, station):
        answer = await station.call("a", "Authorize", {"idTag": "T"})
        assert answer[:3] == [4, "a", "SecurityError"]
        trigger = await station.recv()
        assert trigger[2] == "TriggerMessage"
        await station.send([3, trigger[1], {"status": "Accepted"}])
        await station.call("b", "BootNotification", BOOT16)
        answer = await station.call("c", "Authorize", {"idTag": "T"})
        assert answer[:3] == [4, "c", "NotSupported"]


async def test_triggered_message_passes_the_gate_while_pending() -> None:
    """A message the CSMS asked for with TriggerMessage is handled even while Pending."""

    class Pending(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> Any:
            return {"status": "Pending", "currentTime": NOW, "interval": 5}

        @on("StatusNotification")
        def status(self, request: Any) -> Any:
            return {}

    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    async with run_session(Pending) as (session, station):
        await station.call("b", "BootNotification", BOOT16)
        assert (await station.call("s1", "StatusNotification", status))[2] == "SecurityError"
        trigger = asyncio.create_task(
            session.call({"requestedMessage": "StatusNotification"}, action="TriggerMessage")
        )
        frame = await station.recv()
        await station.send([3, frame[1], {"status": "Accepted"}])
        await trigger
        assert await station.call("s2", "StatusNotification", status) == [3, "s2", {}]
        assert (await station.call("s3", "StatusNotification", status))[2] == "SecurityError"


async def test_a_certificate_request_asked_for_by_extended_trigger_passes_the_gate() -> None:
    """1.6 security extension: ExtendedTriggerMessage SignChargePointCertificate lets
    one SignCertificate through while the station is Pending."""

    class Pending(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> Any:
            return {"status": "Pending", "currentTime": NOW, "interval": 5}

        @on("SignCertificate")
        def sign(self, request: Any) -> Any:
            return {"status": "Accepted"}

    csr = {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}
    async with run_session(Pending) as (session, station):
        await station.call("b", "BootNotification", BOOT16)
        assert (await station.call("c1", "SignCertificate", csr))[2] == "SecurityError"
        trigger = asyncio.create_task(
            session.call(
                {"requestedMessage": "SignChargePointCertificate"},
                action="ExtendedTriggerMessage",
            )
        )
        frame = await station.recv()
        await station.send([3, frame[1], {"status": "Accepted"}])
        await trigger
        assert await station.call("c2", "SignCertificate", csr) == [
            3,
            "c2",
            {"status": "Accepted"},
        ]
        assert (await station.call("c3", "SignCertificate", csr))[2] == "SecurityError"


async def test_queued_sends_are_bounded() -> None:
    """SENDs piling up behind a slow handler are dropped past the inbox bound."""
    release = asyncio.Event()
    seen: list[int] = []

    class Slow(StationSession):
        boot_gate = False
        limits = UNLIMITED

        @on("NotifyPeriodicEventStream")
        async def stream(self, message: Any) -> None:
            await release.wait()
            seen.append(message.id)

    payload = {"pending": 0, "basetime": NOW, "data": [{"t": 0, "v": "1"}]}
    async with run_session(Slow, "2.1") as (session, station):
        for n in range(40):
            await station.send([6, f"s{n}", "NotifyPeriodicEventStream", {"id": n, **payload}])
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.sleep(0.05)
        bound = session.endpoint.max_incoming
        assert len(seen) <= bound + 1
        assert session.stats.bad_frames == 40 - len(seen)


async def _native_coroutine() -> Any:
    return {"currentTime": NOW}


@types.coroutine
def _generator_based_coroutine() -> Any:
    yield
    return {"currentTime": NOW}


@pytest.mark.parametrize(
    "make_awaitable", [_native_coroutine, _generator_based_coroutine], ids=["async-def", "types"]
)
async def test_sync_handler_returning_an_awaitable_is_refused(
    make_awaitable: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync handler must answer, not return an awaitable (an ``async def`` coroutine or an
    old-style ``@types.coroutine`` generator): InternalError, none left unawaited."""

    class Confused(Csms16):
        @on("Heartbeat")
        def heartbeat(self, request: Any) -> Any:
            return make_awaitable()

    async with run_session(Confused) as (_, station):
        answer = await station.call("h", "Heartbeat", {})
        assert answer[:3] == [4, "h", "InternalError"]
    assert any("returned an awaitable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_boot_info_is_set_inside_the_boot_notification_handler(style: str) -> None:
    """The BootNotification handler sees self.boot_info of the request it is answering."""
    seen: list[Any] = []

    def answer(session: StationSession) -> Any:
        assert session.boot_info is not None
        seen.append((session.boot_info.vendor, session.boot_info.serial_number))
        seen.append(session.registration_status)  # not yet: set once answered
        return {"status": "Accepted", "currentTime": NOW, "interval": 5}

    class SyncBoot(StationSession):
        @on("BootNotification")
        def boot(self, request: Any) -> Any:
            return answer(self)

    class AsyncBoot(StationSession):
        @on("BootNotification")
        async def boot(self, request: Any) -> Any:
            return answer(self)

    session_class = SyncBoot if style == "sync" else AsyncBoot
    async with run_session(session_class) as (session, station):
        reply = await station.call("b", "BootNotification", BOOT16)
        assert reply[0] == 3, reply
        assert session.registration_status == "Accepted"
    assert seen == [("ACME", "SN-9"), None]


async def test_a_not_booted_refusal_is_not_logged_as_a_bad_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CALL refused by the boot gate is logged as a refusal, not as a bad frame."""

    class Gated(StationSession):
        trigger_boot = False

        @on("Heartbeat")
        def heartbeat(self, request: Any) -> Any:
            return {"currentTime": NOW}

    caplog.set_level(logging.INFO, logger="csms_kit")
    async with run_session(Gated) as (_, station):
        assert (await station.call("h", "Heartbeat", {}))[:3] == [4, "h", "SecurityError"]
        assert (await station.call("x", "Heartbeat", {"bad": 1}))[:3] == [
            4,
            "x",
            "SecurityError",
        ]
        await station.send("garbage")
        assert (await station.recv())[:2] == [4, "-1"]
    messages = [r.getMessage() for r in caplog.records if r.name == "csms_kit.session"]
    refused = [m for m in messages if "refused a CALL with SecurityError" in m]
    bad = [m for m in messages if "answered a bad frame" in m]
    assert len(refused) == 2
    assert len(bad) == 1 and "SecurityError" not in bad[0]
