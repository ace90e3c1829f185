"""``csms-kit serve --workers N``: real worker processes on one port and one Redis registry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ocpp.v16 import call as call16

from csms_kit.cluster import RedisRegistry
from csms_kit.testing import ScriptedStation, connect_scripted
from tests.cluster.processes import HOST, free_port

pytestmark = pytest.mark.slow

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
#: Seconds the workers get to come up, and the parent to stop them all.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
WORKER_PID = re.compile(r"worker (\d+) \(pid (\d+)")


def worker_pids(log: Path) -> list[int]:
    """The pids of the workers the parent logged as started, in order."""
    found = dict(WORKER_PID.findall(log.read_text(errors="replace")))
    return [int(found[number]) for number in sorted(found, key=int)]


def exited(pid: int) -> bool:
    """Whether ``pid`` is gone (or a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@contextlib.contextmanager
def workers(
    registry: str, workdir: Path, count: int = 2
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``csms-kit serve --workers count``: (the parent, its URL, its log) once all listen.

    Every process is killed at the end: the parent, and its workers if it was killed.
    """
    port = free_port()
    log_path = workdir / "serve.log"
    command = [
        sys.executable, "-m", "csms_kit.cli", "serve", "--port", str(port),
        "--registry", registry, "--workers", str(count), "--lease-ttl", "5",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        parent = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while log_path.read_text(errors="replace").count("demo CSMS on ws://") < count:
            assert parent.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the workers did not start in time"
            time.sleep(0.05)
        yield parent, f"ws://{HOST}:{port}", log_path
    finally:
        if parent.poll() is None:
            parent.kill()
        if parent.wait() < 0:  # killed: it did not wait for its workers
            for pid in worker_pids(log_path):
                if not exited(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


async def wait_exit(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """The exit status of ``process`` once it ends; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"still running after {timeout:g} s"
        await asyncio.sleep(0.05)
    return process.returncode


@contextlib.asynccontextmanager
async def booted(url: str, station_id: str) -> AsyncIterator[ScriptedStation]:
    """A station connected to ``url`` and answered Accepted at boot."""
    async with connect_scripted(url, station_id, "1.6") as station:
        answer = await station.call("boot", "BootNotification", BOOT)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted", answer
        yield station


async def answer_resets(station: ScriptedStation) -> None:
    """Answer every Reset the station gets with Accepted."""
    while True:
        frame = await station.recv(timeout=60)
        assert frame[0] == 2 and frame[2] == "Reset", frame
        await station.send([3, frame[1], {"status": "Accepted"}])


async def test_workers_share_the_port_and_the_registry(redis_url: str, tmp_path: Path) -> None:
    """Stations spread over two workers, all listed and reachable; SIGTERM stops all, 0."""
    registry_url = redis_url.rsplit("/", 1)[0] + "/10"
    async with RedisRegistry(registry_url, node_id="api") as api:
        with workers(registry_url, tmp_path) as (parent, url, log):
            async with contextlib.AsyncExitStack() as stack:
                stations: dict[str, ScriptedStation] = {}
                # 20 connections land on one worker of two with probability 2**-19;
                # a few more are connected if it happens all the same
                while len(stations) < 20 or (
                    len({r.node for r in await api.stations()}) < 2 and len(stations) < 100
                ):
                    station_id = f"W{len(stations):03d}"
                    stations[station_id] = await stack.enter_async_context(booted(url, station_id))
                records = await api.stations()
                assert sorted(r.station_id for r in records) == sorted(stations)
                holders = {r.node: r.station_id for r in records}
                assert len(holders) == 2, holders
                assert all(re.fullmatch(r".+-[12]", node) for node in holders), holders

                for station_id in holders.values():
                    answering = asyncio.create_task(answer_resets(stations[station_id]))
                    try:
                        answer = await api.call(station_id, call16.Reset(type="Soft"), timeout=5)
                        assert answer.status == "Accepted"
                    finally:
                        answering.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await answering

                parent.send_signal(signal.SIGTERM)
                assert await wait_exit(parent) == 0, log.read_text()
            assert all(exited(pid) for pid in worker_pids(log))
            # the workers closed gracefully: they took their stations off the registry
            assert await api.stations() == []


async def test_a_dead_worker_is_logged_and_fails_the_exit_status(
    redis_url: str, tmp_path: Path
) -> None:
    """A killed worker is logged, not restarted; the other serves on; the parent exits 1."""
    registry_url = redis_url.rsplit("/", 1)[0] + "/11"
    with workers(registry_url, tmp_path) as (parent, url, log):
        first, _ = worker_pids(log)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while f"(pid {first}) was killed by SIGKILL" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        assert parent.poll() is None
        async with booted(url, "after"):
            pass  # the other worker accepts the connection
        parent.send_signal(signal.SIGTERM)
        assert await wait_exit(parent) == 1, log.read_text()


async def test_workers_stop_when_the_parent_is_killed(redis_url: str, tmp_path: Path) -> None:
    """A parent killed with SIGKILL leaves no worker behind: each stops on its own."""
    registry_url = redis_url.rsplit("/", 1)[0] + "/12"
    with workers(registry_url, tmp_path) as (parent, _, log):
        pids = worker_pids(log)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + STOP_TIMEOUT
        while not all(exited(pid) for pid in pids):
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.1)
