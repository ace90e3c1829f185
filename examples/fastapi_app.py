"""A REST API and the OCPP endpoint on one port, with FastAPI and csms_kit.

Stations connect to ``ws://HOST:PORT/ocpp/<id>`` (OCPP 1.6 or 2.0.1); the API is
beside them:

* ``GET  /stations``                the connected stations (the registry's records)
* ``POST /stations/{id}/reset``     ``{"hard": false}`` → the station's answer
* ``POST /stations/{id}/start``     ``{"id_tag": "...", "connector_id": 1}``

Errors of a call become HTTP statuses: the station is not connected → 404, it
answered with a CALLERROR → 502 (its error code in the body), it did not answer in
time → 504, it went away during the call → 503, its answer broke OCPP → 502.

Run it (needs ``pip install 'csms-kit[asgi]'``)::

    python examples/fastapi_app.py --port 8000
    uvicorn examples.fastapi_app:app --port 8000   # the same, from uvicorn's CLI

Sync code (a thread, a sync FastAPI/Flask/Django view) calls stations with
``endpoint.registry.call_from_thread(...)``: see ``POST /stations/{id}/reset-sync``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from pydantic import BaseModel

from csms_kit import (
    CallError,
    CallTimeout,
    ConnectionEnded,
    InvalidResponse,
    OcppVersion,
    StationNotConnected,
    StationSession,
    current_time,
    on,
)
from csms_kit.asgi import ocpp_endpoint

log = logging.getLogger("example")
TRANSACTION_IDS = itertools.count(1)


class Csms16(StationSession):
    """OCPP 1.6 stations: accepted at boot."""

    @on("BootNotification")
    def boot(self, request: call16.BootNotification) -> result16.BootNotification:
        return result16.BootNotification(
            current_time=current_time(), interval=300, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self, request: call16.Heartbeat) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=current_time())

    @on("StatusNotification")
    @on("MeterValues")
    def noted(self, request: Any) -> dict[str, Any]:
        return {}

    @on("Authorize")
    def authorize(self, request: call16.Authorize) -> dict[str, Any]:
        return {"idTagInfo": {"status": "Accepted"}}

    @on("StartTransaction")
    def start_transaction(self, request: call16.StartTransaction) -> dict[str, Any]:
        return {"transactionId": next(TRANSACTION_IDS), "idTagInfo": {"status": "Accepted"}}

    @on("StopTransaction")
    def stop_transaction(self, request: call16.StopTransaction) -> dict[str, Any]:
        return {}


class Csms201(StationSession):
    """OCPP 2.0.1 stations: accepted at boot."""

    @on("BootNotification")
    def boot(self, request: call201.BootNotification) -> result201.BootNotification:
        return result201.BootNotification(
            current_time=current_time(), interval=300, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self, request: call201.Heartbeat) -> result201.Heartbeat:
        return result201.Heartbeat(current_time=current_time())

    @on("StatusNotification")
    @on("MeterValues")
    @on("TransactionEvent")
    def noted(self, request: Any) -> dict[str, Any]:
        return {}

    @on("Authorize")
    def authorize(self, request: call201.Authorize) -> dict[str, Any]:
        return {"idTokenInfo": {"status": "Accepted"}}


class ResetBody(BaseModel):
    hard: bool = False


class StartBody(BaseModel):
    id_tag: str
    connector_id: int | None = None


def _error(status: int, kind: str, exc: Exception, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": str(exc), **extra}, status_code=status)


def create_app(*, call_timeout: float = 30.0) -> FastAPI:
    """The application: the OCPP endpoint mounted at /ocpp and the REST API beside it."""
    endpoint = ocpp_endpoint({"1.6": Csms16, "2.0.1": Csms201})
    registry = endpoint.registry
    remote_start_ids = itertools.count(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with endpoint:  # admits stations while the app runs; closes them after
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/ocpp", endpoint)
    app.state.endpoint = endpoint

    # -- call errors → HTTP statuses ------------------------------------------------
    @app.exception_handler(StationNotConnected)
    async def not_connected(request: Request, exc: StationNotConnected) -> JSONResponse:
        return _error(404, "station not connected", exc)

    @app.exception_handler(CallError)
    async def call_error(request: Request, exc: CallError) -> JSONResponse:
        return _error(502, "station refused", exc, code=str(exc.code))

    @app.exception_handler(CallTimeout)
    async def call_timeout_(request: Request, exc: CallTimeout) -> JSONResponse:
        return _error(504, "station did not answer", exc)

    @app.exception_handler(ConnectionEnded)
    async def connection_ended(request: Request, exc: ConnectionEnded) -> JSONResponse:
        return _error(503, "station went away", exc)

    @app.exception_handler(InvalidResponse)
    async def invalid_response(request: Request, exc: InvalidResponse) -> JSONResponse:
        return _error(502, "invalid answer from station", exc)

    # -- routes ---------------------------------------------------------------------
    @app.get("/stations")
    async def stations() -> list[dict[str, Any]]:
        return [record.to_dict() for record in await registry.stations()]

    async def version_of(station_id: str) -> OcppVersion:
        record = await registry.record(station_id)
        if record is None:
            raise StationNotConnected(station_id)
        return record.version

    @app.post("/stations/{station_id}/reset")
    async def reset(station_id: str, body: ResetBody | None = None) -> dict[str, Any]:
        hard = body is not None and body.hard
        if await version_of(station_id) is OcppVersion.V16:
            request: Any = call16.Reset(type="Hard" if hard else "Soft")
        else:
            request = call201.Reset(type="Immediate" if hard else "OnIdle")
        answer = await registry.call(station_id, request, timeout=call_timeout)
        return dataclasses.asdict(answer)

    @app.post("/stations/{station_id}/reset-sync")
    def reset_sync(station_id: str) -> dict[str, Any]:
        # A sync view runs in a worker thread: call_from_thread waits there, never
        # blocking the event loop, and raises the same typed errors.
        answer = registry.call_from_thread(
            station_id, call16.Reset(type="Soft"), timeout=call_timeout
        )
        return dataclasses.asdict(answer)

    @app.post("/stations/{station_id}/start")
    async def start(station_id: str, body: StartBody) -> dict[str, Any]:
        if await version_of(station_id) is OcppVersion.V16:
            request: Any = call16.RemoteStartTransaction(
                id_tag=body.id_tag, connector_id=body.connector_id
            )
        else:
            request = call201.RequestStartTransaction(
                id_token={"idToken": body.id_tag, "type": "Central"},
                remote_start_id=next(remote_start_ids),
                evse_id=body.connector_id,
            )
        answer = await registry.call(station_id, request, timeout=call_timeout)
        return dataclasses.asdict(answer)

    return app


app = create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
