"""examples/cluster run for real: two node.py processes and api.py on Redis; 1.6 and 2.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from csms_kit.testing import ScriptedStation, connect_scripted
from tests.cluster.processes import stop

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"
#: Seconds a process gets to print that it listens, and to stop when told.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
#: The API's --call-timeout: how long a station has to answer a Reset.
CALL_TIMEOUT = 2.0
BOOT: dict[str, dict[str, Any]] = {
    "1.6": {"chargePointVendor": "V", "chargePointModel": "M"},
    "2.0.1": {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
}

Answer = Callable[[str], list[Any] | None]


def accept(message_id: str) -> list[Any] | None:
    return [3, message_id, {"status": "Accepted"}]


@dataclass
class Cluster:
    redis: str
    nodes: dict[str, str]  # node id -> its ws:// URL
    api: str  # the API's http:// URL
    workdir: Path


@contextlib.contextmanager
def example(
    script: str, arguments: list[str], log_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``examples/cluster/<script>`` on port 0; its URL, from its "listening" line."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE / script), *arguments, "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None:
            for line in log_path.read_text(errors="replace").splitlines():
                if " listening on " in line:
                    url = line.rsplit(" ", 1)[1]
            assert process.poll() is None, f"{script} exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"{script} did not start:\n{log_path.read_text()}"
            time.sleep(0.05)
        yield process, url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def cluster(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Nodes n1 and n2 and the API, on database 9 of the session's Redis."""
    redis = redis_url.rsplit("/", 1)[0] + "/9"
    workdir = tmp_path_factory.mktemp("example")
    with contextlib.ExitStack() as stack:
        nodes = {}
        for node_id in ("n1", "n2"):
            _, url = stack.enter_context(
                example(
                    "node.py",
                    ["--redis", redis, "--node-id", node_id],
                    workdir / f"{node_id}.log",
                )
            )
            nodes[node_id] = url
        arguments = ["--redis", redis, "--call-timeout", str(CALL_TIMEOUT)]
        _, api = stack.enter_context(example("api.py", arguments, workdir / "api.log"))
        yield Cluster(redis, nodes, api, workdir)


def _request(method: str, url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        finally:
            exc.close()


async def http(method: str, url: str) -> tuple[int, Any]:
    """``method url`` with urllib, in a thread: the status and the JSON body."""
    return await asyncio.to_thread(_request, method, url)


async def answer_calls(station: ScriptedStation, seen: list[list[Any]], answer: Answer) -> None:
    """Record every CALL the station gets; send ``answer(message_id)`` unless it is None."""
    while True:
        frame = await station.recv(timeout=60)
        assert frame[0] == 2, frame
        seen.append(frame)
        reply = answer(frame[1])
        if reply is not None:
            await station.send(reply)


@contextlib.asynccontextmanager
async def booted(
    url: str, station_id: str, version: str, answer: Answer = accept
) -> AsyncIterator[list[list[Any]]]:
    """A station booted (Accepted) at ``url``, answering CALLs; the CALLs it got."""
    async with connect_scripted(url, station_id, version) as station:
        reply = await station.call("boot", "BootNotification", BOOT[version])
        assert reply[0] == 3 and reply[2]["status"] == "Accepted", reply
        seen: list[list[Any]] = []
        task = asyncio.create_task(answer_calls(station, seen, answer))
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_stations_lists_each_station_with_its_node(cluster: Cluster) -> None:
    """GET /stations lists the stations of both nodes, with their node and version."""
    async with (
        booted(cluster.nodes["n1"], "LIST-16", "1.6"),
        booted(cluster.nodes["n2"], "LIST-201", "2.0.1"),
    ):
        status, body = await http("GET", f"{cluster.api}/stations")
    assert status == 200, body
    listed = {record["station_id"]: record for record in body}
    assert listed.keys() >= {"LIST-16", "LIST-201"}
    assert listed["LIST-16"]["node"] == "n1" and listed["LIST-16"]["version"] == "1.6"
    assert listed["LIST-201"]["node"] == "n2" and listed["LIST-201"]["version"] == "2.0.1"
    assert listed["LIST-16"]["registration_status"] == "Accepted"


async def test_reset_reaches_the_station_on_either_node(cluster: Cluster) -> None:
    """POST /stations/{id}/reset sends each station the Reset of its version: 200 Accepted."""
    async with (
        booted(cluster.nodes["n1"], "RESET-16", "1.6") as seen16,
        booted(cluster.nodes["n2"], "RESET-201", "2.0.1") as seen201,
    ):
        for station_id in ("RESET-16", "RESET-201"):
            status, body = await http("POST", f"{cluster.api}/stations/{station_id}/reset")
            assert (status, body) == (200, {"status": "Accepted"})
    assert [frame[2:] for frame in seen16] == [["Reset", {"type": "Soft"}]]
    assert [frame[2:] for frame in seen201] == [["Reset", {"type": "Immediate"}]]


async def test_reset_of_an_unknown_station_is_404(cluster: Cluster) -> None:
    """POST reset for a station no node holds answers 404."""
    status, body = await http("POST", f"{cluster.api}/stations/NOBODY/reset")
    assert status == 404 and body["error"] == "StationNotConnected", body


async def test_call_errors_and_timeouts_map_to_502_and_504(cluster: Cluster) -> None:
    """A CALLERROR answer gives 502 with its code; no answer in time gives 504."""

    def refuse(message_id: str) -> list[Any]:
        return [4, message_id, "NotSupported", "not here", {}]

    async with (
        booted(cluster.nodes["n1"], "REFUSES", "1.6", refuse),
        booted(cluster.nodes["n2"], "SILENT", "2.0.1", lambda message_id: None),
    ):
        status, body = await http("POST", f"{cluster.api}/stations/REFUSES/reset")
        assert status == 502 and body["code"] == "NotSupported", body
        status, body = await http("POST", f"{cluster.api}/stations/SILENT/reset")
        assert status == 504 and body["error"] == "CallTimeout", body


async def test_sigterm_stops_a_node_cleanly(cluster: Cluster) -> None:
    """SIGTERM: the node closes its stations, leaves the registry at once and exits 0."""
    arguments = ["--redis", cluster.redis, "--node-id", "n3"]
    with example("node.py", arguments, cluster.workdir / "n3.log") as (process, url):
        async with connect_scripted(url, "LEAVING", "1.6") as station:
            reply = await station.call("boot", "BootNotification", BOOT["1.6"])
            assert reply[2]["status"] == "Accepted", reply
            process.terminate()
            code, _ = await station.closed_with(timeout=STOP_TIMEOUT)
            assert code in (1000, 1001)
        exit_code = await asyncio.to_thread(process.wait, STOP_TIMEOUT)
        assert exit_code == 0, (cluster.workdir / "n3.log").read_text()
        assert "node n3 stopped" in (cluster.workdir / "n3.log").read_text()
    status, body = await http("GET", f"{cluster.api}/stations")
    assert status == 200 and "LEAVING" not in [record["station_id"] for record in body]
