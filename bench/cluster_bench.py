"""Cluster benchmark: a call to a station on another process, against a local call.

Four processes on 127.0.0.1, started by this script and stopped by it:

* a ``redis-server`` (or, with ``--backend nats``, a ``nats-server -js``) of its own,
  on a free port;
* the **holder**: ``serve()`` with a cluster registry on it, to which the stations
  connect;
* the **stations**: plain ``websockets`` clients that answer every CALL at once with
  ``{"status": "Accepted"}``;
* the **caller**: another process with its own registry (node ``api``) that calls
  ``Reset`` on the stations through it.

Each measurement runs ``--callers`` concurrent callers (default 100) for
``--seconds`` (default 10), round-robin over the stations; it reports calls/s and the
p50/p99 round trip. The same calls are then made by the holder itself
(``registry.call`` finds the local session). The cross-node overhead is the
difference of the medians; the issue's target is p50 <= 1 ms on loopback.

Run from the repository root::

    python bench/cluster_bench.py                   # 100 stations, 100 callers, 10 s each
    python bench/cluster_bench.py --backend nats    # the same on NATS
    python bench/cluster_bench.py --quick           # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _cluster_broker import HOST, free_port, start_broker

SCRIPT = os.path.abspath(__file__)


async def calls(registry: Any, stations: int, callers: int, seconds: float) -> dict[str, Any]:
    """``callers`` tasks calling Reset for ``seconds``; the figures."""
    from ocpp.v16 import call as call16

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def caller(n: int) -> None:
        nonlocal errors
        i = n
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await registry.call(f"B{i % stations}", call16.Reset(type="Soft"), timeout=10)
            except Exception:
                errors += 1
            else:
                latencies.append(time.perf_counter() - started)
            i += callers

    began = time.monotonic()
    await asyncio.gather(*(caller(n) for n in range(callers)))
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "calls": len(latencies),
        "errors": errors,
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
    }


async def holder(broker_url: str, port: int) -> None:
    from csms_kit import StationSession, serve
    from csms_kit.cluster import registry_from_url

    class Csms(StationSession):
        boot_gate = False

    async with (
        registry_from_url(broker_url, node_id="holder") as registry,
        serve(Csms, HOST, port, registry=registry, ping_interval=None),
    ):
        print("READY", flush=True)
        # Commands on stdin: "local STATIONS CALLERS SECONDS" or "quit".
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().split():
            if line[0] != "local":
                break
            stations, callers, seconds = int(line[1]), int(line[2]), float(line[3])
            print(json.dumps(await calls(registry, stations, callers, seconds)), flush=True)


async def stations(url: str, count: int) -> None:
    from websockets.asyncio.client import connect

    async def station(n: int) -> None:
        async with connect(f"{url}/B{n}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))

    tasks = [asyncio.create_task(station(n)) for n in range(count)]
    await asyncio.sleep(1)
    print("READY", flush=True)
    await asyncio.gather(*tasks)


async def caller(broker_url: str, count: int, callers: int, seconds: float) -> None:
    from csms_kit.cluster import registry_from_url

    async with registry_from_url(broker_url, node_id="api") as registry:
        for n in range(count):
            await registry.wait_connected(f"B{n}", timeout=30)
        print(json.dumps(await calls(registry, count, callers, seconds)), flush=True)


def child(*arguments: str, stdin: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, SCRIPT, *arguments],
        stdin=stdin,
        stdout=subprocess.PIPE,
        text=True,
    )


def expect(process: subprocess.Popen[str], what: str) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"{what}: the process ended (exit {process.wait()})")
    return line.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="10 stations, 10 callers, 2 s")
    parser.add_argument("--backend", choices=("redis", "nats"), default="redis")
    parser.add_argument("--role", choices=("holder", "stations", "caller"), help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.stations, arguments.callers, arguments.seconds = 10, 10, 2.0
    if arguments.role == "holder":
        asyncio.run(holder(arguments.redis, arguments.port))
        return 0
    if arguments.role == "stations":
        asyncio.run(stations(f"ws://{HOST}:{arguments.port}", arguments.stations))
        return 0
    if arguments.role == "caller":
        asyncio.run(
            caller(arguments.redis, arguments.stations, arguments.callers, arguments.seconds)
        )
        return 0

    port = free_port()
    processes: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            broker, broker_url = start_broker(arguments.backend, workdir)
            processes.append(broker)
            hold = child(
                "--role",
                "holder",
                "--redis",
                broker_url,
                "--port",
                str(port),
                stdin=subprocess.PIPE,
            )
            processes.append(hold)
            expect(hold, "holder")
            sts = child(
                "--role", "stations", "--port", str(port), "--stations", str(arguments.stations)
            )
            processes.append(sts)
            expect(sts, "stations")
            remote_process = child(
                "--role",
                "caller",
                "--redis",
                broker_url,
                "--stations",
                str(arguments.stations),
                "--callers",
                str(arguments.callers),
                "--seconds",
                str(arguments.seconds),
            )
            processes.append(remote_process)
            remote = json.loads(expect(remote_process, "caller"))
            assert hold.stdin is not None
            command = f"local {arguments.stations} {arguments.callers} {arguments.seconds}\n"
            hold.stdin.write(command)
            hold.stdin.flush()
            local = json.loads(expect(hold, "holder, local calls"))
        finally:
            for process in reversed(processes):
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
    print(
        f"{arguments.stations} stations, {arguments.callers} concurrent callers, "
        f"{arguments.seconds:g} s each, Redis on loopback"
    )
    print("| call | calls/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    rows = (("local (holder's own session)", local), ("from another process", remote))
    for name, figures in rows:
        print(
            f"| {name} | {figures['calls_per_s']:,.0f} | {figures['p50_ms']:.2f} | "
            f"{figures['p99_ms']:.2f} | {figures['errors']} |"
        )
    overhead = remote["p50_ms"] - local["p50_ms"]
    print(f"\ncross-node overhead, p50: {overhead:.2f} ms (target <= 1 ms)")
    return 1 if remote["errors"] or local["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
