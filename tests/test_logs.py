"""Log records about a station carry its id (and the message id) as structured fields."""

from __future__ import annotations

import asyncio
import logging

import pytest
from ocpp.v16 import call as call16
from websockets.exceptions import InvalidStatus

from csms_kit import CallTimeout, InMemoryRegistry, StationSession, serve
from csms_kit.testing import connect_scripted, run_session


def about(caplog: pytest.LogCaptureFixture, text: str) -> logging.LogRecord:
    [record] = [r for r in caplog.records if text in r.getMessage()]
    return record


async def test_a_refused_frame_names_the_station_and_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "csms_kit")
    async with run_session(StationSession, "2.0.1", "CP-7") as (_, station):
        await station.send([2, "m-1", "NoSuchAction", {}])
        assert (await station.recv())[:2] == [4, "m-1"]
    record = about(caplog, "refused a CALL")
    assert record.station_id == "CP-7"  # type: ignore[attr-defined]
    assert record.message_id == "m-1"  # type: ignore[attr-defined]


async def test_a_late_answer_names_the_station(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "csms_kit")
    async with run_session(StationSession, "1.6", "CP-8") as (session, station):
        calling = asyncio.create_task(session.call(call16.Reset(type="Hard"), timeout=0.05))
        frame = await station.recv()
        with pytest.raises(CallTimeout):
            await calling
        await station.send([3, frame[1], {"status": "Accepted"}])
        await station.send([2, "sync", "NoSuchAction", {}])  # answered: the answer was read
        await station.recv()
    record = about(caplog, "matches no outstanding CALL")
    assert record.station_id == "CP-8"  # type: ignore[attr-defined]


async def test_an_admission_refusal_names_the_station(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "csms_kit")
    registry = InMemoryRegistry()
    async with serve(
        StationSession, "127.0.0.1", 0, registry=registry, max_connections=1
    ) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with connect_scripted(url, "CP-1", "1.6"):
            await registry.wait_connected("CP-1", timeout=5)
            with pytest.raises(InvalidStatus):
                async with connect_scripted(url, "CP-2", "1.6"):
                    pass
    record = about(caplog, "refusing 'CP-2'")
    assert record.station_id == "CP-2"  # type: ignore[attr-defined]
    assert not hasattr(record, "message_id")
