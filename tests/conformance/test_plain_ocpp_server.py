"""The checker against examples/ocpp_plain_server.py: one ``ocpp`` ChargePoint per
connection, as the ocpp package's examples do, in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from csms_kit.conformance import Outcome, Target, run_suite
from csms_kit.versions import OcppVersion
from tests.conformance.conftest import FAST

EXAMPLE = Path(__file__).parents[2] / "examples" / "ocpp_plain_server.py"
V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


@contextlib.asynccontextmanager
async def plain_ocpp_server() -> AsyncIterator[str]:
    """Start the example on a free port; yield the URL it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its ChargePoints log each dropped connection
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.startswith(b"ocpp CSMS listening on "), line
        yield line.decode().rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        await process.wait()


async def test_plain_ocpp_server_faults_are_named() -> None:
    """Its known faults fail, each with its reason; what it does right passes."""
    cases = {
        "boot-notification",
        "subprotocol-no-match",
        "action-unknown",
        "action-not-supported",
        "code-format-violation",
        "boot-gate",
    }
    async with plain_ocpp_server() as url:
        report = await run_suite(Target(url, **FAST), cases=cases)
    seen = {(r.case.id, r.version): (r.outcome, r.reason) for r in report.results}
    assert report.spoken == {V16: True, V201: True, V21: True}
    for version in (V16, V201, V21):
        assert seen[("boot-notification", version)] == (Outcome.PASS, "status Accepted")
    assert seen[("subprotocol-no-match", None)][1].startswith(
        "refused the handshake with HTTP 400"
    )
    # The ocpp package swaps the two codes on 1.6 and 2.0.1, and says nothing on 2.1.
    assert seen[("action-unknown", V201)] == (
        Outcome.FAIL,
        "answered an unknown action with NotSupported; expected NotImplemented",
    )
    assert seen[("action-not-supported", V16)] == (
        Outcome.FAIL,
        "answered a Reset CALL with NotImplemented; expected NotSupported",
    )
    assert seen[("action-unknown", V21)][1].startswith("no answer to the")
    assert seen[("code-format-violation", V16)] == (
        Outcome.FAIL,
        "answered FormatViolation: OCPP 1.6 spells it FormationViolation",
    )
    assert seen[("code-format-violation", V201)][0] is Outcome.PASS
    assert seen[("boot-gate", V201)][0] is Outcome.FAIL
