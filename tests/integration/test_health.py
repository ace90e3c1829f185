"""serve(health_path=...): probes get 200 over real HTTP; stations are unaffected."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_kit import UsageError, serve
from csms_kit.demo.csms import DemoCsms
from tests.cluster.processes import HOST, free_port, start_listening, stop


async def probe(port: int, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", headers=headers)


async def test_a_probe_gets_200_and_the_count_of_stations_held_here(
    csms_server_factory: Any,
) -> None:
    live = await csms_server_factory(DemoCsms, health_path="/healthz")
    answer = await probe(live.port, "/healthz")
    assert (answer.status_code, answer.text) == (200, "ok: 0 stations here\n")
    await live.simulate_station("CP-1", "1.6")
    await live.simulate_station("CP-2", "2.0.1")
    answer = await probe(live.port, "/healthz?from=kubelet")
    assert (answer.status_code, answer.text) == (200, "ok: 2 stations here\n")


async def test_other_paths_and_servers_without_it_answer_no_probe(
    csms_server_factory: Any,
) -> None:
    with_it = await csms_server_factory(DemoCsms, health_path="/healthz")
    without = await csms_server_factory(DemoCsms)
    assert (await probe(with_it.port, "/ready")).status_code != 200
    assert (await probe(without.port, "/healthz")).status_code != 200


async def test_a_station_named_like_the_probe_still_connects(csms_server_factory: Any) -> None:
    live = await csms_server_factory(DemoCsms, health_path="/healthz")
    station = await live.simulate_station("healthz", "2.1")
    assert station.online
    assert await live.registry.is_connected("healthz")


def test_a_health_path_must_be_a_path() -> None:
    with pytest.raises(UsageError, match="start with '/'"):
        serve(DemoCsms, "127.0.0.1", 0, health_path="healthz")


async def test_csms_kit_serve_answers_probes_with_health_path(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "csms_kit.cli", "serve", "--host", HOST]
    command += ["--port", str(port), "--health-path", "/healthz"]
    process = start_listening(command, port, tmp_path / "serve.log")
    try:
        answer = await probe(port, "/healthz")
        assert (answer.status_code, answer.text) == (200, "ok: 0 stations here\n")
    finally:
        stop(process)
