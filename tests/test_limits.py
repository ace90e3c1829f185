"""Limits: token buckets, rate limits per station and action, malformed frames in a row."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from csms_kit import (
    StationSession,
    on,
    serve,
)
from csms_kit.exceptions import TransportClosed
from csms_kit.limits import UNLIMITED, Limits, RateLimit, TokenBucket
from csms_kit.testing import run_session
from tests.helpers import wait_until

NOW = "2026-11-27T10:00:00Z"


class Csms(StationSession):
    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> Any:
        return {"currentTime": NOW}


def test_token_bucket_allows_burst_then_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket gives `burst` tokens at once, then `rate` per second."""
    clock = [100.0]
    monkeypatch.setattr("csms_kit.limits.time.monotonic", lambda: clock[0])
    bucket = TokenBucket(RateLimit(rate=2, burst=3))
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock[0] += 0.5
    assert bucket.take()
    assert not bucket.take()
    clock[0] += 100
    assert sum(bucket.take() for _ in range(10)) == 3


@pytest.mark.parametrize(
    "kwargs", [{"rate": 0, "burst": 1}, {"rate": 1, "burst": 0.5}, {"rate": -1, "burst": 5}]
)
def test_bad_rate_limits_are_refused(kwargs: dict[str, float]) -> None:
    """A RateLimit needs a positive rate and a burst of at least one."""
    with pytest.raises(ValueError):
        RateLimit(**kwargs)


def test_bad_limits_are_refused() -> None:
    """on_exceed and max_bad_frames are checked."""
    with pytest.raises(ValueError):
        Limits(on_exceed="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Limits(max_bad_frames=0)


class Blocking(Csms):
    """Authorize waits for ``release``: the station's CALL stays in progress meanwhile."""

    release: asyncio.Event

    @on("Authorize")
    async def authorize(self, request: Any) -> Any:
        await type(self).release.wait()
        return {"idTagInfo": {"status": "Accepted"}}


async def test_compliant_station_over_the_frame_limit_is_slowed_never_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One CALL at a time, faster than the limit: every CALL is answered, later; one WARNING."""

    class Limited(Csms):
        limits = Limits(frames=RateLimit(rate=100, burst=3))

    async with run_session(Limited) as (session, station):
        answers = [await station.call(f"h{n}", "Heartbeat", {}) for n in range(12)]
        assert [a[:2] for a in answers] == [[3, f"h{n}"] for n in range(12)]
        assert session.stats.rate_limited == 0
        assert session.stats.throttled >= 5  # 12 frames, a burst of 3 and a few refills
        assert not session.ended
    warnings = [r for r in caplog.records if "faster than its rate limit" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


async def test_pipelined_calls_over_the_frame_limit_get_generic_error() -> None:
    """CALLs sent while an earlier CALL is in progress, past the budget, are refused."""

    class Limited(Blocking):
        release = asyncio.Event()
        limits = Limits(frames=RateLimit(rate=0.001, burst=3))

    async with run_session(Limited) as (session, station):
        for n in range(5):  # a0 blocks its handler; a1.. are pipelined behind it
            await station.send([2, f"a{n}", "Authorize", {"idTag": "T"}])
        refusals = [await station.recv() for _ in range(2)]
        assert refusals == [
            [4, "a3", "GenericError", "rate limit exceeded", {}],
            [4, "a4", "GenericError", "rate limit exceeded", {}],
        ]
        Limited.release.set()
        answers = [await station.recv() for _ in range(3)]
        assert [a[:2] for a in answers] == [[3, "a0"], [3, "a1"], [3, "a2"]]
        assert session.stats.rate_limited == 2
        assert not session.ended


async def test_per_action_limits_count_only_that_action() -> None:
    """A per-action bucket limits that action (pipelined: refused) and leaves others alone."""

    class Limited(Blocking):
        release = asyncio.Event()
        limits = Limits(frames=None, per_action={"Authorize": RateLimit(rate=0.001, burst=1)})

    async with run_session(Limited) as (_, station):
        await station.send([2, "a1", "Authorize", {"idTag": "T"}])  # in progress
        assert (await station.call("a2", "Authorize", {"idTag": "T"}))[2] == "GenericError"
        Limited.release.set()
        assert (await station.recv())[:2] == [3, "a1"]
        for n in range(5):
            assert (await station.call(f"h{n}", "Heartbeat", {}))[0] == 3


async def test_compliant_station_over_a_per_action_limit_is_slowed() -> None:
    """One CALL at a time over a per-action limit: answered later, never refused."""

    class Limited(Csms):
        limits = Limits(frames=None, per_action={"Heartbeat": RateLimit(rate=100, burst=1)})

    async with run_session(Limited) as (session, station):
        for n in range(6):
            assert (await station.call(f"h{n}", "Heartbeat", {}))[:2] == [3, f"h{n}"]
        assert session.stats.throttled >= 3 and session.stats.rate_limited == 0


async def test_close_mode_closes_with_1008() -> None:
    """With on_exceed='close', a pipelined CALL over the limit closes the connection (1008)."""

    class Strict(Blocking):
        release = asyncio.Event()
        limits = Limits(frames=RateLimit(rate=0.001, burst=2), on_exceed="close")

    async with run_session(Strict) as (session, station):
        for n in range(3):
            await station.send([2, f"a{n}", "Authorize", {"idTag": "T"}])
        assert await station.closed_with() == (1008, "rate limit exceeded")
        assert session.ended
        Strict.release.set()


async def test_close_mode_only_slows_a_compliant_station() -> None:
    """With on_exceed='close', a station keeping to one CALL at a time is not closed."""

    class Strict(Csms):
        limits = Limits(frames=RateLimit(rate=100, burst=2), on_exceed="close")

    async with run_session(Strict) as (session, station):
        for n in range(8):
            assert (await station.call(f"h{n}", "Heartbeat", {}))[0] == 3
        assert not session.ended and session.stats.throttled >= 3


async def test_closing_wakes_a_throttled_reader() -> None:
    """A session closed while its reader waits out a rate limit ends at once."""

    class Limited(Csms):
        limits = Limits(frames=RateLimit(rate=0.001, burst=1))

    async with run_session(Limited) as (session, station):
        await station.call("h0", "Heartbeat", {})
        await station.send([2, "h1", "Heartbeat", {}])  # waits ~1,000 s for a token
        await wait_until(lambda: session.stats.throttled == 1, 2)
        await asyncio.wait_for(session.close(1000, "bye"), 2)
        assert await station.closed_with() == (1000, "bye")


async def test_answers_to_our_calls_pass_even_over_the_limit() -> None:
    """In reject mode, the station's answers to our CALLs are still delivered."""

    class Limited(Csms):
        limits = Limits(frames=RateLimit(rate=0.001, burst=1))

    async with run_session(Limited) as (session, station):
        await station.call("h1", "Heartbeat", {})  # uses the only token
        task = asyncio.create_task(session.call({"type": "Soft"}, action="Reset"))
        frame = await station.recv()
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert (await task).status == "Accepted"


@pytest.mark.parametrize(
    "bad", ["garbage", "[]", '[2, 5, "Heartbeat", {}]', '[2,"x","Heartbeat",{"a":1}]']
)
async def test_malformed_frames_in_a_row_close_with_1002(bad: str) -> None:
    """After max_bad_frames malformed frames in a row, the connection closes with 1002."""

    class Strict(Csms):
        limits = Limits(frames=None, max_bad_frames=3)

    async with run_session(Strict) as (session, station):
        for _ in range(2):
            await station.send(bad)
            assert (await station.recv())[0] == 4
        await station.send(bad)
        assert (await station.recv())[0] == 4  # the third still gets its CALLERROR
        with pytest.raises(TransportClosed) as caught:
            await station.recv()
        assert caught.value.code == 1002
        assert session.ended


async def test_a_good_frame_resets_the_malformed_count() -> None:
    """Malformed frames separated by good ones never reach the limit."""

    class Strict(Csms):
        limits = Limits(frames=None, max_bad_frames=2)

    async with run_session(Strict) as (session, station):
        for n in range(5):
            await station.send("garbage")
            assert (await station.recv())[0] == 4
            assert (await station.call(f"h{n}", "Heartbeat", {}))[0] == 3
        assert not session.ended


async def test_refused_but_wellformed_calls_are_not_malformed() -> None:
    """NotSupported / NotImplemented answers do not count as malformed frames."""

    class Strict(Csms):
        limits = Limits(frames=None, max_bad_frames=2)

    async with run_session(Strict) as (session, station):
        for n in range(5):
            assert (await station.call(f"a{n}", "Authorize", {"idTag": "T"}))[2] == "NotSupported"
            assert (await station.call(f"f{n}", "Foo", {}))[2] == "NotImplemented"
        assert not session.ended


async def test_max_connections_per_address_answers_429() -> None:
    """Past max_connections_per_address, the handshake gets HTTP 429; a slot frees on leave."""
    async with serve(Csms, "127.0.0.1", 0, max_connections_per_address=2) as server:
        url = f"ws://127.0.0.1:{server.port}"
        first = await websockets.connect(f"{url}/A", subprotocols=["ocpp1.6"])
        second = await websockets.connect(f"{url}/B", subprotocols=["ocpp1.6"])
        with pytest.raises(websockets.InvalidStatus) as caught:
            await websockets.connect(f"{url}/C", subprotocols=["ocpp1.6"])
        assert caught.value.response.status_code == 429
        await first.close()
        for _ in range(100):
            if len(server.sessions) < 2:
                break
            await asyncio.sleep(0.01)
        third = await websockets.connect(f"{url}/C", subprotocols=["ocpp1.6"])
        await third.close()
        await second.close()


def test_unlimited_turns_everything_off() -> None:
    """UNLIMITED has no frame limit, no per-action limit and no malformed-frame limit."""
    assert (UNLIMITED.frames, dict(UNLIMITED.per_action), UNLIMITED.max_bad_frames) == (
        None,
        {},
        None,
    )


async def test_pipelined_calls_past_the_in_progress_bound_are_not_malformed() -> None:
    """A station pipelining many CALLs gets 'too many in progress' but is not disconnected."""
    release = asyncio.Event()

    class Slow(Csms):
        limits = Limits(frames=None, max_bad_frames=3)

        @on("Authorize")
        async def authorize(self, request: Any) -> Any:
            await release.wait()
            return {"idTagInfo": {"status": "Accepted"}}

    async with run_session(Slow) as (session, station):
        for n in range(30):
            await station.send([2, f"a{n}", "Authorize", {"idTag": "T"}])
        refusals = [await station.recv() for _ in range(30 - session.endpoint.max_incoming)]
        assert {r[2] for r in refusals} == {"FormationViolation"}
        assert all("too many CALLs in progress" in r[3] for r in refusals)
        release.set()
        answers = [await station.recv() for _ in range(session.endpoint.max_incoming)]
        assert all(a[0] == 3 for a in answers)
        assert not session.ended
