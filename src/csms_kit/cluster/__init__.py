"""Registries shared by many processes and machines.

:class:`RedisRegistry` and :class:`NatsRegistry` keep who is connected in Redis or in
NATS (JetStream key-value) and route calls between the processes that share them;
:func:`registry_from_url` builds a registry from a URL. Each needs its client library
(``pip install "csms-kit[redis]"`` or ``"csms-kit[nats]"``), imported only when the
registry is built.

Use the same registry object in a process that holds stations (pass it to
``serve``) and in one that only calls them::

    async with RedisRegistry("redis://localhost:6379/0") as registry:
        await registry.call("CP-1", call.Reset(type="Soft"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from csms_kit.exceptions import UsageError
from csms_kit.registry import ConnectionRegistry, InMemoryRegistry

if TYPE_CHECKING:
    from csms_kit.cluster.nats import NatsRegistry
    from csms_kit.cluster.redis import RedisRegistry

__all__ = ["NatsRegistry", "RedisRegistry", "registry_from_url"]


def registry_from_url(url: str, **options: Any) -> ConnectionRegistry:
    """A registry for ``url``: ``memory://``, ``redis://``, ``rediss://`` or ``nats://``.

    ``options`` go to the registry's constructor (``node_id``, ``duplicate_policy``,
    ...). Use the result with ``async with``, like the classes.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return InMemoryRegistry(**options)
    if scheme in ("redis", "rediss"):
        from csms_kit.cluster.redis import RedisRegistry  # noqa: PLC0415 - optional extra

        return RedisRegistry(url, **options)
    if scheme in ("nats", "tls"):
        from csms_kit.cluster.nats import NatsRegistry  # noqa: PLC0415 - optional extra

        return NatsRegistry(url, **options)
    raise UsageError(f"no registry for {url!r}: use memory://, redis://, rediss:// or nats://")


def __getattr__(name: str) -> Any:
    # The Redis client is an optional extra: import it only when asked for.
    if name == "RedisRegistry":
        from csms_kit.cluster.redis import RedisRegistry  # noqa: PLC0415

        return RedisRegistry
    if name == "NatsRegistry":
        from csms_kit.cluster.nats import NatsRegistry  # noqa: PLC0415

        return NatsRegistry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
