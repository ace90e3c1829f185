"""What a load run counts: :class:`FleetStats`, its progress line and its summary.

One :class:`FleetStats` serves every station of a run, as their
:class:`~csms_kit.simulator.StationMonitor` (connections, errors, transactions) and as
an instrument of their connections (frames, and the round trip of each CALL they
make). Round trips go into a :class:`LatencyHistogram`: constant memory, however long
the run.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from csms_kit.instruments import Direction, Instrument, Outcome
from csms_kit.simulator.behaviour import StationBehaviour, StationMonitor
from csms_kit.simulator.state import Transaction

__all__ = ["FleetStats", "LatencyHistogram"]

#: Buckets per factor e of the latency histogram: about 5 % apart.
_STEPS = 20
#: Outcomes of a CALL that came with a round trip (not a timeout, not a drop).
_ANSWERED = frozenset({"result", "error"})
#: How many error texts a summary quotes.
_QUOTED_ERRORS = 5


class LatencyHistogram:
    """Round-trip times in logarithmic buckets about 5 % wide."""

    __slots__ = ("_buckets", "count", "maximum")

    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0
        self.maximum = 0.0

    def add(self, seconds: float) -> None:
        """Count one round trip of ``seconds``."""
        micros = seconds * 1e6
        self._buckets[int(math.log(micros) * _STEPS) if micros > 1 else 0] += 1
        self.count += 1
        self.maximum = max(self.maximum, seconds)

    def percentile(self, fraction: float) -> float | None:
        """The round trip (seconds) that ``fraction`` of them do not exceed (the top of
        its bucket); ``None`` when nothing was counted."""
        if not self.count:
            return None
        rank = fraction * self.count
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen >= rank:
                return min(math.exp((bucket + 1) / _STEPS) / 1e6, self.maximum)
        return self.maximum  # pragma: no cover - the loop always reaches the rank


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _ms_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


class FleetStats(StationMonitor, Instrument):
    """The counts of a load run of ``stations`` stations (see the module docstring)."""

    def __init__(self, stations: int) -> None:
        self.stations = stations
        self.started_at = time.monotonic()
        #: Stations with an open WebSocket, now.
        self.connected = 0
        #: WebSockets opened in all (reconnections included).
        self.connections = 0
        #: Stations that were online at least once.
        self.ever_online: set[str] = set()
        self.frames_sent = 0
        self.frames_received = 0
        self.latency = LatencyHistogram()
        self.errors: Counter[str] = Counter()
        self.first_errors: list[str] = []
        self.transactions_started = 0
        self.transactions_ended = 0
        #: When the last storm began, and when every station was back online after it.
        self.storm_at: float | None = None
        self.recovered_at: float | None = None
        #: How late the simulator's own event loop runs (seconds): when this grows,
        #: the round trips measure the simulator as much as the CSMS.
        self.lag = 0.0
        self.max_lag = 0.0
        self._online: set[str] = set()
        # The progress line's window: frames and round trips since the last line.
        self._window = LatencyHistogram()
        self._window_frames = 0
        self._window_at = self.started_at
        self.ended_at: float | None = None
        self._at_end: tuple[int, int] | None = None

    @property
    def online(self) -> int:
        """Stations online now."""
        return len(self._online)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def end(self) -> None:
        """The run is over (before its stations stop): the summary describes this moment."""
        self.ended_at = time.monotonic()
        self._at_end = (self.connected, self.online)

    def storm_began(self) -> None:
        """Every station was just dropped on purpose: time their way back."""
        self.storm_at = time.monotonic()
        self.recovered_at = None
        self._online.clear()

    # -- StationMonitor ------------------------------------------------------------------

    def station_connected(self, station: StationBehaviour) -> None:
        self.connected += 1
        self.connections += 1

    def station_disconnected(self, station: StationBehaviour) -> None:
        self.connected -= 1
        self._online.discard(station.station_id)

    def station_online(self, station: StationBehaviour) -> None:
        self._online.add(station.station_id)
        self.ever_online.add(station.station_id)
        if (
            self.storm_at is not None
            and self.recovered_at is None
            and len(self._online) == self.stations
        ):
            self.recovered_at = time.monotonic()

    def station_failed(self, station: StationBehaviour, kind: str, error: BaseException) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < _QUOTED_ERRORS:
            self.first_errors.append(f"{kind}: {error}")

    def transaction_started(self, station: StationBehaviour, transaction: Transaction) -> None:
        self.transactions_started += 1

    def transaction_ended(self, station: StationBehaviour, transaction: Transaction) -> None:
        self.transactions_ended += 1

    # -- Instrument ----------------------------------------------------------------------

    def frame_sent(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        self.frames_sent += 1

    def frame_received(self, station_id: str, kind: str, action: str | None, size: int) -> None:
        self.frames_received += 1

    def call_finished(
        self,
        station_id: str,
        direction: Direction,
        action: str,
        message_id: str,
        outcome: Outcome,
        duration: float,
    ) -> None:
        if direction == "out" and outcome in _ANSWERED:
            self.latency.add(duration)
            self._window.add(duration)

    # -- reports -------------------------------------------------------------------------

    def loop_lag(self, seconds: float) -> None:
        """The event loop ran ``seconds`` late for a timer (see :attr:`lag`)."""
        self.lag = seconds
        self.max_lag = max(self.max_lag, seconds)

    def progress(self) -> str:
        """One line on the run since the last one (call it once a second)."""
        now = time.monotonic()
        frames = self.frames_sent + self.frames_received
        rate = (frames - self._window_frames) / max(now - self._window_at, 1e-9)
        window, self._window = self._window, LatencyHistogram()
        self._window_frames, self._window_at = frames, now
        errors = self.error_count
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(self.errors.items()))
        return (
            f"{now - self.started_at:6.1f}s  connected {self.connected}/{self.stations}  "
            f"online {self.online}  {rate:7.0f} msg/s  "
            f"p50 {_ms_text(window.percentile(0.5))}  p99 {_ms_text(window.percentile(0.99))}  "
            f"transactions {self.transactions_started}/{self.transactions_ended}  "
            f"lag {self.lag * 1000:.0f} ms  errors {errors}" + (f" ({detail})" if errors else "")
        )

    def summary(self, **run: Any) -> dict[str, Any]:
        """The whole run as JSON-ready data; ``run`` (url, scenario...) is put first."""
        seconds = (self.ended_at or time.monotonic()) - self.started_at
        connected, online = self._at_end or (self.connected, self.online)
        frames = self.frames_sent + self.frames_received
        storm: dict[str, Any] | None = None
        if self.storm_at is not None:
            back = None if self.recovered_at is None else self.recovered_at - self.storm_at
            storm = {"recovered_s": None if back is None else round(back, 2)}
        return {
            **run,
            "seconds": round(seconds, 2),
            "stations": self.stations,
            "connected": connected,
            "online": online,
            "ever_online": len(self.ever_online),
            "connections": self.connections,
            "messages": {
                "sent": self.frames_sent,
                "received": self.frames_received,
                "per_second": round(frames / max(seconds, 1e-9), 1),
            },
            "calls": self.latency.count,
            "latency_ms": {
                "p50": _ms(self.latency.percentile(0.5)),
                "p90": _ms(self.latency.percentile(0.9)),
                "p99": _ms(self.latency.percentile(0.99)),
                "max": _ms(self.latency.maximum if self.latency.count else None),
            },
            "transactions": {
                "started": self.transactions_started,
                "ended": self.transactions_ended,
            },
            "storm": storm,
            "loop_lag_ms": {"max": round(self.max_lag * 1000, 1)},
            "errors": {
                "total": self.error_count,
                "by_kind": dict(sorted(self.errors.items())),
                "first": list(self.first_errors),
            },
        }
