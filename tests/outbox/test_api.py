"""The outbox's API: bad input is refused clearly, an unusable store fails at start."""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from csms_kit import InMemoryRegistry, UsageError
from csms_kit.outbox import (
    Outbox,
    OutboxStoreError,
    RawCall,
    SqliteStore,
    Submission,
    deliverable_from_dict,
    store_from_url,
)
from tests.outbox.conftest import data_transfer


async def test_an_outbox_must_be_started_before_use(store_path: Path) -> None:
    outbox = Outbox(store_path)
    with pytest.raises(UsageError, match="not started"):
        await outbox.submit("CP-1", data_transfer(1))
    with pytest.raises(UsageError, match="not started"):
        await outbox.find()


async def test_bad_submissions_are_refused_before_anything_is_stored(make_outbox: Any) -> None:
    outbox: Outbox = await make_outbox()
    with pytest.raises(UsageError, match="station_id"):
        await outbox.submit("", data_transfer(1))
    with pytest.raises(UsageError, match="RawCall or a command"):
        await outbox.submit("CP-1", {"action": "Reset"})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not both"):
        await outbox.submit(
            "CP-1",
            data_transfer(1),
            expires_in=5,
            expires_at=datetime.datetime.now(datetime.timezone.utc),
        )
    with pytest.raises(UsageError, match="cannot queue ghost"):
        await outbox.submit("CP-1", Inexpressible())
    with pytest.raises(UsageError, match="aware"):
        await outbox.submit("CP-1", data_transfer(1), expires_at=datetime.datetime(2100, 1, 1))
    with pytest.raises(UsageError, match="expire before"):
        await outbox.submit("CP-1", data_transfer(1), expires_in=-1)
    assert await outbox.find() == []


class Inexpressible(RawCall):
    """A command that no OCPP version can say."""

    def __init__(self) -> None:
        super().__init__("Ghost", {})

    @property
    def name(self) -> str:
        return "ghost"

    def request(self, version: Any) -> tuple[str, dict[str, Any]]:
        raise UsageError(f"no {version} station knows ghosts")


async def test_wait_for_an_unknown_submission_raises(make_outbox: Any) -> None:
    outbox: Outbox = await make_outbox()
    with pytest.raises(UsageError, match="no submission"):
        await outbox.wait("nope", timeout=1)


async def test_wait_times_out_on_a_submission_still_queued(make_outbox: Any) -> None:
    outbox: Outbox = await make_outbox()
    submission = await outbox.submit("CP-1", data_transfer(1))
    with pytest.raises(TimeoutError, match="still queued"):
        await outbox.wait(submission.id, timeout=0.1)


async def test_find_filters_by_station_and_status_newest_first(make_outbox: Any) -> None:
    outbox: Outbox = await make_outbox()
    a = await outbox.submit("CP-1", data_transfer(1))
    b = await outbox.submit("CP-2", data_transfer(2))
    c = await outbox.submit("CP-1", data_transfer(3))
    await outbox.cancel(c.id)
    assert [s.id for s in await outbox.find()] == [c.id, b.id, a.id]
    assert [s.id for s in await outbox.find(station_id="CP-1")] == [c.id, a.id]
    assert [s.id for s in await outbox.find(status="cancelled")] == [c.id]
    assert [s.id for s in await outbox.find(limit=1)] == [c.id]
    with pytest.raises(UsageError, match="limit"):
        await outbox.find(limit=0)


def test_options_are_checked() -> None:
    with pytest.raises(UsageError, match="max_attempts"):
        Outbox("x.db", max_attempts=0)
    with pytest.raises(UsageError, match="positive"):
        Outbox("x.db", ttl=0)


def test_an_outbox_serves_one_registry() -> None:
    outbox = Outbox("x.db")
    first = InMemoryRegistry()
    outbox.bind(first)
    outbox.bind(first)
    assert outbox.registry is first
    with pytest.raises(UsageError, match="another registry"):
        outbox.bind(InMemoryRegistry())


def test_store_urls() -> None:
    assert store_from_url("sqlite:///data/outbox.db").path == Path("data/outbox.db")  # type: ignore[attr-defined]
    assert store_from_url("sqlite:////var/outbox.db").path == Path("/var/outbox.db")  # type: ignore[attr-defined]
    assert store_from_url("outbox.db").path == Path("outbox.db")  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="sqlite:///"):
        store_from_url("sqlite://outbox.db")
    with pytest.raises(UsageError, match="unknown outbox store"):
        store_from_url("mysql://db/outbox")


def test_a_stored_request_of_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not an outbox request"):
        deliverable_from_dict({"kind": "telepathy"})
    raw = RawCall("Reset", {"type": "Hard"})
    assert deliverable_from_dict(raw.to_dict()) == raw


def test_a_submission_round_trips_through_json() -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    submission = Submission(
        "id-1", "CP-1", "Reset", RawCall("Reset", {"type": "Hard"}).to_dict(), now, now
    ).finished("answered", now, result={"status": "Accepted"})
    assert Submission.from_dict(submission.to_dict()) == submission
    assert not submission.pending


# -- an unusable store fails at start, with the file named ------------------------------


async def test_a_corrupt_store_file_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(OutboxStoreError, match=r"outbox\.db is unusable"):
        await Outbox(path).start()


async def test_an_unwritable_store_location_is_refused_at_start(tmp_path: Path) -> None:
    # Tests may run as root, whom file modes do not stop: /proc takes no new files.
    with pytest.raises(OutboxStoreError, match=r"/proc/csms_kit-outbox\.db"):
        await Outbox("/proc/csms_kit-outbox.db").start()
    with pytest.raises(OutboxStoreError, match="no directory"):
        await Outbox(tmp_path / "missing" / "outbox.db").start()


async def test_a_store_of_a_newer_schema_is_refused(store_path: Path) -> None:
    with sqlite3.connect(store_path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(OutboxStoreError, match="newer"):
        await Outbox(store_path).start()


async def test_a_closed_store_says_so(store_path: Path) -> None:
    store = SqliteStore(store_path)
    async with store:
        assert await store.pending_stations() == []
    with pytest.raises(OutboxStoreError, match="not open"):
        await store.pending_stations()
    await store.aclose()  # idempotent


class SwallowingStore(SqliteStore):
    """Its ``pending_stations`` returns normally when cancelled, as redis-py 8 was seen
    to: the outbox's sweep goes on as if it had not been cancelled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inside = asyncio.Event()
        self.swallowed = 0

    async def pending_stations(self) -> list[str]:
        self.inside.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.swallowed += 1
        return []


async def test_closing_ends_a_sweep_whose_store_swallowed_the_cancellation(
    store_path: Path,
) -> None:
    store = SwallowingStore(store_path)
    outbox = Outbox(store, poll_interval=0.01)
    await outbox.start()
    await asyncio.wait_for(store.inside.wait(), 5.0)
    await asyncio.wait_for(outbox.aclose(), 5.0)  # hung for ever before
    assert store.swallowed == 1
