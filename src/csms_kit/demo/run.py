"""``csms-kit serve`` and ``csms-kit demo``: the demo CSMS, alone or with simulated stations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from csms_kit.demo.csms import DemoCsms
from csms_kit.exceptions import CsmsKitError
from csms_kit.outbox import Outbox, OutboxStore
from csms_kit.registry import InMemoryRegistry
from csms_kit.server import CsmsServer, serve
from csms_kit.session import StationSession
from csms_kit.simulator.fleet import Fleet
from csms_kit.simulator.station import SimulatedStation
from csms_kit.versions import OcppVersion

__all__ = ["demo", "demo_server", "serve_demo"]

logger = logging.getLogger("csms_kit.demo")


def demo_server(host: str, port: int, **options: Any) -> CsmsServer:
    """The demo CSMS on ``host:port``, logging connects and disconnects."""

    def connected(session: StationSession) -> None:
        logger.info("station %r connected (OCPP %s)", session.station_id, session.version)

    def disconnected(session: StationSession, code: int | None, reason: str) -> None:
        logger.info("station %r disconnected (%s %s)", session.station_id, code, reason)

    return serve(
        DemoCsms,
        host,
        port,
        on_connect=connected,
        on_disconnect=disconnected,
        **options,
    )


async def serve_demo(
    host: str,
    port: int,
    registry_url: str = "memory://",
    node_id: str | None = None,
    lease_ttl: float = 15.0,
    *,
    reuse_port: bool = False,
    instruments: Sequence[Any] = (),
    outbox: OutboxStore | None = None,
    health_path: str | None = None,
) -> None:
    """Run the demo CSMS until cancelled, on the registry at ``registry_url``.

    ``reuse_port`` lets other processes listen on the same port (``--workers``);
    ``instruments`` (metrics) go to :func:`~csms_kit.server.serve`; commands queued
    in the ``outbox`` store are delivered (an unusable store raises
    :class:`~csms_kit.outbox.OutboxStoreError` before the server starts);
    ``health_path`` answers probes.
    """
    from csms_kit.cluster import registry_from_url  # noqa: PLC0415 - a cycle otherwise

    options: dict[str, Any] = {"node_id": node_id}
    if not registry_url.startswith("memory:"):
        options["lease_ttl"] = lease_ttl
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(registry_from_url(registry_url, **options))
        delivering = None
        if outbox is not None:
            delivering = await stack.enter_async_context(Outbox(outbox, registry=registry))
        server = await stack.enter_async_context(
            demo_server(
                host,
                port,
                registry=registry,
                reuse_port=reuse_port,
                instruments=instruments,
                outbox=delivering,
                health_path=health_path,
            )
        )
        print(
            f"csms_kit demo CSMS on ws://{host}:{server.port}/<station id> "
            f"(node {registry.node_id}, registry {registry_url}"
            + ("" if outbox is None else f", outbox {outbox!r}")
            + ")",
            flush=True,
        )
        await server.serve_forever()


def _command_for(station: SimulatedStation) -> tuple[dict[str, Any], str]:
    """A remote stop of the station's transaction if it has one, else a remote start."""
    v16 = station.version is OcppVersion.V16
    for transaction in station.transactions:
        if transaction.id is not None:
            action = "RemoteStopTransaction" if v16 else "RequestStopTransaction"
            return {"transactionId": transaction.id}, action
    if v16:
        return {"idTag": "REMOTE", "connectorId": 1}, "RemoteStartTransaction"
    token = {"idToken": "REMOTE", "type": "Central"}
    return {"idToken": token, "remoteStartId": random.getrandbits(20)}, "RequestStartTransaction"


async def _command_round_trip(registry: InMemoryRegistry, fleet: Fleet) -> float | None:
    """Send one CSMS-to-station command through the registry; its round trip in ms."""
    online = [station for station in fleet.stations if station.online]
    if not online:
        return None
    station = random.choice(online)
    payload, action = _command_for(station)
    started = time.perf_counter()
    await registry.call(station.station_id, payload, action=action, timeout=5)
    return (time.perf_counter() - started) * 1000


async def demo(
    stations: int = 300,
    duration: float = 20.0,
    pace: float = 2.0,
    out: TextIO = sys.stdout,
) -> int:
    """Serve the demo CSMS and run ``stations`` simulated stations against it.

    The stations (:mod:`csms_kit.simulator`, OCPP 1.6, 2.0.1 and 2.1 in turn) charge
    again and again, sending a message every ``pace`` seconds; every second the CSMS
    starts or stops a transaction on one of them. Prints a progress line every second
    and a summary at the end; stops after ``duration`` seconds or when cancelled
    (Ctrl-C). Returns 0 if nothing failed.
    """
    registry = InMemoryRegistry()
    server_errors: list[BaseException] = []
    round_trips: list[float] = []
    command_errors = 0
    started = time.monotonic()
    async with demo_server(
        "127.0.0.1", 0, registry=registry, on_error=lambda s, e: server_errors.append(e)
    ) as server:
        url = f"ws://127.0.0.1:{server.port}"
        print(f"csms_kit demo: CSMS on {url}, {stations} stations of OCPP 1.6/2.0.1/2.1", file=out)
        fleet = Fleet(
            url,
            stations,
            (OcppVersion.V16, OcppVersion.V201, OcppVersion.V21),
            scenario="charging",
            rate=1 / pace,
            id_prefix="station_",
        )
        await fleet.start()
        last_frames, last_time = 0, time.monotonic()
        try:
            while time.monotonic() - started < duration:
                await asyncio.sleep(1)
                try:
                    rtt = await _command_round_trip(registry, fleet)
                except CsmsKitError:
                    command_errors += 1
                    rtt = None
                if rtt is not None:
                    round_trips.append(rtt)
                frames = sum(s.stats.received + s.stats.sent for s in registry.sessions())
                now = time.monotonic()
                rate = max(frames - last_frames, 0) / (now - last_time)
                last_frames, last_time = frames, now
                errors = fleet.stats.error_count + len(server_errors) + command_errors
                command = f"{rtt:.1f} ms" if rtt is not None else "-"
                print(
                    f"t={now - started:4.0f}s  connected {len(registry):4d}/{stations}  "
                    f"{rate:8.0f} msg/s  command round trip {command:>9}  errors {errors}",
                    file=out,
                    flush=True,
                )
        finally:
            await fleet.stop()
    errors = fleet.stats.error_count + len(server_errors) + command_errors
    median = sorted(round_trips)[len(round_trips) // 2] if round_trips else float("nan")
    last_error = (fleet.stats.first_errors or [repr(e) for e in server_errors] or [""])[-1]
    print(
        f"done: {stations} stations, {len(round_trips)} commands (median round trip "
        f"{median:.1f} ms), {errors} errors" + (f"; first: {last_error}" if errors else ""),
        file=out,
    )
    return 0 if errors == 0 else 1
