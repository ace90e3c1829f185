"""``csms-kit simulate`` and the fleet behind it, against real CSMS processes and servers."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from typing import Any

import pytest

from csms_kit import ErrorCode, RpcError, on, serve
from csms_kit.cli import main
from csms_kit.demo.csms import DemoCsms
from csms_kit.simulator.fleet import Fleet, run_load

SIMULATE = [sys.executable, "-m", "csms_kit.cli", "simulate"]
PROGRESS = re.compile(
    r"^ +\d+\.\ds  connected (\d+)/(\d+)  online (\d+) +\d+ msg/s  p50 \S+( ms)?  "
    r"p99 \S+( ms)?  transactions \d+/\d+  lag \d+ ms  errors (\d+)"
)


@pytest.mark.slow
def test_simulate_1000_charging_stations_against_csms_kit_serve() -> None:
    """1,000 stations of every version charge against `csms-kit serve`: exit 0, no error."""
    with subprocess.Popen(
        [sys.executable, "-m", "csms_kit.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            banner = server.stdout.readline()
            match = re.search(r"(ws://127\.0\.0\.1:\d+)/", banner)
            assert match is not None, banner
            done = subprocess.run(
                [
                    *SIMULATE,
                    match.group(1),
                    "--stations",
                    "1000",
                    "--version",
                    "1.6,2.0.1,2.1",
                    "--scenario",
                    "charging",
                    # The duration includes the ramp (100 handshakes at a time): room for
                    # all 1,000 to be online on a loaded machine (seen: 924 within 6 s).
                    "--duration",
                    "15",
                    "--rate",
                    "2",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:  # a failure above: do not wait for ever
                server.kill()
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["ok"] is True and summary["errors"]["total"] == 0, summary["errors"]
    assert (summary["stations"], summary["ever_online"], summary["online"]) == (1000, 1000, 1000)
    assert summary["versions"] == ["1.6", "2.0.1", "2.1"]
    assert summary["transactions"]["ended"] > 100
    assert summary["calls"] > 5000 and summary["latency_ms"]["p50"] > 0
    assert summary["messages"]["received"] >= summary["calls"]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    progress = [PROGRESS.match(line) for line in lines]
    assert len(lines) >= 5 and all(progress), lines
    assert progress[-1] is not None and progress[-1].group(1) == "1000"
    assert "Traceback" not in done.stderr


class Faulty(DemoCsms):
    """Answers heartbeats of odd stations with a CALLERROR and of even ones too late."""

    @on("Heartbeat")
    async def heartbeat(self, request: Any) -> dict[str, Any]:
        if int(self.station_id[-1]) % 2:
            raise RpcError(ErrorCode.INTERNAL_ERROR, "broken")
        await asyncio.sleep(1)
        return {}


async def simulate(*arguments: str) -> tuple[int, str, str]:
    """Run `csms-kit simulate` in a process of its own; (status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *SIMULATE,
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_errors_make_simulate_exit_non_zero() -> None:
    """CALLERRORs, timeouts, refused handshakes and refused connections: exit 1, counted."""
    async with (
        serve(Faulty, "127.0.0.1", 0, close_timeout=1) as faulty,
        serve({"1.6": DemoCsms}, "127.0.0.1", 0) as only16,
    ):
        common = ("--stations", "4", "--duration", "1.5", "--json")
        status, out, _ = await simulate(
            f"ws://127.0.0.1:{faulty.port}", *common, "--rate", "5", "--call-timeout", "0.4"
        )
        assert status == 1
        errors = json.loads(out)["errors"]
        assert errors["by_kind"]["callerror"] >= 2 and errors["by_kind"]["timeout"] >= 2
        assert any("InternalError" in text for text in errors["first"])
        status, out, _ = await simulate(
            f"ws://127.0.0.1:{only16.port}", *common, "--version", "2.0.1"
        )
        assert status == 1
        summary = json.loads(out)
        assert summary["errors"]["by_kind"]["handshake"] >= 4 and summary["ever_online"] == 0
        port = only16.port
    status, out, err = await simulate(
        f"ws://127.0.0.1:{port}", "--stations", "2", "--duration", "1"
    )
    assert status == 1
    assert re.search(r"^  errors \d+ \(refused \d+\)$", out, re.MULTILINE), out
    assert "could not connect" in out and "Traceback" not in err


async def test_storm_drops_every_station_and_times_the_way_back() -> None:
    """storm: all connections dropped at once come back; nothing counted as an error."""
    lines: list[str] = []
    async with serve(DemoCsms, "127.0.0.1", 0) as server:
        fleet = Fleet(
            f"ws://127.0.0.1:{server.port}", 30, ("1.6", "2.0.1"), scenario="storm", rate=2
        )
        summary = await run_load(fleet, 3, progress=lines.append)
    assert summary["ok"] is True, summary["errors"]
    assert summary["connections"] == 60 and summary["ever_online"] == 30
    assert summary["storm"] is not None and summary["storm"]["recovered_s"] is not None
    assert len(lines) == 3 and all(PROGRESS.match(line) for line in lines)
    assert all(not station.connected for station in fleet.stations)


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "0"],
        ["--rate", "fast"],
        ["--version", "3.0"],
        ["--scenario", "party"],
        ["--stations", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Arguments that cannot work are refused at once, with status 2."""
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "ws://127.0.0.1:9", *argv])
    assert exited.value.code == 2
    assert "usage: csms-kit simulate" in capsys.readouterr().err


def test_a_url_that_is_no_websocket_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed URL is refused before any station starts."""
    assert main(["simulate", "http://example.com", "--duration", "1"]) == 2
    assert "not a WebSocket URL" in capsys.readouterr().err
