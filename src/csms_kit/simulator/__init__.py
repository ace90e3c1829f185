"""Simulated charging stations, alone or by the thousand (``csms-kit simulate``).

::

    from csms_kit.simulator import simulate_station

    async with simulate_station("ws://localhost:9000", "CP-1", "2.0.1") as station:
        await station.charge(samples=3, interval=1.0)

Modules, one concern each: :mod:`~csms_kit.simulator.station` (the station and its
answers to the CSMS), :mod:`~csms_kit.simulator.behaviour` (what it does on its own),
:mod:`~csms_kit.simulator.messages` (its payloads per version),
:mod:`~csms_kit.simulator.settings` (configuration keys and device model),
:mod:`~csms_kit.simulator.meter`, :mod:`~csms_kit.simulator.state`,
:mod:`~csms_kit.simulator.offline` (backoff and the queue kept while offline),
:mod:`~csms_kit.simulator.connect`, :mod:`~csms_kit.simulator.fleet` (many stations,
scenarios), :mod:`~csms_kit.simulator.stats` and :mod:`~csms_kit.simulator.command`
(``csms-kit simulate``).
"""

from csms_kit.exceptions import ConnectFailed
from csms_kit.simulator.behaviour import StationMonitor, error_kind
from csms_kit.simulator.connect import ConnectOptions
from csms_kit.simulator.fleet import SCENARIOS, Fleet, Scenario, run_load
from csms_kit.simulator.meter import Meter, Sample
from csms_kit.simulator.offline import Backoff
from csms_kit.simulator.settings import Configuration, DeviceModel
from csms_kit.simulator.state import Connector, Transaction
from csms_kit.simulator.station import SimulatedStation, simulate_station
from csms_kit.simulator.stats import FleetStats

__all__ = [
    "SCENARIOS",
    "Backoff",
    "Configuration",
    "ConnectFailed",
    "ConnectOptions",
    "Connector",
    "DeviceModel",
    "Fleet",
    "FleetStats",
    "Meter",
    "Sample",
    "Scenario",
    "SimulatedStation",
    "StationMonitor",
    "Transaction",
    "error_kind",
    "run_load",
    "simulate_station",
]
