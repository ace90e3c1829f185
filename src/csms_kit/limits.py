"""Limits that keep one misbehaving station from hurting the others.

:class:`Limits` is set per session class (``StationSession.limits``):

* ``frames``: a token bucket over every frame the station sends;
* ``per_action``: token buckets over the CALLs of given actions;
* ``on_exceed``: ``"reject"`` answers a CALL over its limit with a CALLERROR
  (GenericError, "rate limit exceeded") and drops a SEND over it; other frames (the
  station's answers to our CALLs, malformed frames) are still processed as usual.
  ``"close"`` closes the connection with 1008 (policy violation);
* ``max_bad_frames``: after this many malformed frames in a row the connection is
  closed with 1002 (protocol error).

A token bucket of ``rate`` tokens per second and ``burst`` capacity allows short
bursts and a steady pace; memory is two floats per bucket, created only for the
limits in use.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Limits", "RateLimit", "TokenBucket"]


@dataclass(frozen=True)
class RateLimit:
    """At most ``burst`` at once, refilled at ``rate`` per second."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a RateLimit needs rate > 0 and burst >= 1")


class TokenBucket:
    """A token bucket for one :class:`RateLimit`."""

    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Take one token; ``False`` if the bucket is empty."""
        now = time.monotonic()
        limit = self.limit
        self.tokens = min(limit.burst, self.tokens + (now - self.stamp) * limit.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class Limits:
    """What one station may do; ``None`` turns a limit off. See the module docstring."""

    frames: RateLimit | None = RateLimit(rate=20, burst=200)
    per_action: Mapping[str, RateLimit] = field(default_factory=dict)
    on_exceed: Literal["reject", "close"] = "reject"
    max_bad_frames: int | None = 10

    def __post_init__(self) -> None:
        if self.on_exceed not in ("reject", "close"):
            raise ValueError("on_exceed must be 'reject' or 'close'")
        if self.max_bad_frames is not None and self.max_bad_frames < 1:
            raise ValueError("max_bad_frames must be at least 1")


#: No limits at all.
UNLIMITED = Limits(frames=None, max_bad_frames=None)
