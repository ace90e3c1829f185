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
``csms_kit_disconnections_total``         counter    ``code`` (close code, ``"none"``)
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

Every point is cheap: the label children are looked up once per label set and kept,
so counting a frame is one dict lookup and one increment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

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


class PrometheusMetrics(Instrument):
    """An instrument that counts what the CSMS does, as Prometheus metrics.

    ``registry``: where the metrics are registered (default: ``prometheus_client``'s
    process-wide ``REGISTRY``; give a fresh ``CollectorRegistry`` to keep them apart,
    in tests say). One instance can serve several servers; a second instance on the
    same registry is refused by ``prometheus_client`` (duplicated time series).
    ``buckets``: the duration histogram's upper bounds in seconds. ``extra_actions``:
    names of your own (non-standard) actions to count by name rather than as
    ``"other"``.

    The metrics are updated from the event loop's thread; ``prometheus_client``'s
    values are locked, so exposing them from another thread (``start_http_server``)
    is safe.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        extra_actions: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        self._actions = any_version_actions() | frozenset(extra_actions)
        self._versions = StationVersions()
        self.connected = Gauge(
            "csms_kit_connected_stations",
            "Stations connected now, by OCPP version.",
            ["version"],
            registry=registry,
        )
        self.connections = Counter(
            "csms_kit_connections",
            "Station connections accepted (handshake done, session started), by OCPP version.",
            ["version"],
            registry=registry,
        )
        self.disconnections = Counter(
            "csms_kit_disconnections",
            "Station sessions ended, by WebSocket close code.",
            ["code"],
            registry=registry,
        )
        self.rejections = Counter(
            "csms_kit_handshake_rejections",
            "Connections refused at the handshake, by HTTP status.",
            ["status"],
            registry=registry,
        )
        self.frames = Counter(
            "csms_kit_frames",
            "OCPP-J text frames received (in) and sent (out), by frame type and action.",
            ["direction", "type", "action"],
            registry=registry,
        )
        self.calls = Counter(
            "csms_kit_calls",
            "CALLs finished: the station's (in) and ours (out), by action and outcome.",
            ["direction", "action", "outcome"],
            registry=registry,
        )
        self.call_duration = Histogram(
            "csms_kit_call_duration_seconds",
            "Time from a CALL's start to its end: for 'in', the handler's time until the "
            "answer is written; for 'out', from the call (queueing included) to the answer.",
            ["direction", "action", "outcome"],
            registry=registry,
            buckets=buckets,
        )
        self.handler_failures = Counter(
            "csms_kit_handler_failures",
            "Handlers and @after hooks that raised an unexpected exception, by action.",
            ["action"],
            registry=registry,
        )
        self.bad_frames = Counter(
            "csms_kit_bad_frames",
            "Frames that reached no handler: refused with a CALLERROR or dropped.",
            ["handling", "code", "malformed"],
            registry=registry,
        )
        self.throttled_stations = Counter(
            "csms_kit_throttled",
            "Stations over their rate limit: slowed (an episode), refused or closed.",
            ["how"],
            registry=registry,
        )
        self.keepalive_timeouts = Counter(
            "csms_kit_keepalive_timeouts",
            "Connections closed for not answering a ping in time (or not reading).",
            registry=registry,
        )
        for known in OcppVersion:  # a series at 0 from the start, for every version
            self.connected.labels(known.value)
            self.connections.labels(known.value)
        # Label children, found once per label set. Keyed by the names as the points
        # give them, and only for known actions: a station sending made-up action
        # names cannot grow these.
        self._frame_children: dict[tuple[str, str, str | None], Any] = {}
        self._call_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def action_label(self, action: str | None) -> str:
        """The ``action`` label for ``action``: itself if known, else ``"other"``."""
        if action is None:
            return ""
        return action if action in self._actions else OTHER_ACTION

    # -- connections ----------------------------------------------------------------------

    def handshake_rejected(self, station_id: str | None, status: int, reason: str) -> None:
        self.rejections.labels(str(status)).inc()

    def connection_opened(self, station_id: str, version: str) -> None:
        self._versions.opened(station_id, version)
        self.connections.labels(version).inc()
        self.connected.labels(version).inc()

    def connection_closed(self, station_id: str, code: int | None, reason: str) -> None:
        version = self._versions.closed(station_id)
        if version is not None:
            self.connected.labels(version).dec()
        self.disconnections.labels("none" if code is None else str(code)).inc()

    def keepalive_timeout(self, station_id: str, reason: str) -> None:
        self.keepalive_timeouts.inc()

    # -- frames and calls: once or twice per message, so kept cheap -----------------------

    def frame_received(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        try:
            child = self._frame_children["in", kind, action]
        except KeyError:
            child = self._frame_child("in", kind, action)
        child.inc()

    def frame_sent(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        try:
            child = self._frame_children["out", kind, action]
        except KeyError:
            child = self._frame_child("out", kind, action)
        child.inc()

    def _frame_child(self, direction: str, kind: str, action: str | None) -> Any:
        label = self.action_label(action)
        child = self.frames.labels(direction, kind, label)
        if label != OTHER_ACTION:
            self._frame_children[direction, kind, action] = child
        return child

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
            count, durations = self._call_children[direction, action, outcome]
        except KeyError:
            label = self.action_label(action)
            count = self.calls.labels(direction, label, outcome)
            durations = self.call_duration.labels(direction, label, outcome)
            if label != OTHER_ACTION:
                self._call_children[direction, action, outcome] = (count, durations)
        count.inc()
        durations.observe(duration)

    # -- trouble --------------------------------------------------------------------------

    def handler_failed(self, station_id: str, action: str, error: BaseException) -> None:
        self.handler_failures.labels(self.action_label(action)).inc()

    def frame_refused(
        self, station_id: str, code: str | None, reason: str, malformed: bool
    ) -> None:
        handling = "dropped" if code is None else "refused"
        self.bad_frames.labels(handling, code or "", "true" if malformed else "false").inc()

    def throttled(self, station_id: str, how: Literal["slowed", "refused", "closed"]) -> None:
        self.throttled_stations.labels(how).inc()
