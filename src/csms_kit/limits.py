"""Limits that keep one misbehaving station from hurting the others.

:class:`Limits` is set per session class (``StationSession.limits``):

* ``frames``: a token bucket over every frame the station sends;
* ``per_action``: token buckets over the CALLs of given actions;
* ``on_exceed``: what happens to a station that *breaks the rules* over its limit,
  that is, sends a CALL while one of its CALLs is still in progress (OCPP-J allows
  one at a time): ``"reject"`` answers that CALL with a CALLERROR (GenericError,
  "rate limit exceeded") and drops a SEND; ``"close"`` closes the connection with
  1008 (policy violation);
* ``max_bad_frames``: after this many malformed frames in a row the connection is
  closed with 1002 (protocol error).

A station that keeps to one CALL at a time is never refused, however fast it goes
(an offline queue flush is hundreds of CALLs in a row): over its limit, its next
frame is simply read later, so TCP slows it down. Its answers to our CALLs always
get through. Each episode of throttling is logged once at WARNING.

A token bucket of ``rate`` tokens per second and ``burst`` capacity allows short
bursts and a steady pace; memory is two floats per bucket, created only for the
limits in use.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from csms_kit.protocol.events import Dropped, IncomingCall, IncomingSend, Reply, UnusableAnswer

__all__ = ["Limits", "Police", "RateLimit", "TokenBucket"]


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
        return not self.wait()

    def wait(self) -> float:
        """Take one token and return 0.0, or return how long until one is there."""
        now = time.monotonic()
        limit = self.limit
        self.tokens = min(limit.burst, self.tokens + (now - self.stamp) * limit.rate)
        self.stamp = now
        if self.tokens < 1:
            return (1 - self.tokens) / limit.rate
        self.tokens -= 1
        return 0.0

    def borrow(self) -> None:
        """Take the token :meth:`wait` said is missing, on credit: the next wait is longer."""
        self.tokens -= 1


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


#: Verdicts of :meth:`Police.judge` (0: let the frame through).
SLOW, REFUSE, CLOSE, CLOSE_MALFORMED = 1, 2, 3, 4


class Police:
    """One connection's :class:`Limits` at work; a connection without limits has none.

    The reader asks :meth:`pace` before parsing a frame and :meth:`judge` after; the
    connection carries out the verdicts (it owns the socket and the log lines).
    """

    __slots__ = ("_actions", "_episode", "action_wait", "bad_in_row", "frames", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.frames = TokenBucket(limits.frames) if limits.frames is not None else None
        self._actions: dict[str, TokenBucket] | None = None
        self._episode = False
        self.bad_in_row = 0
        #: Seconds to wait before handling the CALL judged :data:`SLOW`.
        self.action_wait = 0.0

    @classmethod
    def for_limits(cls, limits: Limits) -> Police | None:
        """A police for ``limits``, or ``None`` when every limit is off."""
        if limits.frames is None and not limits.per_action and limits.max_bad_frames is None:
            return None
        return cls(limits)

    def pace(self) -> float:
        """Take a frame token: 0.0, or the seconds until one is there."""
        if self.frames is None:
            return 0.0
        wait = self.frames.wait()
        if not wait:
            self._episode = False  # within the limit again: a later excess is news
        return wait

    def start_episode(self) -> bool:
        """Note that the station is over a limit; ``True`` the first time in a row."""
        first = not self._episode
        self._episode = True
        return first

    def judge(self, event: Any, over: bool, calls_in_progress: int) -> int:
        """The verdict on a parsed frame; 0 to let it through.

        ``over`` says the frame came over the frame limit while the station had a
        CALL in progress; ``calls_in_progress`` counts the station's CALLs awaiting
        an answer, this one included.
        """
        kind = type(event)
        limits = self.limits
        if limits.max_bad_frames is not None:
            if (
                (kind is Reply and event.malformed)
                or (kind is Dropped and event.kind == "malformed")
                or kind is UnusableAnswer
            ):
                self.bad_in_row += 1
                if self.bad_in_row >= limits.max_bad_frames:
                    return CLOSE_MALFORMED
            else:
                self.bad_in_row = 0
        if kind is not IncomingCall and kind is not IncomingSend:
            return 0  # answers to our CALLs always get through; the rest is dropped anyway
        if over:
            return CLOSE if limits.on_exceed == "close" else REFUSE
        if limits.per_action:
            limit = limits.per_action.get(event.action)
            if limit is not None:
                if self._actions is None:
                    self._actions = {}
                bucket = self._actions.get(event.action)
                if bucket is None:
                    bucket = self._actions[event.action] = TokenBucket(limit)
                wait = bucket.wait()
                if wait:
                    if calls_in_progress <= 1:
                        bucket.borrow()
                        self.action_wait = wait
                        return SLOW
                    return CLOSE if limits.on_exceed == "close" else REFUSE
        return 0
