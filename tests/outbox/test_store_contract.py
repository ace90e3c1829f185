"""What every outbox store promises (store.py's docstrings), checked on each store:
SqliteStore on a file, RedisStore on a real redis-server. Then what RedisStore adds:
pub/sub pokes, and a Redis that is unreachable, dies, or holds something unexpected."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from csms_kit.outbox import (
    OutboxStore,
    OutboxStoreError,
    SqliteStore,
    Status,
    Submission,
    store_from_url,
)
from csms_kit.outbox.redis import RedisStore
from tests.cluster.processes import HOST, free_port, kill, start_listening
from tests.helpers import wait_until
from tests.outbox.conftest import data_transfer

UTC = datetime.timezone.utc
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
#: Hang guard for the Redis fault tests (not a timing assert: they fail only if stuck).
GUARD = 30.0

StoreFactory = Callable[[], OutboxStore]


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def submission(
    station_id: str = "CP-1",
    n: int = 0,
    *,
    key: str | None = None,
    expires: float = 3600.0,
    request: dict[str, Any] | None = None,
) -> Submission:
    """A new submission, submitted at ``T0 + n`` s, expiring at ``T0 + expires`` s."""
    return Submission(
        id=uuid.uuid4().hex,
        station_id=station_id,
        action="DataTransfer",
        request=data_transfer(n).to_dict() if request is None else request,
        submitted_at=at(n),
        expires_at=at(expires),
        supersede_key=key,
    )


@pytest.fixture(params=["sqlite", "redis"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Make a store (not opened); each one made in a test uses the same storage."""
    if request.param == "sqlite":
        path = tmp_path / "outbox.db"
        return lambda: SqliteStore(path)
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(url, prefix=prefix)


@pytest.fixture
async def stores(new_store: StoreFactory) -> AsyncIterator[Callable[[], Any]]:
    """``await stores()``: an open store on the test's storage, closed after the test."""
    opened: list[OutboxStore] = []

    async def make() -> OutboxStore:
        store = new_store()
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(stores: Callable[[], Any]) -> OutboxStore:
    made: OutboxStore = await stores()
    return made


# -- add ------------------------------------------------------------------------------------


async def test_add_gives_increasing_sequences_and_keeps_the_data_as_given(
    store: OutboxStore,
) -> None:
    """Each added submission gets a greater sequence; it reads back equal, awkward data too."""
    awkward = {
        "kind": "raw",
        "action": "DataTransfer",
        "payload": {
            "vendorId": "v",
            "empty": [],
            "nothing": {},
            "numbers": [0, -1, 2.5, 0.1, 12345678901234567890, 1e-7],
            "none": None,
            "text": 'ü 😀 "quoted" \\ \n',
        },
    }
    given = [
        submission("CP-1", 0),
        submission('CP-ü 😀 "2":x', 1, request=awkward, key='key "ü"'),
        submission("CP-1", 2),
    ]
    stored = []
    for one in given:
        added, superseded = await store.add(one)
        assert superseded == []
        stored.append(added)
    assert [s.sequence for s in stored] == sorted({s.sequence for s in stored})
    assert stored[0].sequence > 0
    for one, added in zip(given, stored, strict=True):
        assert added.id == one.id and added.request == one.request
        assert (added.status, added.attempts, added.message_id) == ("queued", 0, None)
        assert (added.submitted_at, added.expires_at) == (one.submitted_at, one.expires_at)
        assert added.supersede_key == one.supersede_key
        assert await store.get(added.id) == added
    assert await store.next_pending('CP-ü 😀 "2":x') == stored[1]
    assert await store.get("no-such-id") is None


async def test_add_supersedes_only_a_queued_submission_of_the_same_station_and_key(
    store: OutboxStore,
) -> None:
    """Supersede: same station and key, still queued; never sent ones, other keys or stations."""
    first, _ = await store.add(submission("CP-1", 0, key="profile"))
    other_key, _ = await store.add(submission("CP-1", 1, key="other"))
    elsewhere, _ = await store.add(submission("CP-2", 2, key="profile"))
    no_key, _ = await store.add(submission("CP-1", 3))

    second, superseded = await store.add(submission("CP-1", 4, key="profile"))
    assert [s.id for s in superseded] == [first.id]
    (old,) = superseded
    assert old.status == "superseded" and old.finished_at == second.submitted_at
    assert second.id in (old.error or "")
    assert await store.get(first.id) == old
    for untouched in (other_key, elsewhere, no_key):
        assert (await store.get(untouched.id)) == untouched

    # no key: nothing to supersede, nothing superseded
    assert (await store.add(submission("CP-1", 5)))[1] == []
    assert (await store.get(no_key.id)) == no_key

    # a sent one stays: the station may already have it
    assert await store.mark_sent(second.id, "m-2") is not None
    third, superseded = await store.add(submission("CP-1", 6, key="profile"))
    assert superseded == []
    assert (await store.get(second.id)).status == "sent"  # type: ignore[union-attr]
    # ...but the queued one after it is superseded by the next
    fourth, superseded = await store.add(submission("CP-1", 7, key="profile"))
    assert [s.id for s in superseded] == [third.id]
    assert (await store.get(second.id)).status == "sent"  # type: ignore[union-attr]

    # a final one is not superseded again
    await store.finish(fourth.id, "cancelled", at(8))
    assert (await store.add(submission("CP-1", 9, key="profile")))[1] == []
    assert (await store.get(fourth.id)).status == "cancelled"  # type: ignore[union-attr]


# -- mark_sent and finish -------------------------------------------------------------------


async def test_mark_sent_counts_attempts_and_keeps_the_message_id(store: OutboxStore) -> None:
    """Each attempt: status sent, attempts + 1, the messageId given; none once final."""
    added, _ = await store.add(submission())
    sent = await store.mark_sent(added.id, "message-1")
    assert sent is not None
    assert (sent.status, sent.attempts, sent.message_id) == ("sent", 1, "message-1")
    again = await store.mark_sent(added.id, "message-1")
    assert again is not None and (again.attempts, again.message_id) == (2, "message-1")
    assert await store.get(added.id) == again
    assert again.request == added.request and again.sequence == added.sequence

    await store.finish(added.id, "answered", at(1), result={"status": "Accepted"})
    assert await store.mark_sent(added.id, "message-2") is None
    final = await store.get(added.id)
    assert final is not None and (final.attempts, final.message_id) == (2, "message-1")
    assert await store.mark_sent("no-such-id", "message-3") is None


async def test_finish_applies_only_to_a_pending_submission(store: OutboxStore) -> None:
    """finish gives the final status and what came with it, once; None after that."""
    queued, _ = await store.add(submission("CP-1", 0))
    sent, _ = await store.add(submission("CP-1", 1))
    await store.mark_sent(sent.id, "m")

    answered = await store.finish(
        sent.id, "answered", at(5), result={"status": "Accepted", "data": [], "n": 2.5}
    )
    assert answered is not None
    assert (answered.status, answered.finished_at) == ("answered", at(5))
    assert answered.result == {"status": "Accepted", "data": [], "n": 2.5}
    assert (answered.attempts, answered.message_id) == (1, "m")
    failed = await store.finish(
        queued.id, "failed", at(6), error="no such thing here", error_code="NotSupported"
    )
    assert failed is not None
    assert (failed.status, failed.error, failed.error_code, failed.result) == (
        "failed",
        "no such thing here",
        "NotSupported",
        None,
    )

    assert await store.finish(sent.id, "cancelled", at(7), error="cancelled") is None
    assert await store.finish(queued.id, "answered", at(7)) is None
    assert await store.get(sent.id) == answered
    assert await store.get(queued.id) == failed
    assert await store.finish("no-such-id", "cancelled", at(7)) is None


async def test_a_cancel_and_a_delivery_racing_from_two_processes_only_one_wins(
    stores: Callable[[], Any],
) -> None:
    """Two stores on one storage finish the same submissions at once: one wins each."""
    first: OutboxStore = await stores()
    second: OutboxStore = await stores()
    added = [(await first.add(submission("CP-1", n)))[0] for n in range(20)]
    for one in added:
        await first.mark_sent(one.id, f"m-{one.id}")
    outcomes = await asyncio.gather(
        *(
            finishing
            for one in added
            for finishing in (
                first.finish(one.id, "cancelled", at(30), error="cancelled"),
                second.finish(one.id, "answered", at(30), result={"status": "Accepted"}),
            )
        )
    )
    for index, one in enumerate(added):
        cancel, answer = outcomes[2 * index : 2 * index + 2]
        winners = [o for o in (cancel, answer) if o is not None]
        assert len(winners) == 1, (cancel, answer)
        assert await second.get(one.id) == winners[0]
    assert await first.next_pending("CP-1") is None


# -- what delivery asks ---------------------------------------------------------------------


async def test_next_pending_is_the_lowest_sequence_pending_sent_or_queued(
    store: OutboxStore,
) -> None:
    """next_pending: the station's pending submission with the lowest sequence."""
    a, _ = await store.add(submission("CP-1", 0))
    other, _ = await store.add(submission("CP-2", 1))
    b, _ = await store.add(submission("CP-1", 2))
    c, _ = await store.add(submission("CP-1", 3))
    assert (await store.next_pending("CP-1")) == a
    sent = await store.mark_sent(a.id, "m-a")
    assert (await store.next_pending("CP-1")) == sent  # sent, not answered: sent again
    await store.finish(a.id, "answered", at(4))
    assert (await store.next_pending("CP-1")) == b
    await store.mark_sent(c.id, "m-c")  # out of order: b is still first
    assert (await store.next_pending("CP-1")).id == b.id  # type: ignore[union-attr]
    await store.finish(b.id, "cancelled", at(5))
    assert (await store.next_pending("CP-1")).id == c.id  # type: ignore[union-attr]
    await store.finish(c.id, "failed", at(6))
    assert await store.next_pending("CP-1") is None
    assert await store.next_pending("CP-2") == other
    assert await store.next_pending("CP-9") is None


async def test_pending_stations_are_those_with_a_queued_or_sent_submission(
    store: OutboxStore,
) -> None:
    """pending_stations follows adds, sends, supersedes and finishes."""
    assert await store.pending_stations() == []
    await store.add(submission("CP-1", 0, key="k"))
    b, _ = await store.add(submission("CP-2", 1))
    assert sorted(await store.pending_stations()) == ["CP-1", "CP-2"]
    await store.add(submission("CP-1", 2, key="k"))  # supersedes a: CP-1 still pending
    assert sorted(await store.pending_stations()) == ["CP-1", "CP-2"]
    await store.mark_sent(b.id, "m")
    assert sorted(await store.pending_stations()) == ["CP-1", "CP-2"]
    await store.finish(b.id, "answered", at(3))
    assert await store.pending_stations() == ["CP-1"]
    (last,) = await store.find(station_id="CP-1", status="queued")
    await store.finish(last.id, "cancelled", at(4))
    assert await store.pending_stations() == []


async def test_expire_finishes_pending_submissions_whose_time_has_come(
    store: OutboxStore,
) -> None:
    """expire(now): pending ones expiring at or before now become expired, in order."""
    a, _ = await store.add(submission("CP-1", 0, expires=10))
    b, _ = await store.add(submission("CP-2", 1, expires=20))
    c, _ = await store.add(submission("CP-1", 2, expires=30))
    done, _ = await store.add(submission("CP-1", 3, expires=5))
    await store.mark_sent(b.id, "m-b")
    answered = await store.finish(done.id, "answered", at(4))

    expired = await store.expire(at(20))
    assert [s.id for s in expired] == [a.id, b.id]
    for one in expired:
        assert (one.status, one.error, one.finished_at) == ("expired", "expired", at(20))
        assert await store.get(one.id) == one
    assert expired[1].attempts == 1  # a sent one expires too
    assert await store.get(done.id) == answered
    assert await store.expire(at(20)) == []
    assert await store.next_pending("CP-1") == c
    assert await store.pending_stations() == ["CP-1"]

    assert [s.id for s in await store.expire(at(100))] == [c.id]
    assert await store.pending_stations() == []


async def test_purge_deletes_final_submissions_finished_before_a_time(
    store: OutboxStore,
) -> None:
    """purge(before): final ones finished strictly before go; pending ones never."""
    a, _ = await store.add(submission("CP-1", 0))
    b, _ = await store.add(submission("CP-2", 1))
    pending, _ = await store.add(submission("CP-1", 2, expires=10))
    d, _ = await store.add(submission("CP-1", 3))
    await store.finish(a.id, "answered", at(10))
    await store.finish(b.id, "cancelled", at(20))
    await store.finish(d.id, "failed", at(30))

    assert await store.purge(at(20)) == 1
    assert await store.get(a.id) is None
    assert [s.id for s in await store.find()] == [d.id, pending.id, b.id]
    assert [s.id for s in await store.find(station_id="CP-1")] == [d.id, pending.id]
    assert await store.purge(at(20)) == 0

    assert await store.purge(at(1000)) == 2
    assert [s.id for s in await store.find()] == [pending.id]
    assert await store.next_pending("CP-1") == pending
    # once expired, it may go too
    await store.expire(at(10))
    assert await store.purge(at(11)) == 1
    assert await store.find() == []


async def test_find_is_newest_first_filtered_by_station_and_status(store: OutboxStore) -> None:
    """find: newest first; station_id, status and limit narrow it."""
    added = [
        (await store.add(submission(station, n)))[0]
        for n, station in enumerate(["CP-1", "CP-2", "CP-1", "CP-1", "CP-2", "CP-1"])
    ]
    await store.finish(added[0].id, "answered", at(10))
    await store.finish(added[3].id, "answered", at(11))
    await store.finish(added[4].id, "answered", at(12))
    await store.mark_sent(added[5].id, "m")
    newest_first = [s.id for s in reversed(added)]

    assert [s.id for s in await store.find()] == newest_first
    assert await store.find() == [await store.get(i) for i in newest_first]
    assert [s.id for s in await store.find(station_id="CP-1")] == [
        added[i].id for i in (5, 3, 2, 0)
    ]
    assert [s.id for s in await store.find(status="answered")] == [added[i].id for i in (4, 3, 0)]
    assert [s.id for s in await store.find(station_id="CP-1", status="answered")] == [
        added[3].id,
        added[0].id,
    ]
    assert [s.id for s in await store.find(status="sent")] == [added[5].id]
    assert [s.id for s in await store.find(limit=2)] == newest_first[:2]
    assert [s.id for s in await store.find(status="answered", limit=2)] == [
        added[4].id,
        added[3].id,
    ]
    assert await store.find(station_id="CP-9") == []
    assert await store.find(status="expired") == []


async def test_find_with_a_status_looks_past_many_newer_submissions(
    store: OutboxStore,
) -> None:
    """find(status=...) finds matches behind hundreds of others, each once, up to limit."""
    oldest, _ = await store.add(submission("CP-1", 0))
    await store.finish(oldest.id, "answered", at(1))
    newer = [(await store.add(submission("CP-1", n)))[0] for n in range(1, 451)]
    for one in newer[::2]:
        await store.finish(one.id, "cancelled", at(500))
    queued, cancelled = newer[1::2], newer[::2]

    assert [s.id for s in await store.find(status="answered")] == [oldest.id]
    assert [s.id for s in await store.find(station_id="CP-1", status="answered")] == [oldest.id]
    by_status: list[tuple[Status, list[Submission]]] = [
        ("queued", queued),
        ("cancelled", cancelled),
    ]
    for status, matching in by_status:
        newest = [s.id for s in reversed(matching)]
        assert [s.id for s in await store.find(status=status, limit=3)] == newest[:3]
        assert [s.id for s in await store.find(status=status, limit=200)] == newest[:200]
        assert [s.id for s in await store.find(status=status, limit=1000)] == newest


# -- lifetime -------------------------------------------------------------------------------


async def test_submissions_persist_across_close_and_reopen(new_store: StoreFactory) -> None:
    """A store closed and opened again (a new object: a restart) finds everything."""
    first = new_store()
    async with first:
        a, _ = await first.add(submission("CP-1", 0, key="k"))
        b, _ = await first.add(submission("CP-1", 1))
        c, _ = await first.add(submission("CP-2", 2, key="k"))
        sent = await first.mark_sent(a.id, "m-a")
        answered = await first.finish(c.id, "answered", at(3), result={"data": [1]})
        before = await first.find()

    second = new_store()
    async with second:
        assert await second.find() == before
        assert await second.get(a.id) == sent
        assert await second.get(c.id) == answered
        assert await second.next_pending("CP-1") == sent
        assert await second.pending_stations() == ["CP-1"]
        d, superseded = await second.add(submission("CP-1", 4, key="k"))
        assert superseded == []  # a was sent before the restart
        assert d.sequence > max(s.sequence for s in (a, b, c))
        assert await second.next_pending("CP-1") == sent


async def test_a_store_is_used_only_while_open(new_store: StoreFactory) -> None:
    """Before open and after aclose a store refuses with OutboxStoreError; both idempotent."""
    store = new_store()
    with pytest.raises(OutboxStoreError, match="not open"):
        await store.get("x")
    await store.aclose()  # not open yet: nothing to do
    await store.open()
    await store.open()
    added, _ = await store.add(submission())
    assert await store.get(added.id) == added
    await store.listen(lambda station_id: None)  # optional, never an error
    await store.aclose()
    await store.aclose()
    with pytest.raises(OutboxStoreError, match="not open"):
        await store.add(submission())


# -- RedisStore only ------------------------------------------------------------------------


@pytest.fixture
async def redis_stores(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """``await redis_stores(**options)``: an open RedisStore on the test's prefix."""
    opened: list[RedisStore] = []

    async def make(**options: Any) -> RedisStore:
        store = RedisStore(redis_url, **{"prefix": redis_prefix, **options})
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


async def test_redis_listeners_hear_submissions_added_by_another_store(
    redis_stores: Callable[..., Any],
) -> None:
    """listen(): every add, by any process, calls the listeners with the station id."""
    writer: RedisStore = await redis_stores()
    reader: RedisStore = await redis_stores()
    heard: list[str] = []

    def broken(station_id: str) -> None:
        raise RuntimeError("a listener that fails")

    await reader.listen(broken)
    await reader.listen(heard.append)
    for station_id in ("CP-1", 'CP-ü "2"', "CP-1"):
        await writer.add(submission(station_id))
    await wait_until(lambda: len(heard) == 3, 5, "three pokes heard")
    assert heard == ["CP-1", 'CP-ü "2"', "CP-1"]


async def test_redis_store_from_url_and_its_options(redis_url: str, redis_prefix: str) -> None:
    """store_from_url gives a RedisStore with the options; repr masks a password."""
    store = store_from_url(redis_url, prefix=redis_prefix, max_connections=4)
    assert isinstance(store, RedisStore) and store.prefix == redis_prefix
    async with store:
        added, _ = await store.add(submission())
        assert await store.get(added.id) == added
    secret = RedisStore("redis://user:s3cret@localhost:6379/0")
    assert "s3cret" not in repr(secret) and "user:***@localhost:6379" in repr(secret)


async def test_redis_unreachable_at_open_fails_at_once_naming_the_url() -> None:
    """open() against nothing: OutboxStoreError naming the URL (password masked), no retries."""
    url = f"redis://user:s3cret@{HOST}:{free_port()}/0"
    store = RedisStore(url)
    with pytest.raises(OutboxStoreError) as caught:
        await asyncio.wait_for(store.open(), GUARD)
    message = str(caught.value)
    assert f"user:***@{HOST}" in message and "s3cret" not in message
    with pytest.raises(OutboxStoreError, match="not open"):
        await store.get("x")
    await store.aclose()

    with pytest.raises(OutboxStoreError, match="redis://nowhere:port"):
        await RedisStore("redis://nowhere:port/0").open()


async def test_redis_newer_schema_is_refused(
    redis_url: str, redis_prefix: str, redis_stores: Callable[..., Any]
) -> None:
    """A prefix written by a newer csms_kit: a clear error at open, nothing touched."""
    client = redis.asyncio.from_url(redis_url)
    try:
        await client.set(f"{redis_prefix}:schema", 2)
    finally:
        await client.aclose()
    with pytest.raises(OutboxStoreError, match=r"schema version 2.*upgrade csms_kit"):
        await redis_stores()


async def test_redis_refuses_a_duplicate_id_and_an_unreadable_submission(
    redis_url: str, redis_prefix: str, redis_stores: Callable[..., Any]
) -> None:
    """An id added twice is refused (the first kept); a corrupt hash raises OutboxStoreError."""
    store: RedisStore = await redis_stores()
    given = submission()
    added, _ = await store.add(given)
    with pytest.raises(OutboxStoreError, match="already stored"):
        await store.add(given)
    assert await store.get(added.id) == added
    assert [s.id for s in await store.find()] == [added.id]

    client = redis.asyncio.from_url(redis_url)
    try:
        await client.hset(f"{redis_prefix}:submission:{added.id}", "request", "{not json")
    finally:
        await client.aclose()
    with pytest.raises(OutboxStoreError, match="unreadable"):
        await store.get(added.id)


async def test_redis_expires_and_purges_in_batches(
    redis_stores: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """expire and purge work through any number of submissions, a batch per script."""
    monkeypatch.setattr("csms_kit.outbox.redis._BATCH", 3)
    store: RedisStore = await redis_stores()
    added = [(await store.add(submission(f"CP-{n % 2}", n, expires=10)))[0] for n in range(7)]
    assert [s.id for s in await store.expire(at(10))] == [s.id for s in added]
    assert await store.pending_stations() == []
    assert await store.purge(at(11)) == 7
    assert await store.find() == []


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """``own_redis()`` (again after a kill): a redis-server of the test's own, its URL; one
    port throughout, so that clients find it again."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    processes: list[Any] = []

    def start() -> Any:
        command = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        processes.append(start_listening(command, port, tmp_path / "redis.log", cwd=tmp_path))
        return processes[-1]

    start.url = f"redis://{HOST}:{port}/0"  # type: ignore[attr-defined]
    yield start
    for process in processes:
        kill(process)


async def test_redis_dying_raises_store_errors_and_listening_resumes_when_it_is_back(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed: calls raise OutboxStoreError, the subscription retries; Redis back:
    the listener hears adds again; closing never raises."""
    server = own_redis()
    reader, writer, late = (RedisStore(own_redis.url) for _ in range(3))
    heard: list[str] = []
    try:
        for store in (reader, writer, late):
            await store.open()
        await reader.listen(heard.append)
        await writer.add(submission("CP-before"))
        await wait_until(lambda: heard == ["CP-before"], 5, "the first poke")

        with caplog.at_level(logging.WARNING, logger="csms_kit.outbox"):
            kill(server)
            with pytest.raises(OutboxStoreError, match=own_redis.url):
                await asyncio.wait_for(writer.add(submission("CP-lost")), GUARD)
            with pytest.raises(OutboxStoreError):
                await asyncio.wait_for(writer.get("x"), GUARD)
            with pytest.raises(OutboxStoreError, match="cannot subscribe"):
                await asyncio.wait_for(late.listen(heard.append), GUARD)
            await wait_until(
                lambda: "subscription lost" in caplog.text, GUARD, "the listener saw it"
            )

        server = own_redis()
        # Adds made before the subscription is back are not heard: add until one is.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD
        while "CP-after" not in heard:
            assert loop.time() < deadline, "the listener never heard Redis again"
            # A pooled connection to the dead server fails once: the next one is new.
            with contextlib.suppress(OutboxStoreError):
                await writer.add(submission("CP-after"))
            await asyncio.sleep(0.1)
        kill(server)  # dead again: closing must not raise
    finally:
        for store in (reader, writer, late):
            await store.aclose()
