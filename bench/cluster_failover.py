"""Failover: kill -9 one of two nodes under a steady call load, on a shared registry.

Starts a ``redis-server`` (or ``nats-server -js``) and two ``csms-kit serve`` nodes on
it. ``--stations`` stations connect to node 1; each answers every CALL at once and,
when its connection drops, reconnects to node 2 after a random 0-0.5 s (as chargers
do, with some jitter). ``--callers`` concurrent callers in this process call ``Reset``
on random stations through their own registry (node ``api``), each call with a 2 s
timeout. After ``--before`` seconds node 1 is killed with SIGKILL. Reported:

* how long after the kill each station was listed on node 2, and reachable again
  through it (its first answered call there): p50 and max (calls in flight to node 1
  when it died wait out their timeout plus the registry's margin first);
* every call's outcome: answered, or failed with which typed error, or lost (still
  pending at the end: must be 0); CALLs a station received twice (must be 0).

Run from the repository root::

    python bench/cluster_failover.py                  # Redis, 50 stations, 20 callers
    python bench/cluster_failover.py --backend nats
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _cluster_broker import HOST, free_port, start_broker, wait_port


class Fleet:
    """Stations that answer at once and move to node 2 when node 1 goes away."""

    def __init__(self, urls: list[str], count: int) -> None:
        self.urls = urls
        self.count = count
        self.received: collections.Counter[str] = collections.Counter()
        self.node_of: dict[str, int] = {}
        self.stop = asyncio.Event()

    async def station(self, name: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        node = 0
        while not self.stop.is_set():
            try:
                async with connect(
                    f"{self.urls[node]}/{name}", subprotocols=["ocpp1.6"], ping_interval=None
                ) as ws:
                    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
                    await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
                    await ws.recv()
                    self.node_of[name] = node
                    async for text in ws:
                        frame = json.loads(text)
                        if frame[0] == 2:
                            self.received[frame[1]] += 1
                            await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
            except (OSError, ConnectionClosed):
                pass
            self.node_of.pop(name, None)
            node = 1  # node 1 went away: the other one
            await asyncio.sleep(random.uniform(0, 0.5))


async def run(
    arguments: argparse.Namespace, registry_url: str, urls: list[str], node1: Any
) -> None:
    from ocpp.v16 import call as call16

    from csms_kit import CsmsKitError
    from csms_kit.cluster import registry_from_url

    fleet = Fleet(urls, arguments.stations)
    names = [f"F{n}" for n in range(arguments.stations)]
    stations = [asyncio.create_task(fleet.station(name)) for name in names]
    outcomes: collections.Counter[str] = collections.Counter()
    back: dict[str, float] = {}
    killed_at: list[float] = []
    async with registry_from_url(
        registry_url, node_id="api", lease_ttl=arguments.lease_ttl
    ) as api:
        for name in names:
            await api.wait_connected(name, timeout=30)

        async def caller() -> None:
            while not fleet.stop.is_set():
                name = random.choice(names)
                try:
                    await api.call(name, call16.Reset(type="Soft"), timeout=2)
                except CsmsKitError as exc:
                    outcomes[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                else:
                    outcomes["answered"] += 1
                    if killed_at and name not in back and fleet.node_of.get(name) == 1:
                        back[name] = time.monotonic() - killed_at[0]

        callers = [asyncio.create_task(caller()) for _ in range(arguments.callers)]
        await asyncio.sleep(arguments.before)
        node1.send_signal(signal.SIGKILL)
        killed_at.append(time.monotonic())
        deadline = time.monotonic() + arguments.after
        listed: dict[str, float] = {}
        while len(back) < len(names) and time.monotonic() < deadline:
            for record in await api.stations():
                if record.node == "n2" and record.station_id not in listed:
                    listed[record.station_id] = time.monotonic() - killed_at[0]
            await asyncio.sleep(0.05)
        fleet.stop.set()
        _, pending = await asyncio.wait(callers, timeout=5)
        for task in pending:
            task.cancel()
        for task in stations:
            task.cancel()
        await asyncio.gather(*stations, *pending, return_exceptions=True)
    twice = sum(1 for n in fleet.received.values() if n > 1)
    times = sorted(back.values())
    on_two = sorted(listed.values())
    print(f"{arguments.backend}: {len(names)} stations, {arguments.callers} callers, "
          f"lease {arguments.lease_ttl:g} s; node 1 killed with SIGKILL")  # fmt: skip
    for what, values in (("listed on node 2", on_two), ("answered through node 2", times)):
        if values:
            p50, worst = statistics.median(values), values[-1]
            print(f"{what}: {len(values)}/{len(names)} stations; "
                  f"p50 {p50:.2f} s, max {worst:.2f} s after the kill")  # fmt: skip
    print(f"calls: {dict(outcomes)}; lost: {len(pending)}; CALLs received twice: {twice}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("redis", "nats"), default="redis")
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--lease-ttl", type=float, default=5.0)
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--after", type=float, default=30.0, help="at most, after the kill")
    arguments = parser.parse_args()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            broker, registry_url = start_broker(arguments.backend, workdir)
            processes.append(broker)
            urls = []
            for n in (1, 2):
                port = free_port()
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "csms_kit.cli", "serve", "--port", str(port),
                         "--registry", registry_url, "--node-id", f"n{n}",
                         "--lease-ttl", str(arguments.lease_ttl)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                )  # fmt: skip
                wait_port(port)
                urls.append(f"ws://{HOST}:{port}")
            asyncio.run(run(arguments, registry_url, urls, processes[1]))
        finally:
            for process in reversed(processes):
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
