"""Several real ``csms-kit serve`` processes on one Redis registry; one killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16

from csms_kit import (
    CsmsKitError,
    RegistryEvent,
    StationDisconnected,
    StationNotConnected,
)
from csms_kit.cluster import registry_from_url
from csms_kit.testing import ScriptedStation, connect_scripted
from tests.cluster.processes import HOST, free_port, wait_listening

pytestmark = pytest.mark.slow

#: Short leases, so that a killed node's stations vanish quickly; not so short that a
#: loaded CI machine delays a renewal (every LEASE_TTL / 3) past the lease.
LEASE_TTL = 3.0
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.fixture(params=["redis", "nats"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """The URL of a registry shared by real processes, on each backend (its own database)."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url.rsplit("/", 1)[0] + "/7"  # station ids are unique per test
    nats_url: str = request.getfixturevalue("nats_url")
    return nats_url


@contextlib.contextmanager
def node(
    registry: str, node_id: str, workdir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ``csms-kit serve`` process on the registry; its URL once it listens."""
    port = free_port()
    log = (workdir / f"{node_id}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csms_kit.cli",
            "serve",
            "--port",
            str(port),
            "--registry",
            registry,
            "--node-id",
            node_id,
            "--lease-ttl",
            str(LEASE_TTL),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_listening(port, 15, process, workdir / f"{node_id}.log")
        yield process, f"ws://{HOST}:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


@contextlib.asynccontextmanager
async def booted(url: str, station_id: str) -> AsyncIterator[ScriptedStation]:
    """A station connected to ``url`` and answered Accepted at boot."""
    async with connect_scripted(url, station_id, "1.6") as station:
        answer = await station.call("boot", "BootNotification", BOOT)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted", answer
        yield station


async def answer_resets(station: ScriptedStation, seen: list[str]) -> None:
    """Answer every Reset with Accepted (a Hard one after 0.3 s), recording its messageId."""
    while True:
        frame = await station.recv(timeout=60)
        assert frame[0] == 2 and frame[2] == "Reset", frame
        seen.append(frame[1])
        if frame[3]["type"] == "Hard":
            await asyncio.sleep(0.3)  # slow: these calls are in flight when a node dies
        await station.send([3, frame[1], {"status": "Accepted"}])


async def test_calls_reach_a_station_on_another_process_and_survive_a_kill(
    shared_url: str, tmp_path: Path
) -> None:
    """Calls from a third process reach the holder; after SIGKILL they fail typed, then the
    station reconnects to the other node and is reached there; nothing answered twice."""
    registry_url = shared_url
    station_id = f"CP1-{uuid.uuid4().hex[:6]}"
    async with registry_from_url(registry_url, node_id="api", lease_ttl=LEASE_TTL) as api:
        heard: list[RegistryEvent] = []
        api.subscribe(heard.append)
        with (
            node(registry_url, "n1", tmp_path) as (n1, url1),
            node(registry_url, "n2", tmp_path) as (_, url2),
        ):
            seen: list[str] = []
            async with booted(url1, station_id) as station:
                answering = asyncio.create_task(answer_resets(station, seen))
                try:
                    record = await api.record(station_id)
                    assert record is not None and record.node == "n1"
                    answer = await api.call(station_id, call16.Reset(type="Soft"), timeout=5)
                    assert answer.status == "Accepted"

                    # calls in flight when the holder dies: each ends once, typed
                    calls = [
                        asyncio.create_task(
                            api.call(station_id, call16.Reset(type="Hard"), timeout=1)
                        )
                        for _ in range(10)
                    ]
                    await asyncio.sleep(0.05)
                    n1.send_signal(signal.SIGKILL)
                    killed = time.monotonic()
                    outcomes: list[Any] = await asyncio.gather(*calls, return_exceptions=True)
                    for outcome in outcomes:
                        assert not isinstance(outcome, BaseException) or isinstance(
                            outcome, CsmsKitError
                        ), repr(outcome)
                    # those the dead holder never answered end when it is seen gone,
                    # before their timeout plus the margin (1 + 2 s)
                    assert any(isinstance(o, StationDisconnected) for o in outcomes), outcomes
                    assert time.monotonic() - killed < 2.5
                finally:
                    answering.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await answering
            # the holder is gone: a call fails at once, not after its timeout
            started = time.monotonic()
            with pytest.raises(StationNotConnected):
                await api.call(station_id, call16.Reset(type="Soft"), timeout=30)
            assert time.monotonic() - started < 2
            # its lease lapses within the TTL
            deadline = time.monotonic() + LEASE_TTL * 4
            while await api.record(station_id) is not None:
                assert time.monotonic() < deadline, "the dead node's station is still listed"
                await asyncio.sleep(0.1)
            # and a survivor tells every node it left with n1
            while not any(e.kind == "disconnected" for e in heard):
                assert time.monotonic() < deadline, "nobody heard that the station left"
                await asyncio.sleep(0.1)
            left = [e for e in heard if e.kind == "disconnected"]
            assert len(left) == 1 and left[0].record is not None, left
            assert left[0].record.node == "n1"
            # the station reconnects to the other node and is reached there
            async with booted(url2, station_id) as station:
                answering = asyncio.create_task(answer_resets(station, seen))
                try:
                    await api.wait_connected(station_id, timeout=5)
                    record = await api.record(station_id)
                    assert record is not None and record.node == "n2"
                    answer = await api.call(station_id, call16.Reset(type="Soft"), timeout=5)
                    assert answer.status == "Accepted"
                finally:
                    answering.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await answering
            assert len(seen) == len(set(seen)), "a CALL reached the station twice"


async def test_cluster_wide_replace_closes_the_old_connection(
    shared_url: str, tmp_path: Path
) -> None:
    """A station connecting to node 2 while node 1 holds it: node 1 closes its connection."""
    registry_url = shared_url
    station_id = f"CP2-{uuid.uuid4().hex[:6]}"
    async with registry_from_url(registry_url, node_id="api", lease_ttl=LEASE_TTL) as api:
        with (
            node(registry_url, "n1", tmp_path) as (_, url1),
            node(registry_url, "n2", tmp_path) as (_, url2),
        ):
            async with booted(url1, station_id) as first, booted(url2, station_id):
                code, reason = await first.closed_with(timeout=5)
                assert code == 1000 and "replaced" in reason
                record = await api.record(station_id)
                assert record is not None and record.node == "n2"
