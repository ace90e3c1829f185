"""The load generator of ``bench/server_bench.py``: plain websockets clients, hand-written frames.

One process per server under test. Every station is a ``websockets`` client
connection to ``ws://127.0.0.1:<port>/<station id>``; even-numbered stations speak
OCPP 1.6, odd-numbered ones 2.0.1. Frames are written by hand (``json.dumps`` of
``[2, id, action, payload]``) so that every server receives exactly the same bytes,
and each round trip is timed from just before ``send`` to just after ``recv``
(``time.perf_counter``). An answer that is not the CALLRESULT of the CALL just sent
counts as an error; the parent fails the run on any error. The generator's garbage
collector is frozen after connecting and off during each window, so that its own
pauses are not counted as any server's latency.

Commands, one line each on stdin, answered with one JSON line on stdout:

* ``connect COUNT PREFIX CONCURRENCY HEARTBEAT``: open COUNT more stations, at most
  CONCURRENCY handshakes (and BootNotifications) in flight; each one does the
  WebSocket handshake, a BootNotification that must be answered Accepted and, if
  HEARTBEAT is 1, one Heartbeat. Reports how long it all took and each station's
  handshake + boot time.
* ``run MODE PERIOD``: every station starts sending, until ``stop``:
  ``heartbeat`` back-to-back Heartbeats (PERIOD 0: the next as soon as the previous
  is answered); ``mixed`` its transaction cycle (see :class:`Station`), one message
  every PERIOD seconds; ``idle`` one Heartbeat every PERIOD seconds. Paced stations
  start at a random phase of the period.
* ``stop``: stop sending (round trips in progress complete) and report the round
  trips of the window and the latency percentiles since the last ``reset``.
* ``reset``, ``close`` (close every station's connection), ``quit``.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import math
import os
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

from _bench_servers import HOST, Commands, GcWatch, cpu_seconds, die_with_parent, reply
from connection_memory import boot_payload, client_options, meter_values_payload
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

VERSIONS = ("ocpp1.6", "ocpp2.0.1")
#: A loopback source address of its own (``CSMS_BENCH_SOURCE``, e.g. 127.0.0.2): past
#: ~28,000 connections to one port, one source address runs out of ephemeral ports.
SOURCE: dict[str, Any] = (
    {"local_addr": (os.environ["CSMS_BENCH_SOURCE"], 0)}
    if os.environ.get("CSMS_BENCH_SOURCE")
    else {}
)
#: Messages in one transaction cycle of the ``mixed`` mode (both versions).
CYCLE = 10


class BenchFailure(Exception):
    """A station got an answer it should not have."""


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (nearest rank), and the count."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * n) - 1)] * 1000, 3)

    return {"n": n, "p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": rank(1.0)}


class Clock:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` of now, recomputed at most every 10 ms."""

    def __init__(self) -> None:
        self._at = -1.0
        self._text = ""

    def __call__(self) -> str:
        now = time.monotonic()
        if now - self._at > 0.01:
            self._at = now
            stamp = datetime.datetime.now(datetime.timezone.utc)
            self._text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        return self._text


timestamp = Clock()


def sampled_201(energy: int, context: str) -> list[dict[str, Any]]:
    """Eight 2.0.1 sampled values of a 3-phase AC charge (energy, power, I and U per phase)."""
    samples: list[dict[str, Any]] = [
        {
            "value": energy,
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh"},
        },
        {
            "value": 7200 + energy % 97,
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "W"},
        },
    ]
    for i, phase in enumerate(("L1", "L2", "L3")):
        samples.append(
            {
                "value": 10 + (energy + i) % 7,
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unitOfMeasure": {"unit": "A"},
            }
        )
    for i, phase in enumerate(("L1-N", "L2-N", "L3-N")):
        samples.append(
            {
                "value": 228 + (energy + i) % 5,
                "context": context,
                "measurand": "Voltage",
                "phase": phase,
                "location": "Outlet",
                "unitOfMeasure": {"unit": "V"},
            }
        )
    return samples


class Station:
    """One simulated station: its connection and where it is in its transaction cycle.

    The ``mixed`` cycle, ten messages, is the same length for both versions:

    * 1.6: StatusNotification Preparing, StartTransaction, StatusNotification
      Charging, 4 MeterValues (8 sampled values each), StopTransaction,
      StatusNotification Available, Heartbeat.
    * 2.0.1: StatusNotification Occupied, TransactionEvent Started (with the energy
      register), TransactionEvent Updated (charging), 2 MeterValues (8 sampled values),
      2 TransactionEvent Updated MeterValuePeriodic (8 sampled values), TransactionEvent
      Ended, StatusNotification Available, Heartbeat.
    """

    __slots__ = ("energy", "idle", "index", "sequence", "step", "transaction", "version", "ws")

    def __init__(self, index: int, ws: ClientConnection) -> None:
        self.index = index
        self.version = VERSIONS[index % 2]
        self.ws = ws
        self.step = random.randrange(CYCLE)  # stations are spread over the cycle
        self.sequence = 0
        self.energy = 1_000_000 + index * 977
        #: The current transaction: the 1.6 transactionId, the 2.0.1 transaction UUID.
        self.transaction: Any = index if self.version == "ocpp1.6" else str(uuid.uuid4())
        #: Waiting for its next turn (not in a round trip): may be cancelled at once.
        self.idle = False

    async def call(self, action: str, payload: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """One round trip; the CALLRESULT's payload and the time it took (seconds)."""
        message_id = str(uuid.uuid4())
        text = json.dumps([2, message_id, action, payload], separators=(",", ":"))
        started = time.perf_counter()
        await self.ws.send(text)
        answer = await self.ws.recv()
        elapsed = time.perf_counter() - started
        frame = json.loads(answer)
        if not (isinstance(frame, list) and frame[:2] == [3, message_id]):
            raise BenchFailure(
                f"{action}: expected the CALLRESULT of {message_id}, got {answer!r}"
            )
        result: dict[str, Any] = frame[2]
        return result, elapsed

    def next_message(self) -> tuple[str, dict[str, Any]]:
        """The next message of the ``mixed`` cycle."""
        step = self.step
        self.step = (step + 1) % CYCLE
        self.energy += 131
        if self.version == "ocpp1.6":
            return self._next_16(step)
        return self._next_201(step)

    def _next_16(self, step: int) -> tuple[str, dict[str, Any]]:
        tag = f"TAG{self.index:06d}"
        if step in (0, 2, 8):
            status = {0: "Preparing", 2: "Charging", 8: "Available"}[step]
            return "StatusNotification", {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": status,
                "timestamp": timestamp(),
            }
        if step == 1:
            return "StartTransaction", {
                "connectorId": 1,
                "idTag": tag,
                "meterStart": self.energy,
                "timestamp": timestamp(),
            }
        if step < 7:
            self.sequence += 1
            payload = meter_values_payload(self.version, self.index, self.sequence)
            payload["transactionId"] = self.transaction
            payload["meterValue"][0]["timestamp"] = timestamp()
            return "MeterValues", payload
        if step == 7:
            return "StopTransaction", {
                "idTag": tag,
                "meterStop": self.energy,
                "timestamp": timestamp(),
                "transactionId": self.transaction,
                "reason": "EVDisconnected",
            }
        return "Heartbeat", {}

    def _next_201(self, step: int) -> tuple[str, dict[str, Any]]:
        if step in (0, 8):
            return "StatusNotification", {
                "timestamp": timestamp(),
                "connectorStatus": "Occupied" if step == 0 else "Available",
                "evseId": 1,
                "connectorId": 1,
            }
        if step in (3, 4):
            self.sequence += 1
            payload = meter_values_payload(self.version, self.index, self.sequence)
            payload["meterValue"][0]["timestamp"] = timestamp()
            return "MeterValues", payload
        if step == 9:
            return "Heartbeat", {}
        if step == 1:
            self.transaction = str(uuid.uuid4())
            self.sequence = 0
        event: dict[str, Any] = {
            "eventType": "Updated",
            "timestamp": timestamp(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": self.sequence,
            "transactionInfo": {"transactionId": self.transaction, "chargingState": "Charging"},
        }
        self.sequence += 1
        if step == 1:
            event.update(eventType="Started", triggerReason="CablePluggedIn")
            event["transactionInfo"]["chargingState"] = "EVConnected"
            event["evse"] = {"id": 1, "connectorId": 1}
            event["idToken"] = {"idToken": f"TAG{self.index:06d}", "type": "ISO14443"}
            begin = sampled_201(self.energy, "Transaction.Begin")[:1]
            event["meterValue"] = [{"timestamp": timestamp(), "sampledValue": begin}]
        elif step == 2:
            event["triggerReason"] = "ChargingStateChanged"
        elif step == 7:
            event.update(eventType="Ended", triggerReason="EVDeparted")
            event["transactionInfo"].update(chargingState="Idle", stoppedReason="EVDisconnected")
            end = sampled_201(self.energy, "Transaction.End")[:1]
            event["meterValue"] = [{"timestamp": timestamp(), "sampledValue": end}]
        else:  # 5, 6: periodic meter values inside the transaction
            samples = sampled_201(self.energy, "Sample.Periodic")
            event["meterValue"] = [{"timestamp": timestamp(), "sampledValue": samples}]
        return "TransactionEvent", event

    def remember(self, action: str, result: dict[str, Any]) -> None:
        """Keep what the next messages need from an answer (the 1.6 transaction id)."""
        if action == "StartTransaction" and "transactionId" in result:
            self.transaction = result["transactionId"]


async def open_station(
    port: int, name: str, index: int, compression: str, heartbeat: bool
) -> tuple[Station, float, str]:
    """Handshake + Accepted BootNotification (+ a Heartbeat); the station, its time, extensions."""
    version = VERSIONS[index % 2]
    started = time.perf_counter()
    ws = await connect(
        f"ws://{HOST}:{port}/{name}",
        subprotocols=[Subprotocol(version)],
        ping_interval=None,  # the servers ping (websockets' default, every 20 s); we answer
        open_timeout=120,
        close_timeout=5,
        proxy=None,
        **client_options(compression),
        **SOURCE,
    )
    try:
        if ws.subprotocol != version:
            raise BenchFailure(f"{name}: got subprotocol {ws.subprotocol!r}, not {version}")
        station = Station(index, ws)
        boot, _ = await station.call("BootNotification", boot_payload(version, index))
        if boot.get("status") != "Accepted":
            raise BenchFailure(f"{name}: BootNotification answered {boot!r}")
        elapsed = time.perf_counter() - started
        if heartbeat:
            await station.call("Heartbeat", {})
    except BaseException:
        await ws.close()
        raise
    assert ws.response is not None
    return station, elapsed, ws.response.headers.get("Sec-WebSocket-Extensions", "")


class Load:
    """The stations of this process and the traffic they send."""

    def __init__(self, port: int, compression: str) -> None:
        self.port = port
        self.compression = compression
        self.stations: list[Station] = []
        self.latencies: list[float] = []
        self.round_trips = 0
        self.errors: list[str] = []
        self.running = False
        self.tasks: list[asyncio.Task[None]] = []
        self.mode = ""
        self.window_start = 0.0
        self.cpu_start = 0.0
        self.gc_watch = GcWatch()

    async def connect(self, count: int, prefix: str, concurrency: int, heartbeat: bool) -> dict:
        """Open ``count`` more stations; how long it took and what was negotiated."""
        gate = asyncio.Semaphore(concurrency)
        first = len(self.stations)

        async def one(index: int) -> tuple[Station, float, str]:
            async with gate:
                name = f"{prefix}-{index:05d}"
                return await open_station(self.port, name, index, self.compression, heartbeat)

        cpu0 = cpu_seconds()["cpu"]
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(one(i) for i in range(first, first + count)), return_exceptions=True
        )
        seconds = time.perf_counter() - started
        opened = [o for o in outcomes if not isinstance(o, BaseException)]
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        self.stations.extend(station for station, _, _ in opened)
        # Keep this process's own full collections out of the latency figures: its
        # objects (thousands of connections) are never scanned again.
        gc.collect()
        gc.freeze()
        return {
            "connected": len(opened),
            "failed": len(failed),
            "failures": sorted({f"{type(e).__name__}: {e}" for e in failed})[:5],
            "total": len(self.stations),
            "seconds": round(seconds, 4),
            "connect": percentiles([elapsed for _, elapsed, _ in opened]),
            "extensions": sorted({extensions for _, _, extensions in opened}),
            "load_cpu": round(cpu_seconds()["cpu"] - cpu0, 4),
        }

    def run(self, mode: str, period: float) -> dict:
        """Start every station sending (see the module docstring)."""
        if self.running:
            raise BenchFailure("already running")
        self.running = True
        self.mode = mode
        self.round_trips = 0
        self.window_start = time.perf_counter()
        self.cpu_start = cpu_seconds()["cpu"]
        # The generator's own collections would count as server latency, and hit every
        # server alike: no collector during a window (it lasts seconds; memory is ample).
        gc.collect()
        gc.disable()
        self.gc_watch.take()
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.tasks = [
            asyncio.create_task(self._send(station, mode, period, now + random.uniform(0, period)))
            for station in self.stations
        ]
        return {"running": len(self.tasks)}

    async def _send(self, station: Station, mode: str, period: float, next_at: float) -> None:
        loop = asyncio.get_running_loop()
        latencies = self.latencies
        try:
            while self.running:
                if period:
                    delay = next_at - loop.time()
                    if delay > 0:
                        station.idle = True
                        try:
                            await asyncio.sleep(delay)
                        finally:
                            station.idle = False
                    # Never faster than one message per round trip, never a burst of debt.
                    next_at = max(next_at + period, loop.time())
                if mode == "mixed":
                    action, payload = station.next_message()
                else:
                    action, payload = "Heartbeat", {}
                result, elapsed = await station.call(action, payload)
                latencies.append(elapsed)
                self.round_trips += 1
                station.remember(action, result)
        except asyncio.CancelledError:
            return  # stopped while waiting for its turn (see stop())
        except Exception as exc:
            self.errors.append(f"station {station.index}: {type(exc).__name__}: {exc}"[:500])

    async def stop(self, timeout: float) -> dict:
        """Stop the traffic; round trips in progress complete first."""
        self.running = False
        for station, task in zip(self.stations, self.tasks, strict=True):
            if station.idle:
                task.cancel()
        _, pending = await asyncio.wait(self.tasks, timeout=timeout) if self.tasks else ((), ())
        seconds = time.perf_counter() - self.window_start
        if pending:
            self.errors.append(f"{len(pending)} stations got no answer within {timeout:g} s")
            for task in pending:
                task.cancel()
        self.tasks = []
        gc.enable()
        return {
            "mode": self.mode,
            "round_trips": self.round_trips,
            "seconds": round(seconds, 4),
            "latency": percentiles(self.latencies),
            "load_cpu": round(cpu_seconds()["cpu"] - self.cpu_start, 4),
            "load_gc": self.gc_watch.take(),
            "errors": self.errors[:5],
            "error_count": len(self.errors),
        }

    async def close(self, concurrency: int = 100) -> dict:
        """Close every station's connection (closing handshake), a few at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(station: Station) -> None:
            async with gate:
                await station.ws.close()

        closed = len(self.stations)
        await asyncio.gather(*(one(s) for s in self.stations), return_exceptions=True)
        self.stations = []
        gc.unfreeze()  # what connect() froze may go now
        return {"closed": closed}


async def run_load(port: int, compression: str, deadline: float) -> None:
    """Answer the parent's commands until ``quit`` (or until the parent goes away)."""
    die_with_parent()
    commands = Commands()
    await commands.start(deadline)
    load = Load(port, compression)
    reply({"pid": os.getpid()})
    while True:
        command = await commands.next()
        try:
            name, args = command[0], command[1:]
            if name == "connect":
                count, prefix, concurrency, heartbeat = args
                reply(await load.connect(int(count), prefix, int(concurrency), heartbeat == "1"))
            elif name == "run":
                reply(load.run(args[0], float(args[1])))
            elif name == "stop":
                reply(await load.stop(float(args[0]) if args else 60.0))
            elif name == "reset":
                load.latencies = []
                load.errors = []
                reply({"reset": True})
            elif name == "close":
                reply(await load.close())
            elif name == "quit":
                reply({"quit": True})
                os._exit(0)
            else:
                reply({"error": f"unknown command {command!r}"})
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})
