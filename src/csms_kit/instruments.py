"""Instruments: observers that metrics, tracing and logs plug into.

An instrument is any object with some of the methods of :class:`Instrument`; each is
optional, synchronous, and called at one fixed point, once per occurrence::

    class Counting(Instrument):
        def __init__(self) -> None:
            self.calls = collections.Counter()

        def call_finished(self, station_id, direction, action, message_id, outcome, duration):
            self.calls[direction, action, outcome] += 1

    async with serve(MySession, "0.0.0.0", 9000, instruments=[Counting()]):
        ...

========================  ===========================================================
method                    called when
========================  ===========================================================
``handshake_rejected``    a connection is refused at the handshake (HTTP ``status``)
``connection_opened``     a station's session is registered and about to read
``connection_closed``     that session has ended (close ``code`` and ``reason``)
``frame_received``        a text frame arrived (``kind``, ``action`` when known, size)
``frame_sent``            a text frame was written
``call_started``          a CALL began: ``"in"`` (the station's, its handler about to
                          run) or ``"out"`` (ours, about to queue or go out)
``call_finished``         that CALL ended: ``outcome`` is ``"result"``, ``"error"``,
                          ``"timeout"`` or ``"disconnected"`` (for ``"in"``: the
                          connection ended before the answer went out); ``duration``
                          in seconds (for ``"in"``: the handler's time until the answer)
``frame_refused``         a frame answered with a CALLERROR or dropped without
                          reaching a handler (``malformed``: it broke OCPP-J)
``throttled``             a station over its rate limit: ``"slowed"`` (read later),
                          ``"refused"`` or ``"closed"``
``handler_failed``        a handler or ``@after`` hook raised (not an ``RpcError``)
``keepalive_timeout``     a station is closed for not answering a ping in time (or
                          not reading for a whole ping interval)
========================  ===========================================================

``call_started`` and ``call_finished`` of one CALL run in the same task, and for
``"in"`` the handler runs between them in that task too: an instrument may make
something current there (a tracing span, in a context variable) and undo it at
``call_finished``.

``kind`` is the frame's type: ``"call"``, ``"result"``, ``"error"``,
``"resulterror"``, ``"send"``, or ``"invalid"`` for a frame that broke OCPP-J (a
well-formed CALL refused before its handler is still a ``"call"``). Error codes are
reported by their :class:`~csms_kit.ErrorCode` name, the same for every version.

Instruments must be quick and must not raise: they run on the connection's reader.
A method that raises is logged and the frame's work goes on. With no instrument
given, nothing is called and nothing is timed: each point costs one attribute test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

__all__ = ["Direction", "Instrument", "Instruments", "Outcome", "StationVersions"]

logger = logging.getLogger("csms_kit.instruments")

Direction = Literal["in", "out"]
Outcome = Literal["result", "error", "timeout", "disconnected"]


class Instrument:
    """The points an instrument may observe; subclass and define the ones you need.

    Subclassing is optional: any object with some of these methods will do.
    """

    def handshake_rejected(self, station_id: str | None, status: int, reason: str) -> None:
        """A connection was refused at the handshake with HTTP ``status``."""

    def connection_opened(self, station_id: str, version: str) -> None:
        """A station's connection was accepted and its session registered."""

    def connection_closed(self, station_id: str, code: int | None, reason: str) -> None:
        """A station's session has ended."""

    def frame_received(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        """A text frame of ``size`` characters arrived."""

    def frame_sent(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        """A text frame of ``size`` characters was written."""

    def call_started(
        self, station_id: str, direction: Direction, action: str, message_id: str
    ) -> None:
        """A CALL began (see the module docstring)."""

    def call_finished(
        self,
        station_id: str,
        direction: Direction,
        action: str,
        message_id: str,
        outcome: Outcome,
        duration: float,
    ) -> None:
        """A CALL ended with ``outcome`` after ``duration`` seconds."""

    def frame_refused(
        self, station_id: str, code: str | None, reason: str, malformed: bool
    ) -> None:
        """A frame was answered with CALLERROR ``code`` (or dropped: ``None``) unhandled."""

    def throttled(self, station_id: str, how: Literal["slowed", "refused", "closed"]) -> None:
        """A station went over its rate limit."""

    def handler_failed(self, station_id: str, action: str, error: BaseException) -> None:
        """A handler or ``@after`` hook raised something other than an ``RpcError``."""

    def keepalive_timeout(self, station_id: str, reason: str) -> None:
        """The keepalive closes a station's connection (1011): ``reason`` says why."""


_POINTS = tuple(name for name in vars(Instrument) if not name.startswith("_"))


class Instruments:
    """The instruments of a server, as one object the connections call into.

    Each point is an attribute: ``None`` when no instrument observes it (so the caller
    skips it with one test), else a function calling every instrument that does.
    Instrument subclasses count as observing only the methods they override.
    """

    __slots__ = ("_instruments", *_POINTS)

    handshake_rejected: Callable[..., None] | None
    connection_opened: Callable[..., None] | None
    connection_closed: Callable[..., None] | None
    frame_received: Callable[..., None] | None
    frame_sent: Callable[..., None] | None
    call_started: Callable[..., None] | None
    call_finished: Callable[..., None] | None
    frame_refused: Callable[..., None] | None
    throttled: Callable[..., None] | None
    handler_failed: Callable[..., None] | None
    keepalive_timeout: Callable[..., None] | None

    def __init__(self, instruments: Iterable[Any] = ()) -> None:
        self._instruments = tuple(instruments)
        for point in _POINTS:
            methods = [m for i in self._instruments if (m := _method(i, point)) is not None]
            setattr(self, point, _fan_out(point, methods))

    def __bool__(self) -> bool:
        return bool(self._instruments)

    def __iter__(self) -> Any:
        return iter(self._instruments)


def _method(instrument: Any, point: str) -> Callable[..., None] | None:
    method = getattr(instrument, point, None)
    if method is None or not callable(method):
        return None
    # Inherited from Instrument unchanged: a no-op, not worth a call.
    if getattr(type(instrument), point, None) is getattr(Instrument, point):
        return None
    return method  # type: ignore[no-any-return]


def _fan_out(point: str, methods: list[Callable[..., None]]) -> Callable[..., None] | None:
    if not methods:
        return None
    if len(methods) == 1:  # the usual case: no loop
        (method,) = methods

        def call_one(*args: Any) -> None:
            try:
                method(*args)
            except Exception:
                logger.exception("instrument %s failed", getattr(method, "__qualname__", point))

        return call_one

    def call_each(*args: Any) -> None:
        for method in methods:
            try:
                method(*args)
            except Exception:
                logger.exception("instrument %s failed", getattr(method, "__qualname__", point))

    return call_each


class StationVersions:
    """The OCPP version each connected station speaks, for an instrument's other points.

    Only ``connection_opened`` names the version: an instrument that wants it at the
    other points calls :meth:`opened` and :meth:`closed` from its own
    ``connection_opened``/``connection_closed``. A station connected twice for a while
    (a new connection replacing the old one) is remembered once per connection; its
    older connection, which ends first, answers :meth:`get` until then.
    """

    __slots__ = ("_more", "_version")

    def __init__(self) -> None:
        self._version: dict[str, str] = {}
        # Later connections of a station already connected: rare, so not a list each.
        self._more: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self._version) + sum(len(more) for more in self._more.values())

    def opened(self, station_id: str, version: str) -> None:
        """``station_id`` connected speaking ``version``."""
        if station_id in self._version:
            self._more.setdefault(station_id, []).append(version)
        else:
            self._version[station_id] = version

    def closed(self, station_id: str) -> str | None:
        """One connection of ``station_id`` ended (its oldest); the version it spoke."""
        version = self._version.pop(station_id, None)
        more = self._more.get(station_id)
        if more:
            self._version[station_id] = more.pop(0)
            if not more:
                del self._more[station_id]
        return version

    def get(self, station_id: str) -> str | None:
        """The version ``station_id`` speaks, or ``None`` if it is not connected."""
        return self._version.get(station_id)


#: Shared by every connection that has no instrument: all points are ``None``.
NO_INSTRUMENTS = Instruments()
