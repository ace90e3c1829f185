"""A cluster sharing one outbox through Redis: two servers (nodes A and B, each with its
RedisRegistry and its Outbox on a RedisStore) and an API process's Outbox with a
registry and no server, all in this test process, over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from csms_kit import serve
from csms_kit.cluster import RedisRegistry
from csms_kit.demo.csms import DemoCsms
from csms_kit.outbox import Outbox
from csms_kit.outbox.redis import RedisStore
from csms_kit.server import CsmsServer
from tests.cluster.processes import HOST
from tests.helpers import wait_until
from tests.outbox.conftest import FAST, Recording, data_transfer

#: Seconds the API process waits for a submission to be final (reading Redis each
#: ``FAST["poll_interval"]``): a hang guard, not a timing assert.
WAIT = 10.0
#: The nodes look at the store for other processes' submissions this seldom: within
#: ``WAIT`` only a pub/sub poke or a station's arrival can make them deliver.
NODE_POLL = 600.0
API_OPTIONS: dict[str, Any] = dict(FAST)
NODE_OPTIONS: dict[str, Any] = {**FAST, "poll_interval": NODE_POLL}


@dataclass
class Cluster:
    api: Outbox
    nodes: dict[str, CsmsServer]
    outboxes: dict[str, Outbox]

    def url(self, node: str) -> str:
        return f"ws://{HOST}:{self.nodes[node].port}"


@pytest.fixture
async def cluster(redis_url: str, redis_prefix: str) -> AsyncIterator[Cluster]:
    """Nodes A and B serving the demo CSMS and the API process, on one Redis."""
    registry_prefix = f"{redis_prefix}:registry"

    def store() -> RedisStore:
        return RedisStore(redis_url, prefix=redis_prefix)

    async with contextlib.AsyncExitStack() as stack:
        registries = {
            node: await stack.enter_async_context(
                RedisRegistry(redis_url, node_id=node, prefix=registry_prefix)
            )
            for node in ("A", "B", "api")
        }
        outboxes = {
            node: await stack.enter_async_context(
                Outbox(store(), registry=registries[node], **NODE_OPTIONS)
            )
            for node in ("A", "B")
        }
        api = await stack.enter_async_context(
            Outbox(store(), registry=registries["api"], **API_OPTIONS)
        )
        nodes = {
            node: await stack.enter_async_context(
                serve(DemoCsms, HOST, 0, registry=registries[node], outbox=outboxes[node])
            )
            for node in ("A", "B")
        }
        yield Cluster(api, nodes, outboxes)


@contextlib.asynccontextmanager
async def station_at(
    cluster: Cluster, node: str, station_id: str, version: str = "2.0.1"
) -> AsyncIterator[Recording]:
    """A recording station online at ``node`` (connected and accepted at boot)."""
    async with Recording(cluster.url(node), station_id, version) as station:
        yield station


async def test_a_submission_from_the_api_reaches_a_station_on_another_node_at_once(
    cluster: Cluster,
) -> None:
    """The API process submits for a station held by node B: node B, poked through Redis,
    delivers it (its own look at the store is minutes away); the API sees it answered."""
    finished: list[Any] = []
    cluster.outboxes["B"].on_finished = finished.append
    async with station_at(cluster, "B", "CP-B") as station:
        # Node B's look at the store when the station arrived is over: only a poke can
        # make it look again.
        await wait_until(lambda: not cluster.outboxes["B"]._flushes, WAIT, "B idle")
        submission = await cluster.api.submit("CP-B", data_transfer(1))
        final = await cluster.api.wait(submission.id, timeout=WAIT)

    assert (final.status, final.attempts) == ("answered", 1)
    assert final.result == {"status": "Accepted", "data": "1"}
    assert station.data() == ["1"]
    assert [m for m, action, _ in station.received if action == "DataTransfer"] == [
        final.message_id
    ]
    assert [s.id for s in finished] == [submission.id]  # node B delivered it


async def test_an_offline_station_gets_its_commands_from_the_node_it_lands_on(
    cluster: Cluster,
) -> None:
    """Submitted while the station is away: node A delivers when it connects there, in
    order, minus the superseded; later, back at node B, B delivers what was queued since."""
    api = cluster.api
    first = await api.submit("CP-X", data_transfer(1), supersede_key="profile")
    second = await api.submit("CP-X", data_transfer(2))
    third = await api.submit("CP-X", data_transfer(3), supersede_key="profile")
    assert (await api.get(first.id)).status == "superseded"  # type: ignore[union-attr]

    async with station_at(cluster, "A", "CP-X", "1.6") as at_a:
        finals = [await api.wait(s.id, timeout=WAIT) for s in (second, third)]
    assert [s.status for s in finals] == ["answered", "answered"]
    assert at_a.data() == ["2", "3"]

    later = [await api.submit("CP-X", data_transfer(n)) for n in (4, 5)]
    async with station_at(cluster, "B", "CP-X", "2.1") as at_b:
        finals = [await api.wait(s.id, timeout=WAIT) for s in later]
    assert [s.status for s in finals] == ["answered", "answered"]
    assert at_b.data() == ["4", "5"]
    assert at_a.data() == ["2", "3"]  # nothing twice
    assert await api.find(station_id="CP-X", status="queued") == []


async def test_a_waiter_in_another_process_hears_the_end_at_once(cluster: Cluster) -> None:
    """An API outbox that reads the store only every 10 minutes still sees node B's
    answer within the wait: Redis tells it the submission is final."""
    assert cluster.api.registry is not None
    async with (
        Outbox(
            RedisStore(cluster.api.store.url, prefix=cluster.api.store.prefix),  # type: ignore[attr-defined]
            registry=cluster.api.registry,
            **{**API_OPTIONS, "poll_interval": NODE_POLL},
        ) as api,
        station_at(cluster, "B", "CP-B"),
    ):
        submission = await api.submit("CP-B", data_transfer(1))
        # Not wait(timeout=...): that reads the store once more when it runs out.
        final = await asyncio.wait_for(api.wait(submission.id), WAIT)
    assert final.status == "answered"
