"""Prometheus metrics for a CSMS: :class:`PrometheusMetrics`, an instrument.

::

    from csms_kit.metrics import PrometheusMetrics
    from prometheus_client import start_http_server

    metrics = PrometheusMetrics()  # on prometheus_client's default registry
    start_http_server(9100)  # serves /metrics from a thread
    async with serve(MySession, "0.0.0.0", 9000, instruments=[metrics]):
        ...

Needs the ``prometheus`` extra (``pip install 'csms-kit[prometheus]'``).

========================================  =========  ====================================
metric                                    type       labels
========================================  =========  ====================================
``csms_kit_connected_stations``           gauge      ``version``
``csms_kit_connections_total``            counter    ``version``
``csms_kit_disconnections_total``         counter    ``code`` (close code, see below)
``csms_kit_handshake_rejections_total``   counter    ``status`` (HTTP status)
``csms_kit_frames_total``                 counter    ``direction``, ``type``, ``action``
``csms_kit_calls_total``                  counter    ``direction``, ``action``, ``outcome``
``csms_kit_call_duration_seconds``        histogram  ``direction``, ``action``, ``outcome``
``csms_kit_handler_failures_total``       counter    ``action``
``csms_kit_bad_frames_total``             counter    ``handling``, ``code``, ``malformed``
``csms_kit_throttled_total``              counter    ``how``
``csms_kit_keepalive_timeouts_total``     counter    (none)
========================================  =========  ====================================

``direction`` is ``"in"`` (from the station) or ``"out"`` (to it). The duration of an
``"in"`` CALL is its handler's time until the answer is written: the handler time.
``type`` is the frame's kind (``call``, ``result``, ``error``, ``resulterror``,
``send``, ``invalid``); ``outcome`` is ``result``, ``error``, ``timeout`` or
``disconnected``; ``handling`` is ``refused`` (answered with a CALLERROR) or
``dropped``.

Label values are bounded, whatever stations send: the station id is never a label
(thousands of stations would make thousands of series), and ``action`` is an action of
some OCPP version, or one given in ``extra_actions``; any other name is counted as
``"other"``, and a frame without one (an invalid frame, a CALLERROR) as ``""``.

``code`` of a disconnection is the WebSocket close code for the codes RFC 6455 defines
(1000-1015), ``"3xxx"`` and ``"4xxx"`` for the registered and private ranges,
``"other"`` for anything else and ``"none"`` when there was no close frame.

Every point is cheap, since a frame and a CALL are counted on the reader of the
connection: the metrics are plain numbers counted by the event loop's thread alone
(not ``prometheus_client``'s metric objects, each taking a lock per update), made into
metric families only when scraped, and the numbers for an action are found once per
label set and kept, so counting a frame is one dict lookup and one increment.
``calls_total`` is read from the duration histogram's count: one update counts and
times a CALL.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from csms_kit.exceptions import UsageError
from csms_kit.instruments import Direction, Instrument, Outcome, StationVersions
from csms_kit.protocol.schemas import any_version_actions
from csms_kit.versions import OcppVersion

__all__ = ["DEFAULT_BUCKETS", "OTHER_ACTION", "PrometheusMetrics"]

#: Upper bounds (seconds) of the call duration histogram: from a sub-millisecond
#: handler to a station's answer over a slow cellular link, up to the usual timeouts.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: The ``action`` label of a name that is no known OCPP action.
OTHER_ACTION = "other"

_FRAMES = ("direction", "type", "action")
_CALLS = ("direction", "action", "outcome")
_BAD_FRAMES = ("handling", "code", "malformed")


class _Durations:
    """The calls of one label set: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("buckets", "total")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.total = 0.0


class PrometheusMetrics(Instrument):
    """An instrument that counts what the CSMS does, as Prometheus metrics.

    ``registry``: where the metrics are registered (default: ``prometheus_client``'s
    process-wide ``REGISTRY``; give a fresh ``CollectorRegistry`` to keep them apart,
    in tests say; ``None``: register nowhere, and collect with :meth:`collect`). One
    instance can serve several servers; a second instance on the same registry is
    refused by ``prometheus_client`` (duplicated time series). ``buckets``: the
    duration histogram's upper bounds in seconds. ``extra_actions``: names of your own
    (non-standard) actions to count by name rather than as ``"other"``.

    Threads: the points are called from one thread, the event loop's (as the servers
    call them), so counting takes no lock; scrapes may come from any thread
    (``prometheus_client.start_http_server`` serves them from one of its own). Servers
    running in several threads need an instrument each, on registries of their own;
    one instrument used from two threads reports a ``UsageError`` (logged) when the
    second thread's first station connects.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        extra_actions: Iterable[str] = (),
    ) -> None:
        bounds = sorted(float(b) for b in buckets if b != float("inf"))
        if not bounds:
            raise ValueError("the histogram needs at least one finite bucket bound")
        self._bounds = tuple(bounds)
        # Written as prometheus_client writes its own histograms' bounds ("0.005", "1.0").
        self._le = [*(repr(b) for b in bounds), "+Inf"]
        self._actions = any_version_actions() | frozenset(extra_actions)
        self._versions = StationVersions()
        self._thread: int | None = None  # the one thread that counts (see the class)
        # Every figure, keyed by its label values. A series at 0 from the start for
        # every version: a dashboard shows 0, not "no data".
        self._connected = dict.fromkeys((v.value for v in OcppVersion), 0)
        self._connections = dict.fromkeys((v.value for v in OcppVersion), 0)
        self._disconnections: dict[str, int] = {}
        self._rejections: dict[str, int] = {}
        self._frames: dict[tuple[str, str, str], list[int]] = {}
        self._calls: dict[tuple[str, str, str], _Durations] = {}
        self._handler_failures: dict[str, int] = {}
        self._bad_frames: dict[tuple[str, str, str], int] = {}
        self._throttled: dict[str, int] = {}
        self._keepalive_timeouts = 0
        # The same cells, by the names as the points give them (direction, then kind and
        # action, or action and outcome: lookups without building a key), only for known
        # actions, so that a station sending made-up action names cannot grow these.
        self._frame_cells: dict[str, dict[str, dict[str | None, list[int]]]] = {
            "in": {},
            "out": {},
        }
        self._call_cells: dict[str, dict[str, dict[str, _Durations]]] = {"in": {}, "out": {}}
        self.registry = registry
        if registry is not None:
            registry.register(self)

    def action_label(self, action: str | None) -> str:
        """The ``action`` label for ``action``: itself if known, else ``"other"``."""
        if action is None:
            return ""
        return action if action in self._actions else OTHER_ACTION

    # -- connections ----------------------------------------------------------------------

    def handshake_rejected(self, station_id: str | None, status: int, reason: str) -> None:
        _count(self._rejections, str(status))

    def connection_opened(self, station_id: str, version: str) -> None:
        # Every connection starts here: where a second counting thread would show first.
        thread = threading.get_ident()
        if self._thread is None:
            self._thread = thread
        elif thread != self._thread:
            raise UsageError(
                "a PrometheusMetrics instrument counts from one thread (one event loop); "
                "give the servers of each thread an instrument of their own, each on a "
                "registry of its own"
            )
        self._versions.opened(station_id, version)
        _count(self._connections, version)
        _count(self._connected, version)

    def connection_closed(self, station_id: str, code: int | None, reason: str) -> None:
        version = self._versions.closed(station_id)
        if version is not None:
            self._connected[version] -= 1
        _count(self._disconnections, _close_code_label(code))

    def keepalive_timeout(self, station_id: str, reason: str) -> None:
        self._keepalive_timeouts += 1

    # -- frames and calls: once or twice per message, so kept cheap -----------------------

    def frame_received(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        try:
            self._frame_cells["in"][kind][action][0] += 1
        except KeyError:
            self._frame_cell("in", kind, action)[0] += 1

    def frame_sent(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        try:
            self._frame_cells["out"][kind][action][0] += 1
        except KeyError:
            self._frame_cell("out", kind, action)[0] += 1

    def _frame_cell(self, direction: str, kind: str, action: str | None) -> list[int]:
        label = self.action_label(action)
        cell = self._frames.setdefault((direction, kind, label), [0])
        if label != OTHER_ACTION:
            self._frame_cells[direction].setdefault(kind, {})[action] = cell
        return cell

    def call_finished(
        self,
        station_id: str,
        direction: Direction,
        action: str,
        message_id: str,
        outcome: Outcome,
        duration: float,
    ) -> None:
        try:
            cell = self._call_cells[direction][action][outcome]
        except KeyError:
            cell = self._call_cell(direction, action, outcome)
        cell.buckets[bisect_left(self._bounds, duration)] += 1  # the first bound >= it
        cell.total += duration

    def _call_cell(self, direction: str, action: str, outcome: str) -> _Durations:
        label = self.action_label(action)
        cell = self._calls.get((direction, label, outcome))
        if cell is None:
            cell = self._calls[direction, label, outcome] = _Durations(len(self._le))
        if label != OTHER_ACTION:
            self._call_cells[direction].setdefault(action, {})[outcome] = cell
        return cell

    # -- trouble --------------------------------------------------------------------------

    def handler_failed(self, station_id: str, action: str, error: BaseException) -> None:
        _count(self._handler_failures, self.action_label(action))

    def frame_refused(
        self, station_id: str, code: str | None, reason: str, malformed: bool
    ) -> None:
        handling = "dropped" if code is None else "refused"
        _count(self._bad_frames, (handling, code or "", "true" if malformed else "false"))

    def throttled(self, station_id: str, how: Literal["slowed", "refused", "closed"]) -> None:
        _count(self._throttled, how)

    # -- the collector ----------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        """The metric families, without samples (``prometheus_client`` checks names)."""
        return self._families(snapshot=None)

    def collect(self) -> Iterator[Metric]:
        """The metric families with their samples now (called by the registry on scrape).

        Safe from another thread while the event loop counts: each dict is copied whole
        first (one step for the interpreter), so a label set added meanwhile cannot
        break the iteration; the figures are each read once.
        """
        frames = dict(self._frames)
        calls = dict(self._calls)
        snapshot = (
            dict(self._connected),
            dict(self._connections),
            dict(self._disconnections),
            dict(self._rejections),
            {labels: cell[0] for labels, cell in frames.items()},
            {labels: (list(c.buckets), c.total) for labels, c in calls.items()},
            dict(self._handler_failures),
            dict(self._bad_frames),
            dict(self._throttled),
            self._keepalive_timeouts,
        )
        return self._families(snapshot)

    def _families(self, snapshot: tuple[Any, ...] | None) -> Iterator[Metric]:
        (
            connected,
            connections,
            disconnections,
            rejections,
            frames,
            calls,
            failures,
            bad_frames,
            throttled,
            keepalive_timeouts,
        ) = snapshot or ({},) * 9 + (None,)
        yield _family(
            GaugeMetricFamily,
            "csms_kit_connected_stations",
            "Stations connected now, by OCPP version.",
            ["version"],
            connected,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_connections",
            "Station connections accepted (handshake done, session started), by OCPP version.",
            ["version"],
            connections,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_disconnections",
            "Station sessions ended, by WebSocket close code.",
            ["code"],
            disconnections,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_handshake_rejections",
            "Connections refused at the handshake, by HTTP status.",
            ["status"],
            rejections,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_frames",
            "OCPP-J text frames received (in) and sent (out), by frame type and action.",
            _FRAMES,
            frames,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_calls",
            "CALLs finished: the station's (in) and ours (out), by action and outcome.",
            _CALLS,
            {labels: sum(buckets) for labels, (buckets, _) in calls.items()},
        )
        durations = HistogramMetricFamily(
            "csms_kit_call_duration_seconds",
            "Time from a CALL's start to its end: for 'in', the handler's time until the "
            "answer is written; for 'out', from the call (queueing included) to the answer.",
            labels=_CALLS,
        )
        for labels, (buckets, total) in calls.items():
            cumulative, running = [], 0
            for le, count in zip(self._le, buckets, strict=True):
                running += count
                cumulative.append((le, float(running)))
            durations.add_metric(labels, cumulative, total)
        yield durations
        yield _family(
            CounterMetricFamily,
            "csms_kit_handler_failures",
            "Handlers and @after hooks that raised an unexpected exception, by action.",
            ["action"],
            failures,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_bad_frames",
            "Frames that reached no handler: refused with a CALLERROR or dropped.",
            _BAD_FRAMES,
            bad_frames,
        )
        yield _family(
            CounterMetricFamily,
            "csms_kit_throttled",
            "Stations over their rate limit: slowed (an episode), refused or closed.",
            ["how"],
            throttled,
        )
        yield CounterMetricFamily(
            "csms_kit_keepalive_timeouts",
            "Connections closed for not answering a ping in time (or not reading).",
            value=keepalive_timeouts,
        )


def _count(counts: dict[Any, int], key: Any) -> None:
    counts[key] = counts.get(key, 0) + 1


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    labels: Sequence[str],
    values: dict[Any, int],
) -> Metric:
    family = kind(name, documentation, labels=labels)
    for key, value in values.items():
        family.add_metric(key if isinstance(key, tuple) else (key,), value)
    return family


def _close_code_label(code: int | None) -> str:
    """A close code as a label of bounded cardinality (see the module docstring)."""
    if code is None:
        return "none"
    if 1000 <= code <= 1015:
        return str(code)
    if 3000 <= code <= 4999:
        return f"{code // 1000}xxx"
    return "other"
