"""RedisRegistry when Redis is unreachable, lost, or forgets: real redis-server processes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ocpp.v16 import call as call16

from csms_kit import BrokerUnavailable, StationSession, serve
from csms_kit.cluster import RedisRegistry, registry_from_url
from csms_kit.testing import connect_scripted, memory_transport_pair
from tests.cluster.processes import HOST, free_port, kill, start_listening

LEASE_TTL = 1.5


class Csms(StationSession):
    boot_gate = False


@contextlib.contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own on ``port`` (so that the test may kill it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    command = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    process = start_listening(command, port, workdir / "redis-server.log", cwd=workdir)
    try:
        yield process
    finally:
        kill(process)


async def test_unreachable_broker_at_start_names_the_url() -> None:
    """Starting a registry whose Redis is unreachable raises BrokerUnavailable with the URL."""
    url = f"redis://{HOST}:{free_port()}/0"
    with pytest.raises(BrokerUnavailable) as caught:
        async with RedisRegistry(url):
            pass
    assert caught.value.url == url and url in str(caught.value)


async def test_registry_from_url_builds_each_kind(redis_url: str, prefix: str) -> None:
    """memory:// and redis:// give working registries; anything else is refused."""
    async with registry_from_url("memory://", node_id="M") as memory:
        assert memory.node_id == "M" and await memory.stations() == []
    async with registry_from_url(redis_url, node_id="R", prefix=prefix) as shared:
        assert isinstance(shared, RedisRegistry) and await shared.stations() == []
    from csms_kit import UsageError

    with pytest.raises(UsageError, match="memory://"):
        registry_from_url("ftp://example")


async def test_presence_is_restored_when_redis_forgets_it(redis_url: str, prefix: str) -> None:
    """Keys lost by Redis (a restart, a flush) come back at the next lease renewal."""
    async with (
        RedisRegistry(redis_url, node_id="A", prefix=prefix, lease_ttl=LEASE_TTL) as holder,
        RedisRegistry(redis_url, node_id="B", prefix=prefix) as other,
    ):
        csms_side, _ = memory_transport_pair()
        session = StationSession("CP1", csms_side, "1.6")
        await holder.register(session)
        keys = [key async for key in holder._client().scan_iter(match=f"{prefix}:station:*")]
        await holder._client().delete(*keys)
        assert await other.record("CP1") is None
        await asyncio.wait_for(other.wait_connected("CP1"), LEASE_TTL * 5)
        record = await other.record("CP1")
        assert record is not None and record.node == "A"
        await holder.unregister(session)
        assert await other.record("CP1") is None


async def test_broker_lost_local_calls_work_remote_calls_fail_fast(tmp_path: Path) -> None:
    """With Redis down, a local call succeeds and a remote one fails at once with
    BrokerUnavailable; when Redis is back, the station's presence is restored."""
    port = free_port()
    url = f"redis://{HOST}:{port}/0"
    with redis_server(port, tmp_path) as redis_process:
        async with (
            RedisRegistry(url, node_id="A", lease_ttl=LEASE_TTL) as holder,
            RedisRegistry(url, node_id="B", lease_ttl=LEASE_TTL) as caller,
            serve(Csms, HOST, 0, registry=holder, ping_interval=None) as server,
            connect_scripted(f"ws://{HOST}:{server.port}", "CP1", "1.6") as station,
        ):
            await caller.wait_connected("CP1", timeout=5)
            redis_process.kill()
            redis_process.wait()
            # local: the holder reaches its own station without Redis
            local = asyncio.create_task(holder.call("CP1", call16.Reset(type="Soft")))
            frame = await station.recv()
            await station.send([3, frame[1], {"status": "Accepted"}])
            assert (await local).status == "Accepted"
            # remote: fails at once, typed
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await caller.call("CP1", call16.Reset(type="Soft"), timeout=30)
            assert time.monotonic() - started < 5
            with redis_server(port, tmp_path):
                # the new, empty Redis learns of the station from its holder again
                deadline = time.monotonic() + 10
                while True:
                    with contextlib.suppress(BrokerUnavailable):
                        record = await caller.record("CP1")
                        if record is not None:
                            break
                    assert time.monotonic() < deadline, "presence was not restored"
                    await asyncio.sleep(0.1)
                assert record.node == "A"
