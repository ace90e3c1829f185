"""``csms-kit serve --metrics-port``: a real process whose /metrics endpoint is scraped
over HTTP after real stations talked to it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest

from csms_kit import connect_station
from tests.observability.exposition import Samples, parse, value

HOST = "127.0.0.1"
TIMEOUT = 10.0
BOOT_201 = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


@contextlib.asynccontextmanager
async def csms_kit_serve(*options: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run ``csms-kit serve`` on free ports; yield it and its first line of output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms_kit.cli",
        "serve",
        *("--host", HOST, "--port", "0"),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        yield process, first.decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), TIMEOUT)
            except asyncio.TimeoutError:  # pragma: no cover - only if it hangs
                process.kill()
                await process.wait()


async def read_line(process: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
    match = re.search(pattern, line)
    assert match, line
    return match


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


async def scrape(url: str) -> Samples:
    status, content_type, text = await asyncio.to_thread(get, url)
    assert status == 200
    assert content_type.startswith("text/plain")
    return parse(text)


async def test_serve_exposes_metrics_after_real_traffic() -> None:
    """A 2.0.1 station boots and sends 3 Heartbeats: /metrics counts them, on the host given."""
    async with csms_kit_serve("--metrics-port", "0") as (process, first):
        metrics_port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", first)
        assert metrics_port, first
        endpoint = f"http://{HOST}:{metrics_port[1]}/metrics"
        port = (await read_line(process, r"ws://127\.0\.0\.1:(\d+)/"))[1]
        async with connect_station(f"ws://{HOST}:{port}", "CP-1", "2.0.1") as station:
            boot = await station.call(BOOT_201, action="BootNotification")
            assert boot.status == "Accepted"
            for _ in range(3):
                await station.call({}, action="Heartbeat")
            samples = await scrape(endpoint)
            assert value(samples, "csms_kit_connected_stations", version="2.0.1") == 1
        heartbeats = {"direction": "in", "action": "Heartbeat", "outcome": "result"}
        for _ in range(50):  # the session's last points run as the station leaves
            samples = await scrape(endpoint)
            if value(samples, "csms_kit_connected_stations", version="2.0.1") == 0:
                break
            await asyncio.sleep(0.05)
        assert value(samples, "csms_kit_calls_total", **heartbeats) == 3
        assert value(samples, "csms_kit_call_duration_seconds_count", **heartbeats) == 3
        boots = {"direction": "in", "action": "BootNotification", "outcome": "result"}
        assert value(samples, "csms_kit_calls_total", **boots) == 1
        assert value(samples, "csms_kit_connected_stations", version="2.0.1") == 0
        assert value(samples, "csms_kit_connections_total", version="2.0.1") == 1
        # The default registry: the process's own metrics come along.
        assert value(samples, "process_cpu_seconds_total") is not None
    assert process.returncode == 0


async def test_metrics_are_served_only_on_the_host_given() -> None:
    """Bound to --host (127.0.0.1 here): the same port on another loopback address refuses."""
    async with csms_kit_serve("--metrics-port", "0") as (_, first):
        match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", first)
        assert match, first
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(get, f"http://127.0.0.2:{match[1]}/metrics")


async def test_a_metrics_port_in_use_is_refused() -> None:
    """--metrics-port on a port already taken: exit 1 with a message saying so."""
    taken = await asyncio.start_server(lambda r, w: None, HOST, 0)
    try:
        port = taken.sockets[0].getsockname()[1]
        async with csms_kit_serve("--metrics-port", str(port)) as (process, first):
            assert first == ""
            assert process.stderr is not None
            err = (await asyncio.wait_for(process.stderr.read(), TIMEOUT)).decode()
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == 1
        assert f"csms-kit serve: cannot serve metrics on {HOST}:{port}" in err
    finally:
        taken.close()
        await taken.wait_closed()
