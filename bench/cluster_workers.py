"""Two workers against one: heartbeat throughput per server CPU, on a shared Redis.

Starts a ``redis-server`` and, on ports of their own, ``csms-kit serve --workers 1``
and ``csms-kit serve --workers 2`` (the demo CSMS; the two workers share the port with
SO_REUSEPORT), both with ``--registry redis://...`` (a database each). Each server gets
``--generators`` load generators (``bench/_bench_load.py``, one process each) that
connect ``--stations`` stations in all (boot, one Heartbeat). Then, one server at a
time, every station of that server sends back-to-back Heartbeats (the next as soon as
the previous is answered) for ``--window`` seconds; the servers take turns for
``--rounds`` rounds (the order rotating), so that drift and neighbours hit both alike.

For each window: heartbeats answered per second (all generators), the CPU seconds
(user + system, ``/proc/<pid>/stat``) of every worker process before and after (with
``--workers 1`` the serve process is the worker; with 2, the supervisor's children,
the supervisor's own polling shown apart), heartbeats per server-CPU-second, the
latency percentiles (nearest rank, worst generator) and, for context, the CPU of the
load generators, of Redis and of the whole machine (``/proc/stat``). Reported: a table
per number of workers and the ratios 2 workers / 1 worker.

The load generators run on the same cores as the workers (2 here): a second worker
can only get CPU the generators leave, so heartbeats/s measures the machine as much
as the server. Heartbeats per server-CPU-second is the figure to compare.

The demo CSMS limits each station to 20 frames/s after a burst of 200
(``DemoCsms.limits``): with too few stations, back-to-back Heartbeats measure that
limit (latencies near 50 ms, an idle machine). The script warns when a window may have
been throttled; from a few hundred stations on, it is not.

Everything stays on 127.0.0.1. Children die with this process (``PR_SET_PDEATHSIG``),
are stopped in ``finally`` and exit by themselves after a deadline.

Run from the repository root::

    python bench/cluster_workers.py             # 2,000 stations per server, 3 x 10 s
    python bench/cluster_workers.py --quick     # 400 stations, 1 x 2 s: a smoke run
    python bench/cluster_workers.py --json      # the figures as JSON on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench_servers import die_with_parent
from _cluster_broker import HOST, free_port, start_broker
from cluster_scale import children, rss_mib
from connection_memory import BenchError, Child

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
WORKERS = (1, 2)
NOTE = (
    "The load generators share the machine's {cores} CPUs with the workers: heartbeats/s "
    "is bounded by the whole machine; compare heartbeats per server-CPU-second."
)


def log(message: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far, from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICK  # all but idle and iowait


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port``."""
    owned = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                owned.add(os.readlink(fd))
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and local_port == port and f"socket:[{fields[9]}]" in owned:
                return True
    return False


class Server:
    """``csms-kit serve --workers W`` on a port of its own, and its load generators."""

    def __init__(self, workers: int, registry_url: str, workdir: str) -> None:
        self.workers = workers
        self.port = free_port()
        self.registry_url = registry_url
        self.log_path = Path(workdir) / f"serve-{workers}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.generators: list[Child] = []
        self.windows: list[dict[str, Any]] = []
        #: Frames the stations have sent since they connected, and when that was.
        self.stations = 0
        self.frames = 0
        self.connected_at = 0.0

    @property
    def name(self) -> str:
        return f"--workers {self.workers}"

    def start(self) -> None:
        with open(self.log_path, "wb") as serve_log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "csms_kit.cli", "serve", "--host", HOST,
                 "--port", str(self.port), "--registry", self.registry_url,
                 "--workers", str(self.workers)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=serve_log,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (no thread yet: before asyncio.run)
            )  # fmt: skip

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        return sorted(children(pid)) if self.workers > 1 else [pid]

    def wait_listening(self, timeout: float = 60) -> None:
        """Return once every worker listens (else SO_REUSEPORT spreads over fewer)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"serve {self.name} exited:\n{self.log_tail()}")
            pids = self.worker_pids()
            if len(pids) == self.workers and all(listening(p, self.port) for p in pids):
                return
            if time.monotonic() > deadline:
                raise BenchError(f"serve {self.name}: not every worker listens after {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (the supervisor forwards it to its workers); SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def start_generators(self, count: int, deadline: float) -> None:
        for n in range(count):
            self.generators.append(
                await Child.start(
                    f"load {n} of {self.name}",
                    [*("--role", "load", "--port", str(self.port), "--compression", "none"),
                     *("--deadline", str(deadline))],
                    str(HERE / "server_bench.py"),
                )
            )  # fmt: skip
            await self.generators[-1].read(60)

    async def ask_all(self, command: str, timeout: float = 60) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(g.ask(command, timeout) for g in self.generators)))

    async def connect(self, stations: int) -> float:
        """Every generator opens its share of ``stations`` (boot, one Heartbeat); seconds."""
        started = time.monotonic()
        shares = [stations // len(self.generators)] * len(self.generators)
        shares[0] += stations - sum(shares)
        answers = await asyncio.gather(
            *(
                g.ask(f"connect {share} W{self.workers}G{n} 100 1", 60 + stations * 0.05)
                for n, (g, share) in enumerate(zip(self.generators, shares, strict=True))
            )
        )
        failed = sum(a["failed"] for a in answers)
        if failed:
            failures = sorted({f for a in answers for f in a["failures"]})
            raise BenchError(f"{self.name}: {failed} stations could not connect: {failures}")
        self.stations, self.frames = stations, 2 * stations  # boot, one Heartbeat
        self.connected_at = time.monotonic()
        return self.connected_at - started

    def throttled(self) -> bool:
        """Whether the demo CSMS's per-station frame limit may have slowed the stations.

        Its token bucket (``DemoCsms.limits.frames``: 20 frames/s after a burst of 200)
        runs dry once a station has sent ``burst + rate * seconds``; the figures would
        then measure the limit, not the server.
        """
        from csms_kit.demo.csms import DemoCsms

        limit = DemoCsms.limits.frames
        if limit is None:
            return False
        allowed = limit.burst + limit.rate * (time.monotonic() - self.connected_at)
        return self.frames >= 0.9 * allowed * self.stations

    async def stations_per_node(self) -> dict[str, int]:
        """How many stations the registry lists on each worker."""
        from csms_kit.cluster import RedisRegistry

        async with RedisRegistry(self.registry_url, node_id="bench") as registry:
            records = await registry.stations()
        return dict(collections.Counter(record.node for record in records))

    async def window(self, seconds: float, redis_pid: int) -> dict[str, Any]:
        """Back-to-back Heartbeats for ``seconds``; CPU of everyone before and after."""
        assert self.process is not None
        pids = self.worker_pids()
        supervisor = self.process.pid if self.workers > 1 else None
        before = [cpu_of(p) for p in pids]
        supervisor0 = cpu_of(supervisor) if supervisor else 0.0
        redis0, machine0 = cpu_of(redis_pid), machine_busy()
        await self.ask_all("run heartbeat 0")
        await asyncio.sleep(seconds)
        stops = await self.ask_all("stop 60", 90)  # round trips in flight complete first
        after = [cpu_of(p) for p in pids]
        errors = [e for s in stops for e in s["errors"]]
        if errors:
            count = sum(s["error_count"] for s in stops)
            raise BenchError(f"{self.name}: {count} errors: {errors}")
        workers = [a - b for a, b in zip(after, before, strict=True)]
        cpu = {
            "server_cpu": sum(workers),
            "supervisor_cpu": cpu_of(supervisor) - supervisor0 if supervisor else 0.0,
            "redis_cpu": cpu_of(redis_pid) - redis0,
            "load_cpu": sum(s["load_cpu"] for s in stops),
        }
        machine = machine_busy() - machine0
        round_trips = sum(s["round_trips"] for s in stops)
        self.frames += round_trips
        return {
            "round_trips": round_trips,
            "heartbeats_per_s": sum(s["round_trips"] / s["seconds"] for s in stops),
            "seconds": max(s["seconds"] for s in stops),
            "worker_cpu": workers,
            **cpu,
            "machine_cpu": machine,
            "rest_cpu": machine - sum(cpu.values()),  # neighbours, idle children, kernel
            "latency": [s["latency"] for s in stops],  # since the reset after warm-up
            "throttled": self.throttled(),
        }


def summarize(server: Server, per_node: dict[str, int], connect_s: float) -> dict[str, Any]:
    """Totals over the rounds of one server."""
    windows = server.windows
    round_trips = sum(w["round_trips"] for w in windows)
    seconds = sum(w["seconds"] for w in windows)
    cpu = sum(w["server_cpu"] for w in windows)
    rate = sum(w["heartbeats_per_s"] * w["seconds"] for w in windows)  # all generators'
    split = [sum(cpus) for cpus in zip(*(w["worker_cpu"] for w in windows), strict=True)]
    latency = windows[-1]["latency"]  # each generator's, over every round
    cores = {
        f"{who}_cores": round(sum(w[f"{who}_cpu"] for w in windows) / seconds, 3)
        for who in ("server", "load", "redis", "supervisor", "machine", "rest")
    }
    return {
        "workers": server.workers,
        "heartbeats_per_s": round(rate / seconds, 1),
        "heartbeats_per_cpu_s": round(round_trips / cpu, 1),
        "cpu_us_per_heartbeat": round(cpu / round_trips * 1e6, 2),
        **cores,
        "p50_ms": max(lat["p50"] for lat in latency),
        "p99_ms": max(lat["p99"] for lat in latency),
        "round_trips": round_trips,
        "seconds": round(seconds, 3),
        "server_cpu_s": round(cpu, 3),
        "worker_cpu_s": [round(c, 3) for c in split],
        "stations_per_worker": sorted(per_node.values(), reverse=True),
        "connect_s": round(connect_s, 2),
        "rss_mib": [round(rss_mib(pid), 1) for pid in server.worker_pids()],
        "rounds": [
            {
                "heartbeats_per_s": round(w["heartbeats_per_s"], 1),
                "heartbeats_per_cpu_s": round(w["round_trips"] / w["server_cpu"], 1),
            }
            for w in windows
        ],
        "latency_per_generator": latency,
        "throttled_windows": sum(w["throttled"] for w in windows),
    }


async def measure(
    arguments: argparse.Namespace, servers: list[Server], redis_pid: int
) -> dict[str, Any]:
    try:
        for server in servers:
            await server.start_generators(arguments.generators, arguments.deadline)
        connect_s = []
        for server in servers:
            connect_s.append(await server.connect(arguments.stations))
            log(f"{server.name}: {arguments.stations} stations connected in {connect_s[-1]:.1f} s")
        per_node = [await server.stations_per_node() for server in servers]
        for server, nodes in zip(servers, per_node, strict=True):
            if sum(nodes.values()) != arguments.stations or len(nodes) != server.workers:
                raise BenchError(f"{server.name}: the registry lists {nodes}")
        for server in servers:  # warm-up, not counted
            await server.window(arguments.warmup, redis_pid)
            await server.ask_all("reset")
        for round_ in range(arguments.rounds):
            shift = round_ % len(servers)
            for server in servers[shift:] + servers[:shift]:
                result = await server.window(arguments.window, redis_pid)
                server.windows.append(result)
                log(
                    f"round {round_ + 1} {server.name}: {result['heartbeats_per_s']:,.0f} "
                    f"heartbeats/s, {result['round_trips'] / result['server_cpu']:,.0f} "
                    f"per server-CPU-s, worker CPU {[round(c, 2) for c in result['worker_cpu']]}"
                )
        summaries = [
            summarize(server, nodes, seconds)
            for server, nodes, seconds in zip(servers, per_node, connect_s, strict=True)
        ]
    finally:
        await asyncio.gather(
            *(g.stop("quit") for server in servers for g in server.generators),
            return_exceptions=True,
        )
    one, two = summaries
    paired = [
        {k: round(b[k] / a[k], 3) for k in ("heartbeats_per_s", "heartbeats_per_cpu_s")}
        for a, b in zip(one["rounds"], two["rounds"], strict=True)
    ]
    ratios = {k: round(two[k] / one[k], 3) for k in ("heartbeats_per_s", "heartbeats_per_cpu_s")}
    ratios |= {k: round(two[k] / one[k], 3) for k in ("p50_ms", "p99_ms") if one[k]}
    return {"results": summaries, "ratios_2_over_1": ratios, "paired_ratios": paired}


def print_report(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print(
        f"csms-kit serve --workers 1 vs 2, Redis registry; {settings['stations']:,} stations "
        f"per server (half OCPP 1.6, half 2.0.1), back-to-back Heartbeats from "
        f"{settings['generators']} load generator processes per server; "
        f"{settings['rounds']} round(s) of {settings['window_s']:g} s, servers interleaved"
    )
    print(report["note"])
    print()
    print("| workers | heartbeats/s | server CPU (cores) | heartbeats per server-CPU-s "
          "| µs CPU/heartbeat | p50 ms | p99 ms | load gen. (cores) | redis (cores) "
          "| machine busy (cores) | of which the rest |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["results"]:
        print(
            f"| {r['workers']} | {r['heartbeats_per_s']:,.0f} | {r['server_cores']:.2f} | "
            f"{r['heartbeats_per_cpu_s']:,.0f} | {r['cpu_us_per_heartbeat']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['load_cores']:.2f} | "
            f"{r['redis_cores']:.2f} | {r['machine_cores']:.2f} | {r['rest_cores']:.2f} |"
        )
    ratios = report["ratios_2_over_1"]
    print(
        f"| 2 / 1 | {ratios['heartbeats_per_s']:.2f}x | | {ratios['heartbeats_per_cpu_s']:.2f}x "
        f"| | {ratios.get('p50_ms', 0):.2f}x | {ratios.get('p99_ms', 0):.2f}x | | | | |"
    )
    print()
    for name in ("heartbeats_per_s", "heartbeats_per_cpu_s"):
        values = [p[name] for p in report["paired_ratios"]]
        print(f"2 / 1 {name}, per round: {', '.join(f'{v:.2f}x' for v in values)}")
    for r in report["results"]:
        if r["throttled_windows"]:
            print(
                f"WARNING --workers {r['workers']}: in {r['throttled_windows']} window(s) the "
                "stations had used up the demo CSMS's frame limit (20/s after a burst of 200 "
                "per station): those figures measure the limit; use more --stations"
            )
    for r in report["results"]:
        supervisor = (
            f"; supervisor {r['supervisor_cores']:.3f} cores (not counted)"
            if r["workers"] > 1
            else ""
        )
        print(
            f"--workers {r['workers']}: stations per worker {r['stations_per_worker']}, "
            f"CPU s per worker {r['worker_cpu_s']}, RSS MiB {r['rss_mib']}{supervisor}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=2000, help="per server")
    parser.add_argument("--generators", type=int, default=2, help="load processes per server")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per measured window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, not measured")
    # Not fewer: 100 stations send more than the demo's frame limit lets through (throttled).
    parser.add_argument("--quick", action="store_true", help="400 stations, 1 round of 2 s")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.stations, arguments.rounds = 400, 1
        arguments.window, arguments.warmup = 2.0, 1.0
    #: For the whole run, and for each child.
    arguments.deadline = (
        240 + arguments.stations * 0.1 + 2 * (arguments.rounds + 1) * (arguments.window + 90)
    )
    return arguments


def on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so that every finally runs and stops the children


def main() -> int:
    arguments = parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    settings = {
        "stations": arguments.stations,
        "generators": arguments.generators,
        "window_s": arguments.window,
        "rounds": arguments.rounds,
        "warmup_s": arguments.warmup,
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg()[0],
    }
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as workdir:
        redis, redis_url = start_broker("redis", workdir, preexec_fn=die_with_parent)
        try:
            for workers in WORKERS:  # a Redis database each
                database = f"{redis_url.rsplit('/', 1)[0]}/{workers}"
                servers.append(Server(workers, database, workdir))
                servers[-1].start()
            try:
                for server in servers:
                    server.wait_listening()
                log(
                    f"redis {redis_url}; " + ", ".join(f"{s.name}: port {s.port}" for s in servers)
                )
                report = asyncio.run(
                    asyncio.wait_for(measure(arguments, servers, redis.pid), arguments.deadline)
                )
            except (BenchError, asyncio.TimeoutError) as exc:
                print(f"error: {str(exc) or 'the run took too long'}", file=sys.stderr)
                for server in servers:
                    print(f"serve {server.name} log:\n{server.log_tail()}", file=sys.stderr)
                return 1
        finally:
            for server in servers:
                server.stop()
            redis.kill()
            redis.wait()
    report = {"settings": settings, "note": NOTE.format(cores=os.cpu_count()), **report}
    if arguments.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
