"""``csms-kit outbox list|show|cancel|submit`` and ``csms-kit serve --outbox``: in-process
through ``main``, and one served CSMS as a real process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import csms_kit.workers
from csms_kit import cli
from csms_kit.outbox import Submission
from tests.cluster.processes import HOST, free_port, start_listening, stop
from tests.helpers import wait_until
from tests.outbox.conftest import Recording

PAYLOAD = '{"vendorId": "csms_kit-sim", "data": "1"}'


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "outbox.db")


def outbox(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``csms-kit outbox ARGV...``: its exit status, standard output and error."""
    status = cli.main(["outbox", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def submit(capsys: pytest.CaptureFixture[str], store: str, *argv: str) -> str:
    """``outbox submit`` to CP-1 (DataTransfer unless ``argv`` says otherwise); the id."""
    status, out, err = outbox(
        capsys, "submit", "--store", store, *(argv or ("CP-1", "DataTransfer", PAYLOAD))
    )
    assert status == 0, err
    return out.strip()


def listed(capsys: pytest.CaptureFixture[str], store: str, *argv: str) -> list[Submission]:
    """``outbox list --json``, read back as submissions."""
    status, out, err = outbox(capsys, "list", "--store", store, "--json", *argv)
    assert status == 0, err
    return [Submission.from_dict(data) for data in json.loads(out)]


def test_submit_prints_an_id_that_list_and_show_find(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """A submitted raw call is queued with its action, payload, expiry and key."""
    submission_id = submit(
        capsys,
        store,
        "CP-1",
        "DataTransfer",
        PAYLOAD,
        "--expires-in",
        "600",
        "--supersede-key",
        "k",
    )
    [found] = listed(capsys, store)
    assert found.id == submission_id
    assert (found.station_id, found.action, found.status) == ("CP-1", "DataTransfer", "queued")
    assert found.request == {
        "kind": "raw",
        "action": "DataTransfer",
        "payload": json.loads(PAYLOAD),
    }
    assert found.supersede_key == "k"
    lifetime = (found.expires_at - found.submitted_at).total_seconds()
    assert lifetime == pytest.approx(600)

    status, out, _ = outbox(capsys, "show", "--store", store, submission_id, "--json")
    assert status == 0
    assert Submission.from_dict(json.loads(out)) == found

    status, out, _ = outbox(capsys, "show", "--store", store, submission_id)
    assert status == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["id"] == submission_id
    assert lines["status"] == "queued"
    assert json.loads(lines["request"]) == found.request
    assert "result" not in lines  # nothing to show yet


def test_the_default_expiry_is_the_outbox_ttl(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """Without --expires-in a submission waits 24 hours; without a payload it sends {}."""
    submit(capsys, store, "CP-1", "ClearCache")
    [found] = listed(capsys, store)
    assert found.request["payload"] == {}
    assert (found.expires_at - found.submitted_at).total_seconds() == pytest.approx(24 * 3600)


def test_list_in_text_newest_first_with_the_error_of_a_failure(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """The text listing is one tab-separated line per submission, newest first."""
    first = submit(capsys, store, "CP-1", "DataTransfer", PAYLOAD, "--supersede-key", "k")
    second = submit(capsys, store, "CP-2", "Reset", '{"type": "Soft"}', "--supersede-key", "k")
    status, out, _ = outbox(capsys, "list", "--store", store)
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [row[:4] for row in rows] == [
        [second, "CP-2", "Reset", "queued"],
        [first, "CP-1", "DataTransfer", "queued"],
    ]


def test_a_newer_submission_with_the_same_key_supersedes(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """Two submits with one supersede key for one station leave the newer queued only."""
    older = submit(capsys, store, "CP-1", "DataTransfer", PAYLOAD, "--supersede-key", "p")
    other_station = submit(capsys, store, "CP-2", "DataTransfer", PAYLOAD, "--supersede-key", "p")
    newer = submit(capsys, store, "CP-1", "DataTransfer", PAYLOAD, "--supersede-key", "p")
    statuses = {s.id: s.status for s in listed(capsys, store)}
    assert statuses == {older: "superseded", other_station: "queued", newer: "queued"}


def test_list_filters_by_station_status_and_limit(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """--station, --status and --limit narrow the listing."""
    one = submit(capsys, store, "CP-1", "ClearCache")
    two = submit(capsys, store, "CP-2", "ClearCache")
    three = submit(capsys, store, "CP-1", "ClearCache")
    assert outbox(capsys, "cancel", "--store", store, one)[0] == 0
    assert [s.id for s in listed(capsys, store, "--station", "CP-1")] == [three, one]
    assert [s.id for s in listed(capsys, store, "--status", "queued")] == [three, two]
    assert [s.id for s in listed(capsys, store, "--status", "cancelled")] == [one]
    assert [s.id for s in listed(capsys, store, "--limit", "2")] == [three, two]
    assert listed(capsys, store, "--station", "CP-9") == []


def test_cancel_a_pending_submission_once(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """Cancel succeeds on a queued submission; again, it exits 1 saying it is not pending."""
    submission_id = submit(capsys, store)
    status, out, _ = outbox(capsys, "cancel", "--store", store, submission_id)
    assert (status, out) == (0, f"cancelled {submission_id}\n")
    [found] = listed(capsys, store)
    assert found.status == "cancelled"

    status, out, err = outbox(capsys, "cancel", "--store", store, submission_id)
    assert (status, out) == (1, "")
    assert err == (
        f"csms-kit outbox cancel: submission {submission_id} is cancelled, not pending\n"
    )


@pytest.mark.parametrize("action", ["show", "cancel"])
def test_an_unknown_id_exits_1(
    action: str, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """Show or cancel of an id the store does not have exits 1 and says so."""
    submit(capsys, store)
    status, out, err = outbox(capsys, action, "--store", store, "nope")
    assert (status, out) == (1, "")
    assert err == f"csms-kit outbox {action}: no submission 'nope' in the store\n"


@pytest.mark.parametrize(
    ("payload", "message"),
    [("{oops", "the payload is not JSON"), ("[1, 2]", "the payload must be a JSON object")],
)
def test_submit_refuses_a_payload_that_is_not_a_json_object(
    payload: str, message: str, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """A bad payload exits 1 and queues nothing."""
    status, out, err = outbox(capsys, "submit", "--store", store, "CP-1", "DataTransfer", payload)
    assert (status, out) == (1, "")
    assert err.startswith(f"csms-kit outbox submit: {message}")
    assert listed(capsys, store) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "--store", "STORE", "CP-1", "ClearCache", "--expires-in", "0"],
        ["submit", "--store", "STORE", "CP-1", "ClearCache", "--expires-in", "inf"],
        ["list", "--store", "STORE", "--status", "lost"],
        ["list", "--store", "STORE", "--limit", "0"],
        ["list"],  # no --store
        [],  # no action
    ],
)
def test_bad_outbox_arguments_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], store: str
) -> None:
    """Bad values, a missing --store or a missing action are usage errors (status 2)."""
    argv = [store if word == "STORE" else word for word in argv]
    with pytest.raises(SystemExit) as exited:
        cli.main(["outbox", *argv])
    assert exited.value.code == 2
    assert "usage: csms-kit outbox" in capsys.readouterr().err


def unusable_stores(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Store URLs that cannot be used, with what the error must say."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no SQLite file\x00\xff" * 200)
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    return {
        "corrupt": (str(garbage), f"outbox store {garbage} is unusable: file is not a database"),
        "parent-is-a-file": (
            str(not_a_directory / "outbox.db"),
            f"outbox store {not_a_directory / 'outbox.db'}: no directory {not_a_directory}",
        ),
        "proc": ("/proc/csms-kit-outbox.db", "outbox store /proc/csms-kit-outbox.db: "),
        "unknown-kind": ("ftp://host/x", "unknown outbox store URL 'ftp://host/x'"),
    }


@pytest.mark.parametrize("kind", ["corrupt", "parent-is-a-file", "proc", "unknown-kind"])
@pytest.mark.parametrize(
    "action", [["list"], ["show", "x"], ["cancel", "x"], ["submit", "CP-1", "A"]]
)
def test_an_unusable_store_exits_2_with_one_line(
    kind: str, action: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every action on a corrupt, unwritable or unknown store exits 2 with one clear line."""
    url, message = unusable_stores(tmp_path)[kind]
    status, out, err = outbox(capsys, action[0], "--store", url, *action[1:])
    assert (status, out) == (2, "")
    assert err.startswith(f"csms-kit outbox {action[0]}: {message}")
    assert err.count("\n") == 1


@pytest.mark.parametrize("kind", ["corrupt", "parent-is-a-file", "proc", "unknown-kind"])
def test_serve_with_an_unusable_store_exits_2(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``serve --outbox`` refuses to start on a store it cannot use: status 2, one line."""
    url, message = unusable_stores(tmp_path)[kind]
    before = Path(url).read_bytes() if kind == "corrupt" else None
    assert cli.main(["serve", "--host", HOST, "--port", "0", "--outbox", url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # it never said it was serving
    assert captured.err.startswith(f"csms-kit serve: {message}")
    assert captured.err.count("\n") == 1
    if before is not None:
        assert Path(url).read_bytes() == before  # the operator's file is left as it was


def test_serve_workers_check_the_store_before_starting_any(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --workers, the parent refuses an unusable store itself: no worker starts."""

    def no_workers(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a worker group was started")

    monkeypatch.setattr(csms_kit.workers, "WorkerGroup", no_workers)
    url, message = unusable_stores(tmp_path)["corrupt"]
    argv = ["serve", "--workers", "2", "--registry", "redis://127.0.0.1:1/0", "--outbox", url]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"csms-kit serve: {message}") and err.count("\n") == 1


def test_serve_workers_pass_the_outbox_to_every_worker(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker's command line has the same --outbox."""
    started: list[list[list[str]]] = []

    class Group:
        def __init__(self, commands: list[list[str]], names: list[str]) -> None:
            started.append(commands)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(csms_kit.workers, "WorkerGroup", Group)
    argv = ["serve", "--workers", "3", "--registry", "redis://127.0.0.1:1/0", "--outbox", store]
    assert cli.main(argv) == 0
    [commands] = started
    assert len(commands) == 3
    for command in commands:
        assert command[command.index("--outbox") + 1] == store
        assert command.count("--outbox") == 1


async def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``csms-kit ARGV...`` as a process of its own, without blocking the loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "csms_kit.cli", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
async def test_a_served_csms_delivers_what_other_processes_submit(tmp_path: Path) -> None:
    """``serve --outbox`` delivers what ``outbox submit`` (another process) queued, before
    the station connected and while it is connected; ``outbox show`` has the answers."""
    store = str(tmp_path / "outbox.db")
    port = free_port()
    server = await asyncio.to_thread(
        start_listening,
        [sys.executable, "-m", "csms_kit.cli", "serve", "--host", HOST, "--port", str(port),
         "--outbox", f"sqlite:///{store}"],
        port,
        tmp_path / "serve.log",
    )  # fmt: skip
    station = Recording(f"ws://{HOST}:{port}", "CP-1", "2.0.1")

    async def submitted(data: str) -> str:
        payload = json.dumps({"vendorId": "csms_kit-sim", "data": data})
        done = await run_cli("outbox", "submit", "--store", store, "CP-1", "DataTransfer", payload)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    async def final(submission_id: str) -> Submission:
        for _ in range(100):  # the answer is stored just after the station sent it
            done = await run_cli("outbox", "show", "--store", store, submission_id, "--json")
            assert done.returncode == 0, done.stderr
            submission = Submission.from_dict(json.loads(done.stdout))
            if not submission.pending:
                return submission
            await asyncio.sleep(0.1)
        pytest.fail(f"submission {submission_id} is still {submission.status}")

    try:
        before = await submitted("before")
        await station.start(timeout=10)
        await wait_until(lambda: station.data() == ["before"], 10, "the first command")
        first = await final(before)
        # The station's flush is over; the serving process notices the next submission at
        # its next look at the store (every 5 s by default).
        during = await submitted("during")
        await wait_until(lambda: station.data() == ["before", "during"], 20, "the second")
        second = await final(during)
    finally:
        await station.stop()
        status = await asyncio.to_thread(stop, server)
    assert status == 0, (tmp_path / "serve.log").read_text()
    assert [(s.status, s.result) for s in (first, second)] == [
        ("answered", {"status": "Accepted", "data": "before"}),
        ("answered", {"status": "Accepted", "data": "during"}),
    ]
    assert [m for m, a, _ in station.received if a == "DataTransfer"] == [
        first.message_id,
        second.message_id,
    ]
