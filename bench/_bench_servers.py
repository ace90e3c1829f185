"""The server processes of ``bench/server_bench.py``, and the plumbing its children share.

Three servers, each in a process of its own, on an ephemeral port of 127.0.0.1:

* ``floor``: a bare ``websockets`` server that parses each frame with ``json`` and
  answers a canned CALLRESULT carrying the CALL's messageId (the floor of
  ``bench/connection_memory.py``, imported from there). No OCPP logic, no validation.
* ``baseline``: one ``ocpp`` ``ChargePoint`` per connection, as that package's
  examples do it: ``websockets.serve`` with its defaults, a ``ChargePoint`` subclass
  per version picked by the negotiated subprotocol, ``await cp.start()`` in the
  handler. Handlers for every message the load generator sends, answering what the
  csms_kit example answers.
* ``csms_kit``: ``csms_kit.serve`` with the session classes of
  ``examples/multi_station_server.py`` (``Csms16``, ``Csms2x``), full validation
  both ways (the default ``ValidationPolicy``), plus a MeterValues handler (the
  example has none) and ``limits = Limits(frames=None)``: the default frame rate
  limit (20/s, burst 200) would throttle back-to-back benchmark traffic. With
  ``--instruments metrics,tracing`` (``bench/instruments_bench.py``), the same server
  with csms_kit's metrics and/or tracing instruments.

No server configures logging (as in any app that leaves it at the default): the
``info`` lines of the example and of ``ocpp`` cost a level check each.

Each server answers the parent's commands on its stdin with one JSON line on stdout:
``cpu`` (its own ``getrusage`` user + system time, all threads, and the garbage
collector's pauses since the last ``cpu``), ``memory`` (a timed ``gc.collect()``, then
``VmRSS``/``RssAnon`` from ``/proc/self/status``), ``instruments NAMES`` (csms_kit only:
switch every connection to those instruments, ``-`` for none) and ``quit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime
import gc
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connection_memory import compression_value, floor_extensions, floor_handler, read_status
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HOST = "127.0.0.1"
KINDS = ("floor", "baseline", "csms_kit")
#: Kinds a bench may ask for besides: the ASGI endpoint under uvicorn (bench/asgi_bench.py).
EXTRA_KINDS = ("csms_kit_asgi",)
#: The subprotocols every server speaks, in its order of preference.
SUBPROTOCOLS = ("ocpp2.0.1", "ocpp1.6")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- child-process plumbing (servers and load generators) --------------------------------


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (best effort elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(3)


def reply(message: dict[str, Any]) -> None:
    """Write one JSON line to the parent."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Commands:
    """The parent's commands, read from stdin by a task of their own.

    Reading continuously (not only when idle) means that the child notices at once
    when its parent goes away, even in the middle of a long command: it exits.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(deadline, os._exit, 4)  # a safety net against leftovers
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                os._exit(3)  # orphaned: nobody will read our answers
            self._queue.put_nowait(line.decode().split())

    async def next(self) -> list[str]:
        return await self._queue.get()


class GcWatch:
    """The garbage collector's pauses in this process, per generation, since :meth:`take`.

    A full (generation 2) collection walks every tracked object; with thousands of
    connections that pauses the event loop long enough to show in latency figures.
    """

    def __init__(self) -> None:
        self._started = 0.0
        self._started_cpu = 0.0
        self._reset()
        gc.callbacks.append(self._callback)

    def _reset(self) -> None:
        self.counts = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]
        self.longest_cpu = [0.0, 0.0, 0.0]
        self.total = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        pause = time.perf_counter() - self._started
        cpu = time.thread_time() - self._started_cpu
        generation = info["generation"]
        self.counts[generation] += 1
        if pause > self.longest[generation]:
            self.longest[generation] = pause
            self.longest_cpu[generation] = cpu
        self.total += pause

    def take(self) -> dict[str, Any]:
        """Collections, longest pause (ms) per generation and total pause since the last take.

        ``gc_longest_cpu_ms`` is the CPU time of each longest pause: much less than the
        pause itself means the process was waiting for a CPU, not collecting.
        """
        figures = {
            "gc_collections": self.counts,
            "gc_longest_ms": [round(p * 1000, 2) for p in self.longest],
            "gc_longest_cpu_ms": [round(p * 1000, 2) for p in self.longest_cpu],
            "gc_total_ms": round(self.total * 1000, 2),
        }
        self._reset()
        return figures


def cpu_seconds() -> dict[str, float]:
    """This process's CPU time so far (all threads) and minor page faults, from ``getrusage``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "cpu": usage.ru_utime + usage.ru_stime,
        "minor_faults": usage.ru_minflt,
    }


# -- the baseline: ocpp ChargePoint per connection ---------------------------------------


def now() -> str:
    """The same timestamp the csms_kit example answers with."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def baseline_classes() -> dict[str, type]:
    """``ocpp`` ChargePoint subclasses with handlers for every message the bench sends.

    They answer what ``Csms16``/``Csms2x`` of the csms_kit example answer (and log
    the same ``info`` lines), written the way ``ocpp``'s examples write handlers.
    """
    import secrets

    from ocpp.routing import on
    from ocpp.v16 import ChargePoint as ChargePoint16
    from ocpp.v16 import call_result as result16
    from ocpp.v201 import ChargePoint as ChargePoint201
    from ocpp.v201 import call_result as result201

    log = logging.getLogger("baseline")

    class Baseline16(ChargePoint16):  # type: ignore[misc]
        @on("BootNotification")
        def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any) -> Any:
            log.info("%s booted, serial %s", self.id, kwargs.get("charge_point_serial_number"))
            return result16.BootNotification(current_time=now(), interval=300, status="Accepted")

        @on("Heartbeat")
        def on_heartbeat(self) -> Any:
            return result16.Heartbeat(current_time=now())

        @on("StatusNotification")
        def on_status(self, connector_id: int, error_code: str, status: str, **kwargs: Any) -> Any:
            log.info("%s connector %s is %s", self.id, connector_id, status)
            return result16.StatusNotification()

        @on("Authorize")
        def on_authorize(self, id_tag: str, **kwargs: Any) -> Any:
            return result16.Authorize(id_tag_info={"status": "Accepted"})

        @on("StartTransaction")
        def on_start(self, connector_id: int, id_tag: str, **kwargs: Any) -> Any:
            transaction_id = secrets.randbelow(2**31)
            log.info("%s started transaction %s", self.id, transaction_id)
            return result16.StartTransaction(
                transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
            )

        @on("StopTransaction")
        def on_stop(self, transaction_id: int, **kwargs: Any) -> Any:
            log.info("%s stopped transaction %s", self.id, transaction_id)
            return result16.StopTransaction()

        @on("MeterValues")
        def on_meter_values(self, connector_id: int, meter_value: list[Any], **kwargs: Any) -> Any:
            return result16.MeterValues()

    class Baseline201(ChargePoint201):  # type: ignore[misc]
        @on("BootNotification")
        def on_boot(self, charging_station: dict[str, Any], reason: str, **kwargs: Any) -> Any:
            log.info("%s booted, serial %s", self.id, charging_station.get("serial_number"))
            return result201.BootNotification(current_time=now(), interval=300, status="Accepted")

        @on("Heartbeat")
        def on_heartbeat(self) -> Any:
            return result201.Heartbeat(current_time=now())

        @on("StatusNotification")
        def on_status(
            self,
            timestamp: str,
            connector_status: str,
            evse_id: int,
            connector_id: int,
            **kwargs: Any,
        ) -> Any:
            log.info("%s EVSE %s is %s", self.id, evse_id, connector_status)
            return result201.StatusNotification()

        @on("Authorize")
        def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
            return result201.Authorize(id_token_info={"status": "Accepted"})

        @on("TransactionEvent")
        def on_transaction(
            self, event_type: str, transaction_info: dict[str, Any], **kwargs: Any
        ) -> Any:
            log.info(
                "%s transaction %s: %s", self.id, transaction_info["transaction_id"], event_type
            )
            return result201.TransactionEvent()

        @on("MeterValues")
        def on_meter_values(self, evse_id: int, meter_value: list[Any], **kwargs: Any) -> Any:
            return result201.MeterValues()

    return {"ocpp1.6": Baseline16, "ocpp2.0.1": Baseline201}


async def start_baseline(compression: str) -> tuple[Any, Callable[[], int]]:
    """``websockets.serve`` with its defaults, as ``ocpp``'s examples call it.

    ``compression`` is ignored: websockets' default ``compression="deflate"`` is
    exactly csms_kit's ``"deflate"``, and what is negotiated depends on what the
    stations offer (the bench measures the baseline with no compression and with
    deflate; its examples never configure anything like ``"frugal"``).
    """
    classes = baseline_classes()

    async def on_connect(websocket: ServerConnection) -> None:
        # As the ocpp examples do: refuse a connection without a common subprotocol,
        # take the identity from the path, run one ChargePoint until it disconnects.
        assert websocket.request is not None
        if not websocket.subprotocol:
            await websocket.close()
            return
        charge_point_id = websocket.request.path.strip("/")
        charge_point = classes[websocket.subprotocol](charge_point_id, websocket)
        # The examples let ConnectionClosed escape; websockets would then log a
        # traceback per disconnection. The bench ends 10,000 connections at once.
        with contextlib.suppress(ConnectionClosed):
            await charge_point.start()

    server = await websockets_serve(
        on_connect, HOST, 0, subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS]
    )
    return server, lambda: len(server.connections)


# -- csms_kit: the example's sessions ----------------------------------------------------


def csms_kit_sessions() -> dict[str, type]:
    """The example's ``Csms16``/``Csms2x`` with a MeterValues handler and no frame limit."""
    sys.path.insert(0, str(EXAMPLES))
    from multi_station_server import Csms2x, Csms16
    from ocpp.v16 import call as call16
    from ocpp.v16 import call_result as result16
    from ocpp.v201 import call as call201
    from ocpp.v201 import call_result as result201

    from csms_kit import on
    from csms_kit.limits import Limits

    no_frame_limit = Limits(frames=None)  # the default 20/s would throttle the bench

    class Bench16(Csms16):
        limits = no_frame_limit

        @on("MeterValues")
        def meter_values(self, request: call16.MeterValues) -> result16.MeterValues:
            return result16.MeterValues()

    class Bench2x(Csms2x):
        limits = no_frame_limit

        @on("MeterValues")
        def meter_values(self, request: call201.MeterValues) -> result201.MeterValues:
            return result201.MeterValues()

    return {"1.6": Bench16, "2.0.1": Bench2x}


def csms_kit_instruments(names: str) -> list[Any]:
    """The instruments named (comma-separated): ``metrics``, ``tracing``.

    ``metrics``: :class:`~csms_kit.metrics.PrometheusMetrics` on a registry of its own
    (scrapes are not per message: none is made). ``tracing``:
    :class:`~csms_kit.tracing.OpenTelemetryTracing` on the OpenTelemetry SDK with its
    ``BatchSpanProcessor`` (a thread, whose CPU counts too) and an exporter that drops
    the spans, so every span is recorded and processed but none goes over a network.
    ``tracing_sampled``: the same, sampling 1% of the traces (``ParentBased``
    ``TraceIdRatioBased(0.01)``), as a busy deployment would. ``noop``: an instrument
    observing the points metrics observe per message, doing nothing there: what the
    points themselves cost.
    """
    instruments: list[Any] = []
    for name in filter(None, names.split(",")):
        if name == "noop":
            from csms_kit.instruments import Instrument

            class Noop(Instrument):
                def frame_received(self, *args: Any) -> None:
                    pass

                def frame_sent(self, *args: Any) -> None:
                    pass

                def call_finished(self, *args: Any) -> None:
                    pass

            instruments.append(Noop())
        elif name == "metrics":
            from prometheus_client import CollectorRegistry

            from csms_kit.metrics import PrometheusMetrics

            instruments.append(PrometheusMetrics(CollectorRegistry()))
        elif name in ("tracing", "tracing_sampled"):
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import (
                BatchSpanProcessor,
                SpanExporter,
                SpanExportResult,
            )

            from csms_kit.tracing import OpenTelemetryTracing

            class Dropping(SpanExporter):
                def export(self, spans: Any) -> SpanExportResult:
                    return SpanExportResult.SUCCESS

            sampler = None
            if name == "tracing_sampled":
                from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

                sampler = ParentBased(TraceIdRatioBased(0.01))
            provider = TracerProvider(sampler=sampler)
            provider.add_span_processor(BatchSpanProcessor(Dropping()))
            instruments.append(OpenTelemetryTracing(provider))
        else:
            raise ValueError(f"unknown instrument {name!r}")
    return instruments


def switch_instruments(server: Any, names: str, built: dict[str, Any]) -> None:
    """From now on, every connection of ``server`` (and every new one) reports to ``names``.

    For ``bench/instruments_bench.py``: one server process measured with and without
    an instrument in alternating windows. Each set of instruments is built once
    (``built``) and kept, so that its state carries over from one window to the next.
    """
    from csms_kit.instruments import NO_INSTRUMENTS, Instruments

    if names not in built:
        built[names] = Instruments(csms_kit_instruments(names)) if names else NO_INSTRUMENTS
    instruments = built[names]
    server.admission.instruments = instruments
    for session in server.sessions:
        session._connection._instruments = instruments


async def start_csms_kit(compression: str, instruments: str = "") -> tuple[Any, Callable[[], int]]:
    """``csms_kit.serve`` with the bench sessions; every other option at its default.

    ``instruments``: see :func:`csms_kit_instruments` (default: none).
    """
    from csms_kit import serve

    kwargs: dict[str, Any] = {}
    if compression != "frugal":  # "frugal" is serve()'s default: leave it implicit
        kwargs["compression"] = compression_value(compression)
    if instruments:
        kwargs["instruments"] = csms_kit_instruments(instruments)
    server = serve(csms_kit_sessions(), HOST, 0, **kwargs)
    await server.start()
    return server, lambda: len(server.sessions)


async def start_csms_kit_asgi(compression: str) -> tuple[Any, Callable[[], int]]:
    """``csms_kit.asgi.ocpp_endpoint`` with the bench sessions, as the top-level app of
    uvicorn (in this process; its defaults: 20 s pings, permessage-deflate if offered)."""
    import socket
    import types

    import uvicorn

    from csms_kit.asgi import ocpp_endpoint

    endpoint = ocpp_endpoint(csms_kit_sessions())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    config = uvicorn.Config(
        endpoint,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws_per_message_deflate=compression != "none",
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    # run_server needs .sockets; the task lives as long as the process.
    return types.SimpleNamespace(sockets=[sock], task=task), lambda: len(endpoint.sessions)


async def start_floor(compression: str) -> tuple[Any, Callable[[], int]]:
    """The floor, with the permessage-deflate settings matching csms_kit's ``compression``."""
    server = await websockets_serve(
        floor_handler,
        HOST,
        0,
        subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
        compression=None,
        extensions=floor_extensions(compression),
        max_size=256 * 1024,  # as csms_kit; pings: websockets' defaults, as csms_kit
    )
    return server, lambda: len(server.connections)


def set_recv_buffer(size: int) -> None:
    """Make asyncio read sockets ``size`` bytes at a time instead of 256 KiB.

    asyncio's socket transports call ``recv(256 KiB)`` and shrink the result. Above
    glibc's mmap threshold (128 KiB, raised dynamically) that buffer is a fresh
    ``mmap`` + page fault + ``mremap`` + ``munmap`` per read whenever the heap has no
    256 KiB free at its top, which depends on the process's heap layout. The bench
    measures servers as they come (``size`` 0); ``--recv-buffer 65536`` applies the
    same smaller buffer to all three servers, to show that effect.
    """
    if size:
        from asyncio import selector_events

        selector_events._SelectorSocketTransport.max_size = size


async def run_server(
    kind: str, compression: str, deadline: float, recv_buffer: int = 0, instruments: str = ""
) -> None:
    """Serve on an ephemeral port and answer the parent's commands until ``quit``.

    ``instruments`` (csms_kit only): see :func:`csms_kit_instruments`.
    """
    die_with_parent()
    set_recv_buffer(recv_buffer)
    commands = Commands()
    await commands.start(deadline)
    starters = {
        "floor": start_floor,
        "baseline": start_baseline,
        "csms_kit": start_csms_kit,
        "csms_kit_asgi": start_csms_kit_asgi,
    }
    if instruments and kind != "csms_kit":
        raise ValueError(f"instruments are for csms_kit, not {kind}")
    if instruments:
        server, count = await start_csms_kit(compression, instruments)
    else:
        server, count = await starters[kind](compression)
    port = server.sockets[0].getsockname()[1]
    built: dict[str, Any] = {}  # instruments by names, for switch_instruments
    gc.collect()
    gc_watch = GcWatch()
    reply({"port": port, "pid": os.getpid(), **read_status()})
    while True:
        command = await commands.next()
        if command[0] == "cpu":
            reply({**cpu_seconds(), **gc_watch.take(), "connections": count()})
        elif command[0] == "instruments" and kind == "csms_kit":
            names = command[1] if len(command) > 1 and command[1] != "-" else ""
            switch_instruments(server, names, built)
            reply({"instruments": names})
        elif command[0] == "memory":
            started = time.perf_counter()
            gc.collect()  # also times a full collection with this many connections
            pause = round((time.perf_counter() - started) * 1000, 2)
            reply({**read_status(), "connections": count(), "full_gc_ms": pause})
        elif command[0] == "quit":
            reply({"quit": True})
            os._exit(0)  # the connections die with the process: nothing left to measure
        else:
            reply({"error": f"unknown command {command!r}"})
