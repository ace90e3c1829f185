"""examples/fastapi_app.py under uvicorn: the REST API and real stations on one port."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
from types import ModuleType
from typing import Any

import httpx
import pytest

from csms_kit.simulator import simulate_station
from csms_kit.testing import connect_scripted
from tests.asgi.harness import HOST, AsgiServer

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "fastapi_app.py"
TIMEOUT = 5.0


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE_MODULE = load_example()


async def serve_example(**options: Any) -> tuple[AsgiServer, httpx.AsyncClient]:
    app = EXAMPLE_MODULE.create_app(**options)
    server = AsgiServer("uvicorn", app.state.endpoint, app)
    await server.start()
    return server, httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}", timeout=TIMEOUT)


async def test_stations_reset_and_start_with_simulated_stations() -> None:
    """GET /stations lists a 1.6 and a 2.0.1 station; reset and start reach each."""
    server, client = await serve_example()
    url = f"ws://{HOST}:{server.port}/ocpp"
    try:
        async with (
            simulate_station(url, "SIM-16", "1.6") as s16,
            simulate_station(url, "SIM-201", "2.0.1") as s201,
        ):
            listed = (await client.get("/stations")).json()
            assert sorted((r["station_id"], r["version"]) for r in listed) == [
                ("SIM-16", "1.6"),
                ("SIM-201", "2.0.1"),
            ]
            for station_id in ("SIM-16", "SIM-201"):
                start = await client.post(
                    f"/stations/{station_id}/start", json={"id_tag": "TAG-1", "connector_id": 1}
                )
                assert start.status_code == 200, start.text
                assert start.json()["status"] == "Accepted"
            # A reset makes the simulator reboot: one reset per station, last.
            reset = await client.post("/stations/SIM-201/reset", json={"hard": False})
            assert reset.status_code == 200
            assert reset.json()["status"] in ("Accepted", "Scheduled")  # OnIdle, charging
            sync = await client.post("/stations/SIM-16/reset-sync")  # call_from_thread
            assert (sync.status_code, sync.json()["status"]) == (200, "Accepted")
            assert s16.station_id == "SIM-16" and s201.station_id == "SIM-201"
    finally:
        await client.aclose()
        await server.close()


@pytest.mark.parametrize("path", ["/reset", "/reset-sync"])
async def test_call_errors_map_to_http_statuses(path: str) -> None:
    """Not connected → 404; a CALLERROR → 502 with its code; no answer → 504."""
    server, client = await serve_example(call_timeout=0.3)
    try:
        absent = await client.post(f"/stations/nobody{path}")
        assert (absent.status_code, absent.json()["error"]) == (404, "station not connected")
        async with connect_scripted(
            f"ws://{HOST}:{server.port}/ocpp", "CP-1", "ocpp1.6", timeout=TIMEOUT
        ) as peer:
            await peer.call(
                "b", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            refused = asyncio.create_task(client.post(f"/stations/CP-1{path}"))
            frame = await peer.recv()
            assert frame[2] == "Reset"
            await peer.send([4, frame[1], "NotSupported", "no resets", {}])
            answer = await refused
            assert answer.status_code == 502
            assert answer.json()["code"] == "NotSupported"
            silent = await client.post(f"/stations/CP-1{path}")  # the station never answers
            assert silent.status_code == 504
            assert (await peer.recv())[2] == "Reset"
    finally:
        await client.aclose()
        await server.close()
