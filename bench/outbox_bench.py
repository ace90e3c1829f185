"""What the durable outbox costs: the hot path with it on against off, and a flush of
1,000 queued commands to 100 reconnecting stations, in one run.

Two parts, one after the other, on the machinery of ``bench/server_bench.py`` and
``bench/instruments_bench.py`` (rigs, load generator, CPU accounting, report; imported
from there). Every server is a process of its own running ``serve()`` with the bench
sessions of ``bench/_bench_servers.py`` (the example's ``Csms16``/``Csms2x``, full
validation, no frame limit); its CPU time comes from its own ``getrusage`` (all
threads: the SQLite store's thread counts). The outbox is a started ``Outbox`` with its
default settings on a SQLite file in a temporary directory, passed to ``serve()``.

**Hot path.** The ``heartbeat`` scenario of ``server_bench.py``: 100 stations send
back-to-back Heartbeats over loopback, the load from another process (``_bench_load.py``,
one per server). Three server processes, up at once, their windows interleaved in a
rotating order (an outbox cannot be switched per connection, so there is a process per
variant, as ``instruments_bench.py --separate`` does it):

* ``csms_kit``: no outbox (the reference);
* ``csms_kit+outbox``: with an empty outbox (nothing is ever queued);
* ``csms_kit#2``: no outbox, a second process: the A/A figure, how far two identical
  server processes differ on this machine, the noise the on/off ratio is read against.

Reported: CPU per round trip of each, as a ratio to ``csms_kit`` over all rounds, with
the median and range of the per-round (paired) ratios; the target is no extra work per
message, ~1.00x within noise. The outbox server also reports every call its store got
(counted by wrapping the store's methods): one ``next_pending`` per station when it is
accepted at boot, the sweeper's few, none per message.

**Flush.** One server process with an outbox, and a process of simulated stations
(``csms_kit.simulator.SimulatedStation`` with ``vendor = "csms_kit-sim"``, so a
DataTransfer is Accepted; half 1.6, half 2.0.1): the stations connect once and leave
(from then on the server knows them as accepted: they are *reconnecting* stations).
Then, in rounds, the order of the variants rotating each round:

* ``default``: the server submits 1,000 commands (raw ``DataTransfer``, valid in every
  version) for the 100 stations while they are offline, 10 each; the 100 stations
  connect at once; the server's ``on_finished`` hook notes when each is final. With the
  outbox's default pacing (``start_delay``, ``interval``, ``concurrency``);
* ``fast``: the same with ``start_delay=0, interval=0`` (the outbox's attributes, set
  on the same outbox between rounds);
* ``empty``: the same connection with nothing queued: what connecting costs the server
  alone (handshakes, boots, status notifications, one store read per station).

Reported per variant (median and range over the rounds): the time from the stations'
connect to all 100 online, and to all 1,000 answered (the server's clock and the
stations' are both ``CLOCK_MONOTONIC``, one clock for the machine); the server's CPU
from just before the connect to the last answer, and that minus the ``empty`` round's,
per command; store writes per command, counted two ways: calls of the store's writing
methods (``add`` at submit, ``mark_sent`` and ``finish`` at delivery; the sweeper's
``expire``/``purge`` counted apart) and rows changed, SQLite's ``total_changes`` of the
store's connection; store reads per command (``next_pending``). Submitting is reported
apart (its time, CPU and writes per command). Every round checks that each command was
answered Accepted with its own data, and that each station got its 10 in order; if not,
the run fails.

Run from the repository root::

    python bench/outbox_bench.py                 # 9 rounds of 3 s, then 5 flush rounds; ~2 min
    python bench/outbox_bench.py --quick         # smoke run (tiny numbers), < 30 s
    python bench/outbox_bench.py --json out.json # also keep the results
    python bench/outbox_bench.py --period 0.02   # hot path paced: 5,000 Heartbeats/s in all
    python bench/outbox_bench.py --parts flush --flush-rounds 9

The exit status is non-zero when something is broken (a child fails, an answer is
wrong, a command is not answered, a station cannot connect), never because of a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _bench_servers import (
    HOST,
    Commands,
    GcWatch,
    cpu_seconds,
    csms_kit_sessions,
    die_with_parent,
    reply,
)
from connection_memory import BenchError, Child, environment, read_status
from instruments_bench import ratios
from instruments_bench import render as render_hot_path
from server_bench import SCRIPT as SERVER_BENCH
from server_bench import Rig, Settings, interleaved, log, report, run_measurement, table

SCRIPT = os.path.abspath(__file__)
PARTS = ("hot", "flush")
#: The hot path's servers: label, with an outbox. The first is the reference.
HOT_SERVERS = (("csms_kit", False), ("csms_kit+outbox", True), ("csms_kit#2", False))
#: The flush's variants, in the order of the first round.
FLUSH_VARIANTS = ("empty", "default", "fast")
#: The DataTransfer vendorId the simulated stations accept.
VENDOR = "csms_kit-sim"
VERSIONS = ("1.6", "2.0.1")
#: The store's methods that write, and those that only read.
WRITES = ("add", "mark_sent", "finish", "expire", "purge")
READS = ("next_pending", "get", "find", "pending_stations")


@dataclass(frozen=True)
class FlushSettings:
    stations: int
    per_station: int
    rounds: int
    #: Seconds a round may take before it counts as broken.
    timeout: float

    @classmethod
    def full(cls) -> FlushSettings:
        return cls(stations=100, per_station=10, rounds=5, timeout=120.0)

    @classmethod
    def quick(cls) -> FlushSettings:
        return cls(stations=4, per_station=3, rounds=1, timeout=30.0)

    @property
    def commands(self) -> int:
        return self.stations * self.per_station


# -- the server child ----------------------------------------------------------------------


class StoreCounter:
    """Counts the calls made to a store's methods (wrapped on the instance)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()
        for name in WRITES + READS:
            setattr(store, name, self._counted(name, getattr(store, name)))

    def _counted(self, name: str, method: Any) -> Any:
        @functools.wraps(method)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted

    async def rows_changed(self) -> int | None:
        """SQLite's ``total_changes`` of the store's connection (read in its own thread).

        Uses the SQLite store's private ``_run``: ``None`` if the store has none.
        """
        run = getattr(self.store, "_run", None)
        if run is None:
            return None
        changes: int = await run(lambda db: db.total_changes)
        return changes


class OutboxServer:
    """``serve()`` with the bench sessions, with or without an outbox, and its commands.

    The commands of ``_bench_servers.run_server`` (``cpu``, ``memory``, ``quit``), so
    that a :class:`~server_bench.Rig` can drive it, plus: ``store`` (the store's calls
    so far), ``pacing START INTERVAL``, ``submit STATIONS PER PREFIX`` (queue PER
    DataTransfers for each of STATIONS stations), ``arm`` (start a flush's accounting)
    and ``await N TIMEOUT`` (until N submissions are final since ``arm``).
    """

    def __init__(self) -> None:
        self.server: Any = None
        self.outbox: Any = None
        self.counter: StoreCounter | None = None
        self.finished: list[tuple[float, Any]] = []
        self.target = 0
        self.reached = asyncio.Event()
        self.gc_watch: GcWatch | None = None
        self.armed: dict[str, Any] = {}

    def _on_finished(self, submission: Any) -> None:
        self.finished.append((time.monotonic(), submission))
        if len(self.finished) >= self.target:
            self.reached.set()

    async def start(self, store: str) -> dict[str, Any]:
        from csms_kit import serve
        from csms_kit.outbox import Outbox

        if store:
            self.outbox = Outbox(store, on_finished=self._on_finished)
            self.counter = StoreCounter(self.outbox.store)
            await self.outbox.start()
        # The same server as _bench_servers.start_csms_kit, plus outbox= when there is one.
        self.server = serve(csms_kit_sessions(), HOST, 0, outbox=self.outbox)
        await self.server.start()
        gc.collect()
        self.gc_watch = GcWatch()
        pacing = {}
        if self.outbox is not None:
            pacing = {"start_delay": self.outbox.start_delay, "interval": self.outbox.interval}
        port = self.server.sockets[0].getsockname()[1]
        return {"port": port, "pid": os.getpid(), **pacing, **read_status()}

    async def _counts(self) -> dict[str, Any]:
        if self.counter is None:
            return {"calls": {}, "rows_changed": None}
        return {
            "calls": dict(self.counter.calls),
            "rows_changed": await self.counter.rows_changed(),
        }

    async def handle(self, command: list[str]) -> dict[str, Any]:
        name, args = command[0], command[1:]
        assert self.gc_watch is not None
        if name == "cpu":
            return {
                **cpu_seconds(),
                **self.gc_watch.take(),
                "connections": len(self.server.sessions),
            }
        if name == "memory":
            started = time.perf_counter()
            gc.collect()
            pause = round((time.perf_counter() - started) * 1000, 2)
            return {**read_status(), "connections": len(self.server.sessions), "full_gc_ms": pause}
        if name == "store":
            return await self._counts()
        if self.outbox is None:
            return {"error": f"{name}: this server has no outbox"}
        if name == "pacing":
            self.outbox.start_delay, self.outbox.interval = float(args[0]), float(args[1])
            return {"start_delay": self.outbox.start_delay, "interval": self.outbox.interval}
        if name == "submit":
            return await self._submit(int(args[0]), int(args[1]), args[2])
        if name == "arm":
            self.finished = []
            self.gc_watch.take()
            self.armed = {**cpu_seconds(), **await self._counts()}
            return {**self.armed, "at": time.monotonic()}
        if name == "await":
            return await self._await(int(args[0]), float(args[1]))
        return {"error": f"unknown command {command!r}"}

    async def _submit(self, stations: int, per: int, prefix: str) -> dict[str, Any]:
        from csms_kit.outbox import RawCall

        before = {**cpu_seconds(), **await self._counts()}
        started = time.perf_counter()
        for index in range(stations):
            for n in range(per):
                payload = {"vendorId": VENDOR, "data": f"{index}:{n}"}
                await self.outbox.submit(f"{prefix}-{index:05d}", RawCall("DataTransfer", payload))
        seconds = time.perf_counter() - started
        after = {**cpu_seconds(), **await self._counts()}
        return {
            "submitted": stations * per,
            "seconds": round(seconds, 4),
            "cpu": after["cpu"] - before["cpu"],
            "calls": dict(Counter(after["calls"]) - Counter(before["calls"])),
            "rows_changed": difference(after["rows_changed"], before["rows_changed"]),
        }

    async def _await(self, count: int, timeout: float) -> dict[str, Any]:
        self.target = count
        if len(self.finished) < count:
            self.reached.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.reached.wait(), timeout)
        cpu = cpu_seconds()
        assert self.gc_watch is not None
        gc_figures = self.gc_watch.take()
        # Each station's flush ends with one more look at its queue, ``interval`` after
        # its last answer: let those reads happen before counting the store's calls.
        await asyncio.sleep(self.outbox.interval + 0.25)
        counts = await self._counts()
        bad = []
        for _, submission in self.finished:
            data = submission.request["payload"]["data"]
            if submission.status != "answered" or submission.result != {
                "status": "Accepted",
                "data": data,
            }:
                bad.append(
                    f"{submission.station_id} {data}: {submission.status} "
                    f"{submission.result!r} {submission.error!r}"
                )
        return {
            "finished": len(self.finished),
            "statuses": dict(Counter(s.status for _, s in self.finished)),
            "bad": bad[:5],
            "bad_count": len(bad),
            "first_at": self.finished[0][0] if self.finished else None,
            "last_at": self.finished[-1][0] if self.finished else None,
            "cpu": cpu["cpu"] - self.armed["cpu"],
            "calls": dict(Counter(counts["calls"]) - Counter(self.armed["calls"])),
            "rows_changed": difference(counts["rows_changed"], self.armed["rows_changed"]),
            "gc_total_ms": gc_figures["gc_total_ms"],
            "connections": len(self.server.sessions),
        }


def difference(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


async def run_outbox_server(store: str, deadline: float) -> None:
    """Serve (with an outbox on ``store``, if given) and answer the parent until ``quit``."""
    die_with_parent()
    commands = Commands()
    await commands.start(deadline)
    server = OutboxServer()
    reply(await server.start(store))
    while True:
        command = await commands.next()
        if command[0] == "quit":
            if server.outbox is not None:
                await server.outbox.aclose()
            reply({"quit": True})
            os._exit(0)
        try:
            reply(await server.handle(command))
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})


# -- the stations child --------------------------------------------------------------------


async def run_stations(port: int, deadline: float) -> None:
    """Simulated stations (half 1.6, half 2.0.1) that note the DataTransfers they answer.

    Commands: ``connect N PREFIX TIMEOUT`` (N stations at once, until all are online),
    ``received`` (what they got, checked for order), ``stop``, ``quit``.
    """
    from csms_kit.routing import on
    from csms_kit.simulator import SimulatedStation

    class BenchStation(SimulatedStation):
        vendor = VENDOR

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.data: list[str] = []

        @on("DataTransfer")
        def on_data_transfer(self, request: Any) -> dict[str, Any]:
            self.data.append(request.data)
            answer: dict[str, Any] = super().on_data_transfer(request)
            return answer

    die_with_parent()
    commands = Commands()
    await commands.start(deadline)
    url = f"ws://{HOST}:{port}"
    stations: list[BenchStation] = []
    reply({"pid": os.getpid()})
    while True:
        command = await commands.next()
        name, args = command[0], command[1:]
        try:
            if name == "connect":
                count, prefix, timeout = int(args[0]), args[1], float(args[2])
                stations = [
                    BenchStation(url, f"{prefix}-{i:05d}", VERSIONS[i % 2]) for i in range(count)
                ]
                at = time.monotonic()
                outcomes = await asyncio.gather(
                    *(s.start(timeout=timeout) for s in stations), return_exceptions=True
                )
                online_at = time.monotonic()
                failed = [o for o in outcomes if isinstance(o, BaseException)]
                reply(
                    {
                        "at": at,
                        "online_at": online_at,
                        "online": count - len(failed),
                        "failed": len(failed),
                        "failures": sorted({f"{type(e).__name__}: {e}" for e in failed})[:5],
                    }
                )
            elif name == "received":
                out_of_order = [
                    s.station_id
                    for i, s in enumerate(stations)
                    if s.data != [f"{i}:{n}" for n in range(len(s.data))]
                ]
                reply(
                    {
                        "total": sum(len(s.data) for s in stations),
                        "counts": sorted({len(s.data) for s in stations}),
                        "out_of_order": out_of_order[:5],
                        "errors": sum(len(s.errors) for s in stations),
                        "error_samples": sorted({repr(e) for s in stations for e in s.errors})[:3],
                    }
                )
            elif name == "stop":
                await asyncio.gather(*(s.stop() for s in stations))
                reply({"stopped": len(stations)})
                stations = []
            elif name == "quit":
                reply({"quit": True})
                os._exit(0)
            else:
                reply({"error": f"unknown command {command!r}"})
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})


# -- part 1: the hot path ------------------------------------------------------------------


class OutboxRig(Rig):
    """A :class:`~server_bench.Rig` whose server is this script's, with or without an
    outbox on ``store``; the load generator is ``server_bench.py``'s."""

    def __init__(self, label: str, settings: Settings, store: str) -> None:
        super().__init__("csms_kit", "none", settings)
        self._label = label
        self.store = store
        #: The store's calls over the server's life, read just before it stops.
        self.store_calls: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return self._label

    async def start(self) -> OutboxRig:
        deadline = ("--deadline", str(self.settings.deadline))
        server_args = ["--role", "server", "--store", self.store, *deadline]
        self.server = await Child.start(f"{self.label} server", server_args, SCRIPT)
        started = await self.server.read(60)
        self.server_pid = started["pid"]
        load_args = ["--role", "load", "--port", str(started["port"]), "--compression", "none"]
        self.load = await Child.start(
            f"{self.label} load generator", [*load_args, *deadline], SERVER_BENCH
        )
        await self.load.read(60)
        log(f"{self.label}: server pid {self.server_pid}, port {started['port']}")
        return self

    async def stop(self) -> None:
        server = self.server
        if self.store and server is not None and server.process.returncode is None:
            with contextlib.suppress(BenchError):
                self.store_calls = await self._server("store", 10)
        await super().stop()


async def hot_path(
    settings: Settings, rounds: int, period: float, directory: Path
) -> dict[str, Any]:
    """The three servers, windows interleaved; the result as instruments_bench has it."""
    rigs = [
        OutboxRig(label, settings, str(directory / "hot.db") if with_outbox else "")
        for label, with_outbox in HOT_SERVERS
    ]
    started = time.perf_counter()
    mode = "idle" if period else "heartbeat"
    stations = settings.heartbeat_stations
    result = await interleaved(
        "hot path", mode, stations, period, settings.heartbeat_window, rounds, settings, rigs
    )
    hot = {
        "environment": environment(),
        "how": "separate",
        "stations": stations,
        "period_s": period,
        "window_s": settings.heartbeat_window,
        "rounds": rounds,
        "servers": result["servers"],
        "seconds": round(time.perf_counter() - started, 1),
        "store_calls": next(r.store_calls for r in rigs if r.store),
    }
    hot["ratios"] = ratios(hot)
    hot["against_both"] = against_both(hot["servers"])
    return hot


def against_both(servers: dict[str, Any]) -> dict[str, float]:
    """CPU per round trip with the outbox / the mean of the two servers without one:
    overall, and the median and range of the per-round ratios (a steadier reference)."""
    on = servers[HOT_SERVERS[1][0]]
    offs = [servers[HOT_SERVERS[0][0]], servers[HOT_SERVERS[2][0]]]
    paired = [
        mine / statistics.fmean(theirs)
        for mine, *theirs in zip(
            on["cpu_us_per_rt_rounds"], *(off["cpu_us_per_rt_rounds"] for off in offs), strict=True
        )
    ]
    return {
        "ratio": on["cpu_us_per_rt"] / statistics.fmean(off["cpu_us_per_rt"] for off in offs),
        **{f"paired_{k}": v for k, v in spread(paired).items()},
    }


def render_hot(hot: dict[str, Any]) -> str:
    figures = hot["ratios"]
    on, twin = figures[HOT_SERVERS[1][0]], figures[HOT_SERVERS[2][0]]
    both = hot["against_both"]
    calls = hot["store_calls"].get("calls", {})
    lines = [
        render_hot_path(hot).rstrip("\n"),
        "",
        f"outbox on / off: {on['ratio']:.3f}x CPU per heartbeat round trip, "
        f"{on['extra_us']:+.1f} µs; median of the rounds' ratios {on['paired_median']:.3f}x, "
        f"range {on['paired_min']:.3f}-{on['paired_max']:.3f}x (target: ~1.00x, no extra "
        "work per message)",
        f"A/A, a second server without outbox / the first: {twin['ratio']:.3f}x; median "
        f"{twin['paired_median']:.3f}x, range {twin['paired_min']:.3f}-"
        f"{twin['paired_max']:.3f}x (the noise between two identical processes)",
        f"outbox on / the mean of both without: {both['ratio']:.3f}x; median "
        f"{both['paired_median']:.3f}x, range {both['paired_min']:.3f}-{both['paired_max']:.3f}x",
        "the outbox server's store, over its whole life ("
        f"{hot['stations']} stations): "
        + (", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "no call")
        + f"; rows changed {hot['store_calls'].get('rows_changed')}",
    ]
    return "\n".join(lines) + "\n"


# -- part 2: the flush ---------------------------------------------------------------------


class Flush:
    """The flush's two children: a server with an outbox, and the simulated stations."""

    PREFIX = "OB"

    def __init__(self, settings: FlushSettings, store: Path, deadline: float) -> None:
        self.settings = settings
        self.store = store
        self.deadline = deadline
        self.server: Child | None = None
        self.stations: Child | None = None
        self.defaults: tuple[float, float] = (0.0, 0.0)

    async def start(self) -> None:
        deadline = ("--deadline", str(self.deadline))
        self.server = await Child.start(
            "flush server", ["--role", "server", "--store", str(self.store), *deadline], SCRIPT
        )
        started = await self.server.read(60)
        self.defaults = (started["start_delay"], started["interval"])
        self.stations = await Child.start(
            "stations", ["--role", "stations", "--port", str(started["port"]), *deadline], SCRIPT
        )
        await self.stations.read(60)
        log(f"flush: server pid {started['pid']}, port {started['port']}")

    async def stop(self) -> None:
        for child in (self.stations, self.server):
            if child is not None:
                await child.stop("quit")

    async def _server(self, command: str, timeout: float = 60) -> dict[str, Any]:
        assert self.server is not None
        return await self.server.ask(command, timeout)

    async def _stations(self, command: str, timeout: float = 60) -> dict[str, Any]:
        assert self.stations is not None
        return await self.stations.ask(command, timeout)

    async def connect(self) -> dict[str, Any]:
        s = self.settings
        connected = await self._stations(
            f"connect {s.stations} {self.PREFIX} {s.timeout}", s.timeout + 30
        )
        if connected["failed"]:
            raise BenchError(
                f"flush: {connected['failed']} of {s.stations} stations could not connect: "
                f"{connected['failures']}"
            )
        return connected

    async def leave(self) -> None:
        """Stop the stations; wait until the server has seen them all go."""
        await self._stations("stop", 60)
        for _ in range(200):
            if not (await self._server("cpu"))["connections"]:
                return
            await asyncio.sleep(0.05)
        raise BenchError("flush: the server still holds connections after the stations left")

    async def warm(self) -> None:
        """Connect once and leave: from now on the stations are known and accepted."""
        await self.connect()
        await self.leave()

    async def round(self, variant: str) -> dict[str, Any]:
        s = self.settings
        start_delay, interval = self.defaults if variant != "fast" else (0.0, 0.0)
        await self._server(f"pacing {start_delay} {interval}")
        queued = 0 if variant == "empty" else s.commands
        submitted: dict[str, Any] = {}
        if queued:
            submitted = await self._server(
                f"submit {s.stations} {s.per_station} {self.PREFIX}", s.timeout
            )
        armed = await self._server("arm")
        connected = await self.connect()
        if queued:
            done = await self._server(f"await {queued} {s.timeout}", s.timeout + 30)
        else:  # long enough for every station's look at its (empty) queue
            await asyncio.sleep(start_delay + 0.5)
            done = await self._server("await 0 0")
        got = await self._stations("received")
        await self.leave()
        problems = []
        if done["finished"] != queued or done["bad_count"]:
            problems.append(
                f"{done['finished']} of {queued} final ({done['statuses']}); "
                f"{done['bad_count']} not answered as expected: {done['bad']}"
            )
        if got["total"] != queued or got["out_of_order"]:
            problems.append(
                f"the stations got {got['total']} DataTransfers (per station: {got['counts']}); "
                f"out of order or twice: {got['out_of_order']}"
            )
        if queued and got["counts"] != [s.per_station]:
            problems.append(f"per station {got['counts']}, not {s.per_station}")
        if problems:
            raise BenchError(f"flush ({variant}): " + "; ".join(problems))
        at = connected["at"]
        return {
            "variant": variant,
            "start_delay": start_delay,
            "interval": interval,
            "commands": queued,
            "online_s": connected["online_at"] - at,
            "answered_s": None if not queued else done["last_at"] - at,
            "first_answered_s": None if not queued else done["first_at"] - at,
            "armed_to_connect_s": at - armed["at"],
            "server_cpu_s": done["cpu"],
            "calls": done["calls"],
            "rows_changed": done["rows_changed"],
            "server_gc_ms": done["gc_total_ms"],
            "submit": submitted,
            "station_errors": got["errors"],
            "station_error_samples": got["error_samples"],
        }


async def flush(settings: FlushSettings, store: Path, deadline: float) -> dict[str, Any]:
    started = time.perf_counter()
    bench = Flush(settings, store, deadline)
    try:
        await bench.start()
        await bench.warm()
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in FLUSH_VARIANTS}
        for round_ in range(settings.rounds):
            shift = round_ % len(FLUSH_VARIANTS)
            for variant in FLUSH_VARIANTS[shift:] + FLUSH_VARIANTS[:shift]:
                result = await bench.round(variant)
                rounds[variant].append(result)
                answered = result["answered_s"]
                log(
                    f"flush round {round_ + 1}: {variant:7} online in {result['online_s']:.2f} s"
                    + ("" if answered is None else f", all answered in {answered:.2f} s")
                    + f", server CPU {result['server_cpu_s']:.3f} s"
                )
    finally:
        await bench.stop()
    return {
        "stations": settings.stations,
        "per_station": settings.per_station,
        "commands": settings.commands,
        "rounds": settings.rounds,
        "default_pacing": {"start_delay": bench.defaults[0], "interval": bench.defaults[1]},
        "variants": {v: summarize_flush(r, rounds["empty"]) for v, r in rounds.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize_flush(
    rounds: Sequence[dict[str, Any]], empty: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Medians and ranges over the rounds of one variant; per-command figures."""
    commands = rounds[0]["commands"]
    connect_cpu = statistics.median(r["server_cpu_s"] for r in empty)
    calls: Counter[str] = Counter()
    for r in rounds:
        calls.update(r["calls"])
    n = len(rounds)
    out: dict[str, Any] = {
        "start_delay": rounds[0]["start_delay"],
        "interval": rounds[0]["interval"],
        "commands": commands,
        "online_s": spread([r["online_s"] for r in rounds]),
        "server_cpu_s": spread([r["server_cpu_s"] for r in rounds]),
        "calls_per_round": {k: v / n for k, v in sorted(calls.items())},
        "rounds": list(rounds),
    }
    rows = [r["rows_changed"] for r in rounds]
    out["rows_changed_per_round"] = None if None in rows else statistics.fmean(rows)
    if commands:
        out["answered_s"] = spread([r["answered_s"] for r in rounds])
        out["cpu_us_per_command"] = spread(
            [(r["server_cpu_s"] - connect_cpu) / commands * 1e6 for r in rounds]
        )
        out["flush_writes_per_command"] = (calls["mark_sent"] + calls["finish"]) / n / commands
        out["reads_per_command"] = calls["next_pending"] / n / commands
        out["rows_changed_per_command"] = (
            None if None in rows else statistics.fmean(rows) / commands
        )
        submits = [r["submit"] for r in rounds]
        out["submit"] = {
            "seconds": spread([s["seconds"] for s in submits]),
            "cpu_us_per_command": spread([s["cpu"] / commands * 1e6 for s in submits]),
            "writes_per_command": statistics.fmean(s["calls"].get("add", 0) for s in submits)
            / commands,
            "rows_changed_per_command": None
            if any(s["rows_changed"] is None for s in submits)
            else statistics.fmean(s["rows_changed"] for s in submits) / commands,
        }
    return out


def render_flush(result: dict[str, Any]) -> str:
    def seconds(figure: dict[str, float]) -> str:
        return f"{figure['median']:.2f} ({figure['min']:.2f}-{figure['max']:.2f})"

    def number(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    rows = []
    variants = result["variants"]
    for name in FLUSH_VARIANTS:
        v = variants[name]
        queued = v["commands"]
        pacing = f"start_delay={v['start_delay']:g}, interval={v['interval']:g}"
        if not queued:
            pacing = "nothing queued"
        submit = v.get("submit", {})
        rows.append(
            [
                f"{name} ({pacing})",
                f"{queued:,}",
                seconds(v["online_s"]),
                seconds(v["answered_s"]) if queued else "",
                f"{v['server_cpu_s']['median']:.3f}",
                f"{v['cpu_us_per_command']['median']:.0f}" if queued else "",
                f"{number(submit.get('writes_per_command'))} + "
                f"{number(v.get('flush_writes_per_command'))}"
                if queued
                else "",
                f"{number(submit.get('rows_changed_per_command'))} + "
                f"{number(v.get('rows_changed_per_command'))}"
                if queued
                else number(v["rows_changed_per_round"], 0),
                number(v["reads_per_command"]) if queued else "",
                ", ".join(f"{k} {c:g}" for k, c in v["calls_per_round"].items()),
            ]
        )
    header = [
        "variant",
        "commands",
        "all online s",
        "all answered s",
        "server CPU s",
        "CPU µs/command (over connect)",
        "store writes/command (submit + flush)",
        "rows changed/command (submit + flush)",
        "store reads/command",
        "store calls per round (flush)",
    ]
    lines = [
        f"**flush: {result['commands']:,} commands queued for {result['stations']} offline "
        f"stations ({result['per_station']} each), then all connect at once; "
        f"{result['rounds']} rounds, median (range)**",
        "",
        table(header, rows),
        "",
    ]
    submit = variants["default"].get("submit")
    if submit:
        lines.append(
            f"submitting {result['commands']:,} commands (while the stations are offline): "
            f"{seconds(submit['seconds'])} s, {submit['cpu_us_per_command']['median']:.0f} µs "
            f"of server CPU each, {number(submit['writes_per_command'])} store write(s) each"
        )
    for name in ("default", "fast"):
        v = variants[name]
        lines.append(
            f"{name}: all {v['commands']:,} answered {v['answered_s']['median']:.2f} s after the "
            f"connect (range {v['answered_s']['min']:.2f}-{v['answered_s']['max']:.2f} s), "
            f"{v['answered_s']['median'] - v['online_s']['median']:.2f} s after all were online"
        )
    return "\n".join(lines) + "\n"


# -- the parent ----------------------------------------------------------------------------


async def measure(
    settings: Settings,
    rounds: int,
    period: float,
    flush_settings: FlushSettings,
    parts: Sequence[str],
) -> dict[str, Any]:
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    started = time.perf_counter()
    result: dict[str, Any] = {"environment": environment()}
    with tempfile.TemporaryDirectory(prefix="outbox_bench-") as directory:
        if "hot" in parts:
            log("hot path ...")
            result["hot_path"] = await hot_path(settings, rounds, period, Path(directory))
        if "flush" in parts:
            log("flush ...")
            result["flush"] = await flush(
                flush_settings, Path(directory) / "flush.db", settings.deadline
            )
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["loadavg_end"] = os.getloadavg()
    return result


def render(result: dict[str, Any]) -> str:
    parts = []
    if "hot_path" in result:
        parts.append("**hot path: CPU per Heartbeat round trip, outbox on against off**\n")
        parts.append(render_hot(result["hot_path"]))
    if "flush" in result:
        parts.append(render_flush(result["flush"]))
    end = result["loadavg_end"]
    parts.append(f"{result['seconds']:.0f} s in all; load average at the end {end[0]:.2f}.\n")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, < 30 s: a smoke run")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated subset of hot,flush (both)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="hot path rounds (9; quick 1)")
    parser.add_argument("--window", type=float, default=None, help="seconds per window (3)")
    parser.add_argument(
        "--period",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="hot path: each station sends a Heartbeat every SECONDS instead of back-to-back",
    )
    parser.add_argument("--flush-rounds", type=int, default=None, help="flush rounds (5; quick 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    hidden = argparse.SUPPRESS  # how the parent starts its children
    parser.add_argument(
        "--role", choices=("parent", "server", "stations"), default="parent", help=hidden
    )
    parser.add_argument("--store", default="", help=hidden)
    parser.add_argument("--port", type=int, default=0, help=hidden)
    parser.add_argument("--deadline", type=float, default=600.0, help=hidden)
    args = parser.parse_args(argv)
    if args.role == "server":
        asyncio.run(run_outbox_server(args.store, args.deadline))
        return 0
    if args.role == "stations":
        asyncio.run(run_stations(args.port, args.deadline))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts: choose among {', '.join(PARTS)}")
    settings = Settings.quick() if args.quick else Settings.full()
    window = args.window or (settings.heartbeat_window if args.quick else 3.0)
    settings = dataclasses.replace(settings, heartbeat_window=window)
    rounds = args.rounds or (1 if args.quick else 9)
    flush_settings = FlushSettings.quick() if args.quick else FlushSettings.full()
    if args.flush_rounds:
        flush_settings = dataclasses.replace(flush_settings, rounds=args.flush_rounds)
    result = run_measurement(
        measure(settings, rounds, args.period, flush_settings, parts), settings.deadline
    )
    if isinstance(result, int):
        return result
    report(result, args.json, render)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
