"""The real servers of the cluster tests answer real clients."""

from __future__ import annotations

import nats
import pytest
import redis.asyncio
from nats.errors import NoRespondersError


async def test_redis_server_answers(redis_url: str, prefix: str) -> None:
    """redis-server answers PING and keeps what it is given."""
    client = redis.asyncio.from_url(redis_url)
    try:
        assert await client.ping() is True
        await client.set(f"{prefix}:key", b"value")
        assert await client.get(f"{prefix}:key") == b"value"
    finally:
        await client.aclose()


async def test_nats_server_round_trip(nats_url: str, prefix: str) -> None:
    """nats-server delivers a published message to a subscriber."""
    client = await nats.connect(nats_url, allow_reconnect=False)
    try:
        subscription = await client.subscribe(f"{prefix}.hello")
        await client.publish(f"{prefix}.hello", b"world")
        message = await subscription.next_msg(timeout=2)
        assert message.data == b"world"
    finally:
        await client.close()


async def test_nats_server_says_no_responders(nats_url: str, prefix: str) -> None:
    """A request nobody listens to fails at once (the fail-fast path NATS routing needs)."""
    client = await nats.connect(nats_url, allow_reconnect=False)
    try:
        with pytest.raises(NoRespondersError):
            await client.request(f"{prefix}.nobody", b"", timeout=2)
    finally:
        await client.close()
