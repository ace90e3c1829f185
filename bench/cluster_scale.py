"""Scale on one machine: tens of thousands of stations on worker processes sharing Redis.

Starts a ``redis-server``, ``csms-kit serve --workers W --registry redis://...`` (the
demo CSMS, SO_REUSEPORT workers) and L load generators (``bench/_bench_load.py``, one
process each, since a process holds at most ~20,000 sockets here), each connecting
``--per-generator`` stations that boot and send one Heartbeat. Then every station
sends a Heartbeat every ``--period`` seconds for ``--window`` seconds. Reports how many
stations the registry lists and on how many nodes, the workers' total RSS, and the
heartbeat latency percentiles. Everything stays on 127.0.0.1 and stops by itself.

Run from the repository root::

    python bench/cluster_scale.py                        # 3 workers, 3 x 10,000 stations
    python bench/cluster_scale.py --quick                # 2 workers, 2 x 200 stations
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _cluster_broker import free_port, start_broker, wait_port
from connection_memory import Child

HERE = Path(__file__).resolve().parent


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def measure(arguments: argparse.Namespace, redis_url: str, port: int) -> dict[str, Any]:
    from csms_kit.cluster import RedisRegistry

    deadline = ("--deadline", str(arguments.window + 900))
    generators = []
    for n in range(arguments.generators):
        # Each generator from its own loopback address: one address has ~28,000 ports.
        os.environ["CSMS_BENCH_SOURCE"] = f"127.0.0.{n + 2}"
        generators.append(
            await Child.start(
                f"load {n}",
                ["--role", "load", "--port", str(port), "--compression", "none", *deadline],
                str(HERE / "server_bench.py"),
            )
        )
    os.environ.pop("CSMS_BENCH_SOURCE", None)
    try:
        for generator in generators:
            await generator.read(60)
        started = time.monotonic()
        connected = await asyncio.gather(
            *(
                g.ask(f"connect {arguments.per_generator} G{n}- 100 1", timeout=900)
                for n, g in enumerate(generators)
            )
        )
        connect_seconds = time.monotonic() - started
        async with RedisRegistry(redis_url, node_id="bench") as registry:
            records = await registry.stations()
        nodes: dict[str, int] = {}
        for record in records:
            nodes[record.node] = nodes.get(record.node, 0) + 1
        for generator in generators:
            await generator.ask(f"run idle {arguments.period}")
        await asyncio.sleep(arguments.window)
        windows = [await g.ask("stop 60", timeout=120) for g in generators]
        return {
            "connected": sum(c.get("connected", 0) for c in connected),
            "failures": sorted({f for c in connected for f in c.get("failures", [])}),
            "connect_seconds": connect_seconds,
            "listed": len(records),
            "nodes": nodes,
            "windows": windows,
        }
    finally:
        for generator in generators:
            await generator.stop("quit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--generators", type=int, default=3)
    parser.add_argument("--per-generator", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=20.0, help="seconds between heartbeats")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--quick", action="store_true", help="2 workers, 2 x 200 stations, 5 s")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.workers, arguments.generators, arguments.per_generator = 2, 2, 200
        arguments.period, arguments.window = 2.0, 5.0
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as workdir,
        open(os.path.join(workdir + ".serve.log"), "wb") as serve_log,
    ):
        redis, redis_url = start_broker("redis", workdir)
        serve = subprocess.Popen(
            [sys.executable, "-m", "csms_kit.cli", "serve", "--port", str(port),
             "--registry", redis_url, "--workers", str(arguments.workers)],
            stdout=subprocess.DEVNULL, stderr=serve_log,
        )  # fmt: skip
        try:
            wait_port(port, 30)
            time.sleep(1)  # every worker listening
            try:
                result = asyncio.run(measure(arguments, redis_url, port))
            finally:
                log = Path(workdir + ".serve.log").read_text(errors="replace")
                if serve.poll() is not None or "Traceback" in log:
                    print(log[-3000:], file=sys.stderr)
            workers = children(serve.pid)
            rss = [rss_mib(pid) for pid in workers]
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
            redis.kill()
            redis.wait()
    total = arguments.generators * arguments.per_generator
    latencies = [w.get("latency", {}) for w in result["windows"]]
    print(
        f"{arguments.workers} workers, {arguments.generators} load generators, {total:,} stations"
    )
    print(f"connected {result['connected']:,} in {result['connect_seconds']:.1f} s; "
          f"the registry lists {result['listed']:,} on {len(result['nodes'])} nodes: "
          f"{sorted(result['nodes'].values())}")  # fmt: skip
    if result["failures"]:
        print(f"connection failures: {result['failures']}")
    print(f"workers' RSS: {sum(rss):.1f} MiB in all ({', '.join(f'{r:.1f}' for r in rss)})")
    for n, latency in enumerate(latencies):
        print(f"generator {n}: heartbeat latency ms {latency}")
    return 0 if result["listed"] == total else 1


if __name__ == "__main__":
    sys.exit(main())
