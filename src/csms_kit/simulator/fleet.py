"""Many simulated stations against one CSMS: :class:`Fleet`, its scenarios, and
:func:`run_load`, the run behind ``csms-kit simulate``.

Scenarios:

``idle``
    Connect, boot, report status, send heartbeats.
``charging``
    ``idle``, and every station charges again and again: a session of 2 to 6 meter
    readings, then a pause of 1 to 3 reading intervals.
``storm``
    ``idle``, and halfway through (or once all are online, after a third of the run)
    every connection is dropped at once and every station reconnects at once.

``rate`` sets how often each station sends its periodic messages (heartbeats, meter
readings), per second; without it they follow the CSMS's heartbeat interval and the
station's reading interval (60 s), as real stations do.

A station costs one task (its :meth:`~csms_kit.simulator.SimulatedStation.run`), its
connection, and a timer for its heartbeats: a charging session adds a task while it
lasts.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from csms_kit.instruments import Instruments
from csms_kit.simulator.behaviour import StationBehaviour
from csms_kit.simulator.connect import ConnectOptions
from csms_kit.simulator.station import SimulatedStation
from csms_kit.simulator.stats import FleetStats
from csms_kit.stopping import cancel_and_wait
from csms_kit.versions import OcppVersion

__all__ = ["SCENARIOS", "Fleet", "Scenario", "run_load"]

Scenario = Literal["idle", "charging", "storm"]
SCENARIOS: tuple[Scenario, ...] = ("idle", "charging", "storm")
_CONNECT_KINDS = frozenset({"refused", "tls", "handshake", "timeout"})


class _FleetMonitor(FleetStats):
    """The fleet's stats, also telling the fleet what it acts on."""

    def __init__(self, fleet: Fleet, stations: int) -> None:
        super().__init__(stations)
        self.fleet = fleet

    def station_connected(self, station: StationBehaviour) -> None:
        super().station_connected(station)
        self.fleet._attempted(station)

    def station_failed(self, station: StationBehaviour, kind: str, error: BaseException) -> None:
        super().station_failed(station, kind, error)
        if kind in _CONNECT_KINDS:
            self.fleet._attempted(station)

    def station_online(self, station: StationBehaviour) -> None:
        super().station_online(station)
        self.fleet._went_online(station)


class Fleet:
    """``count`` stations named ``<id_prefix><n>`` at ``url``, counted in :attr:`stats`.

    Their versions cycle through ``versions``; ``scenario`` and ``rate`` are described
    in the module docstring. At most ``concurrency`` stations make their first
    connection attempt at once (a storm is not held back). ``options`` and
    ``station_class`` serve every station; ``call_timeout`` is their calls'.
    """

    def __init__(
        self,
        url: str,
        count: int,
        versions: Sequence[OcppVersion | str] = (OcppVersion.V16,),
        *,
        scenario: Scenario = "idle",
        rate: float | None = None,
        id_prefix: str = "sim-",
        connectors: int = 1,
        options: ConnectOptions | None = None,
        concurrency: int = 100,
        call_timeout: float = 30.0,
        station_class: type[SimulatedStation] = SimulatedStation,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.url = url
        self.scenario = scenario
        self.rate = rate
        self.concurrency = concurrency
        self.stats = _FleetMonitor(self, count)
        parsed = [OcppVersion.parse(v) for v in versions]
        instruments = Instruments([self.stats])
        width = len(str(count))
        self.stations = [
            station_class(
                url,
                f"{id_prefix}{n:0{width}d}",
                parsed[n % len(parsed)],
                connectors=connectors,
                options=options,
                heartbeat_interval=None if rate is None else 1 / rate,
                monitor=self.stats,
                instruments=instruments,
                call_timeout=call_timeout,
            )
            for n in range(count)
        ]
        self._stopping = False
        self._starter: asyncio.Task[None] | None = None
        self._attempting: set[str] = set()
        self._gate: asyncio.Future[None] | None = None
        self._charging: set[str] = set()

    async def start(self) -> None:
        """Start connecting the stations, in the background; return at once."""
        self._starter = asyncio.get_running_loop().create_task(
            self._start_all(), name="csms_kit fleet starter"
        )

    async def _start_all(self) -> None:
        loop = asyncio.get_running_loop()
        for station in self.stations:
            while len(self._attempting) >= self.concurrency:
                self._gate = loop.create_future()
                await self._gate
            self._attempting.add(station.station_id)
            await station.start(wait=False)

    def _attempted(self, station: StationBehaviour) -> None:
        """A station's first connection attempt is over: let the next one start."""
        self._attempting.discard(station.station_id)
        if self._gate is not None and not self._gate.done():
            self._gate.set_result(None)

    @property
    def all_online(self) -> bool:
        return self.stats.online == len(self.stations)

    def storm(self) -> None:
        """Drop every connection at once; every station reconnects at once."""
        self.stats.storm_began()
        for station in self.stations:
            station.drop(reconnect_in=0.0)

    async def stop(self) -> None:
        """Stop every station (closing its connection) and the starter."""
        self._stopping = True
        await cancel_and_wait(self._starter)
        await asyncio.gather(*(station.stop() for station in self.stations))

    # -- the charging scenario -------------------------------------------------------

    def _reading_interval(self, station: StationBehaviour) -> float:
        return 1 / self.rate if self.rate else station.meter_interval or 60.0

    def _went_online(self, station: StationBehaviour) -> None:
        if self.scenario == "charging" and station.station_id not in self._charging:
            first = random.uniform(0, 2) * self._reading_interval(station)
            self._plan_session(station, first)

    def _plan_session(self, station: StationBehaviour, delay: float) -> None:
        self._charging.add(station.station_id)
        asyncio.get_running_loop().call_later(delay, self._begin_session, station)

    def _begin_session(self, station: StationBehaviour) -> None:
        if self._stopping or not station.online:
            self._charging.discard(station.station_id)  # planned again once online
            return
        station.spawn(self._session(station), "charging")

    async def _session(self, station: StationBehaviour) -> None:
        interval = self._reading_interval(station)
        try:
            connector = station.free_connector()
            if connector is not None:  # else busy (a remote start, say): next time
                await station.charge(connector.id, samples=random.randint(2, 6), interval=interval)
        finally:
            if self._stopping or not station.online:
                self._charging.discard(station.station_id)
            else:
                self._plan_session(station, random.uniform(1, 3) * interval)


async def run_load(
    fleet: Fleet, duration: float, *, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run ``fleet`` for ``duration`` seconds, then stop it; its summary (JSON-ready).

    ``progress`` gets :meth:`FleetStats.progress` every second. The summary's ``"ok"``
    is true when no station saw an error.
    """
    await fleet.start()
    began = time.monotonic()
    stormed = fleet.scenario != "storm"
    try:
        tick = 1
        while time.monotonic() - began < duration:
            due = began + min(tick, duration)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            fleet.stats.loop_lag(max(0.0, time.monotonic() - due))
            tick += 1
            elapsed = time.monotonic() - began
            if not stormed and (
                elapsed >= duration / 2 or (elapsed >= duration / 3 and fleet.all_online)
            ):
                stormed = True
                fleet.storm()
            if progress is not None:
                progress(fleet.stats.progress())
    finally:
        fleet.stats.end()
        await fleet.stop()
    summary = fleet.stats.summary(
        url=fleet.url,
        scenario=fleet.scenario,
        versions=sorted({str(station.version) for station in fleet.stations}),
        rate=fleet.rate,
        duration=duration,
    )
    summary["ok"] = fleet.stats.error_count == 0
    return summary
