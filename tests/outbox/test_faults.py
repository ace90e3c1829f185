"""The outbox against faults, with real processes and a real SQLite file: the CSMS is
``csms-kit serve --outbox FILE``, stopped, killed and restarted; commands are queued with
``csms-kit outbox submit``; the station is simulated in the test process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms_kit import OcppVersion
from csms_kit.outbox import Outbox, SqliteStore, Submission
from csms_kit.routing import on
from csms_kit.simulator import Backoff
from tests.cluster.processes import HOST, free_port, kill, start_listening, stop
from tests.helpers import wait_until
from tests.outbox.conftest import Recording, data_transfer

pytestmark = pytest.mark.slow

VERSIONS = [str(v) for v in OcppVersion]
CLI = [sys.executable, "-m", "csms_kit.cli"]
#: Seconds any one thing may take before the test fails (never a timing assert: a bound).
PATIENCE = 30.0


class Patient(Recording):
    """A recording station that tries again soon when the CSMS is gone."""

    backoff = Backoff(wait_minimum=0.1, random_range=0.2, repeat_times=2)


class Stalling(Patient):
    """Answers DataTransfer at once, except the first CALL with ``data == stall_at``: that
    one is held until :attr:`release` is set (the CSMS is killed meanwhile)."""

    stall_at = "5"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    @on("DataTransfer")
    async def on_data_transfer(self, request: Any) -> dict[str, Any]:
        if request.data == self.stall_at and not self.stalled.is_set():
            self.stalled.set()
            await self.release.wait()
        return {"status": "Accepted", "data": request.data}


class Csms:
    """``csms-kit serve --outbox`` on a fixed port, as a process that can be stopped,
    killed and started again; its output goes to ``log``."""

    def __init__(self, store: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"ws://{HOST}:{self.port}"
        self.log = log
        self.command = [
            *CLI, "serve", "--host", HOST, "--port", str(self.port), "--outbox", str(store),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = await asyncio.to_thread(
            start_listening, self.command, self.port, self.log, timeout=PATIENCE
        )

    async def stop(self) -> int:
        """SIGTERM, as an operator's restart does; the exit status."""
        assert self.process is not None
        return await asyncio.to_thread(stop, self.process)

    async def kill(self) -> None:
        """SIGKILL: no goodbye to anyone, nothing flushed."""
        assert self.process is not None
        await asyncio.to_thread(kill, self.process)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def csms(store_path: Path, tmp_path: Path) -> AsyncIterator[Csms]:
    """The CSMS process (not started yet); killed at the end of the test if still running."""
    csms = Csms(store_path, tmp_path / "csms.log")
    try:
        yield csms
    finally:
        if csms.process is not None:
            await asyncio.to_thread(kill, csms.process)


@contextlib.asynccontextmanager
async def running(station: Recording) -> AsyncIterator[Recording]:
    """``station`` started (online) and, whatever happens, stopped."""
    try:
        await station.start(timeout=PATIENCE)
        yield station
    finally:
        await station.stop()


async def cli(*argv: str) -> str:
    """``csms-kit ARGV...`` in a process of its own; its output (it must succeed)."""
    done = await asyncio.to_thread(
        subprocess.run, [*CLI, *argv], capture_output=True, text=True, timeout=PATIENCE
    )
    assert done.returncode == 0, f"csms-kit {' '.join(argv)}: {done.stderr}"
    return done.stdout


async def submit(store: Path, n: int, *options: str) -> str:
    """``outbox submit`` of ``data_transfer(n)`` to CP-1; the submission id."""
    command = data_transfer(n)
    payload = json.dumps(command.payload)
    return (
        await cli(
            "outbox", "submit", "--store", str(store), "CP-1", command.action, payload, *options
        )
    ).strip()


async def stored(store: Path) -> dict[str, Submission]:
    """Every submission in the store by id, read as ``outbox list --json`` shows them."""
    listing = json.loads(
        await cli("outbox", "list", "--store", str(store), "--limit", "1000", "--json")
    )
    return {data["id"]: Submission.from_dict(data) for data in listing}


async def read_store(store: Path) -> list[Submission]:
    """Every submission, oldest first, read directly from the file."""
    async with SqliteStore(store) as sqlite:
        return sorted(await sqlite.find(limit=1000), key=lambda s: s.sequence)


async def settled(store: Path, what: str) -> list[Submission]:
    """The submissions, oldest first, once none is pending (fails after ``PATIENCE``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    async with SqliteStore(store) as sqlite:
        while True:
            submissions = sorted(await sqlite.find(limit=1000), key=lambda s: s.sequence)
            pending = [s for s in submissions if s.pending]
            if not pending:
                return submissions
            if loop.time() > deadline:
                pytest.fail(f"{what}: still pending after {PATIENCE:g} s: {pending}")
            await asyncio.sleep(0.1)


def delivered_ids(station: Recording) -> list[str]:
    """The messageIds of the DataTransfer CALLs the station received, in order."""
    return [message_id for message_id, action, _ in station.received if action == "DataTransfer"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_restarted_csms_delivers_in_order_minus_expired_and_superseded(
    csms: Csms, store_path: Path, version: str
) -> None:
    """Commands queued for an offline station, before and while a CSMS runs, survive a
    restart (SIGTERM) and reach the station in order, without the expired and the
    superseded ones."""
    ids = {
        0: await submit(store_path, 0),
        1: await submit(store_path, 1, "--expires-in", "1"),
        2: await submit(store_path, 2, "--supersede-key", "profile"),
        3: await submit(store_path, 3),
    }
    await csms.start()
    ids[4] = await submit(store_path, 4, "--supersede-key", "profile")  # replaces 2
    ids[5] = await submit(store_path, 5, "--expires-in", "1")
    ids[6] = await submit(store_path, 6)
    assert await csms.stop() == 0, csms.output()
    await csms.start()
    # Let the short expiries pass for sure: the station must not get those.
    before = await stored(store_path)
    latest = max(before[ids[n]].expires_at for n in (1, 5))
    now = datetime.datetime.now(datetime.timezone.utc)
    await asyncio.sleep(max(0.0, (latest - now).total_seconds()) + 0.1)

    async with running(Patient(csms.url, "CP-1", version)) as station:
        submissions = await settled(store_path, "after the station connected")
        final = await stored(store_path)  # what an operator sees

    assert station.data() == ["0", "3", "4", "6"]
    assert {n: final[ids[n]].status for n in ids} == {
        0: "answered",
        1: "expired",
        2: "superseded",
        3: "answered",
        4: "answered",
        5: "expired",
        6: "answered",
    }
    assert ids[4] in (final[ids[2]].error or "")  # says what superseded it
    answered = [final[ids[n]] for n in (0, 3, 4, 6)]
    assert [s.result for s in answered] == [
        {"status": "Accepted", "data": str(n)} for n in (0, 3, 4, 6)
    ]
    assert [s.attempts for s in answered] == [1] * 4
    assert delivered_ids(station) == [s.message_id for s in answered]
    assert [s.id for s in submissions] == [ids[n] for n in sorted(ids)]  # store order
    assert all(final[ids[n]].attempts == 0 for n in (1, 2, 5))  # never sent


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_kill_mid_flush_loses_nothing_and_resends_with_the_same_message_id(
    csms: Csms, store_path: Path, version: str
) -> None:
    """``kill -9`` while a CALL of a flush awaits its answer: after a restart every
    submission ends answered, and the unanswered one is sent again with its messageId."""
    count = 30
    async with Outbox(store_path) as outbox:  # an application queues them; it never delivers
        queued = [await outbox.submit("CP-1", data_transfer(n)) for n in range(count)]
    stall = int(Stalling.stall_at)
    await csms.start()
    station = Stalling(csms.url, "CP-1", version)
    async with running(station):
        await asyncio.wait_for(station.stalled.wait(), PATIENCE)
        await csms.kill()
        station.release.set()  # its answer now goes nowhere
        # The kill landed mid-flush: some answered, one sent without an answer, the rest
        # still queued.
        at_kill = await read_store(store_path)
        assert [s.id for s in at_kill] == [s.id for s in queued]
        assert [s.status for s in at_kill] == (
            ["answered"] * stall + ["sent"] + ["queued"] * (count - stall - 1)
        ), csms.output()
        unanswered = at_kill[stall]
        assert unanswered.attempts == 1 and unanswered.message_id is not None
        await wait_until(lambda: not station.connected, PATIENCE, "the station saw the CSMS go")

        await csms.start()
        submissions = await settled(store_path, "after the restart")
        await wait_until(
            lambda: len(delivered_ids(station)) == count + 1,
            PATIENCE,
            "the station got every CALL",
        )

    assert [s.status for s in submissions] == ["answered"] * count
    assert [s.result for s in submissions] == [
        {"status": "Accepted", "data": str(n)} for n in range(count)
    ]
    # The unanswered CALL was sent again, with its messageId; every other CALL once.
    expected = [s.message_id for s in submissions]
    expected.insert(stall + 1, unanswered.message_id)
    assert delivered_ids(station) == expected
    assert submissions[stall].message_id == unanswered.message_id
    assert [s.attempts for s in submissions] == [1] * stall + [2] + [1] * (count - stall - 1)
    assert station.data() == [str(n) for n in range(stall + 1)] + [
        str(n) for n in range(stall, count)
    ]


def unusable_stores(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Store paths that cannot be used, with what the error must say."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\xffnot SQLite at all\n" * 512)
    a_file = tmp_path / "a-file"
    a_file.write_text("a regular file, not a directory\n")
    return {
        "corrupt": (garbage, f"outbox store {garbage} is unusable: file is not a database"),
        "parent-is-a-file": (
            a_file / "outbox.db",
            f"outbox store {a_file / 'outbox.db'}: no directory {a_file}",
        ),
        # Tests run as root: file modes would not stop a write, /proc does.
        "under-proc": (
            Path("/proc/csms-kit-outbox.db"),
            "outbox store /proc/csms-kit-outbox.db: ",
        ),
    }


@pytest.mark.parametrize("kind", ["corrupt", "parent-is-a-file", "under-proc"])
async def test_an_unusable_store_stops_serve_at_start(tmp_path: Path, kind: str) -> None:
    """``serve --outbox`` on a corrupt or unwritable store exits 2 at once with one clear
    line, listening on nothing and leaving the file as it was."""
    path, message = unusable_stores(tmp_path)[kind]
    before = path.read_bytes() if path.is_file() else None
    port = free_port()
    command = [*CLI, "serve", "--host", HOST, "--port", str(port), "--outbox", str(path)]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=PATIENCE
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # never said it serves
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"csms-kit serve: {message}")
    if before is not None:
        assert path.read_bytes() == before
    else:
        assert not path.exists()
