"""``csms-kit conformance`` as a user runs it: a subprocess, its output and exit status."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from csms_kit.conformance import SUITE
from tests.conformance.broken_server import broken_server
from tests.conformance.conftest import csms_kit_server

FAST = ["--timeout", "2", "--quiet-period", "0.3", "--call-wait", "0.5"]


async def conformance(*arguments: str) -> tuple[int, str, str]:
    """Run ``csms-kit conformance ARGUMENTS``; its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms_kit.cli",
        "conformance",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_exit_zero_when_every_case_passes() -> None:
    """Against csms_kit's server: exit 0 and a table that ends with the counts."""
    async with csms_kit_server() as url:
        status, out, _ = await conformance(
            url, "--version", "2.1", "--case", "frame-not-json", "--case", "boot-gate", *FAST
        )
    assert status == 0, out
    assert "PASS  2.1      frame-not-json" in out
    assert "-> [4,'-1','RpcFrameworkError',...]" in out
    assert out.rstrip().splitlines()[-1].startswith("2 passed, 0 failed, 0 skipped in ")


async def test_exit_one_and_json_when_a_case_fails() -> None:
    """Against the broken server: exit 1; --json names the failed case and why."""
    async with broken_server() as url:
        status, out, _ = await conformance(
            url, "--version", "2.0.1", "--case", "action-unknown", "--json", *FAST
        )
    assert status == 1
    report = json.loads(out)
    assert (report["passed"], report["failed"], report["skipped"]) == (0, 1, 0)
    [result] = report["results"]
    assert result["case"] == "action-unknown"
    assert result["version"] == "2.0.1"
    assert result["outcome"] == "fail"
    assert (
        result["reason"] == "answered an unknown action with NotSupported; expected NotImplemented"
    )
    assert result["spec"].startswith("OCPP-J 1.6 Table 7")


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ([], "give the CSMS's URL"),
        (["ws://127.0.0.1:1/", "--basic-auth", "no-colon"], "--basic-auth takes ID:PASSWORD"),
        (["ws://127.0.0.1:1/", "--cert", "a.pem", "--key", "a.key"], "give --identity"),
        (["http://127.0.0.1:1/"], "the CSMS URL must be ws://"),
        (["ws://127.0.0.1:1/", "--case", "no-such-case"], "no such case: no-such-case"),
        (["ws://127.0.0.1:1/", "--timeout", "0"], "must be positive"),
    ],
)
async def test_exit_two_for_bad_options(arguments: list[str], complaint: str) -> None:
    """Bad options: exit 2 and a one-line reason on standard error, nothing run."""
    status, out, err = await conformance(*arguments)
    assert (status, out) == (2, "")
    assert complaint in err


async def test_list_names_every_case_with_its_source() -> None:
    """--list prints each case id, its title and its source."""
    status, out, _ = await conformance("--list")
    assert status == 0
    for case in SUITE:
        assert f"{case.id}  [{case.group}, " in out
        assert case.source in out
