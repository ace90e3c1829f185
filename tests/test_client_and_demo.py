"""The station-side client, the demo CSMS, the demo run and the ``csms-kit`` command."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import call_result as result21
from ocpp.v201 import call_result as result201

from csms_kit import (
    CallError,
    CsmsDisconnected,
    ErrorCode,
    InMemoryRegistry,
    OcppVersion,
    StationClient,
    StationSession,
    connect_station,
    serve,
)
from csms_kit.demo.csms import DemoCsms
from csms_kit.demo.run import demo
from csms_kit.hooks import Hooks
from csms_kit.protocol.schemas import call_actions, compile_validator, pristine_schema
from csms_kit.testing import memory_transport_pair
from csms_kit.websocket import READ_SIZE
from tests.helpers import wait_until

NOW = "2026-11-27T10:00:00+00:00"
VERSIONS = list(OcppVersion)
RESULT_MODULES = {
    OcppVersion.V16: result16,
    OcppVersion.V201: result201,
    OcppVersion.V21: result21,
}
BOOT = {
    OcppVersion.V16: {"chargePointVendor": "csms_kit", "chargePointModel": "Test"},
    OcppVersion.V201: {"reason": "PowerUp", "chargingStation": {"model": "T", "vendorName": "V"}},
    OcppVersion.V21: {"reason": "PowerUp", "chargingStation": {"model": "T", "vendorName": "V"}},
}


async def eventually(condition: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``deadline`` seconds."""
    await wait_until(condition, deadline, what)


def example_payload(schema: dict[str, Any], full: bool) -> dict[str, Any]:
    """A payload valid against ``schema``: required properties only, or every property."""

    def build(node: dict[str, Any], depth: int) -> Any:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        if "enum" in node:
            return node["enum"][0]
        kind = node.get("type")
        if kind == "object":
            properties = node.get("properties", {})
            names = properties if full and depth < 8 else node.get("required", [])
            return {name: build(properties[name], depth + 1) for name in names}
        if kind == "array":
            return [
                build(node["items"], depth + 1) for _ in range(max(node.get("minItems", 1), 1))
            ]
        if kind in ("integer", "number"):
            return node.get("minimum", node.get("maximum", 1))
        if kind == "boolean":
            return True
        if node.get("format") == "date-time":
            return NOW
        if node.get("format") == "uri":
            return "https://example.com/x"
        return "x"  # a string, or a value of any type

    payload: dict[str, Any] = build(schema, 0)
    return payload


@contextlib.asynccontextmanager
async def pair(
    csms_class: type[StationSession], version: OcppVersion
) -> AsyncIterator[tuple[StationSession, StationClient, list[tuple[str, Any]]]]:
    """A CSMS session and a StationClient over memory; yields them and the CSMS's frames."""
    frames: list[tuple[str, Any]] = []
    csms_side, station_side = memory_transport_pair()
    hooks = Hooks(on_message=lambda session, way, text: frames.append((way, json.loads(text))))
    csms = csms_class("CP-1", csms_side, version, hooks=hooks)
    station = StationClient("CP-1", station_side, version)
    tasks = [asyncio.create_task(csms.run()), asyncio.create_task(station.run())]
    try:
        yield csms, station, frames
    finally:
        await station.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


def answers_by_action(frames: list[tuple[str, Any]], calls_from: str) -> dict[str, list[Any]]:
    """The CALLRESULT/CALLERROR frames in ``frames``, by the action of the CALL they answer."""
    actions = {f[1]: f[2] for way, f in frames if way == calls_from and f[0] == 2}
    answers: dict[str, list[Any]] = {}
    for way, frame in frames:
        if way != calls_from and frame[0] in (3, 4):
            answers.setdefault(actions[frame[1]], []).append(frame)
    return answers


# -- StationClient ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_station_client_answers_common_csms_requests(version: OcppVersion) -> None:
    """StationClient answers every CSMS request it handles with a valid, positive answer."""
    actions = sorted(a for a in StationClient.routes.on if a in call_actions(version))
    assert {"ClearCache", "Reset", "TriggerMessage", "ChangeAvailability"} <= set(actions)
    async with pair(StationSession, version) as (csms, _, frames):
        for action in actions:
            schema = pristine_schema(version, action, "request")
            assert schema is not None
            answer = await csms.call(example_payload(schema, full=False), action=action)
            assert type(answer) is getattr(RESULT_MODULES[version], action)
            if action != "GetConfiguration":
                assert answer.status == "Accepted"
    answers = answers_by_action(frames, calls_from="out")
    assert sorted(answers) == actions
    for action, [frame] in answers.items():
        assert frame[0] == 3, frame
        validate = compile_validator(version, action, "response")
        assert validate is not None
        validate(frame[2])


async def test_station_client_get_configuration_reports_unknown_keys() -> None:
    """GetConfiguration: asked keys come back as unknown; nothing asked, nothing sent."""
    async with pair(StationSession, OcppVersion.V16) as (csms, _, frames):
        answer = await csms.call(call16.GetConfiguration(key=["A", "B"]))
        assert answer.unknown_key == ["A", "B"]
        assert not answer.configuration_key
        answer = await csms.call(call16.GetConfiguration())
        assert not answer.unknown_key and not answer.configuration_key
    results = [frame for way, frame in frames if way == "in" and frame[0] == 3]
    assert [r[2] for r in results] == [{"unknownKey": ["A", "B"]}, {}]  # no empty arrays


async def test_station_client_refuses_what_it_does_not_handle() -> None:
    """A CSMS request StationClient has no handler for gets NotSupported."""
    async with pair(StationSession, OcppVersion.V201) as (csms, _, _frames):
        request = {"getVariableData": [{"component": {"name": "C"}, "variable": {"name": "V"}}]}
        with pytest.raises(CallError) as caught:
            await csms.call(request, action="GetVariables")
        assert caught.value.code is ErrorCode.NOT_SUPPORTED


async def test_station_client_answers_before_booting() -> None:
    """The station side has no boot gate: it answers the CSMS before any BootNotification."""
    async with pair(StationSession, OcppVersion.V16) as (csms, station, _):
        assert not isinstance(station, StationSession)  # no CSMS policy on the station side
        assert station.endpoint.admit is None
        answer = await csms.call(call16.ClearCache())
        assert answer.status == "Accepted"


async def test_station_call_on_a_connection_just_closed_fails_cleanly() -> None:
    """A call whose send finds the connection gone raises, leaving no unretrieved future."""
    loop = asyncio.get_running_loop()
    problems: list[str] = []
    loop.set_exception_handler(lambda _, context: problems.append(context["message"]))
    try:
        csms_side, station_side = memory_transport_pair()
        station = StationClient("CP-1", station_side, OcppVersion.V16)
        await csms_side.close()  # the CSMS went away; the station has not read it yet
        with pytest.raises(CsmsDisconnected):
            await station.call({}, action="Heartbeat")
        assert station.ended
        del station
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert problems == []


# -- connect_station against a csms_kit server ------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_connect_station_boots_against_a_csms_kit_server(version: OcppVersion) -> None:
    """connect_station speaks the version it offers and boots against serve(DemoCsms)."""
    registry = InMemoryRegistry()
    async with serve(DemoCsms, "127.0.0.1", 0, registry=registry) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect_station(url, "CP-1", version) as station:
            assert isinstance(station, StationClient)
            assert station.version is version
            assert station.transport.connection.subprotocol == version.subprotocol
            assert station.transport.connection.transport.max_size == READ_SIZE
            boot = await station.call(BOOT[version], action="BootNotification")
            assert boot.status == "Accepted" and boot.interval == 60
            assert (await station.call({}, action="Heartbeat")).current_time
            session = registry.get("CP-1")
            assert session is not None and isinstance(session, DemoCsms)
            assert session.version is version and session.booted
            assert session.boot_info is not None and session.boot_info.vendor in ("csms_kit", "V")
            assert await registry.registration_status("CP-1") == "Accepted"
        assert station.ended
        await eventually(lambda: not server.sessions and len(registry) == 0, "CP-1 left")


async def test_connect_station_percent_encodes_the_identity() -> None:
    """An identity with spaces, '+', '#' and non-ASCII reaches the server unchanged."""
    registry = InMemoryRegistry()
    identity = "Ladesäule +1 #2?x"
    async with (
        serve(DemoCsms, "127.0.0.1", 0, registry=registry) as server,
        connect_station(f"ws://127.0.0.1:{server.port}", identity, "2.0.1") as station,
    ):
        await station.call(BOOT[OcppVersion.V201], action="BootNotification")
        assert list(registry) == [identity]


async def test_connect_station_to_a_server_without_its_version() -> None:
    """A server that speaks none of the offered versions closes the connection with 1002."""
    async with (
        serve({"1.6": DemoCsms}, "127.0.0.1", 0) as server,
        connect_station(f"ws://127.0.0.1:{server.port}", "CP-1", "2.0.1") as station,
    ):
        await eventually(lambda: station.ended, "the station saw the close")
        assert station.transport.connection.close_code == 1002
        with pytest.raises(CsmsDisconnected) as caught:
            await station.call(BOOT[OcppVersion.V201], action="BootNotification")
        assert caught.value.code == 1002


# -- DemoCsms ---------------------------------------------------------------------------


def demo_actions(version: OcppVersion) -> list[str]:
    """The station messages DemoCsms routes that ``version`` has, BootNotification first."""
    actions = sorted(a for a in DemoCsms.routes.on if a in call_actions(version))
    actions.remove("BootNotification")
    return ["BootNotification", *actions]


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_demo_csms_answers_every_message_it_routes(version: OcppVersion, full: bool) -> None:
    """DemoCsms answers each station message it routes with a schema-valid CALLRESULT."""
    actions = demo_actions(version)
    assert len(actions) >= 13
    async with pair(DemoCsms, version) as (csms, station, frames):
        for action in actions:
            schema = pristine_schema(version, action, "request")
            assert schema is not None
            request = example_payload(schema, full)
            check_request = compile_validator(version, action, "request")
            assert check_request is not None
            check_request(request)  # the test's own request is valid
            answer = await station.call(request, action=action)
            assert type(answer) is getattr(RESULT_MODULES[version], action)
        assert csms.booted
        assert csms.stats.handler_errors == 0 and csms.stats.bad_frames == 0
    answers = answers_by_action(frames, calls_from="in")
    assert sorted(answers) == sorted(actions)
    for action, [frame] in answers.items():
        assert frame[0] == 3, f"{action}: {frame}"
        check_response = compile_validator(version, action, "response")
        assert check_response is not None
        check_response(frame[2])
    boot = answers["BootNotification"][0][2]
    assert (boot["status"], boot["interval"]) == ("Accepted", 60)
    token_info = "idTagInfo" if version is OcppVersion.V16 else "idTokenInfo"
    assert answers["Authorize"][0][2] == {token_info: {"status": "Accepted"}}
    assert answers["DataTransfer"][0][2] == {"status": "UnknownVendorId"}


async def test_demo_csms_transactions_16() -> None:
    """1.6: StartTransaction gets an id and Accepted; StopTransaction with an idTag too."""
    async with pair(DemoCsms, OcppVersion.V16) as (_, station, _frames):
        await station.call(BOOT[OcppVersion.V16], action="BootNotification")
        started = await station.call(
            {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": NOW},
            action="StartTransaction",
        )
        assert isinstance(started.transaction_id, int) and started.transaction_id >= 0
        assert started.id_tag_info.status == "Accepted"
        stop = {"meterStop": 10, "timestamp": NOW, "transactionId": started.transaction_id}
        assert (await station.call(stop, action="StopTransaction")).id_tag_info is None
        stopped = await station.call({**stop, "idTag": "T"}, action="StopTransaction")
        assert stopped.id_tag_info.status == "Accepted"


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21], ids=str)
async def test_demo_csms_transaction_events_2x(version: OcppVersion) -> None:
    """2.x: a TransactionEvent with an idToken is Accepted; one without gets an empty answer."""
    event = {
        "eventType": "Started",
        "timestamp": NOW,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
    }
    async with pair(DemoCsms, version) as (_, station, frames):
        await station.call(BOOT[version], action="BootNotification")
        token = {"idToken": "T", "type": "ISO14443"}
        started = await station.call({**event, "idToken": token}, action="TransactionEvent")
        assert started.id_token_info.status == "Accepted"
        ended = {**event, "eventType": "Ended", "seqNo": 1}
        assert (await station.call(ended, action="TransactionEvent")).id_token_info is None
    results = [f[2] for way, f in frames if way == "out" and f[0] == 3]
    assert results[-1] == {}


async def test_demo_csms_gates_messages_before_boot() -> None:
    """DemoCsms answers SecurityError to messages before an accepted BootNotification."""
    async with pair(DemoCsms, OcppVersion.V201) as (_, station, _frames):
        with pytest.raises(CallError) as caught:
            await station.call({}, action="Heartbeat")
        assert caught.value.code is ErrorCode.SECURITY_ERROR


# -- demo() and the csms-kit command ----------------------------------------------------


@pytest.mark.slow
async def test_demo_run_reports_progress_and_no_errors() -> None:
    """demo() runs the stations, prints progress lines and a summary with 0 errors."""
    out = io.StringIO()
    assert await demo(stations=30, duration=3, pace=0.5, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("csms_kit demo: CSMS on ws://127.0.0.1:")
    assert "30 stations" in lines[0]
    progress = [line for line in lines if line.startswith("t=")]
    assert len(progress) >= 2
    connected = []
    for line in progress:
        match = re.search(r"connected +(\d+)/30 .* errors (\d+)$", line)
        assert match is not None, line
        assert match.group(2) == "0"
        connected.append(int(match.group(1)))
    assert max(connected) == 30
    summary = lines[-1]
    assert re.fullmatch(
        r"done: 30 stations, [1-9]\d* commands \(median round trip \d+\.\d ms\), 0 errors",
        summary,
    ), summary


@pytest.mark.slow
def test_cli_demo_exits_zero() -> None:
    """`csms-kit demo --stations 20 --duration 2` runs and exits 0 with 0 errors."""
    done = subprocess.run(
        [sys.executable, "-m", "csms_kit.cli", "demo", "--stations", "20", "--duration", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "done: 20 stations" in done.stdout
    assert done.stdout.rstrip().endswith(", 0 errors")
    assert "Traceback" not in done.stderr


async def test_cli_serve_accepts_a_station_and_stops_cleanly_on_sigint() -> None:
    """`csms-kit serve` accepts and boots a station; SIGINT closes it (1001) and exits 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms_kit.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)/", banner)
        assert match is not None, banner
        url = f"ws://127.0.0.1:{match.group(1)}"
        async with connect_station(url, "CP-CLI", "1.6") as station:
            boot = await station.call(BOOT[OcppVersion.V16], action="BootNotification")
            assert boot.status == "Accepted"
            process.send_signal(signal.SIGINT)
            connection = station.transport.connection
            await asyncio.wait_for(connection.wait_closed(), 20)
            assert connection.close_code == 1001
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()
        assert "stopped" in stderr.decode()
        assert "Traceback" not in stderr.decode()
        assert "'CP-CLI' connected" in stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
