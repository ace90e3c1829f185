"""A minimal multi-station CSMS with csms_kit.

Stations ``station_001``, ``station_002``, ... connect to ``ws://HOST:PORT/<id>``,
speaking OCPP 1.6, 2.0.1 or 2.1; each gets its own session. The registry knows who is
connected, and a job outside any handler starts a charge on every station that has
booted, through the registry.

Run it, then point stations (or ``csms-kit demo``-style clients) at it::

    python examples/multi_station_server.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201

from csms_kit import CallFailed, InMemoryRegistry, StationSession, current_time, on, serve

log = logging.getLogger("example")


class Csms16(StationSession):
    """Handlers for OCPP 1.6 stations."""

    @on("BootNotification")
    def boot(self, request: call16.BootNotification) -> result16.BootNotification:
        log.info("%s booted, serial %s", self.station_id, request.charge_point_serial_number)
        return result16.BootNotification(
            current_time=current_time(), interval=300, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=current_time())

    @on("StatusNotification")
    def status(self, request: call16.StatusNotification) -> result16.StatusNotification:
        log.info("%s connector %s is %s", self.station_id, request.connector_id, request.status)
        return result16.StatusNotification()

    @on("Authorize")
    def authorize(self, request: call16.Authorize) -> result16.Authorize:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def start(self, request: call16.StartTransaction) -> result16.StartTransaction:
        transaction_id = secrets.randbelow(2**31)
        log.info("%s started transaction %s", self.station_id, transaction_id)
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
        )

    @on("MeterValues")
    def meter_values(self, request: call16.MeterValues) -> result16.MeterValues:
        return result16.MeterValues()

    @on("StopTransaction")
    def stop(self, request: call16.StopTransaction) -> result16.StopTransaction:
        log.info("%s stopped transaction %s", self.station_id, request.transaction_id)
        return result16.StopTransaction()


class Csms2x(StationSession):
    """Handlers for OCPP 2.0.1 and 2.1 stations (the messages used here are the same)."""

    @on("BootNotification")
    def boot(self, request: call201.BootNotification) -> result201.BootNotification:
        serial = request.charging_station.serial_number
        log.info("%s booted, serial %s", self.station_id, serial)
        return result201.BootNotification(
            current_time=current_time(), interval=300, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self, request: call201.Heartbeat) -> result201.Heartbeat:
        return result201.Heartbeat(current_time=current_time())

    @on("StatusNotification")
    def status(self, request: call201.StatusNotification) -> result201.StatusNotification:
        log.info("%s EVSE %s is %s", self.station_id, request.evse_id, request.connector_status)
        return result201.StatusNotification()

    @on("Authorize")
    def authorize(self, request: call201.Authorize) -> result201.Authorize:
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    def transaction(self, request: call201.TransactionEvent) -> result201.TransactionEvent:
        log.info(
            "%s transaction %s: %s",
            self.station_id,
            request.transaction_info.transaction_id,
            request.event_type,
        )
        return result201.TransactionEvent()


def remote_start(session: StationSession) -> Any:
    """The command that starts a charge on ``session``'s station, for its version."""
    if session.version == "1.6":
        return call16.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1)
    token = types201.IdTokenType(id_token="REMOTE-1", type="Central")
    return call201.RequestStartTransaction(id_token=token, remote_start_id=1)


async def start_charges(registry: InMemoryRegistry, every: float) -> None:
    """A job outside any handler: start a charge on each booted station, once."""
    started: set[str] = set()
    while True:
        await asyncio.sleep(every)
        for session in registry.sessions():
            if session.booted and session.station_id not in started:
                started.add(session.station_id)
                try:
                    answer = await registry.call(session.station_id, remote_start(session))
                except CallFailed as exc:  # disconnected, timed out, answered an error...
                    log.warning("remote start on %s failed: %s", session.station_id, exc)
                else:
                    log.info("remote start on %s: %s", session.station_id, answer.status)


async def main(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    """Serve until cancelled; ``ready`` (for tests) receives the port once listening."""
    registry = InMemoryRegistry()
    sessions = {"1.6": Csms16, "2.0.1": Csms2x, "2.1": Csms2x}
    async with serve(sessions, host, port, registry=registry) as server:
        log.info("listening on ws://%s:%d/<station id>", host, server.port)
        if ready is not None:
            ready.set_result(server.port)
        job = asyncio.create_task(start_charges(registry, every=1.0))
        try:
            await server.serve_forever()
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.host, arguments.port))
