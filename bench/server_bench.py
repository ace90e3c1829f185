"""Server benchmark: csms_kit against the floor and the baseline, over real WebSockets.

One command runs every scenario for three servers, side by side in one run
(``DESIGN.md``, "Measuring performance"; ratios, not absolute figures, are what count
on a shared machine):

* **floor**: a bare ``websockets`` server that parses each frame and answers a canned
  CALLRESULT: the limit of this stack;
* **baseline**: one ``ocpp`` ``ChargePoint`` per connection, as that package's
  examples do, 1.6 or 2.0.1 class picked by the subprotocol;
* **csms_kit**: ``serve()`` with the example's session classes, full validation both
  ways (see ``bench/_bench_servers.py`` for the exact setup).

Each server runs in a process of its own and reports its own CPU time (``getrusage``)
and memory (``VmRSS``); load comes from another process per server, a lean generator
of plain ``websockets`` clients sending hand-written frames and timing each round
trip (``bench/_bench_load.py``). Everything stays on 127.0.0.1.

Scenarios (full size; ``--quick`` runs each at a tiny scale, for CI):

* ``heartbeat``: 100 stations, back-to-back Heartbeats (the next as soon as the
  previous is answered), 5 rounds of 4 s per server, the servers interleaved.
* ``mixed``: 1,000 stations, half 1.6 half 2.0.1, each sending one message every 4 s
  from a transaction cycle (StatusNotification, StartTransaction/TransactionEvent
  Started, MeterValues with 8 sampled values, TransactionEvent Updated, stop/Ended,
  Heartbeat), 3 rounds of 10 s per server, interleaved.
* ``idle10k``: 100 stations sending one Heartbeat every 20 s each (40 s window),
  then 10,000 (30 s window): heartbeat latency at both sizes, RSS at 10,000.
* ``compression``: RSS with 10,000 idle stations (boot + one Heartbeat each) that all
  negotiated the same thing: no compression, csms_kit's ``"frugal"`` (default) and
  ``"deflate"``, against the floor with the same settings; the baseline without
  compression and with websockets' default deflate (the same as ``"deflate"``).
* ``storm``: 5,000 stations (re)connecting at once, at most 100 handshakes in flight
  (asyncio's default listen backlog is 100 for all three servers, so the accept queue
  cannot overflow); connections accepted per second, counting the handshake and the
  BootNotification answered; 3 rounds per server, interleaved, the same identities
  every round.

Run from the repository root::

    python bench/server_bench.py                      # everything, ~15 min
    python bench/server_bench.py --quick              # smoke run, ~30 s (CI)
    python bench/server_bench.py --json out.json      # also keep the results
    python bench/server_bench.py --scenarios heartbeat,storm
    python bench/server_bench.py --from-json a.json b.json --plot docs/performance.png

The exit status is non-zero only when something is broken (a child fails, an answer
is wrong, a station cannot connect), never because of a figure. Every child process
is stopped in ``finally`` (killed if it does not quit), dies with this process
(``PR_SET_PDEATHSIG`` and end of stdin) and exits by itself after a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from _bench_servers import EXTRA_KINDS, KINDS
from connection_memory import BenchError, Child

T = TypeVar("T")

SCRIPT = os.path.abspath(__file__)
SCENARIOS = ("heartbeat", "mixed", "idle10k", "compression", "storm")
#: Settings measured by ``compression`` (server kinds for each).
COMPRESSION_RUNS = (
    ("none", ("floor", "baseline", "csms_kit")),
    ("frugal", ("floor", "csms_kit")),
    ("deflate", ("floor", "baseline", "csms_kit")),
)
#: The issue's targets, as ratios or absolute figures.
TARGET_HEARTBEAT_CPU = 1.3
TARGET_MIXED_CPU = 1.5
TARGET_RSS_PLAIN_MIB = 300
TARGET_RSS_COMPRESSED_MIB = 600
TARGET_STORM = 0.75
BASELINE_HEARTBEAT_EXPECTED = 4.6


def log(message: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The size of every scenario; :meth:`full` and :meth:`quick`."""

    heartbeat_stations: int
    heartbeat_window: float
    mixed_stations: int
    mixed_period: float
    mixed_window: float
    heartbeat_rounds: int
    mixed_rounds: int
    warmup_window: float
    idle_reference: int
    idle_stations: int
    idle_period: float
    idle_reference_window: float
    idle_window: float
    compression_stations: int
    storm_stations: int
    storm_concurrency: int
    storm_rounds: int
    connect_concurrency: int
    warm_stations: int
    settle: float
    #: Run the servers of sequential scenarios at the same time (smoke runs only).
    parallel: bool
    #: Hard limit for the whole run, and for each child.
    deadline: float
    #: asyncio's recv() buffer in the servers (0: asyncio's own 256 KiB).
    recv_buffer: int = 0

    @classmethod
    def full(cls) -> Settings:
        return cls(
            heartbeat_stations=100,
            heartbeat_window=4.0,
            mixed_stations=1000,
            mixed_period=4.0,
            mixed_window=10.0,
            heartbeat_rounds=5,
            mixed_rounds=3,
            warmup_window=3.0,
            idle_reference=100,
            idle_stations=10_000,
            idle_period=20.0,
            idle_reference_window=40.0,
            idle_window=30.0,
            compression_stations=10_000,
            storm_stations=5000,
            storm_concurrency=100,
            storm_rounds=3,
            connect_concurrency=100,
            warm_stations=10,
            settle=3.0,
            parallel=False,
            deadline=3 * 3600,
        )

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            heartbeat_stations=4,
            heartbeat_window=0.5,
            mixed_stations=10,
            mixed_period=0.05,
            mixed_window=1.0,
            heartbeat_rounds=1,
            mixed_rounds=1,
            warmup_window=0.2,
            idle_reference=4,
            idle_stations=20,
            idle_period=0.3,
            idle_reference_window=0.6,
            idle_window=0.6,
            compression_stations=10,
            storm_stations=40,
            storm_concurrency=10,
            storm_rounds=1,
            connect_concurrency=20,
            warm_stations=2,
            settle=0.2,
            parallel=True,
            deadline=300,
        )

    def connect_timeout(self, stations: int) -> float:
        return 120 + 0.05 * stations


# -- child processes -----------------------------------------------------------------------


class Rig:
    """One server under test and the load generator that drives it."""

    def __init__(
        self, kind: str, compression: str, settings: Settings, instruments: str = ""
    ) -> None:
        self.kind = kind
        #: csms_kit's instruments, comma-separated (``metrics``, ``tracing``): see
        #: ``bench/_bench_servers.py``; "" for none. Part of :attr:`label`.
        self.instruments = instruments
        #: What the stations offer, and so what is negotiated: none, frugal or deflate.
        self.compression = compression
        #: The server's own setting: its default ("frugal" for csms_kit, and the floor
        #: to match; the baseline always runs with websockets' defaults) unless the
        #: stations offer compression, then the setting that matches their offer.
        self.server_setting = "frugal" if compression == "none" else compression
        self.settings = settings
        self.server: Child | None = None
        self.load: Child | None = None
        self.server_pid = 0

    @property
    def label(self) -> str:
        """The server's kind, with its instruments if any (``csms_kit+metrics``)."""
        return "+".join([self.kind, *filter(None, self.instruments.split(","))])

    @property
    def name(self) -> str:
        return f"{self.label} (compression: {self.compression})"

    async def start(self) -> Rig:
        deadline = ("--deadline", str(self.settings.deadline))
        self.server = await Child.start(
            f"{self.name} server",
            [
                *("--role", "server", "--kind", self.kind),
                *("--compression", self.server_setting, *deadline),
                *("--recv-buffer", str(self.settings.recv_buffer)),
                *("--instruments", self.instruments),
            ],
            SCRIPT,
        )
        started = await self.server.read(60)
        self.server_pid = started["pid"]
        self.load = await Child.start(
            f"{self.name} load generator",
            [
                *("--role", "load", "--port", str(started["port"])),
                *("--compression", self.compression, *deadline),
            ],
            SCRIPT,
        )
        await self.load.read(60)
        log(f"{self.name}: server pid {self.server_pid}, port {started['port']}")
        return self

    async def stop(self) -> None:
        for child in (self.load, self.server):  # the load first: the server then sits idle
            if child is not None:
                await child.stop("quit")

    async def _server(self, command: str, timeout: float = 60) -> dict[str, Any]:
        assert self.server is not None
        return await self.server.ask(command, timeout)

    async def _load(self, command: str, timeout: float = 60) -> dict[str, Any]:
        assert self.load is not None
        return await self.load.ask(command, timeout)

    async def cpu(self) -> float:
        return float((await self._server("cpu"))["cpu"])

    async def cpu_and_gc(self) -> dict[str, Any]:
        """CPU seconds so far, and the server's GC pauses since the last call."""
        return await self._server("cpu")

    async def memory(self) -> dict[str, Any]:
        return await self._server("memory")

    async def connect(
        self, count: int, prefix: str, concurrency: int, heartbeat: bool = False
    ) -> dict[str, Any]:
        """Open ``count`` more stations (handshake + boot, + a Heartbeat); all must succeed."""
        timeout = self.settings.connect_timeout(count)
        command = f"connect {count} {prefix} {concurrency} {int(heartbeat)}"
        result = await self._load(command, timeout)
        if result["failed"]:
            raise BenchError(
                f"{self.name}: {result['failed']} of {count} stations could not connect: "
                f"{result['failures']}"
            )
        return result

    async def close_stations(self) -> None:
        await self._load("close", self.settings.connect_timeout(1000))

    async def reset(self) -> None:
        await self._load("reset")

    async def switch_instruments(self, names: str) -> None:
        """csms_kit only: every connection reports to ``names`` from now on ("": none)."""
        await self._server(f"instruments {names or '-'}")

    async def window(self, mode: str, period: float, seconds: float) -> dict[str, Any]:
        """One measured window: server CPU before, traffic for ``seconds``, server CPU after.

        ``stop`` returns once every round trip in progress has completed, so the
        server's CPU delta covers exactly the round trips counted (plus its pings).
        """
        before = await self.cpu_and_gc()
        cpu0 = before["cpu"]
        await self._load(f"run {mode} {period}")
        await asyncio.sleep(seconds)
        stats = await self._load(f"stop {period + 60}", period + 90)
        after = await self.cpu_and_gc()
        cpu1 = after["cpu"]
        stats["server_gc"] = {k: v for k, v in after.items() if k.startswith("gc_")}
        stats["server_faults"] = after["minor_faults"] - before["minor_faults"]
        if stats["error_count"]:
            raise BenchError(f"{self.name}: {stats['error_count']} errors: {stats['errors']}")
        if not stats["round_trips"]:
            raise BenchError(f"{self.name}: no round trip in a {seconds:g} s window")
        return {**stats, "server_cpu": cpu1 - cpu0}

    async def warm(self) -> None:
        """A few stations boot, beat and leave: imports, validators, caches are warm."""
        await self.connect(self.settings.warm_stations, "WARM", 10, heartbeat=True)
        await self.close_stations()


async def with_rigs(
    plan: Sequence[tuple[str, str]],
    settings: Settings,
    body: Callable[[Rig], Awaitable[dict[str, Any]]],
    parallel: bool,
) -> list[dict[str, Any]]:
    """Run ``body`` on a fresh rig for each (kind, compression); stop every rig after."""
    rigs: list[Rig] = []

    async def one(kind: str, compression: str) -> dict[str, Any]:
        rig = Rig(kind, compression, settings)
        rigs.append(rig)
        try:
            await rig.start()
            return await body(rig)
        finally:
            await rig.stop()

    try:
        if parallel:
            return list(await asyncio.gather(*(one(k, c) for k, c in plan)))
        return [await one(k, c) for k, c in plan]
    finally:
        await asyncio.gather(*(rig.stop() for rig in rigs), return_exceptions=True)


# -- scenarios -----------------------------------------------------------------------------


def summarize_windows(windows: Sequence[dict[str, Any]], memory: dict[str, Any]) -> dict[str, Any]:
    """Totals over the rounds of one server: CPU per round trip, throughput, latency."""
    round_trips = sum(w["round_trips"] for w in windows)
    seconds = sum(w["seconds"] for w in windows)
    cpu = sum(w["server_cpu"] for w in windows)
    faults = sum(w["server_faults"] for w in windows)
    return {
        "round_trips": round_trips,
        "seconds": round(seconds, 3),
        "server_cpu_s": round(cpu, 4),
        "cpu_us_per_rt": round(cpu / round_trips * 1e6, 2),
        "cpu_us_per_rt_rounds": [
            round(w["server_cpu"] / w["round_trips"] * 1e6, 2) for w in windows
        ],
        "faults_per_rt": round(faults / round_trips, 2),
        "msgs_per_s": round(round_trips / seconds, 1),
        "server_cpu_share": round(cpu / seconds, 3),
        "load_cpu_share": round(sum(w["load_cpu"] for w in windows) / seconds, 3),
        "latency": windows[-1]["latency"],  # percentiles over every round
        "rss_kib": memory["vmrss_kib"],
        "connections": memory["connections"],
    }


async def interleaved(
    scenario: str,
    mode: str,
    stations: int,
    period: float,
    window: float,
    rounds: int,
    settings: Settings,
    rigs: Sequence[Rig] = (),
) -> dict[str, Any]:
    """The servers up at once; rounds of one window each, in a rotating order.

    ``rigs``: the servers (default: the floor, the baseline and csms_kit), reported by
    their :attr:`Rig.label`.
    """
    rigs = list(rigs) or [Rig(kind, "none", settings) for kind in KINDS]
    try:
        await asyncio.gather(*(rig.start() for rig in rigs))
        await asyncio.gather(
            *(rig.connect(stations, "CP", settings.connect_concurrency) for rig in rigs)
        )
        for rig in rigs:  # warm-up traffic, not measured
            await rig.window(mode, period, settings.warmup_window)
            await rig.reset()
        windows: dict[str, list[dict[str, Any]]] = {rig.label: [] for rig in rigs}
        for round_ in range(rounds):
            shift = round_ % len(rigs)
            for rig in rigs[shift:] + rigs[:shift]:
                result = await rig.window(mode, period, window)
                windows[rig.label].append(result)
                log(
                    f"{scenario} round {round_ + 1}: {rig.label:8} "
                    f"{result['round_trips']:7} round trips, "
                    f"{result['server_cpu'] / result['round_trips'] * 1e6:7.1f} µs CPU each"
                )
        servers = {}
        for rig in rigs:
            servers[rig.label] = summarize_windows(windows[rig.label], await rig.memory())
        return {"stations": stations, "period_s": period, "window_s": window, "servers": servers}
    finally:
        await asyncio.gather(*(rig.stop() for rig in rigs), return_exceptions=True)


async def scenario_heartbeat(settings: Settings) -> dict[str, Any]:
    return await interleaved(
        "heartbeat",
        "heartbeat",
        settings.heartbeat_stations,
        0.0,
        settings.heartbeat_window,
        settings.heartbeat_rounds,
        settings,
    )


async def scenario_mixed(settings: Settings) -> dict[str, Any]:
    return await interleaved(
        "mixed",
        "mixed",
        settings.mixed_stations,
        settings.mixed_period,
        settings.mixed_window,
        settings.mixed_rounds,
        settings,
    )


async def scenario_idle(settings: Settings) -> dict[str, Any]:
    """100 then 10,000 idle stations, periodic heartbeats: latency at both sizes, RSS."""
    s = settings

    async def body(rig: Rig) -> dict[str, Any]:
        await rig.warm()
        await asyncio.sleep(s.settle)
        before = await rig.memory()
        await rig.connect(s.idle_reference, "REF", s.connect_concurrency)
        await rig.memory()  # as before the window at N: start from a collected heap
        reference = await rig.window("idle", s.idle_period, s.idle_reference_window)
        at_reference = await rig.memory()
        log(f"idle10k: {rig.kind}: {s.idle_reference} stations measured; connecting the rest")
        await rig.reset()
        connected = await rig.connect(
            s.idle_stations - s.idle_reference, "CP", s.connect_concurrency
        )
        await asyncio.sleep(s.settle)
        # A full collection right after the burst of connections (timed: how long a
        # full GC pauses this server at N), so that the window sees the steady state.
        settled = await rig.memory()
        full = await rig.window("idle", s.idle_period, s.idle_window)
        at_full = await rig.memory()
        if at_full["connections"] != s.idle_stations:
            raise BenchError(f"{rig.name} holds {at_full['connections']} connections")
        log(
            f"idle10k: {rig.kind}: RSS {at_full['vmrss_kib'] / 1024:.1f} MiB, "
            f"p99 {reference['latency']['p99']} ms at {s.idle_reference}, "
            f"{full['latency']['p99']} ms at {s.idle_stations}"
        )
        per_conn = (at_full["vmrss_kib"] - before["vmrss_kib"]) / s.idle_stations
        return {
            "kind": rig.kind,
            "rss_before_kib": before["vmrss_kib"],
            "rss_reference_kib": at_reference["vmrss_kib"],
            "rss_kib": at_full["vmrss_kib"],
            "kib_per_connection": round(per_conn, 2),
            "reference": {
                "latency": reference["latency"],
                "server_gc": reference["server_gc"],
                "load_gc": reference["load_gc"],
                "cpu_us_per_rt": round(
                    reference["server_cpu"] / reference["round_trips"] * 1e6, 1
                ),
                "round_trips": reference["round_trips"],
            },
            "latency": full["latency"],
            "server_gc": full["server_gc"],
            "load_gc": full["load_gc"],
            "full_gc_ms": settled["full_gc_ms"],
            "rss_before_window_kib": settled["vmrss_kib"],
            "round_trips": full["round_trips"],
            "msgs_per_s": round(full["round_trips"] / full["seconds"], 1),
            "cpu_us_per_rt": round(full["server_cpu"] / full["round_trips"] * 1e6, 1),
            "server_cpu_share": round(full["server_cpu"] / full["seconds"], 3),
            "connect_seconds": connected["seconds"],
            "extensions": connected["extensions"],
        }

    results = await with_rigs([(k, "none") for k in KINDS], s, body, s.parallel)
    return {
        "stations": s.idle_stations,
        "reference_stations": s.idle_reference,
        "period_s": s.idle_period,
        "servers": {r.pop("kind"): r for r in results},
    }


async def scenario_compression(settings: Settings) -> dict[str, Any]:
    """RSS with N idle stations that all negotiated permessage-deflate."""
    s = settings
    n = s.compression_stations

    async def body(rig: Rig) -> dict[str, Any]:
        await rig.warm()
        await asyncio.sleep(s.settle)
        before = await rig.memory()
        connected = await rig.connect(n, "CP", s.connect_concurrency, heartbeat=True)
        await asyncio.sleep(s.settle)
        after = await rig.memory()
        if after["connections"] != n:
            raise BenchError(f"{rig.name} holds {after['connections']} connections")
        negotiated = connected["extensions"]
        expected = rig.compression != "none"
        if len(negotiated) != 1 or ("permessage-deflate" in negotiated[0]) != expected:
            raise BenchError(f"{rig.name}: negotiated {connected['extensions']}")
        log(f"compression: {rig.name}: RSS {after['vmrss_kib'] / 1024:.1f} MiB at {n}")
        return {
            "kind": rig.kind,
            "compression": rig.compression,
            "rss_before_kib": before["vmrss_kib"],
            "rss_kib": after["vmrss_kib"],
            "kib_per_connection": round((after["vmrss_kib"] - before["vmrss_kib"]) / n, 2),
            "extensions": negotiated[0],
        }

    plan = [(kind, setting) for setting, kinds in COMPRESSION_RUNS for kind in kinds]
    results = await with_rigs(plan, s, body, s.parallel)
    by_setting: dict[str, dict[str, Any]] = {}
    for result in results:
        by_setting.setdefault(result.pop("compression"), {})[result.pop("kind")] = result
    for setting, servers in by_setting.items():
        negotiated = {r["extensions"] for r in servers.values()}
        if len(negotiated) != 1:
            raise BenchError(f"{setting}: the servers negotiated different things: {negotiated}")
    return {"stations": n, "settings": by_setting}


def listen_overflows() -> dict[str, int]:
    """The kernel's ListenOverflows/ListenDrops counters (this network namespace)."""
    with open("/proc/net/netstat", encoding="ascii") as netstat:
        lines = netstat.read().splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            figures = dict(zip(header.split()[1:], map(int, values.split()[1:]), strict=True))
            return {k: figures.get(k, 0) for k in ("ListenOverflows", "ListenDrops")}
    return {}


async def scenario_storm(settings: Settings) -> dict[str, Any]:
    """N stations (re)connecting at once, a bounded number of handshakes in flight.

    The three servers are up at once; in each round, in a rotating order, one of them
    takes the storm while the others sit idle, then its stations leave (untimed). The
    same station identities come back every round: a reconnection storm.
    """
    s = settings
    rigs = [Rig(kind, "none", settings) for kind in KINDS]
    try:
        await asyncio.gather(*(rig.start() for rig in rigs))
        for rig in rigs:
            await rig.warm()
        await asyncio.sleep(s.settle)
        rounds: dict[str, list[dict[str, Any]]] = {rig.kind: [] for rig in rigs}
        memory: dict[str, dict[str, Any]] = {}
        for round_ in range(s.storm_rounds):
            shift = round_ % len(rigs)
            for rig in rigs[shift:] + rigs[:shift]:
                overflows0 = listen_overflows()
                cpu0 = await rig.cpu()
                storm = await rig.connect(s.storm_stations, "STORM", s.storm_concurrency)
                cpu1 = await rig.cpu()
                overflows1 = listen_overflows()
                if round_ == s.storm_rounds - 1:
                    memory[rig.kind] = await rig.memory()
                await rig.close_stations()
                await asyncio.sleep(s.settle)
                storm["server_cpu"] = cpu1 - cpu0
                storm["listen_overflows"] = sum(
                    overflows1[k] - overflows0.get(k, 0) for k in overflows1
                )
                rounds[rig.kind].append(storm)
                log(
                    f"storm round {round_ + 1}: {rig.kind:8} "
                    f"{storm['connected'] / storm['seconds']:6.0f} connections/s, "
                    f"{storm['server_cpu'] / storm['connected'] * 1e6:6.0f} µs CPU each"
                )
        servers = {}
        for kind, results in rounds.items():
            connected = sum(r["connected"] for r in results)
            seconds = sum(r["seconds"] for r in results)
            cpu = sum(r["server_cpu"] for r in results)
            servers[kind] = {
                "connected": connected,
                "seconds": round(seconds, 3),
                "conn_per_s": round(connected / seconds, 1),
                "conn_per_s_rounds": [round(r["connected"] / r["seconds"], 1) for r in results],
                "cpu_us_per_conn": round(cpu / connected * 1e6, 1),
                "server_cpu_share": round(cpu / seconds, 3),
                "load_cpu_share": round(sum(r["load_cpu"] for r in results) / seconds, 3),
                "connect": {
                    "p50": statistics.median(r["connect"]["p50"] for r in results),
                    "p99": statistics.median(r["connect"]["p99"] for r in results),
                },
                "rss_kib": memory[kind]["vmrss_kib"],
                "listen_overflows": sum(r["listen_overflows"] for r in results),
            }
        return {
            "stations": s.storm_stations,
            "concurrency": s.storm_concurrency,
            "rounds": s.storm_rounds,
            "servers": servers,
        }
    finally:
        await asyncio.gather(*(rig.stop() for rig in rigs), return_exceptions=True)


RUNNERS: dict[str, Callable[[Settings], Awaitable[dict[str, Any]]]] = {
    "heartbeat": scenario_heartbeat,
    "mixed": scenario_mixed,
    "idle10k": scenario_idle,
    "compression": scenario_compression,
    "storm": scenario_storm,
}


# -- targets and report --------------------------------------------------------------------


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return value / floor


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what was measured, the target, met or not, the gap."""
    out: list[dict[str, Any]] = []
    scenarios = results["scenarios"]

    def add(name: str, measured: float, goal: float, unit: str, higher_is_better: bool) -> None:
        met = measured >= goal if higher_is_better else measured <= goal
        gap = (measured - goal) / goal * 100
        out.append(
            {
                "target": name,
                "measured": round(measured, 3),
                "goal": goal,
                "unit": unit,
                "comparison": ">=" if higher_is_better else "<=",
                "met": met,
                "gap_percent": round(gap, 1),
            }
        )

    for scenario, goal in (("heartbeat", TARGET_HEARTBEAT_CPU), ("mixed", TARGET_MIXED_CPU)):
        if scenario in scenarios:
            servers = scenarios[scenario]["servers"]
            measured = servers["csms_kit"]["cpu_us_per_rt"] / servers["floor"]["cpu_us_per_rt"]
            name = f"{scenario}: server CPU per round trip, csms_kit / floor"
            add(name, measured, goal, "x", False)
    if "idle10k" in scenarios:
        idle = scenarios["idle10k"]
        kit = idle["servers"]["csms_kit"]
        n, ref = idle["stations"], idle["reference_stations"]
        name = f"{n:,} idle stations, no compression: csms_kit RSS"
        add(name, kit["rss_kib"] / 1024, TARGET_RSS_PLAIN_MIB, "MiB", False)
        name = f"p99 heartbeat latency, {n:,} vs {ref} idle stations (csms_kit)"
        add(name, kit["latency"]["p99"], kit["reference"]["latency"]["p99"], "ms", False)
    if "compression" in scenarios:
        comp = scenarios["compression"]
        for setting, servers in comp["settings"].items():
            if setting == "none":  # the no-compression target is judged in idle10k
                continue
            add(
                f"{comp['stations']:,} idle stations, {setting} negotiated by all: csms_kit RSS",
                servers["csms_kit"]["rss_kib"] / 1024,
                TARGET_RSS_COMPRESSED_MIB,
                "MiB",
                False,
            )
    if "storm" in scenarios:
        servers = scenarios["storm"]["servers"]
        measured = servers["csms_kit"]["conn_per_s"] / servers["floor"]["conn_per_s"]
        name = "storm: connections accepted per second, csms_kit / floor"
        add(name, measured, TARGET_STORM, "x", True)
    return out


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def traffic_table(scenario: dict[str, Any]) -> str:
    servers = scenario["servers"]
    floor = servers["floor"]
    rows = []
    for kind in KINDS:
        r = servers[kind]
        paired = [
            k / f
            for k, f in zip(r["cpu_us_per_rt_rounds"], floor["cpu_us_per_rt_rounds"], strict=True)
        ]
        rows.append(
            [
                kind,
                f"{r['cpu_us_per_rt']:.1f}",
                fmt_ratio(ratio(r["cpu_us_per_rt"], floor["cpu_us_per_rt"])),
                "" if kind == "floor" else f"{min(paired):.2f}-{max(paired):.2f}x",
                f"{r['faults_per_rt']:.2f}",
                f"{r['msgs_per_s']:,.0f}",
                fmt_ratio(ratio(r["msgs_per_s"], floor["msgs_per_s"])),
                f"{r['latency']['p50']:.2f}",
                f"{r['latency']['p99']:.2f}",
                mib(r["rss_kib"]),
                fmt_ratio(ratio(r["rss_kib"], floor["rss_kib"])),
                f"{r['server_cpu_share'] * 100:.0f}% / {r['load_cpu_share'] * 100:.0f}%",
            ]
        )
    header = [
        "server",
        "CPU µs/round trip",
        "vs floor",
        "per round",
        "page faults/round trip",
        "round trips/s",
        "vs floor",
        "p50 ms",
        "p99 ms",
        f"RSS MiB ({scenario['stations']:,} conn.)",
        "vs floor",
        "CPU busy server / load",
    ]
    return table(header, rows)


def idle_table(scenario: dict[str, Any]) -> str:
    servers = scenario["servers"]
    floor = servers["floor"]
    n, ref = scenario["stations"], scenario["reference_stations"]
    rows = []
    for kind in KINDS:
        r = servers[kind]
        rows.append(
            [
                kind,
                mib(r["rss_before_kib"]),
                mib(r["rss_kib"]),
                fmt_ratio(ratio(r["rss_kib"], floor["rss_kib"])),
                f"{r['kib_per_connection']:.1f}",
                fmt_ratio(ratio(r["kib_per_connection"], floor["kib_per_connection"])),
                f"{r['reference']['latency']['p50']:.2f} / {r['reference']['latency']['p99']:.2f}",
                f"{r['latency']['p50']:.2f} / {r['latency']['p99']:.2f}",
                fmt_ratio(ratio(r["latency"]["p99"], r["reference"]["latency"]["p99"])),
                f"{r['cpu_us_per_rt']:.0f}",
                fmt_ratio(ratio(r["cpu_us_per_rt"], floor["cpu_us_per_rt"])),
                f"{r['full_gc_ms']:,.0f}",
                fmt_ratio(ratio(r["full_gc_ms"], floor["full_gc_ms"])),
                f"{max(r['server_gc']['gc_longest_ms']):,.0f}",
            ]
        )
    header = [
        "server",
        "RSS MiB, 0 conn.",
        f"RSS MiB, {n:,} conn.",
        "vs floor",
        "KiB/conn.",
        "vs floor",
        f"p50 / p99 ms, {ref}",
        f"p50 / p99 ms, {n:,}",
        f"p99 {n:,} / p99 {ref}",
        f"CPU µs/heartbeat, {n:,}",
        "vs floor",
        f"full GC ms, {n:,}",
        "vs floor",
        "longest GC pause in window, ms",
    ]
    return table(header, rows)


def compression_table(scenario: dict[str, Any]) -> str:
    rows = []
    for setting, servers in scenario["settings"].items():
        floor = servers["floor"]
        for kind in KINDS:
            if kind not in servers:
                continue
            r = servers[kind]
            rows.append(
                [
                    f"{setting}: {kind}",
                    mib(r["rss_kib"]),
                    fmt_ratio(ratio(r["rss_kib"], floor["rss_kib"])),
                    f"{r['kib_per_connection']:.1f}",
                    fmt_ratio(ratio(r["kib_per_connection"], floor["kib_per_connection"])),
                    f"`{r['extensions']}`" if r["extensions"] else "(none)",
                ]
            )
    header = [
        "negotiated: server",
        f"RSS MiB, {scenario['stations']:,} conn.",
        "vs floor",
        "KiB/conn.",
        "vs floor",
        "Sec-WebSocket-Extensions",
    ]
    return table(header, rows)


def storm_table(scenario: dict[str, Any]) -> str:
    servers = scenario["servers"]
    floor = servers["floor"]
    rows = []
    for kind in KINDS:
        r = servers[kind]
        paired = [
            k / f for k, f in zip(r["conn_per_s_rounds"], floor["conn_per_s_rounds"], strict=True)
        ]
        rows.append(
            [
                kind,
                f"{r['conn_per_s']:,.0f}",
                fmt_ratio(ratio(r["conn_per_s"], floor["conn_per_s"])),
                "" if kind == "floor" else f"{min(paired):.2f}-{max(paired):.2f}x",
                f"{r['cpu_us_per_conn']:,.0f}",
                fmt_ratio(ratio(r["cpu_us_per_conn"], floor["cpu_us_per_conn"])),
                f"{r['connect']['p50']:.1f} / {r['connect']['p99']:.1f}",
                mib(r["rss_kib"]),
                fmt_ratio(ratio(r["rss_kib"], floor["rss_kib"])),
                f"{r['server_cpu_share'] * 100:.0f}% / {r['load_cpu_share'] * 100:.0f}%",
                r["listen_overflows"],
            ]
        )
    header = [
        "server",
        "connections/s",
        "vs floor",
        "per round",
        "CPU µs/connection",
        "vs floor",
        "p50 / p99 ms (handshake + boot)",
        f"RSS MiB ({scenario['stations']:,} conn.)",
        "vs floor",
        "CPU busy server / load",
        "listen overflows",
    ]
    return table(header, rows)


def targets_table(rows: Sequence[dict[str, Any]]) -> str:
    def number(value: float, unit: str) -> str:
        return f"{value:.2f}{unit}" if unit == "x" else f"{value:,.1f} {unit}"

    return table(
        ["target", "measured", "target", "verdict", "gap"],
        [
            [
                t["target"],
                number(t["measured"], t["unit"]),
                f"{t['comparison']} {number(t['goal'], t['unit'])}",
                "met" if t["met"] else "**not met**",
                f"{t['gap_percent']:+.1f}%",
            ]
            for t in rows
        ],
    )


def render(results: dict[str, Any]) -> str:
    """The whole report of one run as Markdown."""
    env = results["environment"]
    scenarios = results["scenarios"]
    parts = [
        f"Run of {env['when']}: {env.get('label') or env['csms_kit']}, "
        f"Python {env['python']}, {env['cpus']} CPUs, "
        f"load average {env['loadavg'][0]:.2f} at start; {env['packages']}; "
        f"{results['seconds']:.0f} s.",
    ]
    titles = {
        "heartbeat": "heartbeat: {stations} stations, back-to-back Heartbeats",
        "mixed": "mixed: {stations:,} stations, one message every {period_s:g} s each",
    }
    for name in ("heartbeat", "mixed"):
        if name in scenarios:
            parts += [
                f"**{titles[name].format(**scenarios[name])}**",
                traffic_table(scenarios[name]),
            ]
    if "idle10k" in scenarios:
        idle = scenarios["idle10k"]
        parts += [
            f"**idle10k: {idle['stations']:,} idle stations, one Heartbeat every "
            f"{idle['period_s']:g} s each (no compression)**",
            idle_table(idle),
        ]
    if "compression" in scenarios:
        parts += [
            f"**compression: {scenarios['compression']['stations']:,} idle stations "
            "(boot + one Heartbeat each), each setting negotiated by every station**",
            compression_table(scenarios["compression"]),
        ]
    if "storm" in scenarios:
        storm = scenarios["storm"]
        parts += [
            f"**storm: {storm['stations']:,} stations connecting at once, "
            f"{storm['concurrency']} handshakes in flight, {storm['rounds']} rounds**",
            storm_table(storm),
        ]
    parts += ["**targets**", targets_table(results["targets"])]
    return "\n\n".join(parts) + "\n"


# -- the plot ------------------------------------------------------------------------------


def plot(runs: Sequence[dict[str, Any]], path: str) -> None:
    """CPU per round trip, RSS at 10k and connections/s, per server; bars: mean of the runs."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib (pip install matplotlib)") from None
    colors = {"floor": "#9e9e9e", "baseline": "#e07b39", "csms_kit": "#3a6ea5"}
    panels: list[
        tuple[str, str, list[str], Callable[[dict[str, Any], str, str], float | None]]
    ] = []

    def traffic(run: dict[str, Any], group: str, kind: str) -> float | None:
        scenario = run["scenarios"].get(group)
        return None if scenario is None else scenario["servers"][kind]["cpu_us_per_rt"]

    def memory(run: dict[str, Any], group: str, kind: str) -> float | None:
        scenario = run["scenarios"].get("compression")
        servers = None if scenario is None else scenario["settings"].get(group)
        if servers is None and group == "none" and "idle10k" in run["scenarios"]:
            servers = run["scenarios"]["idle10k"]["servers"]
        if servers is None or kind not in servers:
            return None
        return float(servers[kind]["rss_kib"]) / 1024

    def storm(run: dict[str, Any], group: str, kind: str) -> float | None:
        scenario = run["scenarios"].get("storm")
        return None if scenario is None else scenario["servers"][kind]["conn_per_s"]

    panels.append(("server CPU µs per round trip", "log", ["heartbeat", "mixed"], traffic))
    stations = next(
        (r["scenarios"]["idle10k"]["stations"] for r in runs if "idle10k" in r["scenarios"]), 0
    )
    panels.append(
        (f"RSS MiB, {stations:,} idle stations", "linear", ["none", "frugal", "deflate"], memory)
    )
    panels.append(("connections accepted / s (storm)", "linear", ["storm"], storm))

    reference = next(
        (
            r["scenarios"]["idle10k"]["reference_stations"]
            for r in runs
            if "idle10k" in r["scenarios"]
        ),
        0,
    )
    sizes = [f"{reference:,} stations", f"{stations:,} stations"]

    def idle_p99(run: dict[str, Any], group: str, kind: str) -> float | None:
        scenario = run["scenarios"].get("idle10k")
        if scenario is None:
            return None
        server = scenario["servers"][kind]
        window = server["reference"] if group == sizes[0] else server
        return float(window["latency"]["p99"])

    if stations:
        panels.append(("p99 heartbeat latency ms, idle stations", "log", sizes, idle_p99))
    figure, axes = plt.subplots(1, len(panels), figsize=(4.7 * len(panels), 4.6))
    width = 0.26
    for axis, (title, scale, groups, value) in zip(axes, panels, strict=True):
        for k, kind in enumerate(KINDS):
            for g, group in enumerate(groups):
                values = [v for v in (value(run, group, kind) for run in runs) if v is not None]
                if not values:
                    continue
                x = g + (k - 1) * width
                mean = statistics.fmean(values)
                axis.bar(x, mean, width, color=colors[kind], label=kind if g == 0 else None)
                axis.plot([x] * len(values), values, "k.", markersize=4)
                floor_values = [value(run, group, "floor") for run in runs]
                floors = [f for f in floor_values if f]
                if kind != "floor" and floors:
                    axis.annotate(
                        f"{mean / statistics.fmean(floors):.2f}x",
                        (x, mean),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        xytext=(0, 2),
                        textcoords="offset points",
                    )
        axis.set_xticks(range(len(groups)), groups)
        axis.set_yscale(scale)
        axis.set_title(title, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"csms_kit vs floor (bare websockets) vs baseline (ocpp ChargePoint): "
        f"bars = mean of {len(runs)} run(s), dots = each run; labels = ratio to the floor",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    log(f"plot written to {path}")


# -- the parent ----------------------------------------------------------------------------


async def orchestrate(settings: Settings, scenarios: Sequence[str], label: str) -> dict[str, Any]:
    """Run the chosen scenarios one after the other; the results of the run."""
    from connection_memory import environment

    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "environment": {**environment(), "label": label},
        "settings": asdict(settings),
        "scenarios": {},
    }
    for name in scenarios:
        log(f"scenario {name} ...")
        t0 = time.perf_counter()
        results["scenarios"][name] = await RUNNERS[name](settings)
        log(f"scenario {name} done in {time.perf_counter() - t0:.0f} s")
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets(results)
    results["loadavg_end"] = os.getloadavg()
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, ~30 s: a smoke run")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--label", default="", help="a note kept with the results (e.g. the tree)")
    parser.add_argument("--plot", metavar="PNG", help="draw the figures (needs matplotlib)")
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        nargs="+",
        help="do not measure: report (and --plot) the runs saved in these files",
    )
    hidden = argparse.SUPPRESS  # how the parent starts its children
    parser.add_argument(
        "--role", choices=("parent", "server", "load"), default="parent", help=hidden
    )
    parser.add_argument("--kind", choices=KINDS + EXTRA_KINDS, default="csms_kit", help=hidden)
    parser.add_argument(
        "--compression", choices=("none", "frugal", "deflate"), default="frugal", help=hidden
    )
    parser.add_argument(
        "--recv-buffer",
        type=int,
        default=0,
        metavar="BYTES",
        help="asyncio's recv() buffer size in every server (default: asyncio's 256 KiB)",
    )
    parser.add_argument("--instruments", default="", help=hidden)
    parser.add_argument("--port", type=int, default=0, help=hidden)
    parser.add_argument("--deadline", type=float, default=600.0, help=hidden)
    return parser.parse_args(argv)


def run_measurement(measurement: Coroutine[Any, Any, T], deadline: float) -> T | int:
    """``asyncio.run`` a bench's measurement within ``deadline`` seconds.

    Its result, or the exit status after saying what went wrong: 1 for a failed or
    overlong run, 130 when interrupted (the children are stopped either way).
    """
    try:
        return asyncio.run(asyncio.wait_for(measurement, deadline))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except asyncio.TimeoutError:
        print(f"error: the run took more than {deadline:g} s", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130


def report(result: dict[str, Any], json_path: str | None, render: Callable[[Any], str]) -> None:
    """Save ``result`` as JSON at ``json_path`` (if given) and print it rendered."""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    print(render(result))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "server":
        from _bench_servers import run_server

        asyncio.run(
            run_server(
                args.kind, args.compression, args.deadline, args.recv_buffer, args.instruments
            )
        )
        return 0
    if args.role == "load":
        from _bench_load import run_load

        asyncio.run(run_load(args.port, args.compression, args.deadline))
        return 0
    if args.from_json:
        runs = []
        for path in args.from_json:
            with open(path, encoding="utf-8") as source:
                runs.append(json.load(source))
        for run in runs:
            print(render(run))
        if args.plot:
            plot(runs, args.plot)
        return 0
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)}")
    settings = Settings.quick() if args.quick else Settings.full()
    if args.recv_buffer:
        settings = dataclasses.replace(settings, recv_buffer=args.recv_buffer)
    results = run_measurement(orchestrate(settings, chosen, args.label), settings.deadline)
    if isinstance(results, int):
        return results
    report(results, args.json, render)
    if args.plot:
        plot([results], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
