"""Server memory per idle station connection, for each ``compression`` setting.

For ``compression`` = ``None``, ``"frugal"`` and ``"deflate"`` this measures how much
a csms_kit server's resident memory (``VmRSS``) grows per connected, idle station,
and the same for the *floor* of ``DESIGN.md``: a bare ``websockets`` server that
parses each JSON frame and answers a canned CALLRESULT, with the same
permessage-deflate settings. Each measurement uses two fresh processes besides this
one:

* the **server** (this file run with ``--role server``): csms_kit's ``serve()`` with
  the demo CSMS (:class:`csms_kit.demo.csms.DemoCsms`), or the floor. It answers
  commands on its stdin with one JSON line on its stdout; ``sample`` runs
  ``gc.collect()`` and reports its own ``VmRSS``/``RssAnon`` from
  ``/proc/self/status`` and how many connections it holds;
* the **load generator** (``--role load``): opens N WebSocket connections on
  127.0.0.1, alternately offering ``ocpp1.6`` and ``ocpp2.0.1`` and the compression
  under test; on each it sends a BootNotification (must be Accepted) and a
  Heartbeat (plus ``--traffic`` MeterValues), then leaves it idle. It speaks
  hand-written OCPP-J frames over plain ``websockets`` clients rather than
  ``csms_kit.connect_station``: both servers get exactly the same bytes, the floor's
  canned answer needs no schema, and 2,000 stations stay cheap for one process.

Sequence per measurement: start the server; the load generator warms the server up
with a few connections that boot, beat and close (lazy imports, schema validators);
sample the server's RSS (median of a few samples: *before*); open the N
connections; wait for things to settle; sample again (*after*). The figure is
``(after - before) / N`` in KiB per idle connection. ``--trace`` adds a second
round of runs with ``tracemalloc`` on in the server from *before* to *after*, to
show where the memory goes (their RSS is not reported: tracing costs memory too).

Run from the repository root::

    python bench/connection_memory.py                  # N=2000, all settings, ~2 min
    python bench/connection_memory.py --stations 5000
    python bench/connection_memory.py --quick          # N=200, all at once: smoke run (CI)
    python bench/connection_memory.py --trace --json   # plus tracemalloc; JSON out
    python bench/connection_memory.py --traffic 5      # 5 MeterValues per station first

Every child process is killed if it does not stop by itself, and exits on its own
when this process goes away (its stdin closes) or after a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import importlib.util
import json
import linecache
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import IO, Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.typing import Subprotocol

HOST = "127.0.0.1"
#: The settings of ``serve(compression=...)`` measured, as spelled on the command line.
COMPRESSIONS = ("none", "frugal", "deflate")
KINDS = ("csms_kit", "floor")
#: Open files are capped at 20,000 per process; each connection is one socket.
MAX_STATIONS = 15_000
#: The CALLRESULT payload the floor answers to every CALL.
CANNED_PAYLOAD = '{"currentTime":"2026-11-27T00:00:00+00:00","interval":60,"status":"Accepted"}'
VERSIONS = ("ocpp1.6", "ocpp2.0.1")
SCRIPT = os.path.abspath(__file__)


class BenchError(RuntimeError):
    """Something went wrong in a child process or a check failed."""

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message)
        #: The child process that reported it, if one did.
        self.source = source


# -- compression settings -------------------------------------------------------------


def compression_value(name: str) -> Literal["frugal", "deflate"] | None:
    """The ``compression`` argument of ``csms_kit.serve`` for a command-line name."""
    if name == "frugal":
        return "frugal"
    if name == "deflate":
        return "deflate"
    return None


def floor_extensions(name: str) -> list[ServerPerMessageDeflateFactory]:
    """The floor's permessage-deflate setup: the same parameters csms_kit uses."""
    if name == "none":
        return []
    common: dict[str, Any] = {
        "server_max_window_bits": 12,
        "client_max_window_bits": 12,
        "compress_settings": {"memLevel": 5},
    }
    if name == "frugal":
        common.update(server_no_context_takeover=True, client_no_context_takeover=True)
    return [ServerPerMessageDeflateFactory(**common)]


def client_options(name: str) -> dict[str, Any]:
    """What a station offers for a setting (``websockets.connect`` keyword arguments)."""
    if name == "none":
        return {"compression": None}
    if name == "deflate":
        return {"compression": "deflate"}  # websockets' default offer
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings={"memLevel": 5},
    )
    return {"compression": None, "extensions": [factory]}


# -- child processes: shared plumbing ----------------------------------------------


def reply(message: dict[str, Any]) -> None:
    """Write one JSON line to the parent."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def stdin_reader() -> asyncio.StreamReader:
    """An asyncio reader of this process's stdin (the parent's commands)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def next_command(reader: asyncio.StreamReader) -> list[str]:
    """The parent's next command as words; exit at once if the parent has gone."""
    line = await reader.readline()
    if not line:
        os._exit(3)  # orphaned: nobody will read our answers
    return line.decode().split()


def arm_deadline(seconds: float) -> None:
    """Exit hard after ``seconds`` whatever happens (a safety net against leftovers)."""
    asyncio.get_running_loop().call_later(seconds, os._exit, 4)


def read_status() -> dict[str, int]:
    """Memory figures of this process from ``/proc/self/status``, in KiB."""
    wanted = {"VmRSS": "vmrss_kib", "RssAnon": "rssanon_kib", "VmHWM": "vmhwm_kib"}
    figures: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in wanted:
                figures[wanted[key]] = int(value.split()[0])
    return figures


# -- the server process ---------------------------------------------------------------


def _package_of(filename: str) -> str:
    """A short label for where an allocation was made."""
    for marker in ("csms_kit", "websockets", "ocpp", "asyncio", "json", "zlib", "logging"):
        if f"/{marker}/" in filename or filename.endswith(f"/{marker}.py"):
            return marker
    return os.path.basename(filename)


def trace_report(stations: int, top: int = 15) -> dict[str, Any]:
    """What the memory traced since ``tracemalloc.start()`` went to, per station."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    per = max(stations, 1)

    def lines(statistics: list[tracemalloc.Statistic]) -> list[dict[str, Any]]:
        return [
            {
                "where": f"{_package_of(s.traceback[0].filename)}:"
                f"{os.path.basename(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                "code": _source_line(s.traceback[0].filename, s.traceback[0].lineno),
                "bytes_per_station": round(s.size / per),
                "blocks_per_station": round(s.count / per, 2),
            }
            for s in statistics[:top]
        ]

    own = snapshot.filter_traces([tracemalloc.Filter(True, "*/csms_kit/*")])
    packages: dict[str, int] = {}
    for trace in snapshot.traces:
        label = _package_of(trace.traceback[0].filename)
        packages[label] = packages.get(label, 0) + trace.size
    total = sum(packages.values())
    return {
        "traced_bytes_per_station": round(total / per),
        "by_package": {
            k: round(v / per) for k, v in sorted(packages.items(), key=lambda i: -i[1])
        },
        "top_lines": lines(snapshot.statistics("lineno")),
        "csms_kit_lines": lines(own.statistics("lineno")),
    }


def _source_line(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip()[:90]


async def floor_handler(websocket: ServerConnection) -> None:
    """The floor: parse each frame, answer a canned CALLRESULT with its messageId.

    Nothing of a message is kept while waiting for the next one (``del``): the floor
    is the least this stack can hold per connection.
    """
    async for message in websocket:
        answer = f"[3,{json.dumps(json.loads(message)[1])},{CANNED_PAYLOAD}]"
        del message
        await websocket.send(answer)
        del answer


async def run_server(kind: str, compression: str, deadline: float) -> None:
    """Serve on an ephemeral port and answer the parent's commands until ``quit``."""
    arm_deadline(deadline)
    reader = await stdin_reader()
    count: Callable[[], int]
    closer: Callable[[], Any]
    if kind == "csms_kit":
        from csms_kit import serve
        from csms_kit.demo.csms import DemoCsms

        csms = serve(DemoCsms, HOST, 0, compression=compression_value(compression))
        await csms.start()
        port = csms.port

        def count() -> int:
            return len(csms.sessions)

        def closer() -> Any:
            return csms.close(grace=1.0)

    else:
        server = await websockets_serve(
            floor_handler,
            HOST,
            0,
            subprotocols=[Subprotocol(v) for v in reversed(VERSIONS)],
            compression=None,
            extensions=floor_extensions(compression),
            max_size=256 * 1024,  # as csms_kit; pings: websockets' defaults, as csms_kit
        )
        port = server.sockets[0].getsockname()[1]

        def count() -> int:
            return len(server.connections)

        async def closer() -> None:
            server.close()
            await server.wait_closed()

    gc.collect()
    reply({"port": port, **read_status()})
    while True:
        command = await next_command(reader)
        if command[0] == "sample":
            gc.collect()
            reply({"connections": count(), **read_status()})
        elif command[0] == "trace-start":
            tracemalloc.start(1)
            reply({"tracing": True})
        elif command[0] == "trace-report":
            gc.collect()
            reply(trace_report(int(command[1])))
        elif command[0] == "quit":
            await closer()
            reply({"quit": True})
            return
        else:
            reply({"error": f"unknown command {command!r}"})


# -- the load-generator process -------------------------------------------------------


def boot_payload(version: str, index: int) -> dict[str, Any]:
    """A plausible BootNotification request for ``version``."""
    serial = f"SN-{index:06d}"
    if version == "ocpp1.6":
        return {
            "chargePointVendor": "csms_kit-bench",
            "chargePointModel": "Idle-22",
            "chargePointSerialNumber": serial,
            "firmwareVersion": "1.4.2",
        }
    return {
        "reason": "PowerUp",
        "chargingStation": {
            "vendorName": "csms_kit-bench",
            "model": "Idle-22",
            "serialNumber": serial,
            "firmwareVersion": "1.4.2",
        },
    }


def meter_values_payload(version: str, index: int, sequence: int) -> dict[str, Any]:
    """A 3-phase MeterValues request (about 1 KB) whose readings change every time."""
    energy = 1_000_000 + index * 977 + sequence * 131
    readings = [
        ("Energy.Active.Import.Register", None, "Wh", energy),
        ("Power.Active.Import", None, "W", 7200 + (energy % 97)),
        *(
            ("Current.Import", p, "A", 10 + (energy + i) % 7)
            for i, p in enumerate(("L1", "L2", "L3"))
        ),
        *(
            ("Voltage", p, "V", 228 + (energy + i) % 5)
            for i, p in enumerate(("L1-N", "L2-N", "L3-N"))
        ),
    ]
    sampled = []
    for measurand, phase, unit, value in readings:
        sample: dict[str, Any] = {"context": "Sample.Periodic", "measurand": measurand}
        sample["location"] = "Outlet"
        if phase is not None:
            sample["phase"] = phase
        if version == "ocpp1.6":
            sampled.append({"value": str(value), **sample, "unit": unit})
        else:
            sampled.append({"value": value, **sample, "unitOfMeasure": {"unit": unit}})
    timestamp = f"2026-11-27T08:{sequence // 60 % 60:02d}:{sequence % 60:02d}Z"
    meter_value = [{"timestamp": timestamp, "sampledValue": sampled}]
    if version == "ocpp1.6":
        return {"connectorId": 1, "transactionId": index, "meterValue": meter_value}
    return {"evseId": 1, "meterValue": meter_value}


async def exchange(
    websocket: ClientConnection, action: str, payload: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send one CALL and return the payload of its CALLRESULT (anything else fails)."""
    message_id = str(uuid.uuid4())
    await websocket.send(json.dumps([2, message_id, action, payload], separators=(",", ":")))
    answer = json.loads(await asyncio.wait_for(websocket.recv(), timeout))
    if not (isinstance(answer, list) and answer[:2] == [3, message_id]):
        raise BenchError(f"{action}: expected a CALLRESULT for {message_id}, got {answer!r}")
    result: dict[str, Any] = answer[2]
    return result


async def open_station(
    port: int, station_id: str, index: int, compression: str, traffic: int
) -> tuple[ClientConnection, str]:
    """Connect one station, boot it, send a Heartbeat and ``traffic`` MeterValues.

    Returns the connection and the ``Sec-WebSocket-Extensions`` it negotiated.
    """
    version = VERSIONS[index % 2]
    websocket = await connect(
        f"ws://{HOST}:{port}/{station_id}",
        subprotocols=[Subprotocol(version)],
        ping_interval=None,  # the server pings (every 20 s by default); we answer
        open_timeout=60,
        close_timeout=10,
        proxy=None,
        **client_options(compression),
    )
    try:
        if websocket.subprotocol != version:
            raise BenchError(f"{station_id}: got subprotocol {websocket.subprotocol!r}")
        boot = await exchange(websocket, "BootNotification", boot_payload(version, index), 60)
        if boot.get("status") != "Accepted":
            raise BenchError(f"{station_id}: BootNotification answered {boot!r}")
        await exchange(websocket, "Heartbeat", {}, 60)
        for sequence in range(traffic):
            payload = meter_values_payload(version, index, sequence)
            await exchange(websocket, "MeterValues", payload, 60)
    except BaseException:
        await websocket.close()
        raise
    assert websocket.response is not None
    return websocket, websocket.response.headers.get("Sec-WebSocket-Extensions", "")


async def open_many(
    port: int, prefix: str, count: int, compression: str, concurrency: int, traffic: int
) -> tuple[list[ClientConnection], set[str]]:
    """Open ``count`` stations, at most ``concurrency`` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> tuple[ClientConnection, str]:
        async with gate:
            station_id = f"{prefix}-{index:05d}"
            return await open_station(port, station_id, index, compression, traffic)

    opened = await asyncio.gather(*(one(i) for i in range(count)))
    return [ws for ws, _ in opened], {ext for _, ext in opened}


async def close_all(connections: Sequence[ClientConnection], concurrency: int) -> None:
    """Close every connection (closing handshake), ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(websocket: ClientConnection) -> None:
        async with gate:
            await websocket.close()

    await asyncio.gather(*(one(ws) for ws in connections))


async def run_load(
    port: int,
    stations: int,
    compression: str,
    warmup: int,
    concurrency: int,
    traffic: int,
    deadline: float,
) -> None:
    """Warm the server up, then open ``stations`` idle stations when told ``go``."""
    arm_deadline(deadline)
    reader = await stdin_reader()
    try:
        warm, _ = await open_many(port, "WARM", warmup, compression, concurrency, traffic)
        await close_all(warm, concurrency)
        del warm
        reply({"warm": warmup})
        if (await next_command(reader))[0] != "go":
            return
        started = time.perf_counter()
        connections, negotiated = await open_many(
            port, "CP", stations, compression, concurrency, traffic
        )
        if len(negotiated) != 1:
            raise BenchError(f"connections negotiated different extensions: {negotiated}")
        reply(
            {
                "connected": len(connections),
                "seconds": round(time.perf_counter() - started, 2),
                "extensions": negotiated.pop(),
            }
        )
        if (await next_command(reader))[0] != "close":
            return
        await close_all(connections, concurrency)
        reply({"closed": len(connections)})
    except Exception as exc:
        reply({"error": f"{type(exc).__name__}: {exc}"})
        raise


# -- the parent: orchestration ----------------------------------------------------------


@dataclass
class Result:
    """One measurement: one server kind, one compression setting."""

    kind: str
    compression: str
    stations: int
    before_kib: float
    after_kib: float
    before_anon_kib: float
    after_anon_kib: float
    connect_seconds: float
    extensions: str
    samples_before: list[int] = field(default_factory=list)
    samples_after: list[int] = field(default_factory=list)
    trace: dict[str, Any] | None = None

    @property
    def per_station_kib(self) -> float:
        return (self.after_kib - self.before_kib) / self.stations

    @property
    def per_station_anon_kib(self) -> float:
        return (self.after_anon_kib - self.before_anon_kib) / self.stations


class Child:
    """A child process speaking one JSON line per message on its stdin/stdout."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.name = name
        self.process = process
        self.stderr = stderr

    @classmethod
    async def start(cls, name: str, args: Sequence[str], script: str = SCRIPT) -> Child:
        """Run ``script`` (this one by default) with ``args`` in a new Python process."""
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        return cls(name, process, stderr)

    def stderr_tail(self, limit: int = 3000) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-limit:]

    async def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"{self.name}: no answer within {timeout:g} s", self.name) from None
        if not line:
            await asyncio.sleep(0.2)
            raise BenchError(
                f"{self.name} exited (code {self.process.returncode}):\n{self.stderr_tail()}",
                self.name,
            )
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise BenchError(f"{self.name}: {message['error']}\n{self.stderr_tail()}", self.name)
        return message

    async def ask(self, command: str, timeout: float = 30) -> dict[str, Any]:
        await self.send(command)
        return await self.read(timeout)

    async def stop(self, command: str | None, timeout: float = 10) -> None:
        """Ask the child to stop; kill it if it has not exited within ``timeout``."""
        process = self.process
        if process.returncode is None and command is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ask(command, timeout), timeout)
        if process.returncode is None:
            try:
                if process.stdin is not None:
                    process.stdin.close()  # an idle child exits on EOF
                await asyncio.wait_for(process.wait(), timeout)
            except (asyncio.TimeoutError, OSError):
                pass
        if process.returncode is None:
            process.kill()
            await process.wait()
        self.stderr.close()


@dataclass
class Settings:
    """How one invocation measures."""

    stations: int
    warmup: int
    concurrency: int
    settle: float
    samples: int
    interval: float
    #: MeterValues each station sends after its Heartbeat (0: the idle case).
    traffic: int = 0
    #: Measure all settings at once (``--quick``): RSS is per process, only time suffers.
    parallel: bool = False

    @property
    def connect_timeout(self) -> float:
        return 60 + self.stations * (0.1 + 0.02 * self.traffic)

    @property
    def deadline(self) -> float:
        return 120 + 2 * self.connect_timeout + self.samples * self.interval * 2 + self.settle


async def sample(server: Child, settings: Settings) -> tuple[list[int], list[int], int]:
    """Several RSS samples of the server (each after ``gc.collect()``)."""
    rss, anon, connections = [], [], 0
    for i in range(settings.samples):
        if i:
            await asyncio.sleep(settings.interval)
        figures = await server.ask("sample")
        rss.append(figures["vmrss_kib"])
        anon.append(figures["rssanon_kib"])
        connections = figures["connections"]
    return rss, anon, connections


async def measure(kind: str, compression: str, settings: Settings, trace: bool) -> Result:
    """Start a server and a load generator, and measure the server's growth."""
    children: list[Child] = []
    deadline = ("--deadline", str(settings.deadline))
    try:
        server = await Child.start(
            f"{kind} server ({compression})",
            ["--role", "server", "--kind", kind, "--compression", compression, *deadline],
        )
        children.append(server)
        port = (await server.read(60))["port"]
        load = await Child.start(
            f"load generator ({kind}, {compression})",
            [
                *("--role", "load", "--port", str(port), "--compression", compression),
                *("--stations", str(settings.stations), "--warmup", str(settings.warmup)),
                *("--concurrency", str(settings.concurrency), *deadline),
                *("--traffic", str(settings.traffic)),
            ],
        )
        children.insert(0, load)
        await load.read(settings.connect_timeout)  # warm-up done, its stations closed
        await asyncio.sleep(settings.settle)
        before, before_anon, left = await sample(server, settings)
        if left:
            raise BenchError(f"{server.name}: {left} warm-up connections still open")
        if trace:
            await server.ask("trace-start")
        connected = await load.ask("go", settings.connect_timeout)
        await asyncio.sleep(settings.settle)
        after, after_anon, held = await sample(server, settings)
        if held != settings.stations:
            raise BenchError(f"{server.name} holds {held} connections, not {settings.stations}")
        report = await server.ask(f"trace-report {settings.stations}", 120) if trace else None
        await load.ask("close", settings.connect_timeout)
        return Result(
            kind=kind,
            compression=compression,
            stations=settings.stations,
            before_kib=statistics.median(before),
            after_kib=statistics.median(after),
            before_anon_kib=statistics.median(before_anon),
            after_anon_kib=statistics.median(after_anon),
            connect_seconds=connected["seconds"],
            extensions=connected["extensions"],
            samples_before=before,
            samples_after=after,
            trace=report,
        )
    except BenchError as exc:
        started = next((c for c in children if c.name.startswith(kind)), None)
        if started is None or exc.source == started.name:
            raise
        # The load generator saw the failure; the server's log usually says why.
        raise BenchError(f"{exc}\n{started.name}, stderr:\n{started.stderr_tail()}") from None
    finally:
        for child in children:  # the load generator (exits on EOF) first, then the server
            await child.stop("quit" if child.name.startswith(kind) else None)


def check_negotiation(results: Sequence[Result]) -> None:
    """csms_kit and the floor must have negotiated the same thing for each setting."""
    for compression in COMPRESSIONS:
        offers = {r.extensions for r in results if r.compression == compression}
        if len(offers) > 1:
            raise BenchError(f"{compression}: csms_kit and floor negotiated {offers}")
        for offer in offers:
            takeover_off = "server_no_context_takeover" in offer
            if (compression == "none") != (offer == ""):
                raise BenchError(f"{compression}: negotiated {offer!r}")
            if compression != "none" and takeover_off != (compression == "frugal"):
                raise BenchError(f"{compression}: negotiated {offer!r}")


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def print_table(results: Sequence[Result]) -> None:
    """The results as a Markdown table, csms_kit next to the floor."""
    by = {(r.kind, r.compression): r for r in results}
    print(
        "| compression | csms_kit KiB/conn | floor KiB/conn | ratio | csms_kit - floor "
        "| csms_kit RSS MiB (before → at N) | floor RSS MiB (before → at N) |"
    )
    print("|---|---:|---:|---:|---:|---|---|")
    for compression in COMPRESSIONS:
        kit, floor = by.get(("csms_kit", compression)), by.get(("floor", compression))
        if kit is None or floor is None:
            continue
        print(
            f"| {compression} | {kit.per_station_kib:.1f} | {floor.per_station_kib:.1f} "
            f"| {kit.per_station_kib / floor.per_station_kib:.2f}x "
            f"| {kit.per_station_kib - floor.per_station_kib:+.1f} "
            f"| {mib(kit.before_kib)} → {mib(kit.after_kib)} "
            f"| {mib(floor.before_kib)} → {mib(floor.after_kib)} |"
        )
    print()
    print("Anonymous memory only (RssAnon), KiB/conn:")
    for compression in COMPRESSIONS:
        kit, floor = by.get(("csms_kit", compression)), by.get(("floor", compression))
        if kit is not None and floor is not None:
            print(
                f"  {compression:8} csms_kit {kit.per_station_anon_kib:7.1f}"
                f"   floor {floor.per_station_anon_kib:7.1f}"
            )
    print("Negotiated Sec-WebSocket-Extensions:")
    for compression in COMPRESSIONS:
        offers = {r.extensions for r in results if r.compression == compression}
        for offer in offers:
            print(f"  {compression:8} {offer or '(none)'}")


def print_traces(results: Sequence[Result]) -> None:
    """What tracemalloc saw in the traced runs, per station."""
    for result in results:
        if result.trace is None:
            continue
        trace = result.trace
        print(
            f"\ntracemalloc, {result.kind} compression={result.compression}: "
            f"{trace['traced_bytes_per_station'] / 1024:.1f} KiB traced per station"
        )
        packages = ", ".join(f"{k} {v / 1024:.1f}" for k, v in trace["by_package"].items())
        print(f"  by package of the allocating line (KiB/station): {packages}")
        for title, key in (("top lines", "top_lines"), ("csms_kit's own lines", "csms_kit_lines")):
            if not trace[key]:
                continue
            print(f"  {title}:")
            for line in trace[key]:
                print(
                    f"  {line['bytes_per_station'] / 1024:6.2f} KiB"
                    f" {line['blocks_per_station']:6.2f} blocks  {line['where']}  {line['code']}"
                )


def csms_kit_source() -> str:
    """Where the servers import csms_kit from, and its git commit (``+dirty``) if any."""
    spec = importlib.util.find_spec("csms_kit")
    if spec is None or spec.origin is None:
        return "csms_kit not found"
    folder = os.path.dirname(spec.origin)
    try:
        commit = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return folder
    return f"{folder} @ {commit}{'+dirty' if dirty else ''}"


def environment() -> dict[str, Any]:
    """Facts about this run worth keeping next to its figures."""
    versions = {}
    for package in ("websockets", "ocpp", "csms-kit"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "csms_kit": csms_kit_source(),
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "packages": versions,
    }


async def orchestrate(settings: Settings, trace: bool, as_json: bool) -> int:
    """Measure every setting for csms_kit and the floor; print the results."""
    # A plain ``kill`` cleans up like Ctrl-C does: cancel, stop the children, exit.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    results: list[Result] = []
    env = environment()
    print(
        f"# server memory per idle connection, N={settings.stations}, "
        f"{settings.traffic} MeterValues each, {env['when']}, "
        f"Python {env['python']}, {env['cpus']} CPUs, load {env['loadavg'][0]:.2f}, "
        f"{env['packages']}\n# csms_kit from {env['csms_kit']}",
        file=sys.stderr,
    )
    plan = [(kind, compression) for compression in COMPRESSIONS for kind in KINDS]
    if settings.parallel:
        results = list(await asyncio.gather(*(measure(k, c, settings, False) for k, c in plan)))
    else:
        results = [await measure(k, c, settings, False) for k, c in plan]
    for result in results:
        print(
            f"  {result.kind:8} {result.compression:8} {result.per_station_kib:6.1f} KiB/conn "
            f"(RSS {mib(result.before_kib)} → {mib(result.after_kib)} MiB, "
            f"connect {result.connect_seconds:.1f} s)",
            file=sys.stderr,
        )
    check_negotiation(results)
    traced = [await measure(k, c, settings, True) for k, c in plan] if trace else []
    if as_json:
        payload = {
            "environment": env,
            "settings": asdict(settings),
            "results": [
                {**asdict(r), "per_station_kib": r.per_station_kib} for r in results + traced
            ],
        }
        print(json.dumps(payload, indent=2))
        return 0
    print_table(results)
    print_traces(traced)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=None, help="N (default 2000)")
    parser.add_argument("--quick", action="store_true", help="N=200, short settling: a smoke run")
    parser.add_argument("--trace", action="store_true", help="add tracemalloc runs")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up connections")
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes at a time")
    parser.add_argument(
        "--traffic",
        type=int,
        default=0,
        help="MeterValues (about 1 KB) each station sends after its Heartbeat (default 0)",
    )
    # Internal: how the parent starts its children.
    hidden = argparse.SUPPRESS
    parser.add_argument(
        "--role", choices=("parent", "server", "load"), default="parent", help=hidden
    )
    parser.add_argument("--kind", choices=KINDS, default="csms_kit", help=hidden)
    parser.add_argument("--compression", choices=COMPRESSIONS, default="none", help=hidden)
    parser.add_argument("--port", type=int, default=0, help=hidden)
    parser.add_argument("--deadline", type=float, default=600.0, help=hidden)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stations = args.stations or (200 if args.quick else 2000)
    warmup = args.warmup if args.warmup is not None else (4 if args.quick else 10)
    if args.role == "server":
        asyncio.run(run_server(args.kind, args.compression, args.deadline))
        return 0
    if args.role == "load":
        asyncio.run(
            run_load(
                args.port,
                stations,
                args.compression,
                warmup,
                args.concurrency,
                args.traffic,
                args.deadline,
            )
        )
        return 0
    if not 0 < stations <= MAX_STATIONS:
        raise SystemExit(f"--stations must be between 1 and {MAX_STATIONS} (open-file limit)")
    settings = Settings(
        stations=stations,
        warmup=warmup,
        concurrency=args.concurrency,
        settle=0.3 if args.quick else 3.0,
        samples=3 if args.quick else 5,
        interval=0.1 if args.quick else 0.5,
        traffic=args.traffic,
        parallel=args.quick,
    )
    try:
        return asyncio.run(orchestrate(settings, args.trace, args.json))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
